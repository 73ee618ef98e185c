#!/usr/bin/env python3
"""Fetch what the recipes need: public corpora, MusicCaps clips, pretrained files; or check they are there.

    python -m espnet2_slap.bin.slap_fetch corpus {song_describer,musiccaps,gtzan,mtat,openmic} --root DIR
    python -m espnet2_slap.bin.slap_fetch clips --csv musiccaps-public.csv --audio_dir DIR --job 1 --num_jobs 4
    python -m espnet2_slap.bin.slap_fetch missing --csv musiccaps-public.csv --audio_dir DIR [DIR ...]
    python -m espnet2_slap.bin.slap_fetch pretrained [roberta-base ...] --downloads downloads
    python -m espnet2_slap.bin.slap_fetch check --config conf/train_slap_pretrained.yaml

corpus: the publisher's official release into DIR (espnet2_slap.fetch.corpus_sources): resumed, verified, unpacked,
what is there skipped, what failed listed (exit 1). clips: one job's share of the MusicCaps clips with yt-dlp
(espnet2_slap.fetch.youtube) into --audio_dir, those below it or --found_in skipped; unavailable videos are
listed, never a stop. missing: prints how many of the CSV's clips are below none of the --audio_dir directories
and how many clips it has ("3 5"; --list FILE: their ytids), fetching nothing. pretrained: the files of
espnet2_slap.fetch.pretrained_files into --downloads. check: exit 1 naming each start file a training config
needs that is missing, and the command that fetches it.

Offline (--offline true, or SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1 in the environment): nothing is fetched; what is
missing is named (exit 1). --mirror URL (or SLAP_MIRROR) replaces the scheme and host of the publishers' URLs,
HF_ENDPOINT that of the Hugging Face Hub.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet2_slap.corpora.common import PrepError, parse_bool
from espnet2_slap.fetch.corpus_sources import CORPORA, fetch_corpus
from espnet2_slap.fetch.download import DownloadError
from espnet2_slap.fetch.pretrained_files import DEFAULT, PRETRAINED, config_needs, fetch_pretrained
from espnet2_slap.fetch.youtube import fetch_clips, missing_clips
from espnet2_slap.utils.cli import start_logging

logger = logging.getLogger("slap_fetch")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    corpus = commands.add_parser("corpus", help="A public corpus into --root")
    corpus.add_argument("name", choices=sorted(CORPORA))
    corpus.add_argument("--root", type=Path, required=True, help="Where the corpus goes (the recipe's db.sh path)")
    corpus.add_argument("--mirror", help="http://host[:port] serving the publishers' paths (default: $SLAP_MIRROR)")
    corpus.add_argument("--retries", type=int, default=5, help="Tries of each file (a dropped connection resumes)")
    corpus.add_argument("--retry_wait", type=float, default=5.0, help="Seconds between tries, times the try number")
    clips = commands.add_parser("clips", help="One job's share of the MusicCaps clips (yt-dlp)")
    clips.add_argument("--csv", type=Path, required=True, help="musiccaps-public.csv")
    clips.add_argument("--audio_dir", type=Path, required=True, help="Where the clips go (<ytid>.wav)")
    clips.add_argument(
        "--found_in", type=Path, nargs="*", default=[], help="Other directories whose clips are not fetched again"
    )
    clips.add_argument("--job", type=int, default=1, help="This job's number, 1..--num_jobs")
    clips.add_argument("--num_jobs", type=int, default=1)
    clips.add_argument("--unavailable", type=Path, help="List of the clips not fetched (ytid, CSV line, reason)")
    clips.add_argument("--ytdlp", default="yt-dlp", help="The yt-dlp command")
    clips.add_argument("--timeout", type=float, default=300.0, help="Seconds one clip may take")
    missing = commands.add_parser("missing", help="How many MusicCaps clips are in none of the directories")
    missing.add_argument("--csv", type=Path, required=True, help="musiccaps-public.csv")
    missing.add_argument(
        "--audio_dir", type=Path, nargs="+", required=True, help="Where the clips are looked for (anywhere below)"
    )
    missing.add_argument("--list", type=Path, help="Their ytids go here, one a line")
    pretrained = commands.add_parser("pretrained", help="Pretrained files into --downloads")
    pretrained.add_argument("names", nargs="*", help=f"Of {', '.join(PRETRAINED)} (default: {' '.join(DEFAULT)})")
    pretrained.add_argument("--downloads", type=Path, default=Path("downloads"))
    check = commands.add_parser("check", help="The start files training configs need, and the command to fetch them")
    check.add_argument("--config", type=Path, nargs="+", required=True)
    check.add_argument("--command", default="local/download_pretrained.sh", help="The command named to fetch them")
    for sub in (corpus, clips, pretrained):
        sub.add_argument(
            "--offline", type=parse_bool, default=None, help="Fetch nothing, only check (default: $SLAP_OFFLINE)"
        )
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "corpus":
        fetch_corpus(args.name, args.root, args.mirror, args.offline, retries=args.retries, retry_wait=args.retry_wait)
    elif args.command == "clips":
        if args.offline:
            raise DownloadError("clips: the offline switch is on: no clip is fetched")
        fetch_clips(
            args.csv, args.audio_dir, args.job, args.num_jobs, args.unavailable, args.ytdlp, args.timeout, args.found_in
        )
    elif args.command == "missing":
        absent, total = missing_clips(args.csv, args.audio_dir)
        if args.list is not None:
            args.list.write_text("".join(f"{ytid}\n" for ytid in absent), encoding="utf-8")
        print(len(absent), total)
    elif args.command == "pretrained":
        unknown = [name for name in args.names if name not in PRETRAINED]
        if unknown:
            raise DownloadError(f"unknown pretrained file(s) {', '.join(unknown)}: known are {', '.join(PRETRAINED)}")
        failed = []
        for name in args.names or DEFAULT:
            try:
                logger.info(f"{name}: in place as {fetch_pretrained(name, args.downloads, args.offline)}")
            except DownloadError as e:
                logger.error(str(e))
                failed.append(name)
        if failed:
            raise DownloadError(f"not in place: {', '.join(failed)} (above)")
    else:
        absent = [(config, path, name) for config in args.config for path, name in config_needs(config)]
        for config, path, name in absent:
            how = f"{args.command} {name}" if name else "put it there, or edit the path"
            print(f"{config} needs {path}, which is missing: {how}", file=sys.stderr)
        if absent:
            sys.exit(1)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    start_logging("espnet2_slap.bin.slap_fetch", cmd)
    args = get_parser().parse_args(cmd)
    try:
        run(args)
    except (DownloadError, PrepError) as e:
        logger.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
