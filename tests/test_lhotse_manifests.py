"""Lhotse manifests <-> Kaldi data dirs (corpora/lhotse_manifests.py), on manifests and 1-s sine clips made here."""

import gzip
import importlib.util
import json
import re
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile as sf

from espnet2_slap.corpora import lhotse_manifests as lm
from espnet2_slap.corpora.common import DataDirWriter, PrepError, Report

needs_lhotse = pytest.mark.skipif(importlib.util.find_spec("lhotse") is None, reason="lhotse is not installed")


def sine(path: Path, seconds: float = 1.0, fs: int = 16000, channels: int = 1, hz: float = 440.0) -> Path:
    t = np.arange(round(seconds * fs)) / fs
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, fs)
    return path


def write_jsonl(path: Path, entries: List[object]) -> Path:
    lines = "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return path


def rec(rid: str, source: str, seconds: float = 1.0, fs: int = 16000, channels: int = 1, kind: str = "file", **kw):
    return {
        "id": rid,
        "sources": [{"type": kind, "channels": list(range(channels)), "source": source}],
        "sampling_rate": fs,
        "num_samples": round(seconds * fs),
        "duration": seconds,
        "channel_ids": list(range(channels)),
        **kw,
    }


def sup(sid: str, rid: str, text: str, start: float = 0.0, duration: float = 1.0, **kw):
    return {"id": sid, "recording_id": rid, "start": start, "duration": duration, "channel": 0, "text": text, **kw}


def kaldi(path: Path) -> Dict[str, str]:
    return dict((line.split(" ", 1) + [""])[:2] for line in path.read_text(encoding="utf-8").splitlines())


def problems(data_dir: Path, name: str) -> List[Dict[str, str]]:
    lines = (data_dir / "local" / f"{name}.problems").read_text(encoding="utf-8").splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def skipped(data_dir: Path, name: str) -> Dict[str, str]:
    """{file name:line (id)}: category of the skipped entries."""
    return {
        f"{Path(p['where']).name} ({p['id']})": p["category"]
        for p in problems(data_dir, name)
        if p["action"] == "skipped"
    }


def from_lhotse(*args: str) -> Dict[str, int]:
    return lm.prepare(lm.get_parser().parse_args(["from_lhotse", *args]))


@needs_lhotse
def test_recordings_and_supervisions_become_a_data_dir_and_what_cannot_is_listed(tmp_path):
    a = sine(tmp_path / "audio/a.wav")
    b = sine(tmp_path / "audio/b.flac", channels=2, hz=660)
    recordings = write_jsonl(
        tmp_path / "recordings.jsonl.gz",
        [
            rec("a", "audio/a.wav"),  # 1: relative to --audio_root
            rec("b", str(b), channels=2),  # 2: stereo, supervision of channel 0
            rec("url", "https://example.org/x.wav", kind="url"),  # 3
            rec("mem", "UklGRg==", kind="memory"),  # 4
            rec("cmd", "sox x.wav -t wav - |", kind="command"),  # 5
            {**rec("two", str(a)), "sources": [rec("", str(a))["sources"][0]] * 2},  # 6
            rec("fast", str(a), transforms=[{"name": "Speed", "kwargs": {"factor": 1.1}}]),  # 7
            rec(
                "slow",
                str(a),
                transforms=[
                    {"name": "Resample", "kwargs": {"source_sampling_rate": 16000, "target_sampling_rate": 8000}}
                ],
            ),  # 8
            rec("lonely", str(a)),  # 9: no supervision
            "{not json",  # 10
            {"id": "half"},  # 11: not a recording
            rec("a", str(b)),  # 12: repeated id
        ],
    )
    supervisions = write_jsonl(
        tmp_path / "supervisions.jsonl",
        [
            sup("a-1", "a", "A calm piano piece", speaker="alice"),  # 1
            sup("a-2", "a", "soft keys ||| quiet"),  # 2: the delimiter inside a caption is repaired
            sup("b-1", "b", "bright strings"),  # 3
            *[sup(f"{r}-1", r, "x") for r in ("url", "mem", "cmd", "two", "fast")],  # 4-8
            sup("slow-1", "slow", "resampled is fine"),  # 9
            sup("ghost-1", "ghost", "no such recording"),  # 10
            sup("a-3", "a", "too long", duration=5.0),  # 11
        ],
    )
    data = tmp_path / "data"
    counts = from_lhotse(
        "--set",
        "train",
        "--recordings",
        str(recordings),
        "--supervisions",
        str(supervisions),
        "--data_dir",
        str(data),
        "--audio_root",
        str(tmp_path),
    )
    assert counts == {"train": 3}
    assert kaldi(data / "train/wav.scp") == {"a": str(a), "b": str(b), "slow": str(a)}
    assert kaldi(data / "train/text") == {
        "a": "A calm piano piece ||| soft keys | quiet",
        "b": "bright strings",
        "slow": "resampled is fine",
    }
    assert kaldi(data / "train/utt2spk") == {"a": "alice"}
    assert sorted(p.name for p in (data / "train").iterdir()) == ["text", "utt2spk", "wav.scp"]
    assert skipped(data, "lhotse_train") == {
        "recordings.jsonl.gz:3 (url)": "audio at a URL",
        "recordings.jsonl.gz:4 (mem)": "audio in memory",
        "recordings.jsonl.gz:5 (cmd)": "audio from a command",
        "recordings.jsonl.gz:6 (two)": "several audio sources",
        "recordings.jsonl.gz:7 (fast)": "audio transforms",
        "recordings.jsonl.gz:9 (lonely)": "no supervision",
        "recordings.jsonl.gz:10 ()": "malformed entry",
        "recordings.jsonl.gz:11 (half)": "malformed entry",
        "recordings.jsonl.gz:12 (a)": "duplicate id",
        "supervisions.jsonl:10 (ghost-1)": "unknown recording",
        "supervisions.jsonl:11 (a-3)": "clip outside its recording",
    }
    kept = {p["category"] for p in problems(data, "lhotse_train") if p["action"] == "kept"}
    assert "channel subset: all channels mixed" in kept


