"""From-scratch Transformer text encoder over sentencepiece ids (ESPnet's TransformerEncoder), mean-pooled."""

import torch
from espnet2.asr.encoder.transformer_encoder import TransformerEncoder
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from typeguard import typechecked

from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.layers.pooling import masked_mean


class TransformerTextEncoder(AbsTextEncoder):
    """Token ids (B, L) -> (B, output_size): embedding + ESPnet TransformerEncoder blocks, masked mean."""

    @typechecked
    def __init__(
        self,
        vocab_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 1024,
        num_blocks: int = 4,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        normalize_before: bool = True,
    ):
        super().__init__()
        self.encoder = TransformerEncoder(
            input_size=vocab_size,
            output_size=output_size,
            attention_heads=attention_heads,
            linear_units=linear_units,
            num_blocks=num_blocks,
            dropout_rate=dropout_rate,
            positional_dropout_rate=positional_dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            input_layer="embed",
            normalize_before=normalize_before,
        )

    def output_size(self) -> int:
        return self.encoder.output_size()

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        ids = text.masked_fill(make_pad_mask(text_lengths, text, length_dim=1), 0)
        hs, hs_lengths, _ = self.encoder(ids, text_lengths)
        return masked_mean(hs, hs_lengths)
