#!/usr/bin/env python3
"""Lhotse manifests (the icefall / k2 toolchains) to our Kaldi data dirs and back, so that a corpus prepared in
either world trains in the other. Needs lhotse (``pip install espnet2_slap[lhotse]``).

    python -m espnet2_slap.corpora.lhotse_manifests from_lhotse --set train \\
        --recordings recordings_train.jsonl.gz --supervisions supervisions_train.jsonl.gz [--data_dir data]
    python -m espnet2_slap.corpora.lhotse_manifests from_lhotse --set train --cuts cuts_train.jsonl.gz
    python -m espnet2_slap.corpora.lhotse_manifests to_lhotse --data_dir data --sets train valid \\
        --out_dir data/lhotse [--prefix slap]

from_lhotse reads a RecordingSet and a SupervisionSet, or a CutSet (JSONL manifests, ``.jsonl`` or ``.jsonl.gz``)
and writes data/<set>/{wav.scp,text[,segments,utt2spk,utt2<name>...]}:
  - the supervisions of one recording with the same span (start, duration, to the millisecond) are one utterance,
    their texts its captions (joined by `` ||| ``); a cut is one utterance, the texts of its supervisions its
    captions;
  - when every utterance of the set spans its whole recording, the data dir has no ``segments`` and the ids are
    the recordings' (cuts: the cuts'); otherwise every utterance is a clip of ``segments`` [start, end) s, cut in
    stage 2, with the id of its first supervision (cuts: of the cut), and a recording may hold several clips;
  - a supervision's ``speaker`` becomes ``utt2spk``, a ``custom`` entry named ``utt2<name>`` the label file of
    that name (what to_lhotse writes there);
  - multi-channel recordings are kept: stage 2 mixes all their channels to mono, also for a supervision or cut
    of some of them (noted as ``kept``: a channel cannot be picked in wav.scp).
Refused, each reported with its manifest line and id and skipped (listed in data/local/lhotse_<set>.problems):
  audio at a URL (also a 'file' source written as one; wav.scp holds local files: download it), from a command
  (stage 2 reads files, not pipes), held in memory or in Lhotse Shar (there is no file to reference), in several
  files (one per channel: wav.scp holds one file per recording), or with transforms other than resampling (speed,
  volume, ... are not in wav.scp: stage 2 would train on the unchanged audio); mixed and padding cuts (audio made on
  the fly) and cuts with no recording; supervisions of an unknown recording or outside their recording; recordings
  with no supervision; entries that are not JSON or not lhotse's; and, as every preparation does, bad ids, no
  caption, missing or unreadable audio (--check_audio), clips shorter than --min_seconds. A manifest that is
  missing, not JSONL or not gzip is an error.

to_lhotse reads data/<set>/{wav.scp,text[,segments,utt2*]} and writes <out_dir>/<prefix>_recordings_<set>.jsonl.gz
and <prefix>_supervisions_<set>.jsonl.gz (lhotse's naming; ``lhotse.CutSet.from_manifests`` makes the cuts):
  - one recording per wav.scp entry, its sampling rate, samples and channels read from the audio header;
  - one supervision per caption (the first has the utterance's id, the k-th ``<id>#k``), spanning the segment
    (without ``segments``: the whole recording), with ``utt2spk`` as its speaker and the other ``utt2<name>``
    label files in its ``custom`` (utt2dur and utt2num_samples, which lhotse computes, are not carried);
  - ``*.classes`` lists and other files are not carried (a warning names them).
Refused (reported with their line and id, listed in <out_dir>/local/lhotse_export_<set>.problems): commands in
wav.scp (``... |``), missing or unreadable audio, segments outside their recording, utterances without a text
line or recording, malformed lines. ours -> lhotse -> ours gives the same data dir (DataDirWriter's, whose
segments' recordings are the utterances themselves).
"""

import argparse
import gzip
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from espnet2_slap.audio.io import BadUtterance, open_audio
from espnet2_slap.corpora.captions import CAPTION_DELIMITER
from espnet2_slap.corpora.common import (
    KEPT,
    DataDirWriter,
    PrepError,
    Report,
    id_problem,
    json_object,
    parse_bool,
    read_lines,
    run_main,
)

