"""Cosine similarity of embedding rows in float64, for the small-N evaluation metrics."""

from typing import Union

import numpy as np
import torch

Device = Union[str, torch.device]


def unit_rows(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(N, D) -> (N, D) rows of L2 norm 1 in ``dtype`` (float64 for the metrics; zero rows stay zero)."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), x.dtype.type(1e-12))


def cosine_scores(queries: np.ndarray, keys: np.ndarray, device: Device = "cpu") -> np.ndarray:
    """(N, D), (C, D) -> (N, C) cosine similarities (numpy), the product computed on ``device``."""
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"embedding dims differ: {queries.shape[1]} vs {keys.shape[1]}")
    q, k = (torch.as_tensor(unit_rows(x), device=device) for x in (queries, keys))
    return (q @ k.T).cpu().numpy()
