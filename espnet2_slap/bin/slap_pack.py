#!/usr/bin/env python3
"""Pack a trained SLAP/CLAP model into one zip with ESPnet's packer (espnet2.main_funcs.pack_funcs.pack).

    python -m espnet2_slap.bin.slap_pack --train_config exp/slap/config.yaml \\
        --model_file exp/slap/valid.r1_t2a.ave.pth --option data/token_list/bpe/tokens.txt --outpath model.zip

The archive holds the config (as ``slap_train_config``), the weights (``slap_model_file``), the files given
with --option (token list, sentencepiece model, normalisation statistics) and a meta.yaml with the versions.
``espnet2.bin.pack`` has a sub-command per ESPnet task only, hence this entry point.
"""

import argparse

from espnet2.main_funcs.pack_funcs import pack

from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", required=True, help="config.yaml of the training")
    parser.add_argument("--model_file", required=True, help="*.pth to pack")
    parser.add_argument("--option", action="append", default=[], help="Another file to pack (repeatable)")
    parser.add_argument("--outpath", required=True, help="Output zip")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_pack", cmd)
    args = get_parser().parse_args(cmd)
    pack(
        yaml_files={"slap_train_config": args.train_config},
        files={"slap_model_file": args.model_file},
        option=args.option,
        outpath=args.outpath,
    )


if __name__ == "__main__":
    main()
