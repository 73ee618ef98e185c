#!/usr/bin/env python3
"""The recipe's model selection (slap.sh --model_selection; espnet2_slap/train/model_selection.py).

    python -m espnet2_slap.bin.slap_model_selection rule --model_selection auto \\
        --train_config conf/train_slap.yaml --valid_list dump/raw/valid/wav.scp
    python -m espnet2_slap.bin.slap_model_selection record --exp exp/slap_train_slap --model_selection auto \\
        --train_config conf/train_slap.yaml --valid_list dump/raw/valid/wav.scp [--inference_model 30epoch.pth]

rule (before training): prints one tab-separated line: the rule (config or last), the criterion whose n-best
average stage 6 evaluates (e.g. valid.epoch: valid.epoch.ave.pth), the same as slap_train's --best_model_criterion
value (valid,epoch,max) and why. auto is last when the validation set
has fewer than 100 clips (the average of the last keep_nbest_models epochs: best_model_criterion valid epoch
max), else config (the config's best_model_criterion).
record (stage 6): writes <exp>/model_selection.json: the model file, the rule, the criterion, the epochs
averaged (best first) and their values, the epochs trained (from <exp>/checkpoint.pth), max_epoch, the
validation clips and the reason; with --inference_model, the rule inference_model. It prints the reason.
"""

import argparse
from pathlib import Path

from espnet2_slap.train.model_selection import (
    OPTIONS,
    choose_rule,
    count_utterances,
    criterion_name,
    first_criterion,
    read_yaml,
    selection_record,
    write_record,
)
from espnet2_slap.utils.cli import start_logging


def rule(args) -> None:
    valid = count_utterances(args.valid_list) if args.model_selection == "auto" else None
    chosen = choose_rule(args.model_selection, first_criterion(read_yaml(args.train_config), args.train_config), valid)
    print(chosen.name, criterion_name(chosen.criterion), ",".join(chosen.criterion), chosen.why, sep="\t")


def record(args) -> None:
    out = args.exp / "model_selection.json"
    chosen = selection_record(args.exp, args.model_selection, args.train_config, args.valid_list, args.inference_model)
    write_record(chosen, out)
    print(f"{chosen['model_file']} ({chosen['rule']}): {chosen['reason']} Recorded in {out}")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("rule", rule, "Print the rule, its criterion and why (before training)"),
        ("record", record, "Write <exp>/model_selection.json (after training)"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("--model_selection", choices=OPTIONS, default="auto", help="The rule asked for")
        sub.add_argument("--valid_list", type=Path, help="The validation set's wav.scp (auto counts its clips)")
        sub.add_argument("--train_config", type=Path, required=True, help="The config given to training")
    commands.choices["record"].add_argument("--exp", type=Path, required=True, help="The trained experiment dir")
    commands.choices["record"].add_argument("--inference_model", help="A model file in --exp given by hand")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_model_selection", cmd)
    args = get_parser().parse_args(cmd)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as e:  # bad input: the message names the file
        raise SystemExit(f"slap_model_selection {args.command}: {e}") from e


if __name__ == "__main__":
    main()
