#!/usr/bin/env python3
"""Plan a study of the recipe (``sweep.sh`` runs it): points x seeds as the tasks of one array job.

    python -m espnet2_slap.bin.slap_sweep conf/sweep/lambda.yaml --out exp/slap_sweep_lambda [--seeds 1 2] \\
        [--expdir exp] [-- options of run.sh for every task]

Writes <out>/tasks.sh (one ./run.sh command a task: stages 5-8 of a point with a seed), <out>/experiments (their
experiment directories) and <out>/compare.opts (slap_compare's options of the study), and prints the number of
tasks. The study file's format is in espnet2_slap/queue/sweep.py.
"""

import argparse
import sys
from pathlib import Path

from espnet2_slap.queue.sweep import read_study, write_plan
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="The study (YAML)")
    parser.add_argument("--out", type=Path, required=True, help="Where the plan goes")
    parser.add_argument("--seeds", type=int, nargs="+", help="Seeds of every point (default: the study's)")
    parser.add_argument("--expdir", default="exp", help="The recipe's --expdir")
    parser.add_argument("--print_name", action="store_true", help="Only print the study's name")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_sweep", cmd)
    cmd = sys.argv[1:] if cmd is None else list(cmd)
    run_args = cmd[cmd.index("--") + 1 :] if "--" in cmd else []  # options of run.sh for every task
    args = get_parser().parse_args(cmd[: len(cmd) - len(run_args) - (1 if "--" in cmd else 0)])
    study = read_study(args.study, args.seeds)
    if args.print_name:
        print(study.name)
        return
    print(write_plan(study, args.out, args.expdir, run_args))


if __name__ == "__main__":
    main()
