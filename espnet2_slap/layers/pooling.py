"""Pooling of padded sequences."""

import torch
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask


def masked_mean(xs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames: (B, T, D), (B,) -> (B, D)."""
    valid = (~make_pad_mask(lengths, xs, length_dim=1)).to(xs.dtype)  # (B, T, D)
    return (xs * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)
