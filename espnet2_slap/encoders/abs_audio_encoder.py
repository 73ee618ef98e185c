"""Interface of audio encoders: features to one clip-level representation."""

from abc import ABC, abstractmethod

import torch


class AbsAudioEncoder(torch.nn.Module, ABC):
    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) -> representation y (B, output_size())."""
        raise NotImplementedError
