#!/usr/bin/env python3
"""Write the synthetic music-caption corpus: ``python -m espnet2_slap.bin.synth_corpus --help``."""

import argparse
from pathlib import Path

from espnet2_slap.corpora.synth import make_corpus
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Synthesise a deterministic music-caption corpus as Kaldi data dirs {train,valid,test}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out_dir", type=Path, help="Output directory")
    parser.add_argument("--num_train", type=int, default=256)
    parser.add_argument("--num_valid", type=int, default=32)
    parser.add_argument("--num_test", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="Clip length")
    parser.add_argument("--fs", type=int, default=16000, help="Sampling rate")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.synth_corpus", cmd)
    args = get_parser().parse_args(cmd)
    make_corpus(args.out_dir, args.num_train, args.num_valid, args.num_test, args.seconds, args.fs, args.seed)


if __name__ == "__main__":
    main()
