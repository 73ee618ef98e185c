#!/usr/bin/env python3
"""Data preparation of OpenMIC-2018 (20 instruments, partial labels) for zero-shot tagging and probing.

    python -m espnet2_slap.corpora.openmic --openmic_dir openmic-2018 [--threshold 0.5] [--valid_percent 10]

Reads ``openmic-2018.npz`` (Y_true (N, 20) label confidences, Y_mask (N, 20) which labels were annotated,
sample_key (N,); X, the VGGish features, is not used), ``class-map.json`` ({instrument: column}; the 20
OpenMIC names in alphabetical order when absent), ``partitions/split01_{train,test}.csv`` (one sample_key a
line) and the audio ``audio/<first 3 characters of the key>/<key>.ogg``. valid is the --valid_percent of the
train partition picked by a CRC-32 of the key. Writes data/{train,valid,test} with
  utt2instruments   ``<id> <instrument> ...``: the known labels with Y_true >= --threshold (an id alone: none)
  utt2known         ``<id> <instrument> ...``: the known labels (Y_mask); unknown ones must not count
  instruments.classes, wav.scp, text (the positive instruments, a label caption)
Clips with no known label, keys in a partition but not in the npz (or twice), and missing audio are reported
and skipped (data/local/openmic.problems).
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from espnet2_slap.corpora.common import (
    DataDirWriter,
    PrepError,
    Report,
    label_token,
    prep_parser,
    read_lines,
    read_text,
    run_main,
    stable_bucket,
)

INSTRUMENTS = [
    "accordion",
    "banjo",
    "bass",
    "cello",
    "clarinet",
    "cymbals",
    "drums",
    "flute",
    "guitar",
    "mallet_percussion",
    "mandolin",
    "organ",
    "piano",
    "saxophone",
    "synthesizer",
    "trombone",
    "trumpet",
    "ukulele",
    "violin",
    "voice",
]


def load_labels(npz: Path) -> Dict[str, np.ndarray]:
    """Y_true, Y_mask and sample_key of the npz, with their shapes checked."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("Y_true", "Y_mask", "sample_key")}
    except (OSError, KeyError, ValueError) as e:
        raise PrepError(f"{npz}: cannot read Y_true, Y_mask and sample_key: {e}") from None
    n = len(arrays["sample_key"])
    if arrays["Y_true"].shape != arrays["Y_mask"].shape or arrays["Y_true"].shape[0] != n:
        raise PrepError(
            f"{npz}: Y_true {arrays['Y_true'].shape}, Y_mask {arrays['Y_mask'].shape} and "
            f"sample_key ({n},) do not match"
        )
    return arrays


def class_names(openmic_dir: Path, num_classes: int) -> List[str]:
    class_map = openmic_dir / "class-map.json"
    if class_map.is_file():
        columns = json.loads(read_text(class_map))
        names = sorted(columns, key=columns.get)
        if sorted(columns.values()) != list(range(num_classes)):
            raise PrepError(f"{class_map}: columns {sorted(columns.values())} are not 0..{num_classes - 1}")
        return [label_token(name) for name in names]
    if num_classes != len(INSTRUMENTS):
        raise PrepError(f"no {class_map} and {num_classes} label columns, not the {len(INSTRUMENTS)} of OpenMIC")
    return INSTRUMENTS


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("openmic")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    npz = args.openmic_dir / "openmic-2018.npz"
    labels = load_labels(npz)
    classes = class_names(args.openmic_dir, labels["Y_true"].shape[1])
    writer.set_classes("instruments", classes)
    row = {}
    for i, key in enumerate(labels["sample_key"].astype(str)):
        if key in row:
            report.skip(f"{npz}:sample_key[{i}]", key, "duplicate id", f"already at sample_key[{row[key]}]")
        row.setdefault(key, i)
    partitioned = set()
    for partition in ("train", "test"):
        part_file = args.openmic_dir / "partitions" / f"split{args.split}_{partition}.csv"
        if not part_file.is_file():
            raise PrepError(f"{part_file}: no such partition file")
        for where, line in read_lines(part_file, report, args.encoding):
            key = line.strip().strip('"')
            if not key or key == "sample_key":
                continue
            partitioned.add(key)
            if key not in row:
                report.skip(where, key, "not in the npz", f"{npz} has no sample_key {key}")
                continue
            known = labels["Y_mask"][row[key]].astype(bool)
            if not known.any():
                report.skip(where, key, "no known label")
                continue
            positive = known & (labels["Y_true"][row[key]] >= args.threshold)
            names = [classes[c] for c in np.flatnonzero(positive)]
            dset = "test" if partition == "test" else "valid" if stable_bucket(key) < args.valid_percent else "train"
            writer.add(
                dset,
                key,
                args.openmic_dir / "audio" / key[:3] / f"{key}.ogg",
                where,
                [", ".join(n.replace("_", " ") for n in names) or "music"],
                labels={
                    "utt2instruments": " ".join(names),
                    "utt2known": " ".join(classes[c] for c in np.flatnonzero(known)),
                },
            )
    unlisted = len(set(row) - partitioned)
    if unlisted:
        report.add("kept", str(npz), "", "clips in no partition (left out)", f"{unlisted} clips")
    return writer.write(["train", "valid", "test"])


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--openmic_dir", type=Path, required=True, help="The openmic-2018 directory")
    parser.add_argument("--split", default="01", help="Partition files split<split>_{train,test}.csv")
    parser.add_argument("--threshold", type=float, default=0.5, help="Y_true at least this is a positive label")
    parser.add_argument("--valid_percent", type=int, default=10, help="Percent of the train partition held out")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
