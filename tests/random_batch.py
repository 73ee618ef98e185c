"""Random collated batches shaped like ESPnet's, for tests and benchmarks."""

from typing import Dict

import torch


def random_batch(
    batch_size: int, num_samples: int, max_text_length: int, vocab_size: int, generator: torch.Generator
) -> Dict[str, torch.Tensor]:
    """Waveforms (B, S) and caption ids (B, L) of 2/3 to all of ``max_text_length`` tokens, padded with -1."""
    text_lengths = torch.randint((2 * max_text_length) // 3, max_text_length + 1, (batch_size,), generator=generator)
    text = torch.randint(1, vocab_size, (batch_size, int(text_lengths.max())), generator=generator)
    text[torch.arange(text.size(1)) >= text_lengths[:, None]] = -1
    return dict(
        speech=0.1 * torch.randn(batch_size, num_samples, generator=generator),
        speech_lengths=torch.full((batch_size,), num_samples),
        text=text,
        text_lengths=text_lengths,
    )
