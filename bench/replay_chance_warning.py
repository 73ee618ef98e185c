"""Replays the "validation retrieval at chance" warning (espnet2_slap/train/learning_warnings.py) on the
train.logs of finished experiments, e.g. those trained before the warning existed (issue 23's studies): for each,
how many epochs it would have warned at, the first, and the std-based "possible collapse" lines it did log.

    tools/venv/bin/python bench/replay_chance_warning.py exp/slap_sweep_*/*/train.log [--batch_size 16]

The chance level comes from --batch_size and the validation clips (total_count of each validation x batch
size); the trainer itself takes it from the validation batches' sizes. Prints a Markdown table.
"""

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from learning_curves import epoch_stats  # noqa: E402

from espnet2_slap.train.learning_warnings import CHANCE_EPOCHS, chance_warning  # noqa: E402


def replay(train_log: Path, batch_size: int):
    """(epochs, epochs it warns at, the first of them or None, "possible collapse" lines) of one train.log."""
    stats = epoch_stats(train_log)
    history, warned = [], []
    for epoch in sorted(stats):
        valid = stats[epoch]
        history.append(((valid["valid:r1_a2t"] + valid["valid:r1_t2a"]) / 2, 1 / batch_size))
        if chance_warning(epoch, history):
            warned.append(epoch)
    collapses = train_log.read_text(encoding="utf-8", errors="replace").count("possible collapse")
    return len(stats), warned, collapses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_logs", type=Path, nargs="+")
    parser.add_argument("--batch_size", type=int, default=16, help="The validation batches' size")
    args = parser.parse_args()
    print(
        f"| train.log | epochs | epochs warned at chance (window {CHANCE_EPOCHS}) | first | possible collapse lines |"
    )
    print("| --- | --- | --- | --- | --- |")
    for log in args.train_logs:
        epochs, warned, collapses = replay(log, args.batch_size)
        print(f"| {log.parent} | {epochs} | {len(warned)} | {warned[0] if warned else '-'} | {collapses} |")


if __name__ == "__main__":
    main()
