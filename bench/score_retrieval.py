"""Seconds and peak memory of retrieval scoring: our blocked exact ranks vs the full N x N matrix + argsort, and
the floor: the bare matrix products the blocked method needs.

N random 512-d audio embeddings and N captions (caption = its clip's embedding plus --noise times as much noise),
one caption per clip. "blocked" is ``espnet2_slap.metrics.retrieval.retrieval_metrics`` (both directions, one pass of
(block, N) score blocks); "full" builds the whole (N, N) score matrix and argsorts it per direction, as the
reference code does, and is skipped when its matrix and sort indices (N^2 x 12 bytes) would exceed --full_cap_gib.
"matmul floor" computes only the (block, N) score products of the blocked method (normalised audio rows times the
captions, written into one reused buffer): the arithmetic every exact method must do, timed on the same device;
"x floor" is the blocked method's time over it.

On --device cuda the inputs are made on the GPU, times are synchronised and the peak is torch's largest allocation
on it (``max_memory_allocated``); on the CPU it is the process's peak RSS.

Each configuration runs in a fresh interpreter (a subprocess), so its peak RSS (ru_maxrss) is its own: inputs
(2 x N x 512 x 4 bytes) included. Seconds count the scoring only, not making the inputs.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/score_retrieval.py --threads 2 --sizes 10000 50000 200000
    tools/venv/bin/python bench/score_retrieval.py --device cuda --sizes 200000
"""

import argparse
import json
import resource
import subprocess
import sys
import time

GIB = 1024**3


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000, 200000], help="N (clips = captions)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--noise", type=float, default=6.0, help="noise std relative to the clip embedding's")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every configuration")
    parser.add_argument("--block_size", type=int, default=256, help="audio rows per score block (blocked method)")
    parser.add_argument("--device", default="cpu", help="torch device of the scoring (cpu, cuda, ...)")
    parser.add_argument(
        "--full_cap_gib", type=float, default=8.0, help="skip the full-matrix method when N^2 x 12 bytes exceeds this"
    )
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    return parser


def full_matrix_metrics(audio, text):
    """The reference approach: (N, N) cosine matrix, argsort of every row, position of the true item."""
    import torch
    import torch.nn.functional as F

    from espnet2_slap.metrics.retrieval import rank_summary

    scores = F.normalize(audio, dim=-1) @ F.normalize(text, dim=-1).T
    result = {}
    for name, matrix in (("A->T", scores), ("T->A", scores.T)):
        order = torch.argsort(matrix, dim=1, descending=True)
        ranks = (order == torch.arange(len(order))[:, None]).long().argmax(1) + 1
        del order
        result[name] = rank_summary(ranks, len(ranks))
    return result


def matmul_floor(audio, text, block_size: int) -> None:
    """Only the score products of the blocked method: (block, D) normalised audio rows times the (N, D) captions."""
    import torch
    import torch.nn.functional as F

    out = torch.empty(min(block_size, len(audio)), len(text), device=audio.device)
    for a0 in range(0, len(audio), block_size):
        block = F.normalize(audio[a0 : a0 + block_size], dim=-1)
        torch.matmul(block, text.T, out=out[: len(block)])


def run_child(method: str, num: int, args) -> dict:
    import torch

    from espnet2_slap.metrics.retrieval import retrieval_metrics

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(num, args.dim, generator=gen).to(args.device)
    text = torch.randn(num, args.dim, generator=gen).to(args.device).mul_(args.noise).add_(audio)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    metrics = None
    if method == "blocked":
        metrics = retrieval_metrics(audio, text, torch.arange(num), block_size=args.block_size, device=args.device)
    elif method == "floor":
        matmul_floor(audio, text, args.block_size)
    else:
        metrics = full_matrix_metrics(audio, text)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figures = {"R@1": metrics["A->T"]["R@1"], "MdNR": metrics["T->A"]["MdNR"]} if metrics else {}
    return {"seconds": seconds, "peak_gib": peak / GIB, **figures}


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    if args.child:
        print(json.dumps(run_child(args.child[0], int(args.child[1]), args)))
        return
    print(
        f"device={args.device} threads={args.threads} dim={args.dim} noise={args.noise} block_size={args.block_size} "
        f"full_cap={args.full_cap_gib} GiB"
    )
    memory = "peak GPU memory" if args.device.startswith("cuda") else "peak RSS"
    print(f"| N | method | seconds | x floor | {memory} (GiB) | A->T R@1 | T->A MdNR |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    forwarded = [
        "--dim",
        str(args.dim),
        "--noise",
        str(args.noise),
        "--threads",
        str(args.threads),
        "--block_size",
        str(args.block_size),
        "--device",
        args.device,
    ]
    for num in args.sizes:
        floor = None
        for method in ("floor", "blocked", "full"):
            name = "matmul floor" if method == "floor" else method
            if method == "full" and num * num * 12 > args.full_cap_gib * GIB:
                print(f"| {num} | {name} | skipped: needs {num * num * 12 / GIB:.0f} GiB > cap | | | | |", flush=True)
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, str(num), *forwarded], capture_output=True, text=True
            )
            if proc.returncode != 0:
                print(f"| {num} | {name} | failed: {proc.stderr.strip().splitlines()[-1]} | | | | |", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            floor = r["seconds"] if method == "floor" else floor
            ratio = f"{r['seconds'] / floor:.2f}" if floor else ""
            figures = f"{r['R@1']:.2f} | {r['MdNR']:.4f}" if "R@1" in r else " | "
            print(f"| {num} | {name} | {r['seconds']:.1f} | {ratio} | {r['peak_gib']:.2f} | {figures} |", flush=True)


if __name__ == "__main__":
    main()