@needs_lhotse
def test_supervisions_inside_recordings_become_segments(tmp_path):
    long = sine(tmp_path / "long.wav", seconds=3.0)
    short = sine(tmp_path / "short.wav", hz=330)
    recordings = write_jsonl(tmp_path / "r.jsonl", [rec("long", str(long), seconds=3.0), rec("short", str(short))])
    supervisions = write_jsonl(
        tmp_path / "s.jsonl",
        [
            sup("s1", "long", "intro", 0.0, 1.0),
            sup("s2", "long", "drums", 1.5, 1.0),
            sup("s1b", "long", "the intro again", 0.0, 1.0),
            sup("w", "short", "all of it"),
        ],
    )
    data = tmp_path / "data"
    assert from_lhotse(
        "--set", "dev", "--recordings", str(recordings), "--supervisions", str(supervisions), "--data_dir", str(data)
    ) == {"dev": 3}
    assert kaldi(data / "dev/wav.scp") == {"s1": str(long), "s2": str(long), "w": str(short)}
    assert kaldi(data / "dev/segments") == {"s1": "s1 0 1", "s2": "s2 1.5 2.5", "w": "w 0 1"}
    assert kaldi(data / "dev/text") == {"s1": "intro ||| the intro again", "s2": "drums", "w": "all of it"}


@needs_lhotse
def test_cuts_become_utterances_and_mixed_cuts_are_refused(tmp_path):
    import lhotse

    paths = [sine(tmp_path / f"{i}.wav", hz=300 + 100 * i) for i in range(3)]
    recordings = lhotse.RecordingSet.from_recordings(lhotse.Recording.from_file(p, recording_id=p.stem) for p in paths)
    supervisions = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(f"{r.id}-s", r.id, 0.0, r.duration, text=f"tone {r.id}") for r in recordings
    )
    cuts = list(lhotse.CutSet.from_manifests(recordings, supervisions))
    entries = [cuts[0].to_dict(), cuts[1].truncate(offset=0.25, duration=0.5).to_dict(), cuts[2].pad(2.0).to_dict()]
    entries[1]["id"] = "part"
    manifest = write_jsonl(tmp_path / "cuts.jsonl.gz", entries)
    data = tmp_path / "data"
    assert from_lhotse("--set", "test", "--cuts", str(manifest), "--data_dir", str(data)) == {"test": 2}
    assert kaldi(data / "test/segments") == {cuts[0].id: f"{cuts[0].id} 0 1", "part": "part 0.25 0.75"}
    assert kaldi(data / "test/text") == {
        cuts[0].id: f"tone {cuts[0].recording_id}",
        "part": f"tone {cuts[1].recording_id}",
    }
    assert list(skipped(data, "lhotse_test").values()) == ["MixedCut"]


def ours(tmp_path: Path) -> Path:
    """Data dirs as the preparations write them: whole tracks with labels, and clips (segments)."""
    data = tmp_path / "ours"
    mono, stereo = sine(tmp_path / "t/a b.wav"), sine(tmp_path / "t/b.flac", seconds=2.0, fs=22050, channels=2)
    writer = DataDirWriter(data, Report("mini"))
    writer.add("train", "a", mono, "m:1", ["calm piano", "soft keys"], {"utt2genre": "classical", "utt2spk": "p1"})
    writer.add("train", "b", stereo, "m:2", ["strings"], {"utt2genre": "pop", "utt2spk": "p2"})
    writer.write(["train"])
    writer = DataDirWriter(data, Report("mini"))
    writer.add("test", "b_0", stereo, "m:3", ["first half"], segment=(0.0, 1.0))
    writer.add("test", "b_1", stereo, "m:4", ["second half", "ending"], segment=(1.0, 1.75))
    writer.write(["test"])
    return data