logger = logging.getLogger(__name__)

INSTALL = "pip install espnet2_slap[lhotse]"
SPAN_DECIMALS = 3  # supervisions whose start and duration agree to the millisecond are one utterance
WHOLE_TOLERANCE = 1e-3  # s: a span this close to the recording's ends is the whole recording
KEPT_TRANSFORMS = {"Resample"}  # stage 2 resamples anyway
NOT_CARRIED = {"wav.scp", "text", "segments", "utt2dur", "utt2num_samples"}  # files to_lhotse does not copy


def require_lhotse():
    """The lhotse module; a PrepError saying how to install it when it is not there."""
    try:
        import lhotse
    except ImportError as e:
        raise PrepError(f"lhotse manifests need the lhotse package ({e}): {INSTALL}") from None
    return lhotse


# --------------------------------------------------------------------------------------------- from_lhotse


def manifest_rows(path: Path, report: Report) -> Iterator[Tuple[str, dict]]:
    """(``file:line``, object) of each line of a JSONL manifest (gzip'ed when it ends in .gz); a line that is not a
    JSON object is reported and skipped; a missing, non-JSONL or broken gzip file is a PrepError."""
    if not path.is_file():
        raise PrepError(f"{path}: no such manifest")
    if not re.search(r"\.jsonl(\.gz)?$", path.name):
        raise PrepError(f"{path}: not a JSONL manifest (.jsonl or .jsonl.gz); convert it with `lhotse copy IN OUT`")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                values = json_object(line, where, report, "malformed entry")
                if values is not None:
                    yield where, values
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise PrepError(f"{path}: cannot be read as {'gzip ' if opener is gzip.open else ''}JSONL text ({e})") from None


def entry_id(values: dict) -> str:
    return str(values.get("id", "")) if isinstance(values.get("id", ""), (str, int)) else ""


def check_numbers(entry, *names: str) -> None:
    """lhotse does not check the types of times: a string start would be concatenated, not added."""
    for name in names:
        value = getattr(entry, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"{name} {value!r} is not a number")


def parse_entries(path: Path, report: Report, parse, kind: str, *numbers: str) -> Iterator[Tuple[str, object]]:
    """(where, lhotse object) of the entries of a manifest; an entry lhotse cannot read, or whose ``numbers``
    fields are not numbers, is reported and skipped."""
    for where, values in manifest_rows(path, report):
        try:
            entry = parse(dict(values))
            check_numbers(entry, *numbers)
        except Exception as e:  # lhotse raises KeyError, TypeError, ValueError, AssertionError, ... on bad entries
            report.skip(where, entry_id(values), "malformed entry", f"not a lhotse {kind}: {type(e).__name__}: {e}")
            continue
        yield where, entry


def transform_name(transform) -> str:
    return str(transform.get("name", "?")) if isinstance(transform, dict) else type(transform).__name__


def recording_problem(recording, audio_root: Path) -> Tuple[Optional[Path], Optional[Tuple[str, str]]]:
    """(the audio file of a recording, None) or (None, (category, detail)) when wav.scp cannot reference it."""
    sources = recording.sources
    if not sources:
        return None, ("no audio source", "the recording lists no audio source")
    if len(sources) > 1:
        return None, (
            "several audio sources",
            f"{len(sources)} sources (one file per channel?): wav.scp holds one file per recording; merge them into "
            "one multi-channel file",
        )
    source = sources[0]
    if source.type == "url" or (source.type == "file" and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", str(source.source))):
        return None, ("audio at a URL", f"{source.source}: wav.scp holds local files; download it, then give its path")
    if source.type == "command":
        return None, ("audio from a command", f"{source.source!r}: stage 2 reads files, not pipes; write the file")
    if source.type in ("memory", "shar"):
        return None, (
            f"audio in {source.type}",
            "the manifest holds no file to reference; write the audio to files and give their paths",
        )
    if source.type != "file":
        return None, (f"audio source of type {source.type}", "wav.scp holds local files")
    changed = [transform_name(t) for t in recording.transforms or [] if transform_name(t) not in KEPT_TRANSFORMS]
    if changed:
        return None, (
            "audio transforms",
            f"{', '.join(changed)}: wav.scp cannot express them (stage 2 would use the unchanged audio); apply them "
            "and write the audio to files",
        )
    path = Path(str(source.source))
    return (path if path.is_absolute() else audio_root / path), None


@dataclass
class Clip:
    """One utterance to write: a span of a recording with its captions."""

    where: str
    whole_id: str  # the id when the set has no segments
    clip_id: str  # the id when it has
    audio: Path
    start: float
    end: float
    whole: bool
    captions: List[str] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)


