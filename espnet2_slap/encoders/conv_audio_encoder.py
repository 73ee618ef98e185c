"""A small convolutional audio encoder, fast enough for CPU tests and the tiny recipe."""

from typing import List

import torch
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from typeguard import typechecked

from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.layers.pooling import masked_mean


class ConvAudioEncoder(AbsAudioEncoder):
    """Log-mel (B, T, F) -> (B, channels[-1]): strided 1-D convolutions over time, mean-pooled.

    Each block is Conv1d(kernel, stride 2) -> LayerNorm over channels -> ReLU, and padded frames are zeroed
    before every convolution, so a clip's output does not depend on how much padding its batch adds (no
    statistic couples the samples of a batch).
    """

    @typechecked
    def __init__(self, input_size: int, channels: List[int] = [64, 128, 256], kernel_size: int = 5):
        super().__init__()
        if not channels:
            raise ValueError("ConvAudioEncoder needs at least one block in channels")
        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for c_in, c_out in zip([input_size] + channels[:-1], channels):
            self.convs.append(torch.nn.Conv1d(c_in, c_out, kernel_size, stride=2, padding=kernel_size // 2))
            self.norms.append(torch.nn.LayerNorm(c_out))
        self._output_size = channels[-1]

    def output_size(self) -> int:
        return self._output_size

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> torch.Tensor:
        xs, lengths = feats, feats_lengths
        for conv, norm in zip(self.convs, self.norms):
            xs = xs.masked_fill(make_pad_mask(lengths, xs, length_dim=1), 0.0)
            xs = conv(xs.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            xs = torch.relu(norm(xs))
        return masked_mean(xs, lengths)
