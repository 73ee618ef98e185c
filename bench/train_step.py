"""Seconds per optimizer step and peak memory of SLAP vs CLAP training steps on the tiny CPU config, or on any
training config (``--config``, e.g. the paper-scale ``egs/TEMPLATE/slap1/conf/train_slap.yaml``) on ``--device``.

Two tables:
  1. SLAP and CLAP at several batch sizes (one micro-batch per optimizer step);
  2. SLAP with gradient accumulation, B x k (one optimizer step = k micro-batches of B).

A step mirrors ESPnet's trainer: forward and backward of loss / k per micro-batch, gradient clipping at the
config's grad_clip, optimizer.step() (through the optimizer of SLAPTask.build_optimizers, whose post-hook runs
SLAP's EMA update once per optimizer step; checked at the end), zero_grad. Inputs are random waveforms of the
config's crop length and random token ids, a fresh batch per micro-batch made outside the timer (as a data loader
hands them over: one alive at a time). The model is built from the yaml by SLAPTask.build_model, with global_mvn
on neutral statistics and dropout as configured.

Every configuration runs in its own fresh child process, so peak RSS figures do not pollute each other: forked
from a parent that has only imported the libraries (default), or spawned (--start_method spawn: a new
interpreter, slower as ESPnet is imported again each time). "peak RSS" is the child's ru_maxrss; "+RSS" is that
minus the child's RSS before it built anything. A forked child counts the parent's shared-library pages only
once it touches them, so its absolute figures are below the parent's RSS; compare the rows with each other.

With --config, table 1 has that config's rows only and table 2 runs when it is a SLAP config. On --device cuda
the steps are synchronised and "peak" is torch's largest GPU allocation (``max_memory_allocated``); --autocast
bf16 runs the forward passes under ``torch.autocast`` (as ESPnet's --use_amp does, in bf16).

"TFLOP/s" is the arithmetic of one optimizer step (forward and backward of its micro-batches, counted once, after
the timed steps, by ``torch.utils.flop_counter.FlopCounterMode``: matrix products, convolutions and attention;
the front end's FFTs and elementwise work are left out) over the median step time. With --peak_tflops (the
device's dense peak at the precision used, e.g. 989 for an H100/H200 SXM in bf16 by NVIDIA's data sheet) "MFU"
is that over the peak.

Not a test: figures depend on the machine and its load. Examples:

    tools/venv/bin/python bench/train_step.py --threads 2 --batch_sizes 8 16 32 64 --accum_ks 1 2 4 8
    tools/venv/bin/python bench/train_step.py --config egs/TEMPLATE/slap1/conf/train_slap.yaml --device cuda \
        --autocast bf16 --batch_sizes 64 --accum_ks --peak_tflops 989
"""

import argparse
import multiprocessing as mp
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONF = REPO / "egs" / "mini_synth" / "slap1" / "conf" / "tuning"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Seconds per optimizer step and peak RSS of SLAP vs CLAP on the tiny config (CPU).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--batch_sizes", type=int, nargs="+", default=[8, 16, 32, 64], help="batch sizes of the SLAP-vs-CLAP table"
    )
    parser.add_argument("--accum_batch", type=int, default=16, help="micro-batch size B of the accumulation table")
    parser.add_argument(
        "--accum_ks",
        type=int,
        nargs="*",
        default=[1, 2, 4, 8],
        help="micro-batches per optimizer step k of the accumulation table (SLAP; none: no table 2)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first")
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="timed optimizer steps (their median is reported, "
        "and their minimum, which is less sensitive to other load on the machine)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every configuration")
    parser.add_argument(
        "--config", type=Path, default=None, help="a training config instead of the tiny SLAP and CLAP ones"
    )
    parser.add_argument("--device", default="cpu", help="torch device of the model and batches (cpu, cuda, ...)")
    parser.add_argument("--autocast", choices=["none", "bf16", "fp16"], default="none", help="forward under autocast")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="the device's dense peak TFLOP/s at the precision used; given, the tables show MFU",
    )
    parser.add_argument(
        "--text_length",
        type=int,
        default=24,
        help="longest caption in tokens (lengths vary " "from 2/3 of it up to it, padded with -1)",
    )
    parser.add_argument(
        "--vocab_size",
        type=int,
        default=120,
        help="size of the synthetic token list " "(the tiny recipe's sentencepiece vocabulary)",
    )
    parser.add_argument(
        "--start_method",
        choices=["fork", "spawn"],
        default="fork" if os.name == "posix" else "spawn",
        help="how each configuration's process starts: fork (from a parent that only imported "
        "the libraries; fast) or spawn (a fresh interpreter; re-imports ESPnet each time)",
    )
    return parser


