#!/usr/bin/env python3
"""Data preparation of a Hugging Face ``datasets`` dataset on this machine: audio and captions to Kaldi data dirs.

    python -m espnet2_slap.corpora.hf_dataset --dataset DIR --caption_columns caption [aspects ...] \\
        [--audio_column audio] [--id_column ID] [--split validation=valid ...] [--split_column COLUMN] \\
        [--audio_out DIR] [--audio_format flac|wav] [--sets train valid test]

--dataset: a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (read with
``datasets.load_from_disk``), or a directory of data files that ``datasets.load_dataset`` reads (Parquet, CSV,
JSON Lines, e.g. a dataset repository downloaded from the Hub), or an audiofolder (audio files with metadata.csv,
.jsonl or .parquet naming them in ``file_name``, split by directory: train/, validation/ or dev/, test/; read
without torchcodec). Nothing is fetched. Needs the datasets package: pip install espnet2_slap[hf].

Columns (a missing one is an error naming the dataset's columns):
  --audio_column     datasets' ``Audio`` feature, or a string column of audio file paths (relative ones start at
                     --audio_root, default: the dataset directory). The Audio feature is read undecoded ({"path",
                     "bytes"}): its file is referenced in wav.scp where it is on this machine and readable, and
                     otherwise its stored bytes are decoded (soundfile; torchcodec is never needed) once into
                     ``<audio_out>/<split>/<row>.<audio_format>`` (default --audio_out: <data_dir>/local/audio).
                     save_to_disk stores the bytes of the files and only their base names: such audio is
                     decoded. A column already holding decoded audio ({"array", "sampling_rate"}) is written too.
  --caption_columns  one or more; each a string (one caption) or a list of strings (several). The captions of a
                     row, in column order, are joined by `` ||| `` on its ``text`` line.
  --id_column        (optional) the utterance id; default ``<split>_<row>`` (the row number 0-based, 7 digits).
Sets: without --split_column, each split of a DatasetDict is a set: train, validation, test (also val, dev,
eval) by name, or as --split maps them (``--split train=train validation=valid``: only the splits named are
read; a single Dataset is the split ``all``, or its own split name: ``--split all=test``). With --split_column,
each row's value says its set (by name, or as --split maps the values: ``--split_column is_eval --split
true=test false=train``), in every split of the dataset. --sets (default: the sets the mapping names) are
written; each must get one utterance at least.

Rows are named in the problems by ``<dataset>/<split>:<row>`` and their id: a row with no caption, no audio,
an audio file that is missing or unreadable, stored audio that does not decode, an unknown split, a bad or
repeated id is reported and skipped; captions are repaired as ``espnet2_slap.corpora.common.clean_caption``
says. Everything is listed in data/local/hf_dataset.problems.
"""

import argparse
import io
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from espnet2_slap.audio.dump import SOUNDFILE_FORMATS
from espnet2_slap.audio.io import decoder_messages
from espnet2_slap.corpora.common import (
    AUDIO_EXTENSIONS,
    SPLIT_NAMES,
    DataDirWriter,
    PrepError,
    Report,
    audio_problem,
    prep_parser,
    run_main,
    safe_id,
    split_name,
)

logger = logging.getLogger(__name__)

INSTALL = "pip install espnet2_slap[hf]"
SETS = ("train", "valid", "test")
SINGLE = "all"  # the split name of a single Dataset that has none of its own
WIDE_SUBTYPES = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


def import_datasets():
    """The ``datasets`` module, imported here only (the options and --help never need it)."""
    try:
        import datasets
    except ImportError as e:
        raise PrepError(f"reading a Hugging Face dataset needs the datasets package ({e}): {INSTALL}") from None
    return datasets


AUDIOFOLDER_METADATA = {"metadata.csv": "csv", "metadata.jsonl": "json", "metadata.parquet": "parquet"}


