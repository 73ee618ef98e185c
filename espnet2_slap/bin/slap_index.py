#!/usr/bin/env python3
"""Index a music collection for search by text or audio (``slap_search``): the embeddings of its tracks with a
trained or packed SLAP/CLAP model.

    python -m espnet2_slap.bin.slap_index ~/music exp/music_index --model exp/slap/packed_model.zip
    python -m espnet2_slap.bin.slap_index data/test/wav.scp exp/test_index \\
        --train_config exp/slap/config.yaml --model_file exp/slap/valid.r1_t2a.ave.pth
    python -m espnet2_slap.bin.slap_index ~/music exp/music_index   # again: only new or changed files

SOURCE is a directory (its audio files below it, by extension: .wav .flac .mp3 .ogg; hidden names skipped; ids
are the paths relative to it) or a Kaldi wav.scp (its ids; files or ark references). INDEX is a directory:
index.json (source, model: weights SHA-256 and file, kind, dimension; the two files below), embeddings.<n>.npy
((N, D) float32, L2-normalised), tracks.<n>.jsonl (one {"id", "path", "size", "mtime_ns"} a line, in row order).

A rerun is incremental: a track whose path, size and time of change are recorded is not embedded again, new and
changed ones are, removed ones are dropped; with no model options it uses the model the index records. A model
other than the index's is refused (--rebuild embeds every track again with it). Work is saved every
--chunk_size tracks (INDEX/chunks, atomically renamed), so a killed run resumes where it was; the index itself
is replaced only when complete. Unreadable files are skipped with a warning (and tried again by the next run).
"""

import argparse
import sys
from pathlib import Path

from espnet2_slap.search.index import build_index, named_model
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a directory of audio files, or a wav.scp")
    parser.add_argument("index", type=Path, help="the index directory (made or updated)")
    parser.add_argument("--model", type=Path, help="a packed model zip (slap_pack, stage 9)")
    parser.add_argument("--train_config", type=Path, help="or a training's config.yaml, with --model_file")
    parser.add_argument("--model_file", type=Path, help="*.pth, e.g. the n-best average")
    parser.add_argument("--rebuild", action="store_true", help="embed every track again if the model differs")
    parser.add_argument("--chunk_size", type=int, default=64, help="tracks between saved partial results")
    parser.add_argument("--batch_size", type=int, default=16, help="windows per forward")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_index", cmd)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if (args.train_config is None) != (args.model_file is None) or (args.model and args.model_file):
        parser.error("give --model ZIP, or --train_config and --model_file (or neither, to update an index)")
    if args.chunk_size < 1:
        parser.error("--chunk_size must be at least 1")
    try:
        model = named_model(args.index, args.model, args.train_config, args.model_file, args.device, args.batch_size)
        stats = build_index(args.source, args.index, model, args.chunk_size, args.rebuild, args.device, args.batch_size)
    except ValueError as e:
        sys.exit(f"slap_index: {e}")
    if stats.unreadable:
        print(f"slap_index: {len(stats.unreadable)} unreadable track(s) not indexed (see the log)", file=sys.stderr)


if __name__ == "__main__":
    main()