def config_path(model_name: str, opts: argparse.Namespace) -> Path:
    return opts.config or TINY_CONF / f"train_{model_name}_tiny.yaml"


def config_model(config: Path) -> str:
    """The ``model`` (slap or clap) a training config names."""
    import yaml

    return yaml.safe_load(config.read_text()).get("model", "slap")


def build(config: Path, workdir: Path, vocab_size: int):
    """(args, model, optimizer) of a training config through SLAPTask, as slap_train builds them."""
    import numpy as np

    from espnet2_slap.tasks.slap import SLAPTask

    tokens = workdir / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\n" + "".join(f"tok{i}\n" for i in range(vocab_size - 3)) + "<sos/eos>\n")
    n_mels = 64
    stats = workdir / "feats_stats.npz"  # global_mvn as in the recipe, with neutral statistics
    np.savez(stats, count=np.array(1000), sum=np.zeros(n_mels), sum_square=np.full(n_mels, 1000.0))
    args = SLAPTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--token_list",
            str(tokens),
            "--normalize_conf",
            f"stats_file={stats}",
            "--output_dir",
            str(workdir / "exp"),
        ]
    )
    assert args.frontend_conf.get("n_mels", n_mels) == n_mels
    model = SLAPTask.build_model(args)
    optimizer = SLAPTask.build_optimizers(args, model)[0]
    return args, model, optimizer


