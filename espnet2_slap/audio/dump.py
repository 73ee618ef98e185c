"""Audio formatting of a Kaldi data dir: mono, one sampling rate, one file format (stage 2 of the recipes).

Reads ``wav.scp`` (and optionally ``segments``), mixes each recording to mono (mean of channels), resamples
it with soxr and writes one file per utterance (flac, wav) or one Kaldi ark of 16-bit PCM per job, with the
lists ``wav.scp``, ``utt2num_samples``, ``utt2dur`` and ``skipped`` (``<id> <reason>``).

Reading and resampling (soxr) are ``audio.io``'s, the ``wav.scp`` lines ``audio.scp``'s.

Segments are cut from the resampled recording, so every recording is resampled once: ``<start> <end>`` in
seconds become the output samples [round(start * fs), round(end * fs)), end -1 meaning to the end.

A rerun keeps an utterance formatted before only when its source is unchanged: ``sources`` records for each
utterance the size, time of change, segment and path of its source. The output dir is for one rate and format,
recorded in ``audio_format`` ("<fs> Hz <format> <subtype>"): formatting it at another is refused.
"""

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import kaldiio
import numpy as np
import soundfile as sf

from espnet2_slap.audio.io import PCM16_SCALE, BadUtterance, load_resampled
from espnet2_slap.audio.scp import Recording, read_wav_scp
from espnet2_slap.queue.progress import Progress

logger = logging.getLogger(__name__)


SOUNDFILE_FORMATS = {"flac": "FLAC", "wav": "WAV"}


@dataclass
class Entry:
    """An utterance to format: a whole recording, or the segment [start, end) s of it (end None: to the end)."""

    uid: str
    source: str
    rec: Optional[Recording] = None
    start: float = 0.0
    end: Optional[float] = None
    problem: Optional[BadUtterance] = None


class FormatMismatch(ValueError):
    """An output dir formatted at another rate or in another format than asked."""


@dataclass
class Summary:
    """What one run did with its utterances."""

    total: int = 0
    written: int = 0
    reused: int = 0
    changed: int = 0  # written anew because their source changed since an earlier run formatted them
    clipped: int = 0
    skipped: List[Tuple[str, BadUtterance]] = field(default_factory=list)


def parse_segment(line: str, source: str, recordings: Dict[str, Recording]) -> Entry:
    """A ``segments`` line ``<seg-id> <rec-id> <start> <end>`` -> Entry, with its problem if it has one."""
    fields = line.split()
    entry = Entry(fields[0], source)
    try:
        if len(fields) != 4:
            raise ValueError
        rec_id, entry.start, end = fields[1], float(fields[2]), float(fields[3])
    except ValueError:
        entry.problem = BadUtterance("malformed line", "expected '<seg-id> <rec-id> <start-s> <end-s>'")
        return entry
    entry.end = None if end == -1 else end
    entry.rec = recordings.get(rec_id)
    if not (0 <= entry.start < math.inf and (entry.end is None or entry.start < entry.end < math.inf)):
        entry.problem = BadUtterance("bad segment times", f"start {fields[2]} s, end {fields[3]} s")
    elif entry.rec is None:
        entry.problem = BadUtterance("unknown recording", f"recording {rec_id} is not in wav.scp")
    elif entry.rec.problem is not None:
        entry.problem = BadUtterance(
            entry.rec.problem.category, f"recording {rec_id}: {entry.rec.problem.detail} ({entry.rec.source})"
        )
    return entry


