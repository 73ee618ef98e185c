#!/usr/bin/env python3
"""Data preparation of a PrivateCaps-like corpus: your own full-length tracks with captions and a split.

    python -m espnet2_slap.datasets.privatecaps --metadata tracks.csv [--audio_root DIR] [--data_dir data]

Metadata: CSV (a header line; ``.tsv``: tab-separated) or JSON Lines (``.jsonl``: one object a line) with
  audio_path   an audio file soundfile reads (wav, flac, mp3, ogg, ...), relative to --audio_root (default:
               the metadata file's directory) or absolute
  split        train, valid or test (also val, validation, dev; eval)
  caption      one caption, and/or
  captions     several: in JSON a list; in CSV ``cap1 ||| cap2`` or the reference code's ``!!cap1|cap2``
  id           (optional) the utterance id; default: the audio path below --audio_root with every character
               other than letters, digits, '.', '_', '-' made '_' and the extension dropped
Writes data/{train,valid,test}/{wav.scp,text}: tracks stay whole (training crops them at random, validation and
test in the middle: preprocessor_conf crop_seconds). Malformed rows, unknown splits, bad or repeated ids,
missing or unreadable audio and tracks shorter than --min_seconds are reported with their line and skipped;
captions are repaired as ``espnet2_slap.datasets.common.clean_caption`` says. Everything is listed in
data/local/privatecaps.problems.
"""

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_slap.datasets.common import (
    DataDirWriter,
    PrepError,
    Report,
    Row,
    prep_parser,
    read_csv_rows,
    read_jsonl_rows,
    run_main,
    safe_id,
    split_captions,
    split_name,
)


def row_captions(values: Dict[str, object]) -> List[str]:
    """The captions of a row, from ``caption`` and ``captions`` (a list, or one string holding several)."""
    captions = []
    if values.get("caption") not in (None, ""):
        captions.append(str(values["caption"]))
    several = values.get("captions")
    if isinstance(several, list):
        captions += [str(c) for c in several]
    elif several not in (None, ""):
        captions += split_captions(str(several))
    return captions


def read_rows(metadata: Path, report: Report, encoding: str) -> List[Row]:
    required = ["audio_path", "split"]
    if metadata.suffix.lower() in (".jsonl", ".json"):
        rows = list(read_jsonl_rows(metadata, required, report, encoding))
    else:
        delimiter = "\t" if metadata.suffix.lower() == ".tsv" else ","
        rows = list(read_csv_rows(metadata, required, report, delimiter, encoding))
        if rows and not {"caption", "captions"} & set(rows[0].values):
            raise PrepError(f"{metadata}:1: no caption or captions column")
    return rows


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("privatecaps")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    root = args.audio_root or args.metadata.parent
    for row in read_rows(args.metadata, report, args.encoding):
        path = Path(str(row.values["audio_path"]).strip())
        uid = str(row.values.get("id") or "").strip() or safe_id(str(path.with_suffix("")).lstrip("/"))
        try:
            dset = split_name(row.values["split"])
        except ValueError as e:
            report.skip(row.where, uid, "unknown split", str(e))
            continue
        if dset not in args.sets:
            continue
        writer.add(dset, uid, path if path.is_absolute() else root / path, row.where, row_captions(row.values))
    return writer.write(args.sets)


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--metadata", type=Path, required=True, help="CSV, TSV or JSONL file (see above)")
    parser.add_argument(
        "--audio_root", type=Path, help="Relative audio paths start here (default: the " "metadata file's directory)"
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["train", "valid", "test"],
        choices=["train", "valid", "test"],
        help="Sets to write; each must get at least one track",
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