def current_rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(model_name: str, batch_size: int, k: int, opts: argparse.Namespace) -> dict:
    """One configuration, in the current (fresh) process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from espnet2_slap.tasks.slap import SLAPTask  # already there when forked; +RSS leaves the imports out

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' random-batch helper
    from random_batch import random_batch

    base_rss = current_rss_kib()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        args, model, optimizer = build(config_path(model_name, opts), Path(tmp), opts.vocab_size)
    device = torch.device(opts.device)
    cuda = device.type == "cuda"
    model.to(device).train()
    autocast = torch.autocast(
        device.type,
        dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(opts.autocast),
        enabled=opts.autocast != "none",
    )
    num_samples = int(round(float(args.preprocessor_conf["crop_seconds"]) * SLAPTask.sample_rate(args)))
    g = torch.Generator().manual_seed(1)
    ema_before = int(getattr(model, "ema_updates", 0))

    def micro_batch_seconds() -> float:
        """Forward and backward of one micro-batch: seconds. A fresh batch, as a data loader gives, made outside
        the timer; only one is alive."""
        batch = random_batch(batch_size, num_samples, opts.text_length, opts.vocab_size - 1, g)
        batch = {key: value.to(device) for key, value in batch.items()}
        synchronize(cuda)
        start = time.perf_counter()
        with autocast:
            loss, _, _ = model(**batch)
        (loss / k).backward()
        synchronize(cuda)
        return time.perf_counter() - start

    times = []
    for step in range(opts.warmup + opts.steps):
        elapsed = sum(micro_batch_seconds() for _ in range(k))
        start = time.perf_counter()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=args.grad_clip)
        if not torch.isfinite(grad_norm):
            raise RuntimeError(f"{model_name} B={batch_size} k={k}: non-finite gradient norm at step {step}")
        optimizer.step()
        optimizer.zero_grad()
        synchronize(cuda)
        times.append(elapsed + time.perf_counter() - start)

    with FlopCounterMode(display=False) as counter:  # one micro-batch more, untimed, its gradients dropped
        micro_batch_seconds()
    optimizer.zero_grad()
    optimizer_steps = opts.warmup + opts.steps
    if hasattr(model, "ema_updates") and int(model.ema_updates) - ema_before != optimizer_steps:
        raise RuntimeError(f"EMA ran {int(model.ema_updates) - ema_before} times in {optimizer_steps} optimizer steps")
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peak_kib = torch.cuda.max_memory_allocated(device) / 1024 if cuda else rss_kib
    return dict(
        model=model_name,
        batch=batch_size,
        k=k,
        seconds=statistics.median(times[opts.warmup :]),
        min_seconds=min(times[opts.warmup :]),
        peak_mib=peak_kib / 1024,
        delta_mib=(rss_kib - base_rss) / 1024,
        samples=num_samples,
        step_flops=counter.get_total_flops() * k,
    )


def synchronize(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def _child(conn, model_name, batch_size, k, opts):
    try:
        conn.send(("ok", measure(model_name, batch_size, k, opts)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(ctx, model_name: str, batch_size: int, k: int, opts: argparse.Namespace) -> dict:
    parent_end, child_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child_end, model_name, batch_size, k, opts))
    proc.start()
    child_end.close()
    try:
        status, payload = parent_end.recv()
    except EOFError:
        status, payload = "error", "the child died without a result"
    proc.join()
    if status != "ok" or proc.exitcode != 0:
        raise RuntimeError(f"{model_name} B={batch_size} k={k} failed (exit code {proc.exitcode}):\n{payload}")
    return payload


def main(argv=None) -> None:
    opts = get_parser().parse_args(argv)
    import torch

    if opts.start_method == "fork":
        # The children inherit the imports. The parent itself runs no torch computation, so no thread pool
        # exists yet at fork time.
        import espnet2_slap.tasks.slap  # noqa: F401
    ctx = mp.get_context(opts.start_method)

    command = shlex.join([sys.executable, *sys.argv])
    print(f"command: {command}")
    print(
        f"torch {torch.__version__}, {opts.threads} threads, {os.cpu_count()} CPUs, start method {opts.start_method}; "
        f"device {opts.device}, autocast {opts.autocast}; "
        + (
            f"config {opts.config}"
            if opts.config
            else f"tiny config ({TINY_CONF.relative_to(REPO)}/train_{{slap,clap}}_tiny.yaml)"
        )
        + ", "
        f"captions <= {opts.text_length} tokens; {opts.warmup} warm-up + {opts.steps} timed optimizer steps, median",
        flush=True,
    )
    print(
        f"parent process after imports: RSS {current_rss_kib() / 1024:.1f} MiB, "
        f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB",
        flush=True,
    )

    header = (
        f"{'model':<6} {'B':>4} {'k':>3} {'samples/step':>12} {'s/step':>8} {'min s':>8} {'samples/s':>10} "
        f"{'peak RSS MiB':>13} {'+RSS MiB':>9} {'GFLOP/step':>10} {'TFLOP/s':>8}"
        + (f" {'MFU':>6}" if opts.peak_tflops else "")
    )

    def row(r):
        tflops = r["step_flops"] / 1e12 / r["seconds"]
        return (
            f"{r['model']:<6} {r['batch']:>4} {r['k']:>3} {r['batch'] * r['k']:>12} "
            f"{r['seconds']:>8.3f} {r['min_seconds']:>8.3f} "
            f"{r['batch'] * r['k'] / r['seconds']:>10.1f} {r['peak_mib']:>13.1f} {r['delta_mib']:>9.1f} "
            f"{r['step_flops'] / 1e9:>10.1f} {tflops:>8.3f}"
            + (f" {tflops / opts.peak_tflops:>6.1%}" if opts.peak_tflops else "")
        )

    if opts.device.startswith("cuda"):
        header = header.replace("peak RSS MiB", "peak GPU MiB")
    models = [config_model(opts.config)] if opts.config else ["slap", "clap"]
    total_start = time.perf_counter()
    print(f"\n1. {' vs '.join(m.upper() for m in models)}, one micro-batch per optimizer step\n{header}", flush=True)
    by_batch = {}
    for batch_size in opts.batch_sizes:
        for model_name in models:
            r = run_isolated(ctx, model_name, batch_size, 1, opts)
            by_batch[model_name, batch_size] = r
            print(row(r), flush=True)
    if opts.batch_sizes and len(models) == 2:
        crop = by_batch["slap", opts.batch_sizes[0]]["samples"]
        print(f"(waveforms of {crop} samples)")
        for key, what in (("seconds", "median"), ("min_seconds", "min")):
            ratios = ", ".join(
                f"B={b}: {by_batch['slap', b][key] / by_batch['clap', b][key]:.2f}x" for b in opts.batch_sizes
            )
            print(f"SLAP/CLAP s/step at equal batch ({what}): {ratios}")

    if opts.accum_ks and "slap" in models:
        print(
            f"\n2. SLAP with gradient accumulation, B={opts.accum_batch} x k (one optimizer step, one EMA update, "
            f"per k micro-batches)\n{header}",
            flush=True,
        )
        accum = []
        for k in opts.accum_ks:
            r = run_isolated(ctx, "slap", opts.accum_batch, k, opts)
            accum.append(r)
            print(row(r), flush=True)
        if accum:
            peaks = [r["peak_mib"] for r in accum]
            print(
                f"SLAP peak RSS over k={opts.accum_ks}: {min(peaks):.1f}-{max(peaks):.1f} MiB "
                f"(spread {max(peaks) - min(peaks):.1f} MiB)"
            )
    print(f"\ntotal {time.perf_counter() - total_start:.0f} s")


if __name__ == "__main__":
    main()