def caption_of(supervision) -> str:
    return "" if supervision.text is None else str(supervision.text)


def supervision_labels(supervision, where: str, report: Report) -> Dict[str, str]:
    """utt2spk from the speaker, utt2<name> from the custom entries of that name."""
    labels = {}
    if supervision.speaker:
        labels["utt2spk"] = str(supervision.speaker)
    for name, value in (supervision.custom or {}).items():
        if not name.startswith("utt2") or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            continue
        value = "" if value is None else str(value)
        if "\n" in value or "\r" in value:
            report.add(KEPT, where, str(supervision.id), f"label {name} with a line break", "line breaks made spaces")
            value = " ".join(value.split())
        labels[name] = value
    return labels


def channel_note(recording, channel, where: str, uid: str, report: Report) -> None:
    """Note a supervision or cut of some of the channels of a multi-channel recording (stage 2 mixes all)."""
    channels = sorted(channel) if isinstance(channel, (list, tuple)) else [channel]
    if len(recording.channel_ids) > 1 and channels != sorted(recording.channel_ids):
        report.add(
            KEPT,
            where,
            uid,
            "channel subset: all channels mixed",
            f"channel(s) {channels} of {sorted(recording.channel_ids)}; stage 2 mixes all channels to mono",
        )


def span_of(start: float, duration: float, recording) -> Tuple[float, float, bool]:
    end = start + duration
    whole = abs(start) <= WHOLE_TOLERANCE and abs(end - recording.duration) <= WHOLE_TOLERANCE
    return start, end, whole


def outside(start: float, end: float, recording) -> Optional[str]:
    if start < 0 or end <= start or end > recording.duration + WHOLE_TOLERANCE:
        return f"[{start:g}, {end:g}) s of recording {recording.id}, which lasts {recording.duration:g} s"
    return None


def clips_of_recordings(recordings: Path, supervisions: Path, audio_root: Path, report: Report) -> List[Clip]:
    lhotse = require_lhotse()
    by_id: Dict[str, Tuple[str, object]] = {}
    for where, recording in parse_entries(recordings, report, lhotse.Recording.from_dict, "Recording", "duration"):
        rec_id = str(recording.id)
        if rec_id in by_id:
            report.skip(where, rec_id, "duplicate id", f"recording already at {by_id[rec_id][0]}")
            continue
        by_id[rec_id] = (where, recording)
    groups: Dict[str, "OrderedDict[Tuple[float, float], List[Tuple[str, object]]]"] = {}
    seen: Dict[str, str] = {}
    parse = lhotse.SupervisionSegment.from_dict
    for where, sup in parse_entries(supervisions, report, parse, "SupervisionSegment", "start", "duration"):
        sup_id, rec_id = str(sup.id), str(sup.recording_id)
        if sup_id in seen:
            report.skip(where, sup_id, "duplicate id", f"supervision already at {seen[sup_id]}")
            continue
        seen[sup_id] = where
        if rec_id not in by_id:
            report.skip(where, sup_id, "unknown recording", f"recording {rec_id} is not in {recordings}")
            continue
        recording = by_id[rec_id][1]
        problem = outside(sup.start, sup.start + sup.duration, recording)
        if problem:
            report.skip(where, sup_id, "clip outside its recording", problem)
            continue
        key = (round(sup.start, SPAN_DECIMALS), round(sup.duration, SPAN_DECIMALS))
        groups.setdefault(rec_id, OrderedDict()).setdefault(key, []).append((where, sup))
    clips = []
    for rec_id, (where, recording) in by_id.items():
        spans = groups.get(rec_id)
        if not spans:
            report.skip(where, rec_id, "no supervision", f"no supervision in {supervisions} names this recording")
            continue
        audio, problem = recording_problem(recording, audio_root)
        if problem:
            count = sum(len(sups) for sups in spans.values())
            report.skip(where, rec_id, problem[0], f"{problem[1]} ({count} supervision(s) left out)")
            continue
        for sups in spans.values():
            sup_where, first = sups[0]
            for w, sup in sups:
                channel_note(recording, sup.channel, w, str(sup.id), report)
            start, end, whole = span_of(first.start, first.duration, recording)
            clip = Clip(sup_where, rec_id, str(first.id), audio, start, end, whole and len(spans) == 1)
            clip.captions = [caption_of(sup) for _, sup in sups]
            clip.labels = supervision_labels(first, sup_where, report)
            clips.append(clip)
    return clips


