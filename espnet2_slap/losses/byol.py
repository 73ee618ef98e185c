"""SLAP's negative-free losses: BYOL regression between predictions and target projections."""

import torch
import torch.nn.functional as F


def regression_distance(q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """d(q, z) = 2 - 2 <q/|q|, z/|z|> per sample: (B, D), (B, D) -> (B,)."""
    return 2.0 - 2.0 * (F.normalize(q, dim=-1) * F.normalize(z, dim=-1)).sum(dim=-1)


def mean_pair_distance(
    q_audio: torch.Tensor, z_audio: torch.Tensor, q_text: torch.Tensor, z_text: torch.Tensor
) -> torch.Tensor:
    """(d(q_audio, z_audio) + d(q_text, z_text)) / 2, each d averaged over the batch: (B, D) x 4 -> ()."""
    return (regression_distance(q_audio, z_audio).mean() + regression_distance(q_text, z_text).mean()) / 2.0


def inter_modal_loss(
    q_audio: torch.Tensor, q_text: torch.Tensor, target_audio: torch.Tensor, target_text: torch.Tensor
) -> torch.Tensor:
    """(d(q_a, z~_t) + d(q_t, z~_a)) / 2: each modality predicts the other modality's target."""
    return mean_pair_distance(q_audio, target_text, q_text, target_audio)


def intra_modal_loss(
    q_audio: torch.Tensor, q_text: torch.Tensor, target_audio: torch.Tensor, target_text: torch.Tensor
) -> torch.Tensor:
    """(d(q_a, z~_a) + d(q_t, z~_t)) / 2: each modality predicts its own target."""
    return mean_pair_distance(q_audio, target_audio, q_text, target_text)
