"""Milliseconds per EMA update of a SLAP model's target towers: one ``lerp_`` per tensor (the former update) vs
``espnet2_slap.layers.ema.ema_update_`` (one ``torch._foreach_lerp_``), and their largest difference.

The model is built from a training config by SLAPTask (random initialisation; default: the paper-scale
``egs/TEMPLATE/slap1/conf/train_slap.yaml``, HTS-AT base + RoBERTa base, ~194 M target parameters) on
``--device``.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/ema_update.py --threads 2 --device cpu
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from espnet2_slap.layers.ema import ema_update_
from espnet2_slap.tasks.slap import SLAPTask

REPO = Path(__file__).resolve().parents[1]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=REPO / "egs" / "TEMPLATE" / "slap1" / "conf" / "train_slap.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="timed updates per method (median reported)")
    return parser


@torch.no_grad()
def loop_update_(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """The baseline: one in-place lerp per parameter pair."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o.detach().to(t.dtype), 1.0 - tau)


def timed_ms(updates: dict, model, device: str, repeats: int) -> dict:
    """{name: median ms} of one update of both towers; the methods alternate, so that load from other processes
    falls on both alike (one untimed round first)."""
    times = {name: [] for name in updates}
    for _ in range(repeats + 1):
        for name, update in updates.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            update(model.audio_target, model.audio_tower, 0.995)
            update(model.text_target, model.text_tower, 0.995)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def main(argv=None) -> None:
    opts = get_parser().parse_args(argv)
    torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory() as tmp:
        args = SLAPTask.get_parser().parse_args(["--config", str(opts.config), "--output_dir", tmp])
        torch.manual_seed(0)
        model = SLAPTask.build_model(args).to(opts.device)
    targets = [*model.audio_target.parameters(), *model.text_target.parameters()]
    print(
        f"{opts.config.name} on {opts.device}, {opts.threads} threads: {len(targets)} target tensors, "
        f"{sum(p.numel() for p in targets) / 1e6:.1f} M parameters; median of {opts.repeats} updates each, alternating"
    )
    with torch.no_grad():
        for p in (*model.audio_tower.parameters(), *model.text_tower.parameters()):
            p.add_(torch.randn_like(p), alpha=1e-2)
    start = [p.clone() for p in targets]
    loop_update_(model.audio_target, model.audio_tower, 0.995)
    loop_update_(model.text_target, model.text_tower, 0.995)
    looped = [p.clone() for p in targets]
    with torch.no_grad():
        for p, s in zip(targets, start):
            p.copy_(s)
    ema_update_(model.audio_target, model.audio_tower, 0.995)
    ema_update_(model.text_target, model.text_tower, 0.995)
    diff = max((p - q).abs().max().item() for p, q in zip(targets, looped))
    del start, looped
    ms = timed_ms({"lerp_ per tensor": loop_update_, "_foreach_lerp_": ema_update_}, model, opts.device, opts.repeats)
    print("| update | ms |\n| --- | --- |")
    for name, value in ms.items():
        print(f"| {name} | {value:.1f} |")
    print(f"largest difference after one update: {diff:.2e}")


if __name__ == "__main__":
    main()
