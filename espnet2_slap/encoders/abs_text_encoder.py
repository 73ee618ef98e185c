"""Interface of text encoders: token ids to one caption-level representation."""

from abc import ABC, abstractmethod

import torch


class AbsTextEncoder(torch.nn.Module, ABC):
    @abstractmethod
    def output_size(self) -> int:
        raise NotImplementedError

    @abstractmethod
    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) padded with any value past text_lengths (B,) -> representation (B, output_size())."""
        raise NotImplementedError
