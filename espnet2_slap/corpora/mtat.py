#!/usr/bin/env python3
"""Data preparation of MagnaTagATune (MTAT) with its 50 most used tags, for zero-shot tagging and probing.

    python -m espnet2_slap.corpora.mtat --annotations annotations_final.csv --audio_dir mp3 \\
        [--tags top50|frequent --num_tags 50] [--keep_untagged false]

``annotations_final.csv`` is tab-separated (values may be double-quoted): clip_id, 188 tag columns of 0/1,
mp3_path (``f/american_bach_soloists-...-30-59.mp3``, below --audio_dir). Tags: --tags top50 is the usual
50-tag list (TOP50 below); --tags frequent takes the --num_tags most frequent columns (ties: column order).
Split by the first directory of mp3_path, the usual one: 0-9, a, b train; c valid; d, e, f test. Clips with
none of the tags are left out (counted) unless --keep_untagged true. Writes data/{train,valid,test} with
wav.scp, text (the clip's tags, a label caption), utt2tags (``<id> <tag> <tag> ...``, spaces in tag names made
'_': ``no_vocals``; a kept untagged clip has its id alone) and tags.classes. A row with a value other than 0/1,
a bad mp3_path or a repeated clip_id, and a missing or empty mp3 (MTAT has a few empty files) are reported
with their line and skipped (data/local/mtat.problems).
"""

import argparse
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_slap.corpora.common import (
    DataDirWriter,
    PrepError,
    Report,
    Row,
    label_token,
    parse_bool,
    prep_parser,
    read_csv_rows,
    run_main,
)

TOP50 = [
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
]
SPLIT_BY_DIRECTORY = {**{d: "train" for d in "0123456789ab"}, "c": "valid", **{d: "test" for d in "def"}}


def pick_tags(rows: List[Row], header: List[str], how: str, num_tags: int) -> List[str]:
    if how == "top50":
        return TOP50
    counts = Counter({tag: sum(row.values[tag].strip() == "1" for row in rows) for tag in header})
    return [tag for tag, _ in sorted(counts.items(), key=lambda kv: (-kv[1], header.index(kv[0])))[:num_tags]]


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("mtat")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    rows = list(read_csv_rows(args.annotations, ["clip_id", "mp3_path"], report, "\t", args.encoding))
    if not rows:
        raise PrepError(f"{args.annotations}: no rows")
    header = [name for name in rows[0].values if name not in ("clip_id", "mp3_path")]
    tags = pick_tags(rows, header, args.tags, args.num_tags)
    absent = [tag for tag in tags if tag not in header]
    if absent:
        raise PrepError(f"{args.annotations}:1: no column for tag(s) {', '.join(absent)}")
    writer.set_classes("tags", [label_token(tag) for tag in tags])
    for row in rows:
        clip, path = row.values["clip_id"].strip(), row.values["mp3_path"].strip()
        values = {tag: row.values[tag].strip() for tag in tags}
        bad = [f"{tag}={value!r}" for tag, value in values.items() if value not in ("0", "1")]
        if bad:
            report.skip(row.where, clip, "malformed row", f"tag values not 0/1: {', '.join(bad[:3])}")
            continue
        dset = SPLIT_BY_DIRECTORY.get(path.split("/", 1)[0]) if "/" in path else None
        if dset is None:
            report.skip(row.where, clip, "bad mp3_path", f"{path!r} is not <0-9a-f>/<name>.mp3")
            continue
        positive = [tag for tag in tags if values[tag] == "1"]
        if not positive and not args.keep_untagged:
            report.skip(row.where, clip, f"none of the {len(tags)} tags")
            continue
        writer.add(
            dset,
            clip,
            args.audio_dir / path,
            row.where,
            [", ".join(positive) or "music"],
            labels={"utt2tags": " ".join(label_token(tag) for tag in positive)},
        )
    return writer.write(["train", "valid", "test"])


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--annotations", type=Path, required=True, help="annotations_final.csv (tab-separated)")
    parser.add_argument("--audio_dir", type=Path, required=True, help="Where the mp3_path files are (0/ ... f/)")
    parser.add_argument("--tags", choices=["top50", "frequent"], default="top50")
    parser.add_argument("--num_tags", type=int, default=50, help="With --tags frequent: how many")
    parser.add_argument("--keep_untagged", type=parse_bool, default=False, help="Keep clips with none of the tags")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
