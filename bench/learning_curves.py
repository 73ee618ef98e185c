"""Per-epoch training statistics of several experiments, averaged over the seeds of each setting: what tells
SLAP learning from collapsing (issue 23). Reads the "<N>epoch results" lines ESPnet's trainer writes to each
experiment's train.log; experiments whose directory names differ only by a trailing ``_s<seed>`` are one setting
(as slap_compare groups them).

    tools/venv/bin/python bench/learning_curves.py exp/slap_sweep_ablation/* --epochs 1 5 10 20 30 \\
        --stats loss_inter loss_intra std_audio std_text std_audio_pred target_dist_audio valid:r1_a2t \\
        --png curves.png

Prints a Markdown table (a row per setting and epoch; "mean ± std" over seeds) and with --png draws each
statistic against the epoch, a line per setting. A stat is ``name`` (training phase) or ``valid:name``.
"""

import argparse
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean, stdev
from typing import Dict, List

EPOCH_LINE = re.compile(r"(\d+)epoch results: \[train\] (.*?), \[valid\] (.*)$")
STAT = re.compile(r"([\w]+)=([-+0-9.eE]+)")


def epoch_stats(train_log: Path) -> Dict[int, Dict[str, float]]:
    """{epoch: {"name": train value, "valid:name": valid value}} of one train.log (the last run of each epoch)."""
    stats: Dict[int, Dict[str, float]] = {}
    for line in train_log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = EPOCH_LINE.search(line)
        if match:
            epoch, train, valid = int(match.group(1)), match.group(2), match.group(3)
            row = {k: float(v) for k, v in STAT.findall(train)}
            row.update({f"valid:{k}": float(v) for k, v in STAT.findall(valid)})
            stats[epoch] = row
    return stats


def setting_of(exp: Path) -> str:
    return re.sub(r"_s(eed)?\d+$", "", exp.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exps", nargs="+", type=Path)
    parser.add_argument("--epochs", nargs="+", type=int, default=[1, 5, 10, 20, 30])
    parser.add_argument("--stats", nargs="+", default=["loss_inter", "loss_intra", "std_audio", "std_text"])
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    runs: Dict[str, List[Dict[int, Dict[str, float]]]] = defaultdict(list)
    for exp in args.exps:
        if (exp / "train.log").is_file():
            runs[setting_of(exp)].append(epoch_stats(exp / "train.log"))
    print("| setting | seeds | epoch | " + " | ".join(args.stats) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in args.stats) + " |")
    for setting, seeds in runs.items():
        for epoch in args.epochs:
            cells = []
            for stat in args.stats:
                values = [s[epoch][stat] for s in seeds if epoch in s and stat in s[epoch]]
                spread = f" ± {stdev(values):.3f}" if len(values) > 1 else ""
                cells.append(f"{mean(values):.3f}{spread}" if values else "")
            print(f"| {setting} | {len(seeds)} | {epoch} | " + " | ".join(cells) + " |")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cols = min(3, len(args.stats))
        rows = (len(args.stats) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
        for ax, stat in zip(axes.flat, args.stats):
            for setting, seeds in runs.items():
                epochs = sorted({e for s in seeds for e in s})
                means = [mean([s[e][stat] for s in seeds if e in s and stat in s[e]] or [float("nan")]) for e in epochs]
                ax.plot(epochs, means, label=setting)
            ax.set_title(stat)
            ax.set_xlabel("epoch")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