def audiofolder_metadata(path: Path) -> Dict[str, List[Path]]:
    """{split: its metadata files} of an audiofolder (audio files with metadata.csv, .jsonl or .parquet files
    naming them in ``file_name``), split by directory name as datasets splits it (``train/``, ``dev/`` ...; a
    file in no such directory is in ``train``); {} when ``path`` is no audiofolder."""
    tree = list(path.rglob("*"))  # walked once: a collection may hold 100,000s of files
    files = sorted(p for p in tree if p.name in AUDIOFOLDER_METADATA)
    if not files or not any(p.suffix.lower() in AUDIO_EXTENSIONS for p in tree):
        return {}
    from datasets.data_files import SPLIT_KEYWORDS

    split_of_dir = {keyword: str(split) for split, keywords in SPLIT_KEYWORDS.items() for keyword in keywords}
    splits: Dict[str, List[Path]] = {}
    for metadata in files:
        dirs = [part.lower() for part in metadata.parent.relative_to(path).parts]
        split = next((split_of_dir[d] for d in dirs if d in split_of_dir), "train")
        splits.setdefault(split, []).append(metadata)
    return splits


def read_audiofolder(splits: Dict[str, List[Path]], cache_dir: Optional[Path]) -> Dict[str, object]:
    """{split: Dataset} of an audiofolder's metadata, its ``file_name`` made the path column ``audio`` (relative
    to its metadata file's directory).

    Ours, not ``load_dataset(dir)``: datasets 4 and later build an audiofolder's Audio feature with torchcodec,
    which needs FFmpeg's libraries only to record file names; the metadata files are read with datasets' own csv,
    json and parquet builders instead, and the files are opened by stage 2 like any path column."""
    datasets = import_datasets()
    loaded = {}
    for split, files in splits.items():
        parts = []
        for metadata in files:
            part = datasets.load_dataset(
                AUDIOFOLDER_METADATA[metadata.name],
                data_files=str(metadata),
                split="train",
                cache_dir=None if cache_dir is None else str(cache_dir),
            )
            columns = ", ".join(part.column_names)
            if "file_name" not in part.column_names:
                raise PrepError(f"{metadata}: an audiofolder's metadata that names no file_name column ({columns})")
            if "audio" in part.column_names:
                raise PrepError(f"{metadata}: an audiofolder's metadata that has a column audio already ({columns})")
            paths = [str(metadata.parent / str(name)) if name else None for name in part["file_name"]]
            parts.append(part.add_column("audio", paths))
        loaded[split] = datasets.concatenate_datasets(parts)
    return loaded


def load(path: Path, cache_dir: Optional[Path]) -> Dict[str, object]:
    """{split name: Dataset} of a ``save_to_disk`` directory, an audiofolder or another directory of data files."""
    if not path.is_dir():
        raise PrepError(f"--dataset {path}: no such directory (a save_to_disk directory or one of data files)")
    datasets = import_datasets()
    saved = (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
    audiofolder = {} if saved else audiofolder_metadata(path)
    try:
        if audiofolder:
            return read_audiofolder(audiofolder, cache_dir)
        if saved:
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(path), cache_dir=None if cache_dir is None else str(cache_dir))
    except PrepError:
        raise
    except Exception as e:  # datasets raises many kinds (FileNotFoundError, ValueError, DatasetGenerationError, ...)
        how = "load_from_disk" if saved else "load_dataset"
        causes = [e]
        while (causes[-1].__cause__ or causes[-1].__context__) and len(causes) < 20:
            causes.append(causes[-1].__cause__ or causes[-1].__context__)
        missing = next((c for c in causes if isinstance(c, ImportError)), None)
        if missing is not None:
            hint = " (pip install torchcodec, which needs FFmpeg's libraries)" if "torchcodec" in str(missing) else ""
            raise PrepError(
                f"--dataset {path}: datasets.{how} needs another package to read it{hint}: {missing}"
            ) from None
        raise PrepError(f"--dataset {path}: datasets.{how} cannot read it: {type(e).__name__}: {e}") from None
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {str(loaded.split) if loaded.split else SINGLE: loaded}


