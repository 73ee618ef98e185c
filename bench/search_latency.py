"""Milliseconds of one search query over N random L2-normalised items: the tiled exact top-k of the search index
(``espnet2_slap.metrics.topk.top_k``: a matrix-vector product per tile of --tile_rows rows, argpartition per
tile, merge) against the bare whole-catalogue ``emb @ q`` + ``argpartition`` + sort of the k (the floor: the
same arithmetic in one piece, with an (N,) score vector).

Both read the same in-memory float32 catalogue (with --mmap, the tiled search also from a memory-mapped .npy
written to a temporary directory, as ``SearchIndex`` opens an index; its pages are in the page cache after the
first run). Each method runs --repeats times, alternately, after one unmeasured run; the table gives the median
milliseconds of each, and "x bare" the median ratio of tiled to the bare run just before it (a shared machine's
speed comes and goes, a pair run back to back shares the same moment). The two must find the same k rows.

Not a test: figures depend on the machine and its load (BLAS threads: as numpy's BLAS is set, e.g.
OPENBLAS_NUM_THREADS). Example:

    tools/venv/bin/python bench/search_latency.py --sizes 100000 1000000 --repeats 20
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from espnet2_slap.metrics.topk import TILE_ROWS, top_k


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000], help="N, items in the catalogue")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--tile_rows", type=int, default=TILE_ROWS, help="rows per tile of the tiled search")
    parser.add_argument("--repeats", type=int, default=20, help="measured runs of each method, alternated")
    parser.add_argument("--mmap", action="store_true", help="time the tiled search on a memory-mapped .npy too")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def bare(emb: np.ndarray, q: np.ndarray, k: int):
    scores = emb @ q
    rows = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return scores[rows], rows


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - start) * 1000, out


def catalogue(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    emb = np.empty((n, dim), dtype=np.float32)
    for r0 in range(0, n, 65536):  # in blocks: no float64 copy of the whole
        block = rng.standard_normal((min(65536, n - r0), dim), dtype=np.float32)
        emb[r0 : r0 + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return emb


def measure(n: int, args) -> dict:
    emb = catalogue(n, args.dim, args.seed)
    q = catalogue(1, args.dim, args.seed + 1)[0]
    methods = {"bare": lambda: bare(emb, q, args.k), "tiled": lambda: top_k(emb, q, args.k, args.tile_rows)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.mmap:
            np.save(Path(tmp) / "emb.npy", emb)
            mapped = np.load(Path(tmp) / "emb.npy", mmap_mode="r")
            methods["tiled, mmap"] = lambda: top_k(mapped, q, args.k, args.tile_rows)
        results = {name: fn() for name, fn in methods.items()}  # warm-up (and the page cache of the mmap)
        for name, (scores, rows) in results.items():
            if not np.array_equal(rows, results["bare"][1]):
                raise AssertionError(f"N={n}: {name} found other rows than bare: {rows} vs {results['bare'][1]}")
        times = {name: [] for name in methods}
        ratios = {name: [] for name in methods if name != "bare"}
        for _ in range(args.repeats):
            for name, fn in methods.items():
                times[name].append(timed(fn)[0])
                if name != "bare":
                    ratios[name].append(times[name][-1] / times["bare"][-1])
    return {
        "n": n,
        **{f"{name} ms": statistics.median(t) for name, t in times.items()},
        **{f"{name} x bare": statistics.median(r) for name, r in ratios.items()},
    }


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    rows = [measure(n, args) for n in args.sizes]
    columns = list(rows[0])
    print(f"one query, d={args.dim}, k={args.k}, tile_rows={args.tile_rows}, median of {args.repeats} runs")
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else f"{v:.2f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
