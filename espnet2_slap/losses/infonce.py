"""CLAP's symmetric InfoNCE, with negatives gathered across data-parallel ranks."""

from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B_r, D) on rank r -> (sum_r B_r, D) in rank order, gradients flowing back to every rank's input.

    The identity outside torch.distributed. Batch sizes may differ between ranks (ESPnet gives rank r the rows
    ``batch[r::world_size]``, uneven for an odd batch): rows are padded to the largest size for the collective
    and trimmed after it.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    size = torch.tensor([x.size(0)], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    padded = torch.cat([x, x.new_zeros(max(sizes) - x.size(0), *x.shape[1:])], dim=0)
    return torch.cat([part[:n] for part, n in zip(dist_fn.all_gather(padded), sizes)], dim=0)


def symmetric_infonce(
    z_audio: torch.Tensor, z_text: torch.Tensor, logit_scale: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy audio->text and text->audio over the global batch: (B, D), (B, D), () -> (a2t, t2a).

    Pairs are matched by position; every other item of the (gathered) batch is a negative. Each rank computes
    the loss of the whole global batch, so with DDP's gradient averaging the gradients equal those of one
    process holding the concatenated batch.
    """
    a = gather_with_grad(F.normalize(z_audio, dim=-1))
    t = gather_with_grad(F.normalize(z_text, dim=-1))
    logits = logit_scale * a @ t.T  # (N, N)
    labels = torch.arange(logits.size(0), device=logits.device)
    return F.cross_entropy(logits, labels), F.cross_entropy(logits.T, labels)
