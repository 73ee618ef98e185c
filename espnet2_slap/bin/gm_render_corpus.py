#!/usr/bin/env python3
"""Render the General-MIDI music-caption corpus: ``python -m espnet2_slap.bin.gm_render_corpus --help``
(needs Debian's fluidsynth and fluid-soundfont-gm)."""

import argparse
from pathlib import Path

from espnet2_slap.corpora.gm_render import DEFAULT_SOUNDFONT, make_corpus
from espnet2_slap.corpora.synth import add_corpus_options
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Render General-MIDI melodies with a soundfont as Kaldi data dirs {train,valid,test}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_corpus_options(parser)
    parser.add_argument("--soundfont", type=Path, default=Path(DEFAULT_SOUNDFONT), help="General-MIDI soundfont")
    parser.add_argument("--fluidsynth", default="fluidsynth", help="fluidsynth executable")
    parser.add_argument("--num_captions", type=int, default=2, help="Captions per clip")
    parser.add_argument("--nj", type=int, default=2, help="Clips rendered at once")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.gm_render_corpus", cmd)
    args = get_parser().parse_args(cmd)
    make_corpus(**vars(args))


if __name__ == "__main__":
    main()
