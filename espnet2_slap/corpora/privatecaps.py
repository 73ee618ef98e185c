#!/usr/bin/env python3
"""Data preparation of a PrivateCaps-like corpus: your own full-length tracks with captions and a split.

    python -m espnet2_slap.corpora.privatecaps --metadata tracks.csv [--audio_root DIR] [--data_dir data]

Metadata: CSV (a header line; ``.tsv``: tab-separated) or JSON Lines (``.jsonl``: one object a line) with
  audio_path   an audio file soundfile reads (wav, flac, mp3, ogg, ...), relative to --audio_root (default:
               the metadata file's directory) or absolute
  split        train, valid or test (also val, validation, dev; eval)
  caption      one caption (the reference code's ``!!cap1|cap2``: several), and/or
  captions     several: in JSON a list; in CSV ``cap1 ||| cap2`` or the reference code's ``!!cap1|cap2``
  id           (optional) the utterance id; default: the audio path as the metadata writes it, with every
               character other than letters, digits, '.', '_', '-' made '_' and the extension dropped
The SLAP reference code's CSV is read as it reads it: columns ``npy_path`` (for audio_path), ``caption`` (``!!a|b``
is the two captions a and b) and ``set`` (train, val, test; for split); an ``x.npy`` path stands for the audio
file ``x.wav``, ``x.mp3``, ``x.flac`` or ``x.ogg`` next to it (the first there; spectrograms are not read), and
relative paths start, without --audio_root, in the directory above the CSV's (the reference's default root).
Writes data/{train,valid,test}/{wav.scp,text}: tracks stay whole (training crops them at random, validation and
test in the middle: preprocessor_conf crop_seconds). Malformed rows, unknown splits, bad or repeated ids,
missing or unreadable audio and tracks shorter than --min_seconds are reported with their line and skipped;
captions are repaired as ``espnet2_slap.corpora.common.clean_caption`` says. Everything is listed in
data/local/privatecaps.problems.
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_slap.corpora.common import (
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

logger = logging.getLogger(__name__)


AUDIO_FOR_NPY = (".wav", ".mp3", ".flac", ".ogg")  # what an npy_path of the reference layout stands for


def row_captions(values: Dict[str, object]) -> List[str]:
    """The captions of a row, from ``caption`` (one, or several as ``!!a|b``) and ``captions`` (a list, or one
    string holding several)."""
    captions = []
    if values.get("caption") not in (None, ""):
        caption = str(values["caption"])
        captions += split_captions(caption) if caption.lstrip().startswith("!!") else [caption]
    several = values.get("captions")
    if isinstance(several, list):
        captions += [str(c) for c in several]
    elif several not in (None, ""):
        captions += split_captions(str(several))
    return captions


def audio_for_npy(path: Path) -> Path:
    """The audio file an ``x.npy`` of the reference layout stands for: the first of x.wav, x.mp3, x.flac, x.ogg
    that exists (x.wav when none does, to be reported missing); any other path as it is."""
    if path.suffix.lower() != ".npy":
        return path
    candidates = [path.with_suffix(ext) for ext in AUDIO_FOR_NPY]
    return next((p for p in candidates if p.is_file()), candidates[0])


def read_rows(metadata: Path, report: Report, encoding: str) -> List[Row]:
    required = [("audio_path", "npy_path"), ("split", "set")]
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
    rows = read_rows(args.metadata, report, args.encoding)
    reference_layout = bool(rows) and "audio_path" not in rows[0].values
    root = args.audio_root or (args.metadata.parent.parent if reference_layout else args.metadata.parent)
    if reference_layout:
        logger.info(
            f"{args.metadata}: the SLAP reference's layout (npy_path, caption, set); audio paths start in {root}"
        )
    for row in rows:
        path = Path(str(row.values.get("audio_path", row.values.get("npy_path"))).strip())
        uid = str(row.values.get("id") or "").strip() or safe_id(str(path.with_suffix("")).lstrip("/"))
        try:
            dset = split_name(row.values.get("split", row.values.get("set")))
        except ValueError as e:
            report.skip(row.where, uid, "unknown split", str(e))
            continue
        if dset not in args.sets:
            continue
        audio = audio_for_npy(path if path.is_absolute() else root / path)
        writer.add(dset, uid, audio, row.where, row_captions(row.values))
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
