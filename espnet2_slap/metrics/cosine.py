"""Cosine similarity of embedding rows in numpy (float64), for the small-N evaluation metrics."""

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float64 rows of L2 norm 1 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_scores(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(N, D), (C, D) -> (N, C) cosine similarities."""
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"embedding dims differ: {queries.shape[1]} vs {keys.shape[1]}")
    return unit_rows(queries) @ unit_rows(keys).T
