"""espnet2_slap.corpora.hf_dataset: Hugging Face datasets built here (a few 1-s tones; nothing fetched) to Kaldi
data dirs: the Audio feature's stored bytes decoded once to files, its files and path columns referenced where
they are, captions from strings and lists, splits by name, by --split and by a column, and every hostile row
(no caption, bytes or files that do not decode, missing files, unknown splits, repeated ids) named by split and
row in the problems file. The datasets package is imported only when a dataset is read."""

import io
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, copy_recipes, run_recipe
from test_corpus_common import kaldi, problems, skipped, write_audio, write_garbage

from espnet2_slap.corpora import hf_dataset

FS = 16000


def tone(seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(round(seconds * FS)) / FS
    return (0.3 * np.sin(2 * np.pi * (220 + 55 * seed) * t)).astype(np.float32)


def wav_bytes(wave: np.ndarray) -> bytes:
    """What datasets' Audio feature stores for a decoded array: the bytes of a WAV file."""
    buffer = io.BytesIO()
    sf.write(buffer, wave, FS, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def with_audio(ds, column: str = "audio"):
    """A column of {"bytes", "path"} (or paths) cast to the Audio feature, as datasets keeps it: the cast writes
    the storage as it is, without the encoder that datasets 4 and later have only with torchcodec."""
    datasets = pytest.importorskip("datasets")
    return ds.cast_column(column, datasets.Audio())


@pytest.fixture
def saved_dict(tmp_path):
    """A DatasetDict (train, validation, test) saved with save_to_disk: audio stored as bytes of decoded arrays, a
    string caption and a list of captions per row."""
    datasets = pytest.importorskip("datasets")
    garbage = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()

    def split(rows):
        audio, caption, aspects = map(list, zip(*rows))
        table = {"audio": [{"bytes": b, "path": None} for b in audio], "caption": caption, "aspects": aspects}
        features = datasets.Features(
            {
                "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                "caption": datasets.Value("string"),
                "aspects": datasets.Sequence(datasets.Value("string")),
            }
        )
        return with_audio(datasets.Dataset.from_dict(table, features=features))

    data = datasets.DatasetDict(
        {
            "train": split(
                [
                    (wav_bytes(tone(0)), "A calm piano piece", ["piano", "slow"]),
                    (wav_bytes(tone(1)), "", []),  # no caption
                    (garbage, "bytes that are no audio", ["noise"]),
                    (wav_bytes(tone(2)), "Loud rock\nwith drums", ["rock ||| drums"]),
                ]
            ),
            "validation": split([(wav_bytes(tone(3)), "Smooth jazz", None)]),
            "test": split([(wav_bytes(tone(4)), "  ", ["ambient drone", ""])]),
        }
    )
    path = tmp_path / "caps_dict"
    data.save_to_disk(str(path))
    return path


def run(tmp_path, dataset, *options):
    data = tmp_path / "data"
    counts = hf_dataset.main(["--dataset", str(dataset), "--data_dir", str(data), *options])
    return counts, data


def test_stored_audio_is_decoded_once_and_captions_joined(saved_dict, tmp_path):
    out = tmp_path / "dump/hf_audio"
    counts, data = run(tmp_path, saved_dict, "--caption_columns", "caption", "aspects", "--audio_out", str(out))
    assert counts == {"train": 2, "valid": 1, "test": 1}
    assert kaldi(data / "train/wav.scp") == {
        "train_0000000": str(out / "train/0000000.flac"),
        "train_0000003": str(out / "train/0000003.flac"),
    }
    assert kaldi(data / "valid/wav.scp") == {"validation_0000000": str(out / "validation/0000000.flac")}
    assert kaldi(data / "train/text") == {
        "train_0000000": "A calm piano piece ||| piano ||| slow",
        "train_0000003": "Loud rock with drums ||| rock | drums",
    }
    assert kaldi(data / "valid/text") == {"validation_0000000": "Smooth jazz"}
    assert kaldi(data / "test/text") == {"test_0000000": "ambient drone"}
    info = sf.info(str(out / "train/0000000.flac"))
    assert (info.frames, info.samplerate, info.subtype) == (FS, FS, "PCM_16")
    decoded, _ = sf.read(str(out / "train/0000003.flac"), dtype="float32")
    assert np.abs(decoded - tone(2)).max() < 1e-3
    # rows skipped are not decoded (or their file is removed again)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0000000.flac", "0000003.flac"]
    assert skipped(data, "hf_dataset") == {
        "train:1": "no caption",
        "train:2": "unreadable audio bytes",
        "test:0": "empty caption",
    }
    rows = {(p["where"], p["category"]): p for p in problems(data, "hf_dataset")}
    assert rows[(f"{saved_dict}/train:1", "no caption")]["id"] == "train_0000001"
    undecodable = rows[(f"{saved_dict}/train:2", "unreadable audio bytes")]["detail"]
    assert undecodable.startswith("3000 bytes stored in the dataset that do not decode")
    assert rows[(f"{saved_dict}/test:0", "empty caption")]["detail"] == "2 of 3 left out"
    assert (f"{saved_dict}/train:3", "caption: line breaks or tabs collapsed to spaces") in rows


def test_split_mapping_and_errors(saved_dict, tmp_path, caplog):
    counts, data = run(
        tmp_path, saved_dict, "--caption_columns", "caption", "--split", "validation=test", "--audio_format", "wav"
    )
    assert counts == {"test": 1}
    assert kaldi(data / "test/wav.scp") == {"validation_0000000": str(data / "local/audio/validation/0000000.wav")}
    assert sf.info(str(data / "local/audio/validation/0000000.wav")).format == "WAV"
    assert not (data / "train").exists() and not (data / "local/audio/train").exists()
    for options, message in [
        (["--caption_columns", "title"], "/train: no column(s) title; its columns are audio, caption, aspects"),
        (["--caption_columns", "caption", "--split", "holdout=test"], "--split names holdout, which --dataset"),
        (["--caption_columns", "caption", "--split", "train=later"], "--split 'train=later': split 'later' is not"),
    ]:
        caplog.clear()
        with pytest.raises(SystemExit) as stop:
            run(tmp_path, saved_dict, *options)
        assert stop.value.code == 1
        assert message in caplog.text


@pytest.fixture
def path_column(tmp_path):
    """A single Dataset saved with save_to_disk: audio file paths (relative and absolute) in a string column, ids,
    a list of captions, and the set in a column."""
    datasets = pytest.importorskip("datasets")
    root = tmp_path / "collection"
    write_audio(root / "clips/a.wav", 1.0, FS)
    write_audio(root / "clips/b.flac", 1.0, FS, seed=1)
    write_audio(tmp_path / "elsewhere/c.wav", 1.0, FS, seed=2)
    write_garbage(root / "clips/broken.wav")
    rows = [
        ("a", "clips/a.wav", ["strings", "a slow waltz"], "train"),
        ("b", "clips/b.flac", ["organ"], "validation"),
        ("c", str(tmp_path / "elsewhere/c.wav"), ["flute"], "test"),
        ("d", "clips/gone.wav", ["a missing file"], "train"),
        ("e", "clips/broken.wav", ["a broken file"], "train"),
        ("f", "clips/a.wav", ["a holdout row"], "holdout"),
        ("a", "clips/b.flac", ["the id again"], "train"),
        ("g", "clips/a.wav", [], "train"),
        ("h", "hf://datasets/someone/caps/clip.wav", ["a file of the Hub"], "train"),
    ]
    ids, files, captions, sets = map(list, zip(*rows))
    data = datasets.Dataset.from_dict({"id": ids, "file": files, "captions": captions, "split": sets})
    data.save_to_disk(str(root / "saved"))
    return root


def test_path_column_is_referenced_where_it_is(path_column, tmp_path):
    out = tmp_path / "never"
    counts, data = run(
        tmp_path,
        path_column / "saved",
        "--audio_column",
        "file",
        "--caption_columns",
        "captions",
        "--id_column",
        "id",
        "--split_column",
        "split",
        "--audio_root",
        str(path_column),
        "--audio_out",
        str(out),
    )
    assert counts == {"train": 1, "valid": 1, "test": 1}
    assert kaldi(data / "train/wav.scp") == {"a": str(path_column / "clips/a.wav")}
    assert kaldi(data / "train/text") == {"a": "strings ||| a slow waltz"}
    assert kaldi(data / "valid/wav.scp") == {"b": str(path_column / "clips/b.flac")}
    assert kaldi(data / "test/wav.scp") == {"c": str(tmp_path / "elsewhere/c.wav")}
    assert not out.exists()  # nothing decoded
    assert skipped(data, "hf_dataset") == {
        "all:3": "missing audio file",
        "all:4": "unreadable audio file",
        "all:5": "unknown split",
        "all:6": "duplicate id",
        "all:7": "no caption",
        "all:8": "missing audio file",
    }
    ids = {p["where"].rsplit(":", 1)[1]: p["id"] for p in problems(data, "hf_dataset")}
    assert ids == {"3": "d", "4": "e", "5": "f", "6": "a", "7": "g", "8": "h"}


def test_audio_feature_files_referenced_bytes_and_arrays_decoded(tmp_path):
    """A saved Audio feature: where its file is not here and readable (a relative name from another machine, a
    broken file), the stored bytes are decoded; a column of decoded arrays is written too."""
    datasets = pytest.importorskip("datasets")
    here = write_audio(tmp_path / "files/here.wav", 1.0, FS)
    broken = write_garbage(tmp_path / "files/broken.wav")
    rows = [
        {"bytes": None, "path": str(here)},  # save_to_disk (datasets 5) stores the bytes, as "here.wav"
        {"bytes": wav_bytes(tone(1)), "path": "train/clip1.wav"},
        {"bytes": wav_bytes(tone(2)), "path": str(broken)},
    ]
    data = with_audio(datasets.Dataset.from_dict({"audio": rows, "caption": ["one", "two", "three"]}))
    data.save_to_disk(str(tmp_path / "feature"))
    out = tmp_path / "out"
    counts, dirs = run(
        tmp_path, tmp_path / "feature", "--caption_columns", "caption", "--split", "all=test", "--audio_out", str(out)
    )
    assert counts == {"test": 3}
    assert kaldi(dirs / "test/wav.scp") == {
        "all_0000000": str(out / "all/0000000.flac"),
        "all_0000001": str(out / "all/0000001.flac"),
        "all_0000002": str(out / "all/0000002.flac"),
    }
    assert sf.read(str(out / "all/0000002.flac"), dtype="float32")[0] == pytest.approx(tone(2), abs=1e-3)

    arrays = [{"array": tone(5).tolist(), "sampling_rate": FS}, {"array": [], "sampling_rate": FS}]
    datasets.Dataset.from_dict({"audio": arrays, "caption": ["decoded", "empty"]}).save_to_disk(str(tmp_path / "arr"))
    counts, dirs = run(
        tmp_path, tmp_path / "arr", "--caption_columns", "caption", "--split", "all=test", "--audio_out", str(out)
    )
    assert counts == {"test": 1}
    assert sf.info(str(out / "all/0000000.flac")).subtype == "PCM_24"  # arrays are floating point
    assert skipped(dirs, "hf_dataset") == {"all:1": "empty audio file"}


def test_data_files_directory_through_load_dataset(tmp_path):
    """A directory of Parquet files as a dataset repository holds them (data/<split>-*.parquet): audio stored in
    the files (decoded), or only named by the Audio feature (referenced; missing, broken or remote: skipped)."""
    datasets = pytest.importorskip("datasets")
    parquet = pytest.importorskip("pyarrow.parquet")
    here = write_audio(tmp_path / "files/here.wav", 1.0, FS)
    broken = write_garbage(tmp_path / "files/broken.wav")
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    splits = {
        "train": [{"bytes": wav_bytes(tone(0)), "path": "train.wav"}],
        "test": [
            {"bytes": None, "path": str(here)},
            {"bytes": None, "path": str(tmp_path / "files/gone.wav")},
            {"bytes": None, "path": str(broken)},
            {"bytes": None, "path": "hf://datasets/someone/caps/clip.wav"},
        ],
    }
    for split, audio in splits.items():
        captions = [f"{split} caption {i}" for i in range(len(audio))]
        part = with_audio(datasets.Dataset.from_dict({"audio": audio, "text": captions}))
        # as to_parquet writes it (the features in the schema), without its look at the size of every file named
        table = part.data.table.cast(part.features.arrow_schema)
        parquet.write_table(table, str(repo / f"data/{split}-00000-of-00001.parquet"))
    counts, data = run(tmp_path, repo, "--caption_columns", "text", "--cache_dir", str(tmp_path / "cache"))
    assert counts == {"train": 1, "test": 1}
    assert kaldi(data / "train/wav.scp") == {"train_0000000": str(data / "local/audio/train/0000000.flac")}
    assert kaldi(data / "test/wav.scp") == {"test_0000000": str(here)}
    assert kaldi(data / "test/text") == {"test_0000000": "test caption 0"}
    assert skipped(data, "hf_dataset") == {
        "test:1": "missing audio file",
        "test:2": "unreadable audio file",
        "test:3": "missing audio file",
    }


def test_audiofolder_with_metadata(tmp_path):
    """An audiofolder as datasets documents it: audio files and metadata.csv / metadata.jsonl naming them in
    file_name (relative to the metadata file, sub-directories too), split by directory (train/, dev/ is
    validation, test/). Read without torchcodec, which datasets 4 and later need for it; a row whose file is not
    there, or that names none, is skipped and named."""
    pytest.importorskip("datasets")
    folder = tmp_path / "folder"
    for name, seed in (("train/a.wav", 0), ("train/rock/b.flac", 1), ("dev/c.wav", 2), ("test/d.wav", 3)):
        write_audio(folder / name, 1.0, FS, seed=seed)
    (folder / "train/metadata.csv").write_text(
        'file_name,caption\na.wav,a tone\nrock/b.flac,"a rock tone, loud"\nmissing.wav,gone\n,no file\n'
    )
    (folder / "dev/metadata.jsonl").write_text('{"file_name": "c.wav", "caption": "a dev tone"}\n')
    (folder / "test/metadata.jsonl").write_text('{"file_name": "d.wav", "caption": "a test tone"}\n')
    counts, data = run(tmp_path, folder, "--caption_columns", "caption", "--cache_dir", str(tmp_path / "cache"))
    assert counts == {"train": 2, "valid": 1, "test": 1}
    assert kaldi(data / "train/wav.scp") == {
        "train_0000000": str(folder / "train/a.wav"),
        "train_0000001": str(folder / "train/rock/b.flac"),
    }
    assert kaldi(data / "train/text")["train_0000001"] == "a rock tone, loud"
    assert kaldi(data / "valid/wav.scp") == {"validation_0000000": str(folder / "dev/c.wav")}
    assert skipped(data, "hf_dataset") == {"train:2": "missing audio file", "train:3": "no audio"}


def test_audiofolder_metadata_without_file_name_is_named(tmp_path, caplog):
    pytest.importorskip("datasets")
    write_audio(tmp_path / "folder/a.wav", 1.0, FS)
    (tmp_path / "folder/metadata.csv").write_text("path,caption\na.wav,a tone\n")
    with pytest.raises(SystemExit):
        run(tmp_path, tmp_path / "folder", "--caption_columns", "caption", "--cache_dir", str(tmp_path / "cache"))
    assert (
        f"{tmp_path / 'folder/metadata.csv'}: an audiofolder's metadata that names no file_name column" in caplog.text
    )


def test_without_datasets_the_message_says_what_to_install(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets fails
    assert hf_dataset.get_parser().parse_args(["--dataset", "d", "--caption_columns", "c"]).audio_column == "audio"
    with pytest.raises(SystemExit) as stop:
        hf_dataset.main(["--dataset", str(tmp_path), "--caption_columns", "c", "--data_dir", str(tmp_path / "d")])
    assert stop.value.code == 1
    assert "needs the datasets package" in caplog.text and "pip install espnet2_slap[hf]" in caplog.text


def test_help_does_not_import_datasets():
    code = (
        "import sys; sys.modules['datasets'] = None; sys.argv = ['hf_dataset', '--help']; "
        "import runpy; runpy.run_module('espnet2_slap.corpora.hf_dataset', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--caption_columns" in proc.stdout and "save_to_disk" in proc.stdout


def test_the_recipe_prepares_the_dataset_db_sh_names(saved_dict, tmp_path):
    """egs/hf_dataset/slap1's stage 1: the dataset, audio column and caption columns from db.sh's variables (here
    the environment); without HF_DATASET it says what to set; pointed at another dataset, stage 1 is redone."""
    recipe = copy_recipes(tmp_path, "hf_dataset") / "hf_dataset" / "slap1"
    short = ["--local_data_opts", "--min_seconds 0.5", "--stop_stage", "1"]  # the tones are 1 s, not 10
    unset = run_recipe(recipe, *short, env={"HF_DATASET": ""}, check=False)
    assert unset.returncode != 0 and "set HF_DATASET in db.sh or the environment" in unset.stderr + unset.stdout
    env = {"HF_DATASET": str(saved_dict), "HF_CAPTION_COLUMNS": "caption aspects"}
    run_recipe(recipe, *short, env=env)
    assert kaldi(recipe / "data/train/text") == {
        "train_0000000": "A calm piano piece ||| piano ||| slow",
        "train_0000003": "Loud rock with drums ||| rock | drums",
    }
    assert len(kaldi(recipe / "data/valid/wav.scp")) == len(kaldi(recipe / "data/test/wav.scp")) == 1
    assert len(list((recipe / "data/local/audio").rglob("*.flac"))) == 4  # the train rows decoded, valid, test
    elsewhere = tmp_path / "copy"
    elsewhere.symlink_to(saved_dict)
    proc = run_recipe(recipe, *short, env={**env, "HF_DATASET": str(elsewhere)})
    assert (
        f"stage 1: redoing it: changed since it was made: db.sh HF_DATASET {saved_dict} -> {elsewhere}" in proc.stdout
    )