@needs_lhotse
def test_ours_to_lhotse_to_ours_gives_the_same_data_dirs(tmp_path):
    import lhotse

    data = ours(tmp_path)
    out = tmp_path / "manifests"
    args = lm.get_parser().parse_args(
        ["to_lhotse", "--data_dir", str(data), "--sets", "train", "test", "--out_dir", str(out)]
    )
    assert lm.prepare(args) == {"train": 3, "test": 3}
    recordings = lhotse.RecordingSet.from_file(out / "slap_recordings_train.jsonl.gz")
    assert {r.id: (r.sampling_rate, r.num_samples, r.num_channels) for r in recordings} == {
        "a": (16000, 16000, 1),
        "b": (22050, 44100, 2),
    }
    supervisions = lhotse.SupervisionSet.from_file(out / "slap_supervisions_train.jsonl.gz")
    assert [(s.id, s.text, s.speaker, s.custom) for s in supervisions] == [
        ("a", "calm piano", "p1", {"utt2genre": "classical"}),
        ("a#2", "soft keys", "p1", {"utt2genre": "classical"}),
        ("b", "strings", "p2", {"utt2genre": "pop"}),
    ]
    cuts = lhotse.CutSet.from_manifests(recordings, supervisions)  # trains in the lhotse world
    assert sorted(len(c.supervisions) for c in cuts) == [1, 2]
    assert cuts[0].load_audio().shape[-1] in (16000, 44100)
    again = tmp_path / "again"
    for dset in ("train", "test"):
        from_lhotse(
            "--set",
            dset,
            "--data_dir",
            str(again),
            "--recordings",
            str(out / f"slap_recordings_{dset}.jsonl.gz"),
            "--supervisions",
            str(out / f"slap_supervisions_{dset}.jsonl.gz"),
        )
        names = sorted(p.name for p in (data / dset).iterdir())
        assert names == sorted(p.name for p in (again / dset).iterdir())
        for name in names:
            assert (again / dset / name).read_text() == (data / dset / name).read_text(), f"{dset}/{name}"
    assert "segments" in names


@needs_lhotse
def test_to_lhotse_lists_what_it_cannot_export(tmp_path):
    good = sine(tmp_path / "good.wav")
    src = tmp_path / "data/train"
    src.mkdir(parents=True)
    (src / "wav.scp").write_text(
        f"g {good}\npipe sox x.wav -t wav - |\nmissing {tmp_path / 'nope.wav'}\nlong {good}\n", encoding="utf-8"
    )
    (src / "segments").write_text("g g 0 1\npipe pipe 0 1\nmissing missing 0 1\nlong long 0 9\n", encoding="utf-8")
    (src / "text").write_text("g a tone\npipe x\nmissing y\nlong z\nlost w\n", encoding="utf-8")
    (src / "genre.classes").write_text("pop\n", encoding="utf-8")
    out = tmp_path / "out"
    args = lm.get_parser().parse_args(
        ["to_lhotse", "--data_dir", str(tmp_path / "data"), "--sets", "train", "--out_dir", str(out), "--prefix", "x"]
    )
    assert lm.prepare(args) == {"train": 1}
    assert skipped(out, "lhotse_export_train") == {
        "wav.scp:2 (pipe)": "audio from a command",
        "wav.scp:3 (missing)": "missing audio file",
        "segments:2 (pipe)": "unknown recording",
        "segments:4 (long)": "clip outside its recording",
        "text:5 (lost)": "unknown recording",
    }
    lines = gzip.open(out / "x_recordings_train.jsonl.gz", "rt").read().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["g"]


@needs_lhotse
def test_bad_manifests_are_errors(tmp_path):
    data = str(tmp_path / "data")
    (tmp_path / "r.json").write_text("[]", encoding="utf-8")
    (tmp_path / "r.jsonl.gz").write_bytes(b"not gzip")
    for args, message in [
        (["--cuts", str(tmp_path / "nope.jsonl")], "no such manifest"),
        (["--cuts", str(tmp_path / "r.json")], "not a JSONL manifest"),
        (["--cuts", str(tmp_path / "r.jsonl.gz")], "cannot be read as gzip JSONL"),
        (["--recordings", str(tmp_path / "r.jsonl.gz")], "go together"),
        ([], "either --cuts"),
    ]:
        with pytest.raises(PrepError, match=message):
            from_lhotse("--set", "train", "--data_dir", data, *args)
    with pytest.raises(PrepError, match="not a data dir name"):
        from_lhotse("--set", "a/b", "--cuts", str(tmp_path / "nope.jsonl"))


def test_without_lhotse_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "lhotse", None)
    with pytest.raises(PrepError, match=re.escape("pip install espnet2_slap[lhotse]")):
        from_lhotse("--set", "train", "--cuts", str(tmp_path / "c.jsonl"))
    with pytest.raises(SystemExit):
        lm.main(["to_lhotse", "--data_dir", str(tmp_path), "--sets", "train", "--out_dir", str(tmp_path / "o")])
