#!/usr/bin/env python3
"""Data preparation of the Song Describer Dataset (SDD) from ``song_describer.csv`` and its ``audio/`` dir.

    python -m espnet2_slap.corpora.song_describer --csv song_describer.csv --audio_dir audio \\
        [--subset valid|all] [--train false|true]

CSV columns: caption_id,track_id,caption,is_valid_subset,familiarity,artist_id,album_id,path,duration (others
are ignored); one row a caption, several captions a track. ``path`` (``00/18500.mp3``) names the audio file
``<audio_dir>/00/18500.2min.mp3`` (``<audio_dir>/00/18500.mp3`` when that is what is there).

One utterance a track (id = track_id): its ``text`` line holds every caption kept, `` ||| ``-separated, in CSV
order, and ``utt2caption_ids`` their caption_ids in the same order, so retrieval is many-to-one (slap_embed
names the captions ``<track>-cap<i>``, i-th of the line). --subset valid keeps the captions with
is_valid_subset true (546 tracks, 746 captions), --subset all every caption (706 tracks, 1,106 captions).
Sets: ``test`` only (evaluation, the default); with --train true, tracks go to train / valid / test by a CRC-32
of their artist_id (80 / 10 / 10 %, no artist in two sets). Rows with a repeated caption_id, a bad
is_valid_subset, another path than the track's first row, or an empty caption are reported with their line
and skipped (data/local/song_describer.problems).
"""

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_slap.corpora.common import (
    DataDirWriter,
    Report,
    Row,
    clean_caption,
    parse_bool,
    prep_parser,
    read_csv_rows,
    run_main,
    stable_bucket,
)

COLUMNS = ["caption_id", "track_id", "caption", "is_valid_subset", "artist_id", "path"]


def track_audio(audio_dir: Path, path: str) -> Path:
    """``00/18500.mp3`` -> ``<audio_dir>/00/18500.2min.mp3``, or ``<audio_dir>/00/18500.mp3`` if only that exists."""
    plain = audio_dir / path.strip()
    two_minutes = plain.with_name(f"{Path(plain.name).stem}.2min{plain.suffix}")
    return plain if plain.is_file() and not two_minutes.is_file() else two_minutes


def track_set(artist_id: str, track_id: str, train: bool) -> str:
    if not train:
        return "test"
    bucket = stable_bucket(artist_id.strip() or track_id, 10)
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("song_describer")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    tracks: Dict[str, List[Row]] = {}
    caption_rows: Dict[str, str] = {}
    for row in read_csv_rows(args.csv, COLUMNS, report, encoding=args.encoding):
        v = row.values
        track, caption_id = v["track_id"].strip(), v["caption_id"].strip()
        if caption_id in caption_rows:
            report.skip(row.where, track, "duplicate caption_id", f"{caption_id} already at {caption_rows[caption_id]}")
            continue
        caption_rows[caption_id] = row.where
        try:
            valid = parse_bool(v["is_valid_subset"])
        except ValueError as e:
            report.skip(row.where, track, "malformed row", f"is_valid_subset: {e}")
            continue
        if args.subset == "valid" and not valid:
            continue
        first = tracks.get(track, [row])[0]
        if v["path"].strip() != first.values["path"].strip():
            report.skip(
                row.where,
                track,
                "conflicting path",
                f"{v['path']!r}, the track's row {first.where} has " f"{first.values['path']!r}",
            )
            continue
        if not clean_caption(v["caption"])[0]:
            report.skip(row.where, track, "empty caption", f"caption_id {caption_id}")
            continue
        tracks.setdefault(track, []).append(row)
    for track, rows in tracks.items():
        first = rows[0].values
        where = rows[0].where + "".join(f",{r.where.rsplit(':', 1)[1]}" for r in rows[1:])
        writer.add(
            track_set(first["artist_id"], track, args.train),
            track,
            track_audio(args.audio_dir, first["path"]),
            where,
            [r.values["caption"] for r in rows],
            labels={"utt2caption_ids": " ".join(r.values["caption_id"].strip() for r in rows)},
        )
    return writer.write(["train", "valid", "test"] if args.train else ["test"])


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--csv", type=Path, required=True, help="song_describer.csv")
    parser.add_argument("--audio_dir", type=Path, required=True, help="The audio/ dir (00/ ... 99/ below it)")
    parser.add_argument(
        "--subset",
        choices=["valid", "all"],
        default="valid",
        help="Captions with is_valid_subset true, or all captions",
    )
    parser.add_argument(
        "--train",
        type=parse_bool,
        default=False,
        help="Also write train and valid sets (tracks split by artist) to train on SDD",
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
