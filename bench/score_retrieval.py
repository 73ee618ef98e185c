"""Seconds and peak memory of retrieval scoring: our blocked exact ranks vs the full N x N matrix + argsort, and
the floor: the bare matrix products the blocked method needs.

N random 512-d audio embeddings and N captions (caption = its clip's embedding plus --noise times as much noise),
one caption per clip. "blocked" is ``espnet2_slap.metrics.retrieval.retrieval_metrics`` (both directions, one pass of
(block, text block) score tiles); "full" builds the whole (N, N) score matrix and argsorts it per direction, as the
reference code does, and is skipped when its matrix and sort indices (N^2 x 12 bytes) would exceed --full_cap_gib.
"matmul floor" computes only the score products of the blocked method, tile by tile (normalised audio rows times
the captions, written into one reused tile): the arithmetic every exact method must do, timed on the same device;
"x floor" is the blocked method's time over it.

On --device cuda the inputs are made on the GPU, times are synchronised and the peak is torch's largest allocation
on it (``max_memory_allocated``); on the CPU it is the process's peak RSS.

Each configuration runs in a fresh interpreter (a subprocess), so its peak RSS (ru_maxrss) is its own: inputs
(2 x N x 512 x 4 bytes) included. Seconds count the scoring only, not making the inputs. With --repeats R the
floor and the blocked method run R times each, alternately, and the table gives the median of each one's
seconds and, as "x floor", the median ratio of the blocked method to the floor run just before it: on a shared
machine the speed comes and goes over minutes, and a pair run back to back shares the same moment.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/score_retrieval.py --threads 2 --sizes 10000 50000 200000 --repeats 3
    tools/venv/bin/python bench/score_retrieval.py --device cuda --sizes 200000
"""

import argparse
import json
import resource
import statistics
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
    parser.add_argument("--block_size", type=int, default=256, help="audio rows per score tile (blocked method)")
    parser.add_argument("--text_block_size", type=int, default=2048, help="captions per score tile (blocked method)")
    parser.add_argument("--device", default="cpu", help="torch device of the scoring (cpu, cuda, ...)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the floor and the blocked method, alternated")
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


def matmul_floor(audio, text, block_size: int, text_block_size: int) -> None:
    """Only the score products of the blocked method: (block, D) normalised audio rows times (text block, D)
    captions, tile by tile into one buffer."""
    import torch
    import torch.nn.functional as F

    out = torch.empty(min(block_size, len(audio)), min(text_block_size, len(text)), device=audio.device)
    for a0 in range(0, len(audio), block_size):
        block = F.normalize(audio[a0 : a0 + block_size], dim=-1)
        for t0 in range(0, len(text), text_block_size):
            captions = text[t0 : t0 + text_block_size]
            torch.matmul(block, captions.T, out=out[: len(block), : len(captions)])


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
        metrics = retrieval_metrics(
            audio, text, torch.arange(num), args.block_size, args.device, text_block_size=args.text_block_size
        )
    elif method == "floor":
        matmul_floor(audio, text, args.block_size, args.text_block_size)
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
        f"text_block_size={args.text_block_size} "
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
        "--text_block_size",
        str(args.text_block_size),
        "--device",
        args.device,
    ]
    for num in args.sizes:
        runs = {"floor": [], "blocked": [], "full": []}  # each method's results, in the order they ran
        notes = {}  # a method that was skipped or failed: why
        for method in ["floor", "blocked"] * args.repeats + ["full"]:
            if method == "full" and num * num * 12 > args.full_cap_gib * GIB:
                notes["full"] = f"skipped: needs {num * num * 12 / GIB:.0f} GiB > cap"
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, str(num), *forwarded], capture_output=True, text=True
            )
            if proc.returncode != 0:
                notes[method] = f"failed: {proc.stderr.strip().splitlines()[-1]}"
                break
            runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        floors = [r["seconds"] for r in runs["floor"]]
        for method, results in runs.items():
            name = "matmul floor" if method == "floor" else method
            if method in notes:
                print(f"| {num} | {name} | {notes[method]} | | | | |", flush=True)
            if not results:
                continue
            seconds = [r["seconds"] for r in results]
            ratio = ""
            if floors:  # the full method runs once, after all: against the fastest floor
                ratios = [s / f for s, f in zip(seconds, floors)] if method != "full" else [seconds[0] / min(floors)]
                ratio = f"{statistics.median(ratios):.2f}"
            r = results[0]
            figures = f"{r['R@1']:.2f} | {r['MdNR']:.4f}" if "R@1" in r else " | "
            peak = max(r["peak_gib"] for r in results)
            print(
                f"| {num} | {name} | {statistics.median(seconds):.1f} | {ratio} | {peak:.2f} | {figures} |", flush=True
            )


if __name__ == "__main__":
    main()
