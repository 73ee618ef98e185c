#!/usr/bin/env python3
"""Data preparation of GTZAN (10 genres, 30-s clips) for zero-shot classification and probing.

    python -m espnet2_slap.corpora.gtzan --gtzan_dir GTZAN [--split_dir DIR]

Audio: ``<gtzan_dir>/genres/<genre>/<genre>.000NN.wav`` (``genres_original/`` and ``.au`` files are found too).
Split: by default the fault-filtered split (Kereliuk, Sturm & Larsen 2015: 443 train / 197 valid / 290 test
clips, without repeated, distorted or mislabelled clips, artists kept apart), read from the lists torchaudio
ships (``torchaudio.datasets.gtzan.filtered_{train,valid,test}``); or ``<split_dir>/{train,valid,test}.txt``,
one clip a line as ``<genre>/<genre>.000NN.wav`` (the extension does not matter). Clips in no list are left
out (counted). Writes data/{train,valid,test} with
wav.scp, text (``<genre> music``, a label caption: retrieval on it is a sanity check, not a benchmark),
utt2genre (``<id> <genre>``, the single-label file slap_score and local/score.sh read) and genre.classes;
ids are the file stems (``blues.00029``). A list entry without audio, with a genre other than its directory's,
or repeated, is reported with its line and skipped (data/local/gtzan.problems).
"""

import argparse
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torchaudio.datasets.gtzan as torchaudio_gtzan

from espnet2_slap.corpora.common import DataDirWriter, PrepError, Report, prep_parser, read_lines, run_main

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
ENTRY = re.compile(r"^(?P<genre>[a-z]+)/(?P<stem>(?P=genre)\.\d{5})(\.\w+)?$")


def genre_root(gtzan_dir: Path) -> Path:
    """The directory holding the 10 genre directories."""
    for root in (
        gtzan_dir / "genres",
        gtzan_dir / "genres_original",
        gtzan_dir / "Data" / "genres_original",
        gtzan_dir,
    ):
        if all((root / genre).is_dir() for genre in GENRES):
            return root
    raise PrepError(f"{gtzan_dir}: no genres/ (or genres_original/) with the directories {', '.join(GENRES)}")


def split_lists(split_dir: Optional[Path], encoding: str, report: Report) -> Dict[str, List[Tuple[str, str]]]:
    """{train/valid/test: [(where, "<genre>/<genre>.000NN[.ext]")]}: the lines of ``split_dir``'s lists (a line
    that is not text in ``encoding`` reported and left out), or torchaudio's fault-filtered lists without
    ``split_dir``."""
    lists = {}
    for dset in ("train", "valid", "test"):
        if split_dir is None:
            stems = getattr(torchaudio_gtzan, f"filtered_{dset}")
            source = f"torchaudio.datasets.gtzan.filtered_{dset}"
            lists[dset] = [(f"{source}[{i}]", f"{stem.split('.')[0]}/{stem}") for i, stem in enumerate(stems)]
            continue
        split_file = split_dir / f"{dset}.txt"
        if not split_file.is_file():
            raise PrepError(f"{split_file}: no such split list")
        lists[dset] = [(where, line.strip()) for where, line in read_lines(split_file, report, encoding)]
    return lists


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("gtzan")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    writer.set_classes("genre", GENRES)
    root = genre_root(args.gtzan_dir)
    audio = {p.stem: p for genre in GENRES for p in sorted((root / genre).iterdir()) if p.suffix in (".wav", ".au")}
    listed = set()
    for dset, entries in split_lists(args.split_dir, args.encoding, report).items():
        for where, entry in entries:
            if not entry:
                continue
            match = ENTRY.match(entry)
            if not match or match["genre"] not in GENRES:
                report.skip(where, entry, "malformed list entry", "expected <genre>/<genre>.000NN.wav")
                continue
            stem, genre = match["stem"], match["genre"]
            listed.add(stem)
            writer.add(
                dset,
                stem,
                audio.get(stem, root / genre / f"{stem}.wav"),
                where,
                [f"{genre} music"],
                labels={"utt2genre": genre},
            )
    unlisted = sorted(set(audio) - listed)
    if unlisted:
        report.add(
            "kept",
            str(root),
            "",
            "clips in no split list (left out)",
            f"{len(unlisted)} clips, e.g. {', '.join(unlisted[:5])}",
        )
    return writer.write(["train", "valid", "test"])


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument("--gtzan_dir", type=Path, required=True, help="The GTZAN directory (holding genres/)")
    parser.add_argument(
        "--split_dir", type=Path, help="Directory of train.txt, valid.txt, test.txt (default: the fault-filtered split)"
    )
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