def parse_mapping(pairs: Sequence[str]) -> Dict[str, str]:
    """``["validation=valid", "True=test"]`` -> {"validation": "valid", "true": "test"} (names compared in lower
    case; the sets as ``split_name`` reads them)."""
    mapping = {}
    for pair in pairs:
        name, sep, dset = pair.partition("=")
        if not sep or not name.strip():
            raise PrepError(f"--split {pair!r}: write NAME=SET, e.g. validation=valid")
        try:
            mapping[name.strip().lower()] = split_name(dset)
        except ValueError as e:
            raise PrepError(f"--split {pair!r}: {e}") from None
    return mapping


def set_of(name: object, mapping: Dict[str, str]) -> str:
    """The set of a split name or split column value: as ``mapping`` says, else by name; ValueError when neither."""
    if mapping:
        dset = mapping.get(str(name).strip().lower())
        if dset is None:
            raise ValueError(f"{name!r} is not one of {', '.join(sorted(mapping))} (--split)")
        return dset
    return split_name(name)


def row_captions(row: Dict[str, object], columns: Sequence[str]) -> List[str]:
    """The captions of a row, column by column: a string is one caption, a list several (None: none)."""
    captions: List[str] = []
    for column in columns:
        value = row.get(column)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            captions += ["" if item is None else str(item) for item in value]
        else:
            captions.append(str(value))
    return captions


def output_subtype(audio_format: str, subtype: Optional[str]) -> str:
    """The sample format a decoded clip is written in: 16 bits, more where the source has more (decoded arrays
    count as floating point)."""
    if subtype is None or subtype in ("FLOAT", "DOUBLE"):
        return "FLOAT" if audio_format == "wav" else "PCM_24"
    return "PCM_24" if subtype in WIDE_SUBTYPES else "PCM_16"


def decode_bytes(data: bytes) -> Tuple[np.ndarray, int, str]:
    """(samples x channels float32, sampling rate, source subtype) of an encoded audio file's bytes; soundfile's
    error when they do not decode (decoder messages are kept off the console)."""
    messages: List[str] = []
    with decoder_messages(messages):
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, subtype = f.samplerate, f.subtype
            wave = f.read(dtype="float32", always_2d=True)
    if messages:
        logger.debug(f"decoder: {' / '.join(messages)}")
    return wave, rate, subtype


def as_frames(array: object) -> np.ndarray:
    """A decoded waveform as samples x channels: (n,), (n, c), or (c, n) with fewer channels than samples."""
    wave = np.asarray(array, dtype=np.float32)
    if wave.ndim == 1:
        return wave[:, None]
    if wave.ndim == 2 and wave.shape[0] < wave.shape[1]:
        return wave.T
    if wave.ndim == 2:
        return wave
    raise ValueError(f"an array of shape {wave.shape}, not samples or channels x samples")


