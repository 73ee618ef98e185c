"""SLAP's negative-free losses: BYOL regression between predictions and target projections."""

import torch
import torch.nn.functional as F


def regression_distance(q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """d(q, z) = 2 - 2 <q/|q|, z/|z|> per sample: (B, D), (B, D) -> (B,)."""
    return 2.0 - 2.0 * (F.normalize(q, dim=-1) * F.normalize(z, dim=-1)).sum(dim=-1)


def inter_modal_loss(
    q_audio: torch.Tensor, q_text: torch.Tensor, target_audio: torch.Tensor, target_text: torch.Tensor
) -> torch.Tensor:
    """(d(q_a, z~_t) + d(q_t, z~_a)) / 2, each d averaged over the batch: predict the other modality's target."""
    return (
        regression_distance(q_audio, target_text).mean() + regression_distance(q_text, target_audio).mean()
    ) / 2.0


def intra_modal_loss(
    q_audio: torch.Tensor, q_text: torch.Tensor, target_audio: torch.Tensor, target_text: torch.Tensor
) -> torch.Tensor:
    """(d(q_a, z~_a) + d(q_t, z~_t)) / 2: predict the own modality's target."""
    return (
        regression_distance(q_audio, target_audio).mean() + regression_distance(q_text, target_text).mean()
    ) / 2.0
