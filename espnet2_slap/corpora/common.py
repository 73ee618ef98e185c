"""What every corpus preparation shares: reading metadata with line numbers, cleaning captions, checking audio,
and writing Kaldi data dirs, with every problem of the input reported where it is.

- ``Report`` collects problems as (where: ``file:line``, id, action, category, detail); action is ``skipped``
  (the row or utterance is left out), ``repaired`` (changed, e.g. a newline in a caption) or ``kept`` (a note:
  kept verbatim, e.g. a caption with quotes or non-ASCII letters, which are safe because nothing here goes
  through a shell). It logs the first few of each category and the counts, and writes all of them to
  ``<data_dir>/local/<corpus>.problems`` (tab-separated).
- ``read_csv_rows`` / ``read_jsonl_rows`` yield ``Row(where, values)``, ``read_lines`` the lines of a list file; a
  malformed row, or one with bytes that are not text in the file's encoding (``decode_lines``), is reported and
  skipped, and the other rows are read.
- ``clean_caption`` repairs a caption for a one-line ``text`` file (see its docstring).
- ``DataDirWriter`` gathers utterances per set, checks ids (no whitespace or '/', not repeated) and audio (there,
  readable, long enough, the segment inside the recording) and writes ``<data_dir>/<set>/`` anew: ``wav.scp``,
  ``text`` (several captions joined by `` ||| ``), ``segments`` when clips are cut from recordings,
  ``utt2<name>`` label files and ``<name>.classes`` lists, all sorted by id.
"""

import argparse
import codecs
import csv
import io
import json
import logging
import re
import shutil
import sys
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from typeguard import typechecked

from espnet2_slap.audio.io import BadUtterance, open_audio
from espnet2_slap.corpora.captions import CAPTION_DELIMITER, join_captions
from espnet2_slap.utils.cli import start_logging

logger = logging.getLogger(__name__)

SKIPPED, REPAIRED, KEPT = "skipped", "repaired", "kept"
UNDECODABLE = "undecodable row"  # the category of a row with bytes that are not text in the encoding
LOGGED_PER_CATEGORY = 10  # problems of one category logged one by one; the rest only in the problems file
SPLIT_NAMES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "dev": "valid",
    "test": "test",
    "eval": "test",
}
SHELL_METACHARACTERS = set("`$\\!;&|<>*?(){}[]#~")
# The audio files of a clip named ``<id>.<ext>`` that a preparation looks for below an audio directory (MusicCaps,
# and the YouTube fetch that must agree with it on what is already there), in order of preference.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")


class PrepError(Exception):
    """A problem that stops the preparation (a missing column, no usable utterance, ...)."""


@dataclass
class Problem:
    where: str
    uid: str
    action: str
    category: str
    detail: str


class Report:
    """Problems of one preparation: logged, counted, written to a file."""

    def __init__(self, corpus: str):
        self.corpus = corpus
        self.problems: List[Problem] = []
        self.seen = Counter()

    def add(self, action: str, where: str, uid: str, category: str, detail: str = "") -> None:
        self.problems.append(Problem(where, uid, action, category, detail))
        self.seen[category] += 1
        if self.seen[category] <= LOGGED_PER_CATEGORY:
            level = logging.WARNING if action == SKIPPED else logging.INFO
            logger.log(level, f"{where}: {uid or '(no id)'}: {action}: {category}" + (f" ({detail})" if detail else ""))

    def skip(self, where: str, uid: str, category: str, detail: str = "") -> None:
        self.add(SKIPPED, where, uid, category, detail)

    def counts(self, action: str) -> Counter:
        return Counter(p.category for p in self.problems if p.action == action)

    def finish(self, data_dir: Path) -> Path:
        """Write ``<data_dir>/local/<corpus>.problems`` and log the counts per action and category."""
        path = data_dir / "local" / f"{self.corpus}.problems"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("where\tid\taction\tcategory\tdetail\n")
            for p in self.problems:
                f.write(
                    "\t".join(
                        s.replace("\t", " ").replace("\n", " ")
                        for s in (p.where, p.uid, p.action, p.category, p.detail)
                    )
                    + "\n"
                )
        for action in (SKIPPED, REPAIRED, KEPT):
            counts = self.counts(action)
            if counts:
                summary = ", ".join(f"{n} {category}" for category, n in sorted(counts.items()))
                logger.log(logging.WARNING if action == SKIPPED else logging.INFO, f"{action}: {summary}")
        logger.info(f"all {len(self.problems)} problems are listed in {path}")
        return path


