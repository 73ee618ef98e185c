#!/usr/bin/env python3
"""Data preparation of MusicCaps from ``musiccaps-public.csv`` and the audio you fetched.

    python -m espnet2_slap.corpora.musiccaps --csv musiccaps-public.csv --audio_dir clips [more_clips ...] \\
        [--audio_kind clips|videos] [--sets train valid test] [--valid_percent 5]

CSV columns: ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,
is_audioset_eval. Audio: one file per ytid anywhere below --audio_dir, named ``<ytid>.<ext>`` (wav, flac, mp3,
ogg; when several, the first in that order; with several directories, the first that has one), either
  --audio_kind clips    the 10-s clip already cut (default), or
  --audio_kind videos   the whole video's audio: the clip [start_s, end_s) is cut in stage 2 (Kaldi segments).
Sets (utterance id = ytid, text = caption): test = the rows with is_audioset_eval true (2,858 clips), train =
the others but valid = the --valid_percent of those picked by a CRC-32 of the ytid (the same on every machine).
Clips whose audio is missing (videos gone from YouTube) are counted, listed with their CSV line in
data/local/musiccaps.problems and by ytid in data/local/musiccaps.missing (to fetch them again), and skipped;
a set left with no clip is not written (stage 1 then says so when the recipe needs it), and only no clip at
all is an error. For evaluation only, ``--sets test`` leaves train and valid out.
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, Optional, Sequence

from espnet2_slap.corpora.common import (
    AUDIO_EXTENSIONS,
    DataDirWriter,
    PrepError,
    Report,
    parse_bool,
    prep_parser,
    read_csv_rows,
    run_main,
    stable_bucket,
)

COLUMNS = [
    "ytid",
    "start_s",
    "end_s",
    "audioset_positive_labels",
    "aspect_list",
    "caption",
    "author_id",
    "is_balanced_subset",
    "is_audioset_eval",
]
logger = logging.getLogger(__name__)


def audio_index(audio_dirs: Sequence[Path], report: Report) -> Dict[str, Path]:
    """{file stem: path} of the audio files below ``audio_dirs``; a stem found twice in a directory keeps the
    preferred format (reported), one found in several directories the first directory's."""
    found: Dict[str, Path] = {}
    for audio_dir in audio_dirs:
        if not audio_dir.is_dir():
            raise PrepError(f"--audio_dir {audio_dir} is not a directory")
        here: Dict[str, Path] = {}
        paths = [p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()]
        for path in sorted(paths, key=lambda p: (AUDIO_EXTENSIONS.index(p.suffix.lower()), str(p))):
            if path.stem in here:
                report.add("kept", str(path), path.stem, "several audio files for one ytid", f"using {here[path.stem]}")
                continue
            here[path.stem] = path
        for stem, path in here.items():
            found.setdefault(stem, path)
    return found


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("musiccaps")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    audio = audio_index(args.audio_dir, report)
    below = " or ".join(map(str, args.audio_dir))
    missing = []
    for row in read_csv_rows(args.csv, COLUMNS, report, encoding=args.encoding):
        ytid = row.values["ytid"].strip()
        try:
            start, end = float(row.values["start_s"]), float(row.values["end_s"])
            is_eval = parse_bool(row.values["is_audioset_eval"])
        except ValueError as e:
            report.skip(row.where, ytid, "malformed row", str(e))
            continue
        dset = "test" if is_eval else "valid" if stable_bucket(ytid) < args.valid_percent else "train"
        if dset not in args.sets:
            continue
        if ytid not in audio:
            missing.append(ytid)
            report.skip(
                row.where,
                ytid,
                "missing audio file",
                f"no {ytid}.{{{','.join(e[1:] for e in AUDIO_EXTENSIONS)}}} below {below}",
            )
            continue
        segment = (start, end) if args.audio_kind == "videos" else None
        writer.add(dset, ytid, audio[ytid], row.where, [row.values["caption"]], segment=segment)
    missing_list = args.data_dir / "local" / "musiccaps.missing"
    missing_list.parent.mkdir(parents=True, exist_ok=True)
    missing_list.write_text("".join(f"{ytid}\n" for ytid in missing), encoding="utf-8")
    if missing:
        logger.warning(f"{len(missing)} clips have no audio file; their ytids are listed in {missing_list}")
    return writer.write(args.sets, allow_empty=True)


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--csv", type=Path, required=True, help="musiccaps-public.csv")
    parser.add_argument(
        "--audio_dir",
        type=Path,
        nargs="+",
        required=True,
        help="Where the fetched audio files are (several: a ytid in more than one is taken from the first)",
    )
    parser.add_argument(
        "--audio_kind",
        choices=["clips", "videos"],
        default="clips",
        help="Files hold the cut clips, or whole videos to cut at start_s/end_s",
    )
    parser.add_argument("--sets", nargs="+", default=["train", "valid", "test"], choices=["train", "valid", "test"])
    parser.add_argument("--valid_percent", type=int, default=5, help="Percent of the training clips held out")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
