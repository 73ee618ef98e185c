"""Cheap training-time monitors computed on one batch."""

import torch
import torch.nn.functional as F


@torch.no_grad()
def inbatch_recall_at_1(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Fraction of queries whose most similar key (cosine) is their own pair: (B, D), (B, D) -> ()."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    return (sim.argmax(dim=1) == torch.arange(sim.size(0), device=sim.device)).float().mean()


@torch.no_grad()
def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension std of the L2-normalised embeddings (B, D) -> (): 0 when collapsed, ~1/sqrt(D) when spread."""
    if z.size(0) < 2:
        return z.new_zeros(())
    return F.normalize(z.float(), dim=-1).std(dim=0).mean()