@dataclass
class Row:
    """One record of a metadata file: ``where`` is ``file:line`` (``file:first-last`` for a multi-line record)."""

    where: str
    values: Dict[str, object]


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing file is an error naming it."""
    if not Path(path).is_file():
        raise PrepError(
            f"{path}: no such file; give the corpus's metadata file (see --help), or set the corpus path in the "
            "recipe's db.sh (or the environment)"
        )
    return Path(path).read_bytes()


def read_text(path: Path, encoding: str = "utf-8-sig") -> str:
    """The whole file as text; a missing file, or an undecodable byte, is an error naming it (and its line)."""
    data = read_bytes(path)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PrepError(
            f"{path}:{line}: not {encoding} text ({e.reason} at byte {e.start}); "
            "convert the file, or give its encoding with --encoding"
        ) from None


def decode_lines(path: Path, encoding: str = "utf-8-sig") -> Tuple[List[str], Dict[int, str]]:
    """The lines of a text file, each with its line end (``\\n``, ``\\r\\n`` or ``\\r``, as the csv module wants
    them), and {line number: why} of the lines holding bytes that are not text in ``encoding``.

    Each line is decoded by itself, so that one bad byte never stops the file: a bad line is decoded with U+FFFD
    in place of its bad bytes (which keeps the quotes and delimiters of a CSV line) for the caller to report and
    skip the row it belongs to; ``why`` names the first bad byte by its offset in the file, counted from 0 ("not
    valid UTF-8 at byte 2780 (invalid start byte)"). An encoding that does not write line breaks as single bytes
    (UTF-16, UTF-32) is decoded whole, and there a bad byte stops the file (``read_text``)."""
    data = read_bytes(path)
    codec, start = codecs.lookup(encoding).name, 0
    if codec == "utf-8-sig":
        codec, start = "utf-8", len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if "\r\n".encode(codec) != b"\r\n":
        return io.StringIO(read_text(path, encoding), newline="").readlines(), {}
    label = "UTF-8" if codec == "utf-8" else encoding
    lines: List[str] = []
    bad: Dict[int, str] = {}
    offset = start
    for number, raw in enumerate(data[start:].splitlines(keepends=True), 1):
        try:
            lines.append(raw.decode(codec))
        except UnicodeDecodeError as e:
            lines.append(raw.decode(codec, "replace"))
            bad[number] = f"not valid {label} at byte {offset + e.start} ({e.reason})"
        offset += len(raw)
    if bad:
        numbers = ", ".join(map(str, list(bad)[:LOGGED_PER_CATEGORY]))
        more = ", ..." if len(bad) > LOGGED_PER_CATEGORY else ""
        logger.warning(
            f"{path}: {len(bad)} of {len(lines)} lines are not valid {label} (line {numbers}{more}); if the file is in "
            "another encoding, convert it, or give its encoding with --encoding"
        )
    return lines, bad


@typechecked
def read_lines(path: Path, report: Report, encoding: str = "utf-8-sig") -> Iterator[Tuple[str, str]]:
    """(``file:line``, the line without its end) of each line of a list file; a line that is not text in
    ``encoding`` is reported (``undecodable row``) and skipped."""
    lines, bad = decode_lines(path, encoding)
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if number in bad:
            report.skip(where, "", UNDECODABLE, bad[number])
            continue
        yield where, line.rstrip("\r\n")


Required = Sequence[Union[str, Tuple[str, ...]]]  # column names; a tuple: any one of these names


def missing_names(required: Required, present: Collection[str]) -> List[str]:
    """The required names (a tuple: one of several, written a|b) of which ``present`` has none."""
    missing = []
    for names in required:
        names = (names,) if isinstance(names, str) else names
        if not any(name in present for name in names):
            missing.append("|".join(names))
    return missing


def standalone_row(line: str, num_fields: int, delimiter: str) -> bool:
    """Whether one physical line is a whole row by itself: balanced quotes and ``num_fields`` fields."""
    if line.count('"') % 2:
        return False
    try:
        return len(next(csv.reader([line], delimiter=delimiter, strict=True))) == num_fields
    except (csv.Error, StopIteration):
        return False


@typechecked
def read_csv_rows(
    path: Path, required: Required, report: Report, delimiter: str = ",", encoding: str = "utf-8-sig"
) -> Iterator[Row]:
    """Rows of a CSV (or TSV) with a header as dicts; the ``required`` columns must be in the header (a tuple of
    names: one of them).

    A quoted field may span lines (a caption with a line break). A row that cannot be read (another number of
    fields than the header, a stray quote) is reported with its line number and skipped, and never takes other
    rows with it: when a record spanning several lines is malformed, or when one of its later lines is a whole
    row by itself (a quote never closed in its first line swallowed the rows after it), only its first line is
    skipped and reading starts again at the next line. A row with bytes that are not text in ``encoding`` is
    reported with its line and the offset of the first bad byte, and skipped (``decode_lines``)."""
    lines, bad = decode_lines(path, encoding)
    if not lines:
        raise PrepError(f"{path}: empty file, expected a header line")
    if 1 in bad:
        raise PrepError(f"{path}:1: the header is {bad[1]}; convert the file, or give its encoding with --encoding")
    header = [name.strip() for name in next(csv.reader(lines[:1], delimiter=delimiter))]
    missing = missing_names(required, header)
    if missing:
        raise PrepError(f"{path}:1: missing column(s) {', '.join(missing)}; the header has {', '.join(header)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PrepError(f"{path}:1: column(s) {', '.join(repeated)} appear more than once")
    start = 1  # 0-based index of the line the reader starts at
    while start < len(lines):
        reader = csv.reader(iter(lines[start:]), delimiter=delimiter, strict=True)
        last = start  # 1-based number of the last line read
        restart = None
        while restart is None:
            first = last + 1
            try:
                fields = next(reader)
                error = None
            except StopIteration:
                return
            except csv.Error as e:
                fields, error = None, str(e)
            last = start + reader.line_num
            where = f"{path}:{first}" if first == last else f"{path}:{first}-{last}"
            undecodable = next((bad[n] for n in range(first, last + 1) if n in bad), None)
            if error is None and (not fields or (len(fields) == 1 and not fields[0].strip())):
                continue  # a blank line
            if first < last and (
                error is not None
                or len(fields) != len(header)
                or any(standalone_row(line, len(header), delimiter) for line in lines[first:last])
            ):
                report.skip(
                    f"{path}:{first}",
                    "",
                    "malformed row",
                    f"a quote never closed? the record would run to line {last}"
                    + (f" ({error})" if error else "")
                    + f"; lines {first + 1} on are read again as rows of their own",
                )
                restart = first  # the next line, 0-based
            elif error is not None:
                report.skip(where, "", "malformed row", error)
                restart = last
            elif len(fields) != len(header):
                report.skip(where, "", "malformed row", f"{len(fields)} fields, the header has {len(header)}")
            elif undecodable is not None:
                report.skip(where, "", UNDECODABLE, undecodable)
            else:
                yield Row(where, dict(zip(header, fields)))
        start = restart


@typechecked
def json_object(line: str, where: str, report: Report, problem: str) -> Optional[dict]:
    """The JSON object of one line, or None after reporting ``problem`` at ``where`` (not JSON, not an object)."""
    try:
        values = json.loads(line)
    except json.JSONDecodeError as e:
        report.skip(where, "", problem, f"not JSON: {e.msg} at column {e.colno}")
        return None
    if not isinstance(values, dict):
        report.skip(where, "", problem, f"a JSON {type(values).__name__}, not an object")
        return None
    return values


def read_jsonl_rows(path: Path, required: Required, report: Report, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """One JSON object per line; a line that is not one, or lacks a ``required`` key (a tuple: any one of these
    names), or is not text in ``encoding``, is reported and skipped."""
    for where, line in read_lines(path, report, encoding):
        if not line.strip():
            continue
        values = json_object(line, where, report, "malformed row")
        if values is None:
            continue
        missing = missing_names(required, values)
        if missing:
            report.skip(where, "", "malformed row", f"no {', '.join(missing)}")
            continue
        yield Row(where, values)


def clean_caption(caption: str) -> Tuple[str, List[str], List[str]]:
    """A caption made fit for one line of a Kaldi ``text`` file -> (caption, repairs done, notes).

    Repairs: Unicode NFC normalisation; control characters removed; line breaks and tabs collapsed to single
    spaces (as all runs of spaces, and the ends stripped, which is not reported); the caption delimiter ``|||``
    (any run of three or more '|') inside a caption replaced by one '|', so that it stays one caption.
    Notes (kept verbatim): quotes, non-ASCII letters, shell metacharacters. An empty result is the caller's to
    skip."""
    repairs, notes = [], []
    text = unicodedata.normalize("NFC", caption)
    if text != caption:
        repairs.append("normalised to Unicode NFC")
    if re.search(r"[\r\n\t\v\f\u2028\u2029\x85]", text):
        repairs.append("line breaks or tabs collapsed to spaces")
    text = re.sub(r"[\r\n\t\v\f\u2028\u2029\x85]", " ", text)
    stripped = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") or ch == " ")
    if stripped != text:
        repairs.append("control characters removed")
    text = " ".join(stripped.split())
    if re.search(r"\|{3,}", text):
        repairs.append(f"caption delimiter {CAPTION_DELIMITER!r} inside the caption replaced by '|'")
        text = re.sub(r"\|{3,}", "|", text)
    if any(q in text for q in "\"'`\u201c\u201d\u2018\u2019"):
        notes.append("quotes")
    if not text.isascii():
        notes.append("non-ASCII characters")
    if SHELL_METACHARACTERS & set(text):
        notes.append("shell metacharacters")
    return text, repairs, notes


def split_captions(value: str) -> List[str]:
    """Several captions in one metadata field: the reference code's ``!!cap1|cap2`` form, or ``cap1 ||| cap2``;
    anything else is one caption."""
    if value.lstrip().startswith("!!"):
        return value.lstrip()[2:].split("|")
    return value.split(CAPTION_DELIMITER)


def parse_bool(value: object) -> bool:
    """True/False as metadata files write them (True, true, 1, yes / False, false, 0, no); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t", "y"):
        return True
    if text in ("false", "0", "no", "f", "n"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def split_name(value: object) -> str:
    """A split as metadata writes it -> train, valid or test (val, validation, dev, eval accepted)."""
    name = SPLIT_NAMES.get(str(value).strip().lower())
    if name is None:
        raise ValueError(f"split {value!r} is not one of {', '.join(sorted(SPLIT_NAMES))}")
    return name


def stable_bucket(key: str, buckets: int = 100) -> int:
    """A bucket in 0..buckets-1 from a string, the same on every machine and run (CRC-32), for held-out splits."""
    return zlib.crc32(key.encode("utf-8")) % buckets


def label_token(name: str) -> str:
    """A class name as one whitespace-free token of a label file: spaces become '_' ("no vocals" -> no_vocals)."""
    return "_".join(name.split())


def id_problem(uid: str) -> Optional[str]:
    """Why a string cannot be an utterance id (None when it can): empty, whitespace, '/', or not printable."""
    if not uid:
        return "empty id"
    if any(ch.isspace() for ch in uid) or "/" in uid or not uid.isprintable():
        return f"id {uid!r} has whitespace, '/' or unprintable characters"
    return None


def safe_id(text: str) -> str:
    """A string made an id: every character other than letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def audio_problem(path: Path, min_seconds: float, segment: Optional[Tuple[float, float]]) -> Optional[Tuple[str, str]]:
    """(category, detail) of why an audio file cannot be used (None when it can): missing, empty, unreadable,
    shorter than ``min_seconds``, or not covering ``segment`` [start, end) s. Reads the header only."""
    try:
        with open_audio(str(path)) as f:
            frames, rate = f.frames, f.samplerate
    except BadUtterance as bad:
        return bad.category, bad.detail
    if frames <= 0:
        return "empty audio file", f"{path} has no samples"
    seconds = frames / rate
    if segment is not None and segment[1] > seconds + 0.5:  # headers of compressed files may be a little off
        return "clip outside its recording", f"[{segment[0]}, {segment[1]}) s of {path}, which lasts {seconds:.2f} s"
    length = seconds if segment is None else segment[1] - segment[0]
    if length < min_seconds:
        return "audio too short", f"{path}: {length:.2f} s, shorter than --min_seconds {min_seconds}"
    return None


@dataclass
class Utterance:
    uid: str
    audio: Path
    where: str
    captions: List[str]
    labels: Dict[str, str] = field(default_factory=dict)
    segment: Optional[Tuple[float, float]] = None


class DataDirWriter:
    """Utterances of several sets, checked as they are added, written as Kaldi data dirs by ``write``."""

    @typechecked
    def __init__(self, data_dir: Path, report: Report, check_audio: bool = True, min_seconds: float = 0.0):
        self.data_dir, self.report = data_dir, report
        self.check_audio, self.min_seconds = check_audio, min_seconds
        self.sets: Dict[str, Dict[str, Utterance]] = {}
        self.first_seen: Dict[str, str] = {}
        self.classes: Dict[str, List[str]] = {}

    @typechecked
    def add(
        self,
        dset: str,
        uid: str,
        audio: Path,
        where: str,
        captions: Sequence[str],
        labels: Optional[Dict[str, str]] = None,
        segment: Optional[Tuple[float, float]] = None,
    ) -> bool:
        """Check and keep one utterance; False (and a reported problem) when it is skipped. ``labels``:
        {file name: value} written as ``<uid> <value>`` lines (e.g. {"utt2genre": "blues"}); ``segment``:
        [start, end) s of the audio file, which becomes a recording of ``segments``."""
        problem = id_problem(uid)
        if problem:
            self.report.skip(where, uid, "bad id", problem)
            return False
        if uid in self.first_seen:
            self.report.skip(where, uid, "duplicate id", f"already at {self.first_seen[uid]}")
            return False
        if segment is not None and not 0 <= segment[0] < segment[1]:
            self.report.skip(where, uid, "bad clip times", f"start {segment[0]} s, end {segment[1]} s")
            return False
        if str(audio).endswith("|") or "\n" in str(audio):
            self.report.skip(where, uid, "bad audio path", f"{str(audio)!r}")
            return False
        cleaned = [clean_caption(caption) for caption in captions]
        kept = [text for text, _, _ in cleaned if text]
        if not kept:
            detail = {0: "the row has no caption", 1: "its caption is empty"}.get(
                len(captions), f"all {len(captions)} of its captions are empty"
            )
            self.report.skip(where, uid, "no caption", detail)
            return False
        for text, repairs, notes in cleaned:
            for repair in repairs:
                self.report.add(REPAIRED, where, uid, f"caption: {repair}", text[:80])
            for note in notes:
                self.report.add(KEPT, where, uid, f"caption with {note}", text[:80])
        if len(kept) < len(captions):
            self.report.skip(where, uid, "empty caption", f"{len(captions) - len(kept)} of {len(captions)} left out")
        if self.check_audio:
            problem = audio_problem(audio, self.min_seconds, segment)
            if problem:
                self.report.skip(where, uid, *problem)
                return False
        self.first_seen[uid] = where
        self.sets.setdefault(dset, {})[uid] = Utterance(uid, audio.absolute(), where, kept, labels or {}, segment)
        return True

    def set_classes(self, name: str, classes: Sequence[str]) -> None:
        """A class list written to every set as ``<name>.classes`` (one a line: stage 2 copies it as it is)."""
        self.classes[name] = list(classes)

    def write(self, sets: Sequence[str], allow_empty: bool = False) -> Dict[str, int]:
        """Write ``<data_dir>/<set>`` for each of ``sets`` (an old one is replaced) and the problems file
        -> {set: utterances}. A set with no utterance is an error, after the problems file is written; with
        ``allow_empty`` only a warning (and no dir for it), unless all are empty."""
        problems = self.report.finish(self.data_dir)
        empty = [dset for dset in sets if not self.sets.get(dset)]
        if empty and (not allow_empty or len(empty) == len(sets)):
            raise PrepError(f"no usable utterance for set(s) {', '.join(empty)}; see the log and {problems}")
        for dset in empty:
            logger.warning(f"set {dset}: no usable utterance, {self.data_dir / dset} not written")
            shutil.rmtree(self.data_dir / dset, ignore_errors=True)
        sets = [dset for dset in sets if dset not in empty]
        for dset in sets:
            self._write_set(dset, sorted(self.sets[dset].values(), key=lambda u: u.uid))
        counts = {dset: len(self.sets[dset]) for dset in sets}
        logger.info(f"wrote {', '.join(f'{n} utterances to {self.data_dir / d}' for d, n in counts.items())}")
        return counts

    def _write_set(self, dset: str, utterances: List[Utterance]) -> None:
        out = self.data_dir / dset
        tmp = self.data_dir / f".{dset}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files = {"wav.scp": [], "text": []}
        for u in utterances:
            files["wav.scp"].append(f"{u.uid} {u.audio}")
            files["text"].append(f"{u.uid} {join_captions(u.captions, CAPTION_DELIMITER)}")
            if u.segment is not None:
                files.setdefault("segments", []).append(f"{u.uid} {u.uid} {u.segment[0]:g} {u.segment[1]:g}")
            for name, value in u.labels.items():
                files.setdefault(name, []).append(f"{u.uid} {value}".rstrip())
        if "segments" in files and len(files["segments"]) != len(utterances):
            raise PrepError(f"set {dset}: some utterances are clips and some whole recordings")
        for name, lines in files.items():
            (tmp / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        for name, classes in self.classes.items():
            (tmp / f"{name}.classes").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)


def prep_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the module's docstring as --help and the options every preparation has: --data_dir,
    --check_audio, --min_seconds, --encoding."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=Path("data"), help="Where the data dirs <set>/ go")
    parser.add_argument(
        "--check_audio",
        type=parse_bool,
        default=True,
        help="Open every audio file's header (missing, empty, unreadable, too short files are "
        "reported with their metadata line and skipped); stage 2 checks them anyway",
    )
    parser.add_argument(
        "--min_seconds",
        type=float,
        default=0.0,
        help="Skip clips shorter than this (use the training crop, preprocessor_conf crop_seconds)",
    )
    parser.add_argument("--encoding", default="utf-8-sig", help="Text encoding of the metadata files")
    return parser


def run_main(
    prepare: Callable[[argparse.Namespace], Dict[str, int]],
    parser: argparse.ArgumentParser,
    cmd: Optional[Sequence[str]] = None,
) -> Dict[str, int]:
    """Parse, log, run ``prepare(args)``; a PrepError exits 1 with its message."""
    start_logging(prepare.__module__, cmd)
    args = parser.parse_args(cmd)
    try:
        return prepare(args)
    except PrepError as e:
        logger.error(str(e))
        sys.exit(1)
