"""The shared pieces of the corpus preparations (espnet2_slap/corpora/common.py), and helpers that the
tests/test_corpus_<corpus>.py files use to build miniature corpora and run their recipes."""

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import copy_recipes, run_recipe

from espnet2_slap.corpora.common import (
    DataDirWriter,
    PrepError,
    Report,
    clean_caption,
    read_csv_rows,
    read_jsonl_rows,
    split_captions,
)

FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def write_audio(path: Path, seconds: float = 2.0, fs: int = 16000, channels: int = 1, seed: int = 0) -> Path:
    """A short tone plus noise in the format of the file's extension."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * fs)) / fs
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800) * t) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    sf.write(str(path), data.astype(np.float32), fs, format=FORMATS[path.suffix][0], subtype=FORMATS[path.suffix][1])
    return path


def write_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def kaldi(path: Path) -> Dict[str, str]:
    """A Kaldi list as {id: rest of the line}; a repeated id fails."""
    pairs = [(line.split(" ", 1) + [""])[:2] for line in path.read_text(encoding="utf-8").splitlines()]
    assert len({k for k, _ in pairs}) == len(pairs), f"repeated id in {path}"
    return dict(pairs)


def problems(data_dir: Path, corpus: str) -> List[Dict[str, str]]:
    """The rows of data/local/<corpus>.problems."""
    lines = (data_dir / "local" / f"{corpus}.problems").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def skipped(data_dir: Path, corpus: str) -> Dict[str, str]:
    """{where (file name:line): category} of the skipped rows."""
    return {Path(p["where"]).name: p["category"] for p in problems(data_dir, corpus) if p["action"] == "skipped"}


def recipe_copy(tmp_path: Path, corpus: str) -> Path:
    return copy_recipes(tmp_path, corpus) / corpus / "slap1"


def run_corpus_recipe(recipe: Path, env: Dict[str, str], *args: str):
    """The recipe's run.sh at 16 kHz (the tiny model's rate) with one job, scoring what its conf/score.yaml asks
    but the UMAP picture (its first drawing in a process compiles for ~13 s; test_recipe.py checks it); its log
    is returned."""
    plan = recipe / "conf/score.yaml"
    score = yaml.safe_load(plan.read_text()) if plan.is_file() else {}
    (recipe / "conf/score_no_umap.yaml").write_text(yaml.safe_dump({**score, "umap": False}))
    proc = run_recipe(recipe, "--fs", "16000", "--nj", "1", "--score_config", "conf/score_no_umap.yaml", *args, env=env)
    return proc.stdout + proc.stderr


def test_clean_caption_repairs_and_notes():
    text, repairs, notes = clean_caption('Upbeat "rock"\r\n\ttrack ||| with  drums\x07 and cafe\u0301 $(rm -rf /)')
    assert text == 'Upbeat "rock" track | with drums and caf\u00e9 $(rm -rf /)'
    assert len(repairs) == 4  # NFC, line breaks, control character, delimiter
    assert notes == ["quotes", "non-ASCII characters", "shell metacharacters"]
    assert clean_caption(" \n ")[0] == ""
    assert split_captions("!!calm piano|slow") == ["calm piano", "slow"]
    assert split_captions("a ||| b") == ["a ", " b"] and split_captions("a | b") == ["a | b"]


def test_csv_rows_keep_their_line_numbers_and_malformed_rows_are_reported(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('id,caption\n1,plain\n\n2,"two\nlines"\n3,too,many\n4,"never closed\n5,x\n', encoding="utf-8")
    report = Report("t")
    rows = list(read_csv_rows(csv, ["id", "caption"], report))
    # the quote never closed on line 7 costs line 7 only: line 8 is a good row
    assert [(r.where, r.values["id"]) for r in rows] == [(f"{csv}:2", "1"), (f"{csv}:4-5", "2"), (f"{csv}:8", "5")]
    assert rows[1].values["caption"] == "two\nlines"
    assert [(p.where, p.category) for p in report.problems] == [
        (f"{csv}:6", "malformed row"),
        (f"{csv}:7", "malformed row"),
    ]
    with pytest.raises(PrepError, match=r"m.csv:1: missing column\(s\) split"):
        list(read_csv_rows(csv, ["id", "split"], report))
    csv.write_bytes(b"id,caption\n1,ok\n2,caf\xe9\n3,fine\n")  # one row not UTF-8 costs that row only
    report = Report("t")
    assert [r.values["id"] for r in read_csv_rows(csv, ["id"], report)] == ["1", "3"]
    assert [(p.where, p.category, p.detail) for p in report.problems] == [
        (f"{csv}:3", "undecodable row", "not valid UTF-8 at byte 21 (invalid continuation byte)")
    ]


def test_an_unclosed_quote_never_loses_the_good_rows_after_it(tmp_path):
    """A quote never closed, then rows: until the end of the file, or until a later stray quote closes it with the
    header's number of fields (which a lenient reader would take as one row). Each good row is read, each bad
    line named."""
    good = [f'{i},"caption {i}, with a comma",train' for i in range(3, 17)]
    csv = tmp_path / "m.csv"
    csv.write_text(
        "id,caption,split\n1,fine,train\n"
        + '2,"never closed,train\n'
        + "\n".join(good)
        + '\n17,stray quote" here,test\n18,"a caption\nover two lines",valid\n',
        encoding="utf-8",
    )
    report = Report("t")
    rows = list(read_csv_rows(csv, ["id", "caption", "split"], report))
    assert [r.values["id"] for r in rows] == ["1", *map(str, range(3, 18)), "18"]
    assert rows[-1].where == f"{csv}:19-20" and rows[-1].values["caption"] == "a caption\nover two lines"
    assert [p.where for p in report.problems] == [f"{csv}:3"]
    csv.write_text('id,caption\n1,"open\n2,b\n3,c\n', encoding="utf-8")  # unclosed to the end of the file
    report = Report("t")
    assert [r.values["id"] for r in read_csv_rows(csv, ["id", "caption"], report)] == ["2", "3"]
    assert [p.where for p in report.problems] == [f"{csv}:2"]


def test_jsonl_rows(tmp_path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": \n[1]\n{"b": 2}\n', encoding="utf-8")
    report = Report("t")
    assert [r.where for r in read_jsonl_rows(jsonl, ["a"], report)] == [f"{jsonl}:1"]
    assert [p.where.rsplit(":", 1)[1] for p in report.problems] == ["2", "3", "4"]


def test_writer_checks_ids_audio_and_writes_sorted_dirs(tmp_path):
    good = write_audio(tmp_path / "a.wav", seconds=1.0)
    report = Report("t")
    writer = DataDirWriter(tmp_path / "data", report, min_seconds=0.5)
    assert writer.add("test", "z", good, "m:1", ["b ||| c", "a"], labels={"utt2x": "1"})
    assert writer.add("test", "y", good, "m:2", ["d"], labels={"utt2x": ""}, segment=(0.0, 0.5)) is True
    assert not writer.add("test", "z", good, "m:3", ["e"])  # duplicate
    assert not writer.add("test", "a b", good, "m:4", ["e"])  # bad id
    assert not writer.add("test", "w", tmp_path / "gone.wav", "m:5", ["e"])
    assert not writer.add("test", "v", write_garbage(tmp_path / "g.wav"), "m:6", ["e"])
    assert not writer.add("test", "u", good, "m:7", [" ", "\n"])
    assert not writer.add("test", "t", good, "m:8", ["e"], segment=(0.5, 3.0))
    with pytest.raises(PrepError, match="some utterances are clips"):
        writer.write(["test"])
    assert [(p.where, p.action, p.category) for p in report.problems if p.action == "skipped"] == [
        ("m:3", "skipped", "duplicate id"),
        ("m:4", "skipped", "bad id"),
        ("m:5", "skipped", "missing audio file"),
        ("m:6", "skipped", "unreadable audio file"),
        ("m:7", "skipped", "no caption"),
        ("m:8", "skipped", "clip outside its recording"),
    ]
    writer.sets["test"].pop("y")
    assert writer.write(["test"]) == {"test": 1}
    data = tmp_path / "data" / "test"
    assert kaldi(data / "text") == {"z": "b | c ||| a"}
    assert kaldi(data / "wav.scp") == {"z": str(good)}
    assert (data / "utt2x").read_text() == "z 1\n"
    with pytest.raises(PrepError, match="no usable utterance for set.s. valid"):
        writer.write(["test", "valid"])
