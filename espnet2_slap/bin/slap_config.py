#!/usr/bin/env python3
"""What the recipe reads from a model's config (slap.sh; espnet2_slap/tasks/recipe_config.py).

    python -m espnet2_slap.bin.slap_config settings [--options_out FILE] conf/train_slap.yaml [-- --max_epoch 9]
    python -m espnet2_slap.bin.slap_config localize ../other/exp/slap_x/config.yaml exp/slap_pretrained/config.yaml

settings: prints "name<TAB>value" lines of what the recipe must agree with, as training parses the config (with
the options after --, e.g. the recipe's --train_args, on top): fs (the front end's sampling rate), token_type,
bpemodel, token_list, normalize, stats_file, max_epoch. With --options_out, "feature:<key><TAB><JSON>" lines of
the options stage 4's statistics depend on and "train:<key><TAB><JSON>" lines of those training depends on
(what the markers of stages 4 and 5 record).
localize: writes a config made by another experiment with the paths an inference reads (token_list, bpemodel,
normalize_conf.stats_file, a local text_encoder_conf.model_name_or_path) made absolute, each read relative to the
nearest directory above the config where it exists (the recipe that trained it), never relative to the current
directory; exits 1 naming the paths found nowhere.
"""

import argparse
import sys
from pathlib import Path

from espnet2_slap.tasks.recipe_config import RecipeSettings, localize_paths, option_lines, parse_config
from espnet2_slap.utils.cli import start_logging


def settings(args) -> None:
    parsed = parse_config(args.config, args.train_args)
    sys.stdout.write(RecipeSettings.of(parsed).lines())
    if args.options_out:
        args.options_out.write_text(option_lines(parsed), encoding="utf-8")


def localize(args) -> None:
    missing = localize_paths(args.config, args.out)
    if missing:
        raise SystemExit(
            f"slap_config localize: {args.config} names files found neither relative to any directory above it "
            f"(the recipe whose experiment wrote it) nor as absolute paths: {'; '.join(missing)}. Put them where the "
            f"config names them below a directory above it (e.g. {args.config.resolve().parent}/"
            f"{missing[0].split(': ', 1)[1]}), or evaluate the model's packed zip instead (--packed_model: stage 9's "
            "packed_model.zip holds the config, the weights and these files)"
        )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("settings", help="Print fs, the tokenizer and the normalisation of a config")
    sub.set_defaults(func=settings)
    sub.add_argument("--options_out", type=Path, help="Write the options stages 4 and 5 depend on there")
    sub.add_argument("config", type=Path, help="A training config (or an experiment's config.yaml)")
    sub.add_argument("train_args", nargs=argparse.REMAINDER, help="After --: training options on top of it")
    sub = commands.add_parser("localize", help="Write a config with its paths read where it was made")
    sub.set_defaults(func=localize)
    sub.add_argument("config", type=Path, help="An experiment's config.yaml (from another recipe or machine)")
    sub.add_argument("out", type=Path, help="Where to write it")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_config", cmd)
    args = get_parser().parse_args(cmd)
    if getattr(args, "train_args", None) and args.train_args[0] == "--":
        args.train_args = args.train_args[1:]
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as e:  # bad input: the message names the file
        raise SystemExit(f"slap_config {args.command}: {e}") from e


if __name__ == "__main__":
    main()