def clips_of_cuts(cuts: Path, audio_root: Path, report: Report) -> List[Clip]:
    require_lhotse()
    from lhotse.cut.set import deserialize_cut

    clips = []
    for where, cut in parse_entries(cuts, report, deserialize_cut, "Cut", "duration"):
        kind, cut_id = type(cut).__name__, str(cut.id)
        if kind not in ("MonoCut", "MultiCut"):
            report.skip(where, cut_id, f"{kind}", "audio mixed or padded on the fly, no file to reference")
            continue
        try:
            check_numbers(cut, "start")
        except ValueError as e:
            report.skip(where, cut_id, "malformed entry", f"not a lhotse Cut: {e}")
            continue
        recording = cut.recording
        if recording is None:
            report.skip(where, cut_id, "cut with no recording", "features only: there is no audio to reference")
            continue
        audio, problem = recording_problem(recording, audio_root)
        if problem:
            report.skip(where, cut_id, problem[0], f"recording {recording.id}: {problem[1]}")
            continue
        start, end, whole = span_of(cut.start, cut.duration, recording)
        problem = outside(start, end, recording)
        if problem:
            report.skip(where, cut_id, "clip outside its recording", problem)
            continue
        channel_note(recording, cut.channel, where, cut_id, report)
        clip = Clip(where, cut_id, cut_id, audio, start, end, whole)
        clip.captions = [caption_of(sup) for sup in cut.supervisions]
        if cut.supervisions:
            clip.labels = supervision_labels(cut.supervisions[0], where, report)
        clips.append(clip)
    return clips


def from_lhotse(args: argparse.Namespace) -> Dict[str, int]:
    problem = id_problem(args.set)
    if problem or args.set in (".", "..", "local"):
        raise PrepError(f"--set {args.set!r}: not a data dir name ({problem or 'reserved'})")
    if (args.cuts is None) == (args.recordings is None and args.supervisions is None):
        raise PrepError("give either --cuts, or --recordings and --supervisions")
    if args.cuts is None and (args.recordings is None or args.supervisions is None):
        raise PrepError("--recordings and --supervisions go together")
    require_lhotse()
    report = Report(f"lhotse_{args.set}")
    writer = DataDirWriter(args.data_dir, report, args.check_audio, args.min_seconds)
    if args.cuts is not None:
        clips = clips_of_cuts(args.cuts, args.audio_root, report)
    else:
        clips = clips_of_recordings(args.recordings, args.supervisions, args.audio_root, report)
    as_clips = any(not clip.whole for clip in clips)
    if as_clips:
        logger.info(f"set {args.set}: some supervisions or cuts are parts of recordings: writing segments")
    for clip in clips:
        uid = clip.clip_id if as_clips else clip.whole_id
        segment = (clip.start, clip.end) if as_clips else None
        writer.add(args.set, uid, clip.audio, clip.where, clip.captions, clip.labels, segment)
    return writer.write([args.set])


# ----------------------------------------------------------------------------------------------- to_lhotse


def kaldi_lines(path: Path, report: Report) -> Iterator[Tuple[str, str, str]]:
    """(where, id, rest of the line) of a Kaldi list file; a line with no id is reported and skipped."""
    for where, line in read_lines(path, report):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        yield where, parts[0], (parts[1] if len(parts) > 1 else "")


@dataclass
class AudioInfo:
    rate: int
    frames: int
    channels: int


def audio_info(path: str) -> AudioInfo:
    with open_audio(path) as f:
        if f.frames <= 0:
            raise BadUtterance("empty audio file", f"{path} has no samples")
        return AudioInfo(f.samplerate, f.frames, f.channels)