class Preparation:
    """The rows of one dataset to utterances of a DataDirWriter."""

    def __init__(self, args: argparse.Namespace, report: Report, writer: DataDirWriter):
        self.args, self.report, self.writer = args, report, writer
        self.root = args.audio_root or args.dataset
        self.audio_out = args.audio_out or args.data_dir / "local" / "audio"
        self.mapping = parse_mapping(args.split or [])
        self.sets: Sequence[str] = SETS
        self.written = 0

    def local_path(self, path: str) -> Optional[Path]:
        """A path of the dataset as a file of this machine (relative: below --audio_root); None for a URL or an
        archive member (``zip://a.wav::archive.zip``), which this preparation never fetches."""
        if "://" in path or "::" in path:
            return None
        return Path(path) if Path(path).is_absolute() else self.root / path

    def write(self, wave: np.ndarray, rate: int, subtype: Optional[str], split: str, index: int) -> Path:
        fmt = self.args.audio_format
        path = self.audio_out / safe_id(split) / f"{index:07d}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        out_subtype = output_subtype(fmt, subtype)
        if out_subtype != "FLOAT":
            wave = np.clip(wave, -1.0, 1.0)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            sf.write(str(tmp), wave, rate, format=SOUNDFILE_FORMATS[fmt], subtype=out_subtype)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.written += 1
        return path

    def audio(self, value: object, split: str, index: int, where: str, uid: str) -> Optional[Tuple[Path, bool]]:
        """(the row's audio file, whether it was written here), or None when the row is skipped (reported). A file
        the dataset names is referenced as it is (missing or unreadable: the writer's check reports it) unless the
        dataset also stores its bytes; then it is referenced only when it is there and readable, else the bytes
        are decoded and written."""
        if isinstance(value, (str, os.PathLike)):
            path = self.local_path(str(value))
            if path is None:
                self.report.skip(where, uid, "missing audio file", f"{value}: not a local file; nothing is fetched")
                return None
            return path, False
        if not isinstance(value, dict) or not any(value.get(k) is not None for k in ("path", "bytes", "array")):
            what = "nothing" if value is None else f"a {type(value).__name__}" if not isinstance(value, dict) else ""
            detail = what or f"neither path, bytes nor array ({', '.join(map(str, value)) or 'no keys'})"
            self.report.skip(where, uid, "no audio", f"the audio column holds {detail}")
            return None
        if value.get("array") is not None:
            try:
                wave, rate, subtype = as_frames(value["array"]), int(value["sampling_rate"]), None
            except (KeyError, TypeError, ValueError) as e:
                self.report.skip(where, uid, "unreadable audio array", f"{type(e).__name__}: {e}")
                return None
        else:
            path = self.local_path(value["path"]) if value.get("path") else None
            data = value.get("bytes")
            if path is not None and (not data or audio_problem(path, 0.0, None) is None):
                return path, False
            if not data:
                if not value.get("path"):
                    self.report.skip(where, uid, "no audio", "the audio column holds neither a path nor bytes")
                else:
                    detail = f"{value['path']}: not a local file; nothing is fetched"
                    self.report.skip(where, uid, "missing audio file", detail)
                return None
            try:
                wave, rate, subtype = decode_bytes(data)
            except (sf.SoundFileError, RuntimeError, TypeError) as e:
                name = f" ({value['path']})" if value.get("path") else ""
                detail = f"{len(data)} bytes stored in the dataset{name} that do not decode: {e}"
                self.report.skip(where, uid, "unreadable audio bytes", detail)
                return None
        if len(wave) == 0:
            self.report.skip(where, uid, "empty audio file", "the audio stored in the dataset has no samples")
            return None
        try:
            return self.write(wave, rate, subtype, split, index), True
        except (sf.SoundFileError, RuntimeError, ValueError, OSError) as e:
            self.report.skip(where, uid, "audio not written", f"{self.args.audio_format}: {e}")
            return None

    def add_split(self, split: str, dataset: object, dset: Optional[str], datasets) -> None:
        """Every row of one split: to ``dset``, or with --split_column to the set its value says."""
        args = self.args
        columns = list(dict.fromkeys([args.audio_column, *args.caption_columns]))
        columns += [c for c in (args.id_column, args.split_column) if c and c not in columns]
        source = f"{args.dataset}/{split}"
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            raise PrepError(
                f"{source}: no column(s) {', '.join(missing)}; its columns are {', '.join(dataset.column_names)}"
            )
        others = [c for c in dataset.column_names if c not in columns]
        if others:
            dataset = dataset.remove_columns(others)
        if isinstance(dataset.features[args.audio_column], datasets.Audio):
            dataset = dataset.cast_column(args.audio_column, datasets.Audio(decode=False))
        logger.info(f"{source}: {len(dataset)} rows" + (f" -> {dset}" if dset else f" (sets: {args.split_column})"))
        for index, row in enumerate(dataset):
            where = f"{source}:{index}"
            if args.id_column:
                uid = "" if row[args.id_column] is None else str(row[args.id_column]).strip()
            else:
                uid = f"{safe_id(split)}_{index:07d}"
            row_set = dset
            if row_set is None:
                try:
                    row_set = set_of(row[args.split_column], self.mapping)
                except ValueError as e:
                    self.report.skip(where, uid, "unknown split", f"{args.split_column}: {e}")
                    continue
            if row_set not in self.sets:
                continue
            found = self.audio(row[args.audio_column], split, index, where, uid)
            if found is None:
                continue
            audio, written = found
            captions = row_captions(row, args.caption_columns)
            if not self.writer.add(row_set, uid, audio, where, captions) and written:
                audio.unlink(missing_ok=True)
                self.written -= 1

    def run(self) -> Dict[str, int]:
        args = self.args
        datasets = import_datasets()
        splits = load(args.dataset, args.cache_dir)
        if args.split_column:
            plan = {split: None for split in splits}
            named = sorted(set(self.mapping.values()), key=SETS.index) if self.mapping else list(SETS)
        else:
            absent = [name for name in self.mapping if name not in {s.lower() for s in splits}]
            if absent:
                raise PrepError(
                    f"--split names {', '.join(absent)}, which --dataset {args.dataset} does not have; its splits "
                    f"are {', '.join(splits)}"
                )
            plan = {}
            for split in splits:
                try:
                    plan[split] = set_of(split, self.mapping)
                except ValueError:
                    if not self.mapping:
                        raise PrepError(
                            f"--dataset {args.dataset}: split {split!r} is none of {', '.join(sorted(SPLIT_NAMES))}; "
                            f"say which set each split is, e.g. --split {split}=train (the splits: "
                            f"{', '.join(splits)})"
                        ) from None
                    logger.info(f"{args.dataset}/{split}: not read (not in --split)")
            named = sorted(set(plan.values()), key=SETS.index)
        self.sets = args.sets or named
        for split, dset in plan.items():
            if dset is None or dset in self.sets:
                self.add_split(split, splits[split], dset, datasets)
        if self.written:
            logger.info(f"{self.written} clips decoded from the dataset's stored audio into {self.audio_out}")
        return self.writer.write(self.sets)


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    report = Report("hf_dataset")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    return Preparation(args, report, writer).run()