def read_entries(wav_scp: Path, segments: Optional[Path] = None) -> List[Entry]:
    """Every utterance of the data dir, sorted by id (stably: a repeated id after its first line)."""
    recordings = read_wav_scp(wav_scp)
    if segments is None:
        entries = [Entry(rec.rec_id, rec.source, rec, problem=rec.problem) for rec in recordings]
    else:
        by_id: Dict[str, Recording] = {}
        repeated = []
        for rec in recordings:
            if rec.rec_id in by_id:
                repeated.append((rec, by_id[rec.rec_id]))
            by_id.setdefault(rec.rec_id, rec)
        with open(segments, encoding="utf-8") as f:
            entries = [
                parse_segment(line, f"{segments}:{lineno}", by_id) for lineno, line in enumerate(f, 1) if line.strip()
            ]
        ambiguous = {
            rec.rec_id: f"recording {rec.rec_id} is listed twice: {first.source} and {rec.source}"
            for rec, first in repeated
        }
        for entry in entries:
            if entry.problem is None and entry.rec.rec_id in ambiguous:
                entry.problem = BadUtterance("duplicate id", ambiguous[entry.rec.rec_id])
    first_source: Dict[str, str] = {}
    for entry in entries:
        if entry.uid in first_source and entry.problem is None:
            entry.problem = BadUtterance("duplicate id", f"already at {first_source[entry.uid]}")
        first_source.setdefault(entry.uid, entry.source)
    return sorted(entries, key=lambda e: e.uid)