def export_set(data_dir: Path, dset: str, out_dir: Path, prefix: str) -> Tuple[Path, Path, int]:
    """Write the recordings and supervisions manifests of data/<dset> -> their paths and the supervisions."""
    lhotse = require_lhotse()
    src = data_dir / dset
    for name in ("wav.scp", "text"):
        if not (src / name).is_file():
            raise PrepError(f"{src / name}: no such file; is {src} a data dir?")
    report = Report(f"lhotse_export_{dset}")
    wav: Dict[str, Tuple[str, str]] = {}
    for where, rec_id, path in kaldi_lines(src / "wav.scp", report):
        if rec_id in wav:
            report.skip(where, rec_id, "duplicate id", f"already at {wav[rec_id][0]}")
        elif not path or path.rstrip().endswith("|"):
            report.skip(where, rec_id, "audio from a command", f"{path!r}: lhotse manifests get files only")
        else:
            wav[rec_id] = (where, path)
    texts: Dict[str, Tuple[str, List[str]]] = {}
    for where, uid, line in kaldi_lines(src / "text", report):
        captions = [c.strip() for c in line.split(CAPTION_DELIMITER) if c.strip()]
        if uid in texts:
            report.skip(where, uid, "duplicate id", f"already at {texts[uid][0]}")
        elif not captions:
            report.skip(where, uid, "no caption", "the text line has no caption")
        else:
            texts[uid] = (where, captions)
    # utterance -> (where, recording, start, end or None: to the recording's end)
    spans: Dict[str, Tuple[str, str, float, Optional[float]]] = {}
    segments = (src / "segments").is_file()
    if segments:
        for where, uid, rest in kaldi_lines(src / "segments", report):
            fields = rest.split()
            try:
                if len(fields) != 3:
                    raise ValueError
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                report.skip(where, uid, "malformed line", "expected '<seg-id> <rec-id> <start-s> <end-s>'")
                continue
            if uid in spans:
                report.skip(where, uid, "duplicate id", f"already at {spans[uid][0]}")
            elif not 0 <= start < (end if end != -1 else float("inf")):
                report.skip(where, uid, "bad segment times", f"start {fields[1]} s, end {fields[2]} s")
            else:
                spans[uid] = (where, fields[0], start, None if end == -1 else end)
    else:
        spans = {rec_id: (where, rec_id, 0.0, None) for rec_id, (where, _) in wav.items()}
    labels: Dict[str, Dict[str, str]] = {}
    not_carried = []
    for path in sorted(src.iterdir()):
        if path.name in NOT_CARRIED or not path.is_file():
            continue
        if not path.name.startswith("utt2"):
            not_carried.append(path.name)
            continue
        for _, uid, value in kaldi_lines(path, report):
            labels.setdefault(uid, {})[path.name] = value
    if not_carried:
        logger.warning(f"{src}: {', '.join(not_carried)} not carried into the lhotse manifests")
    for uid, (where, _) in texts.items():
        if uid not in spans:
            report.skip(where, uid, "unknown recording", f"not in {src / ('segments' if segments else 'wav.scp')}")
    infos: Dict[str, Optional[AudioInfo]] = {}
    recordings, supervisions, ids = [], [], set(texts)
    for uid in sorted(spans):
        where, rec_id, start, end = spans[uid]
        if uid not in texts:
            report.skip(where, uid, "no caption", f"no line in {src / 'text'}")
            continue
        if rec_id not in wav:
            report.skip(where, uid, "unknown recording", f"recording {rec_id} is not in {src / 'wav.scp'}")
            continue
        if rec_id not in infos:
            rec_where, path = wav[rec_id]
            try:
                info = audio_info(path)
            except BadUtterance as bad:
                report.skip(rec_where, rec_id, bad.category, bad.detail)
                info = None
            infos[rec_id] = info
            if info is not None:
                channels = list(range(info.channels))
                source = lhotse.AudioSource(type="file", channels=channels, source=path)
                recordings.append(
                    lhotse.Recording(
                        id=rec_id,
                        sources=[source],
                        sampling_rate=info.rate,
                        num_samples=info.frames,
                        duration=info.frames / info.rate,
                        channel_ids=channels,
                    )
                )
        info = infos[rec_id]
        if info is None:
            if rec_id != uid:
                report.skip(where, uid, "bad recording", f"recording {rec_id} was left out (see its line)")
            continue
        duration = info.frames / info.rate
        end = duration if end is None else end
        if end > duration + WHOLE_TOLERANCE:
            report.skip(where, uid, "clip outside its recording", f"[{start:g}, {end:g}) s of {duration:g} s")
            continue
        extra = dict(labels.get(uid, {}))
        speaker = extra.pop("utt2spk", None)
        for k, caption in enumerate(texts[uid][1]):
            sup_id = uid if k == 0 else f"{uid}#{k + 1}"
            if k and sup_id in ids:
                raise PrepError(f"{src}: supervision id {sup_id} of a caption of {uid} is also an utterance id")
            supervisions.append(
                lhotse.SupervisionSegment(
                    id=sup_id,
                    recording_id=rec_id,
                    start=start,
                    duration=end - start,
                    channel=0 if info.channels == 1 else list(range(info.channels)),
                    text=caption,
                    speaker=speaker,
                    custom=extra or None,
                )
            )
    if not supervisions:
        report.finish(out_dir)
        raise PrepError(f"{src}: no utterance could be exported; see {out_dir / 'local'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rec_path = out_dir / f"{prefix}_recordings_{dset}.jsonl.gz"
    sup_path = out_dir / f"{prefix}_supervisions_{dset}.jsonl.gz"
    used = {s.recording_id for s in supervisions}  # a recording whose clips were all left out is left out too
    recordings = [r for r in recordings if r.id in used]
    lhotse.RecordingSet.from_recordings(recordings).to_file(rec_path)
    lhotse.SupervisionSet.from_segments(supervisions).to_file(sup_path)
    report.finish(out_dir)
    logger.info(f"{src}: {len(recordings)} recordings, {len(supervisions)} supervisions -> {rec_path}, {sup_path}")
    return rec_path, sup_path, len(supervisions)


def to_lhotse(args: argparse.Namespace) -> Dict[str, int]:
    require_lhotse()
    return {dset: export_set(args.data_dir, dset, args.out_dir, args.prefix)[2] for dset in args.sets}


# ------------------------------------------------------------------------------------------------------ CLI


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("from_lhotse", help="lhotse manifests -> data/<set>")
    imp.add_argument("--set", required=True, help="The data dir to write: <data_dir>/<set>")
    imp.add_argument("--recordings", type=Path, help="RecordingSet manifest (.jsonl or .jsonl.gz)")
    imp.add_argument("--supervisions", type=Path, help="SupervisionSet manifest (.jsonl or .jsonl.gz)")
    imp.add_argument("--cuts", type=Path, help="CutSet manifest, instead of --recordings and --supervisions")
    imp.add_argument("--data_dir", type=Path, default=Path("data"), help="Where the data dir <set>/ goes")
    imp.add_argument(
        "--audio_root",
        type=Path,
        default=Path("."),
        help="Relative audio paths of the manifests start here (default: the current directory, as in lhotse)",
    )
    imp.add_argument("--check_audio", type=parse_bool, default=True, help="Open every audio file's header")
    imp.add_argument("--min_seconds", type=float, default=0.0, help="Skip clips shorter than this")
    imp.set_defaults(run=from_lhotse)
    exp = commands.add_parser("to_lhotse", help="data/<set> -> lhotse manifests")
    exp.add_argument("--data_dir", type=Path, default=Path("data"), help="Where the data dirs <set>/ are")
    exp.add_argument("--sets", nargs="+", required=True, help="Data dirs to export")
    exp.add_argument("--out_dir", type=Path, required=True, help="Where the manifests go")
    exp.add_argument("--prefix", default="slap", help="<prefix>_recordings_<set>.jsonl.gz, ...")
    exp.set_defaults(run=to_lhotse)
    return parser


def prepare(args: argparse.Namespace) -> Dict[str, int]:
    return args.run(args)


def main(cmd: Optional[Sequence[str]] = None) -> Dict[str, int]:
    return run_main(prepare, get_parser(), cmd)


if __name__ == "__main__":
    main()
