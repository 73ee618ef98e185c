"""CLAP's symmetric InfoNCE, with negatives gathered across data-parallel ranks."""

from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B, D) on each rank -> (world_size * B, D), rank order, gradients flowing back to every rank's input.

    The identity outside torch.distributed. Ranks must hold batches of the same size.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(x), dim=0)


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