def get_parser() -> argparse.ArgumentParser:
    parser = prep_parser(__doc__)
    parser.add_argument(
        "--dataset", type=Path, required=True, help="A save_to_disk directory, or a directory of data files"
    )
    parser.add_argument("--audio_column", default="audio", help="The Audio feature, or a column of file paths")
    parser.add_argument(
        "--caption_columns", nargs="+", required=True, help="Columns of captions (strings or lists of strings)"
    )
    parser.add_argument("--id_column", help="The utterance ids (default: <split>_<row>)")
    parser.add_argument(
        "--split",
        nargs="+",
        metavar="NAME=SET",
        help="Which set (train, valid, test) each split is, or each value of --split_column (default: by name)",
    )
    parser.add_argument("--split_column", help="A column whose value says each row's set")
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=list(SETS),
        help="Sets to write (default: those of the splits, or that --split names; train valid test)",
    )
    parser.add_argument(
        "--audio_root", type=Path, help="Relative audio paths start here (default: the dataset directory)"
    )
    parser.add_argument(
        "--audio_out",
        type=Path,
        help="Where the audio stored in the dataset is decoded to, as <split>/<row>.<format> "
        "(default: <data_dir>/local/audio)",
    )
    parser.add_argument("--audio_format", choices=list(SOUNDFILE_FORMATS), default="flac", help="Of the decoded files")
    parser.add_argument("--cache_dir", type=Path, help="datasets' cache for load_dataset (default: datasets' own)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