def job_part(entries: List[Entry], job: Optional[int], nj: Optional[int]) -> List[Entry]:
    """The ``job``-th (1-based) of ``nj`` contiguous, near-equal parts; everything when job is None."""
    if job is None:
        return entries
    return entries[(job - 1) * len(entries) // nj : job * len(entries) // nj]


def to_pcm16(wave: np.ndarray) -> Tuple[np.ndarray, int]:
    """(int16 samples, how many were clipped to the 16-bit range) of a float waveform in [-1, 1)."""
    scaled = np.rint(wave * PCM16_SCALE)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    return np.clip(scaled, -32768, 32767).astype(np.int16), clipped


def cut(wave: np.ndarray, entry: Entry, fs: int) -> np.ndarray:
    """The entry's samples of its (resampled) recording; BadUtterance when the segment is not inside it."""
    if entry.end is None and entry.start == 0:
        return wave
    start = round(entry.start * fs)
    end = len(wave) if entry.end is None else round(entry.end * fs)
    if start >= len(wave) or end > len(wave):
        raise BadUtterance(
            "segment outside its recording",
            f"{entry.start} to {'the end' if entry.end is None else entry.end} s of {entry.rec.rec_id}, "
            f"{entry.rec.path} lasts {len(wave) / fs:.3f} s",
        )
    if end == start:
        raise BadUtterance("bad segment times", f"shorter than a sample at {fs} Hz")
    return wave[start:end]


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, leaving an identical file untouched (and its mtime).
    The temporary name is the process's own: the jobs of one output dir write its shared records (audio_format)
    at the same time."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class FileWriter:
    """One ``data/<id>.<ext>`` per utterance, written to a temporary name and renamed when complete."""

    def __init__(self, data_dir: Path, audio_format: str, subtype: str, fs: int):
        self.data_dir, self.ext, self.subtype, self.fs = data_dir, audio_format, subtype, fs
        self.pcm16 = subtype == "PCM_16"
        self.locations: Dict[str, str] = {}

    def path(self, uid: str) -> Path:
        if "/" in uid:
            raise BadUtterance("id not usable as a file name", f"{uid!r} contains '/'")
        return self.data_dir / f"{uid}.{self.ext}"

    def check_id(self, uid: str) -> None:
        """BadUtterance when the id cannot name a file."""
        self.path(uid)

    def existing(self, uid: str) -> Optional[int]:
        """Sample count of the utterance's output when a previous run completed it with these settings."""
        path = self.path(uid)
        if not path.is_file():
            return None
        try:
            info = sf.info(str(path))
        except (sf.SoundFileError, RuntimeError):
            return None
        if (info.samplerate, info.channels, info.subtype) != (self.fs, 1, self.subtype):
            return None
        self.locations[uid] = str(path)
        return info.frames

    def write(self, uid: str, samples: np.ndarray) -> None:
        path = self.path(uid)
        tmp = path.with_name(f".{path.name}.tmp")
        sf.write(str(tmp), samples, self.fs, format=SOUNDFILE_FORMATS[self.ext], subtype=self.subtype)
        os.replace(tmp, path)
        self.locations[uid] = str(path)

    def close(self) -> Dict[str, str]:
        """{id: wav.scp value} of every utterance found or written."""
        return self.locations


class ArkWriter:
    """One Kaldi ark ``<prefix>.ark`` of (rate, int16) entries with its ``<prefix>.scp``. A rerun keeps the ark
    when no utterance is new; otherwise it writes the ark anew (copying the kept entries) under a temporary name,
    renamed into place when complete, the scp last."""

    pcm16 = True

    def __init__(self, prefix: Path, fs: int):
        self.ark, self.scp = prefix.with_name(f"{prefix.name}.ark"), prefix.with_name(f"{prefix.name}.scp")
        self.tmp, self.fs = self.ark.with_name(f".{self.ark.name}.tmp"), fs
        self.old: Dict[str, str] = {}
        if self.ark.is_file() and self.scp.is_file():
            with open(self.scp, encoding="utf-8") as f:
                self.old = dict(line.split(maxsplit=1) for line in f.read().splitlines() if line.strip())
        self.reused: List[str] = []
        self.locations: Dict[str, str] = {}
        self.fd = None

    def check_id(self, uid: str) -> None:
        """Any id is a key of the ark."""

    def existing(self, uid: str) -> Optional[int]:
        """Sample count of the utterance in the ark of a previous run, when it is there at this rate."""
        if uid not in self.old:
            return None
        rate, samples = kaldiio.load_mat(self.old[uid])
        if rate != self.fs or samples.ndim != 1:
            return None
        self.reused.append(uid)
        if self.fd is not None:
            self.put(uid, samples)
        return len(samples)

    def put(self, uid: str, samples: np.ndarray) -> None:
        self.locations[uid] = f"{self.ark.resolve()}:{self.fd.tell() + len(uid.encode('utf-8')) + 1}"
        kaldiio.save_ark(self.fd, {uid: (self.fs, samples)})

    def write(self, uid: str, samples: np.ndarray) -> None:
        if self.fd is None:
            self.fd = open(self.tmp, "wb")
            for kept in self.reused:
                self.put(kept, kaldiio.load_mat(self.old[kept])[1])
        self.put(uid, samples)

    def close(self) -> Dict[str, str]:
        """{id: "<ark>:<offset>"} of every utterance found or written."""
        if self.fd is None:
            return {uid: self.old[uid] for uid in self.reused}
        self.fd.close()
        os.replace(self.tmp, self.ark)
        write_if_changed(self.scp, "".join(f"{uid} {self.locations[uid]}\n" for uid in sorted(self.locations)))
        return self.locations


def check_format(out_dir: Path, fs: int, audio_format: str, subtype: str) -> None:
    """Record the rate and format of ``out_dir`` (``audio_format``); FormatMismatch when it holds another."""
    wanted = f"{fs} Hz {audio_format} {subtype}"
    record = out_dir / "audio_format"
    found = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    if found is not None and found != wanted:
        raise FormatMismatch(
            f"{out_dir} holds audio formatted as {found} ({record}), this run asks {wanted}: format into another "
            f"directory (the recipe: --dumpdir dump_{fs}), or remove {out_dir} to format it anew"
        )
    if found is None:
        write_if_changed(record, wanted + "\n")


def source_stamp(entry: Entry) -> Optional[str]:
    """What the output of an utterance depends on: its source's size and time of change, the segment, the path
    (None when the source cannot be stat'ed)."""
    try:
        stat = os.stat(entry.rec.path)
    except (OSError, AttributeError):
        return None
    end = -1 if entry.end is None else entry.end
    return f"{stat.st_size} {stat.st_mtime_ns} {entry.start:g} {end:g} {entry.rec.path}"


def read_stamps(out_dir: Path) -> Dict[str, str]:
    """{id: source stamp} of earlier runs (``sources`` and the parts' ``sources.<job>``); an id with two
    different stamps is left out (formatted anew)."""
    stamps: Dict[str, str] = {}
    conflicting = set()
    for path in sorted(out_dir.glob("sources*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            uid, _, stamp = line.partition(" ")
            if stamps.setdefault(uid, stamp) != stamp:
                conflicting.add(uid)
    return {uid: stamp for uid, stamp in stamps.items() if uid not in conflicting}


def format_audio(
    wav_scp: Path,
    out_dir: Path,
    fs: int,
    audio_format: str = "flac",
    subtype: str = "PCM_16",
    segments: Optional[Path] = None,
    job: Optional[int] = None,
    nj: Optional[int] = None,
    strict: bool = False,
) -> Summary:
    """Format the utterances of ``wav_scp`` (the ``job``-th part of ``nj``) into ``out_dir``; see the module
    docstring. Bad utterances are logged, listed in ``skipped`` and counted, or fatal with ``strict``."""
    part = job_part(read_entries(wav_scp, segments), job, nj)
    suffix = "" if job is None else f".{job}"
    data_dir = out_dir.resolve() / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    check_format(out_dir, fs, audio_format, subtype)
    old_stamps, stamps = read_stamps(out_dir), {}
    writer = (
        ArkWriter(data_dir / f"wav{suffix}", fs)
        if audio_format == "ark"
        else FileWriter(data_dir, audio_format, subtype, fs)
    )
    load = lru_cache(maxsize=1)(load_resampled)
    groups: Dict[Optional[str], List[Entry]] = {}
    for entry in part:  # the utterances of a recording one after the other, so that it is decoded once
        groups.setdefault(entry.rec.path if entry.rec else None, []).append(entry)
    summary, lengths = Summary(total=len(part)), {}
    progress = Progress("formatted", len(part), "utterances")
    for entry in (entry for group in groups.values() for entry in group):
        progress.step()
        try:
            if entry.problem is not None:
                raise entry.problem
            writer.check_id(entry.uid)
            stamps[entry.uid] = source_stamp(entry)
            unchanged = stamps[entry.uid] is not None and old_stamps.get(entry.uid) == stamps[entry.uid]
            num_samples = writer.existing(entry.uid) if unchanged else None
            if num_samples is not None:
                lengths[entry.uid] = num_samples
                summary.reused += 1
                continue
            if entry.uid in old_stamps and not unchanged:
                summary.changed += 1
                logger.info(f"utterance {entry.uid}: its source changed since it was formatted; formatting it again")
            wave = cut(load(entry.rec.path, fs), entry, fs)
        except BadUtterance as bad:
            problem = BadUtterance(bad.category, f"{bad.detail} ({entry.source})")
            if strict:
                raise ValueError(f"utterance {entry.uid}: {problem}") from None
            logger.warning(f"skipped utterance {entry.uid}: {problem}")
            summary.skipped.append((entry.uid, problem))
            continue
        samples = wave
        if writer.pcm16:
            samples, clipped = to_pcm16(wave)
            if clipped:
                summary.clipped += 1
                logger.info(f"utterance {entry.uid}: {clipped} samples clipped to the 16-bit range")
        writer.write(entry.uid, samples)
        lengths[entry.uid] = len(samples)
        summary.written += 1
    locations = writer.close()
    done = sorted(lengths)
    write_if_changed(out_dir / f"wav.scp{suffix}", "".join(f"{uid} {locations[uid]}\n" for uid in done))
    write_if_changed(out_dir / f"utt2num_samples{suffix}", "".join(f"{uid} {lengths[uid]}\n" for uid in done))
    write_if_changed(out_dir / f"utt2dur{suffix}", "".join(f"{uid} {lengths[uid] / fs:.3f}\n" for uid in done))
    write_if_changed(out_dir / f"sources{suffix}", "".join(f"{uid} {stamps[uid]}\n" for uid in done))
    skipped = sorted(summary.skipped, key=lambda item: item[0])
    write_if_changed(out_dir / f"skipped{suffix}", "".join(f"{uid} {problem}\n" for uid, problem in skipped))
    log_summary(summary, out_dir / f"skipped{suffix}")
    return summary


def log_summary(summary: Summary, skipped_file: Path) -> None:
    logger.info(
        f"formatted {summary.written} utterances, kept {summary.reused} formatted by an earlier run"
        + (f"; {summary.changed} formatted again because their source changed" if summary.changed else "")
    )
    if summary.clipped:
        logger.warning(f"{summary.clipped} utterances had samples clipped to the 16-bit range")
    if summary.skipped:
        counts = Counter(problem.category for _, problem in summary.skipped)
        logger.warning(
            f"skipped {len(summary.skipped)} of {summary.total} utterances: "
            + ", ".join(f"{n} {category}" for category, n in sorted(counts.items()))
            + f" (listed in {skipped_file})"
        )
