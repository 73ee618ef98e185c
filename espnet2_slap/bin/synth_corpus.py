#!/usr/bin/env python3
"""Write the synthetic music-caption corpus: ``python -m espnet2_slap.bin.synth_corpus --help``."""

import argparse

from espnet2_slap.corpora.synth import add_corpus_options, make_corpus
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Synthesise a deterministic music-caption corpus as Kaldi data dirs {train,valid,test}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_corpus_options(parser)
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.synth_corpus", cmd)
    args = get_parser().parse_args(cmd)
    make_corpus(args.out_dir, args.num_train, args.num_valid, args.num_test, args.seconds, args.fs, args.seed)


if __name__ == "__main__":
    main()
