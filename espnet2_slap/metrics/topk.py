"""Exact top-k search by inner product in tiles: the catalogue is read ``tile_rows`` rows at a time (a memory map
of an .npy stays on disk but for the tile being read), each tile's scores are reduced to its k best per query
(``argpartition``) and merged with the best so far. Memory is O(Q x tile_rows), never Q x N (nor N x N); for one
query a tile is a matrix-vector product.

With L2-normalised rows and queries the scores are cosine similarities (``search/index.py`` stores them so).
Results are best first, ties in score by catalogue row (lower first); among rows tied at exactly the k-th score,
which ones are kept is arbitrary (as with any argpartition).
"""

from typing import Tuple

import numpy as np

TILE_ROWS = 262144
# the most scores one tile holds (queries x rows): a batch of queries gets proportionally fewer rows a tile
TILE_SCORES = 1 << 24


def tile_rows_for(num_queries: int, tile_rows: int = TILE_ROWS) -> int:
    return max(1, min(tile_rows, TILE_SCORES // max(1, num_queries)))


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """(Q, n) -> (Q, k) columns of each row's k highest scores (unordered)."""
    n = scores.shape[1]
    if k >= n:
        return np.broadcast_to(np.arange(n), (scores.shape[0], n))
    return np.argpartition(scores, n - k, axis=1)[:, n - k :]


def top_k(
    catalogue: np.ndarray, queries: np.ndarray, k: int, tile_rows: int = TILE_ROWS
) -> Tuple[np.ndarray, np.ndarray]:
    """(scores (Q, k'), rows (Q, k')) of the k' = min(k, N) rows of ``catalogue`` (N, D) with the highest inner
    product with each of ``queries`` (Q, D) (or one query, (D,): then (k',) each), best first."""
    single = queries.ndim == 1
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if catalogue.ndim != 2 or q.shape[1] != catalogue.shape[1]:
        raise ValueError(f"queries of shape {queries.shape} do not match a catalogue of shape {catalogue.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_rows = catalogue.shape[0]
    k = min(k, n_rows)
    step = tile_rows_for(len(q), tile_rows)
    best_scores = np.empty((len(q), 0), dtype=np.float32)
    best_rows = np.empty((len(q), 0), dtype=np.int64)
    qt = q.T if len(q) > 1 else q[0]
    for r0 in range(0, n_rows, step):
        tile = np.asarray(catalogue[r0 : r0 + step], dtype=np.float32)
        scores = tile @ qt  # (n,) for one query (a matrix-vector product), else (n, Q)
        scores = scores[None] if scores.ndim == 1 else scores.T
        cols = _best(scores, k)
        cand_scores = np.concatenate([best_scores, np.take_along_axis(scores, cols, axis=1)], axis=1)
        cand_rows = np.concatenate([best_rows, cols + r0], axis=1)
        keep = _best(cand_scores, k)
        best_scores = np.take_along_axis(cand_scores, keep, axis=1)
        best_rows = np.take_along_axis(cand_rows, keep, axis=1)
    order = np.lexsort((best_rows, -best_scores), axis=1) if best_rows.size else best_rows
    best_scores = np.take_along_axis(best_scores, order, axis=1)
    best_rows = np.take_along_axis(best_rows, order, axis=1)
    return (best_scores[0], best_rows[0]) if single else (best_scores, best_rows)
