"""egs/privatecaps: a miniature corpus of "full-length" tracks (CSV with bad rows, audio in four formats), its
local/data.sh and stage 2, and training on it through stage 5 with automatic sharding."""

import json

import pytest
from conftest import TINY_CONF
from test_corpus_common import (
    kaldi,
    problems,
    recipe_copy,
    run_corpus_recipe,
    skipped,
    write_audio,
    write_garbage,
)

from espnet2_slap.corpora import privatecaps

CSV = (
    "audio_path,caption,captions,split\n"
    "tracks/a b/song1.wav,A calm piano piece,,train\n"  # 2
    'tracks/song2.flac,"Upbeat ""rock"" track\nwith drums",!!loud guitars|fast drums,train\n'  # 3-4
    "tracks/song3.mp3,café jazz; $(rm -rf /) `echo hi`,,valid\n"  # 5
    "tracks/song4.ogg,ambient ||| drone,,test\n"  # 6
    "tracks/song5.wav,only two fields\n"  # 7 malformed
    "tracks/a b/song1.wav,the same track again,,train\n"  # 8 duplicate id
    "tracks/missing.wav,no such file,,train\n"  # 9
    "tracks/broken.wav,not audio,,train\n"  # 10
    "tracks/song6.wav,a holdout track,,holdout\n"  # 11 unknown split
    "tracks/song6.wav,  ,,test\n"  # 12 no caption
    "tracks/short.wav,too short for the crop,,train\n"  # 13
    "tracks/song6.wav,,cap a ||| cap b,eval\n"  # 14
    "tracks/song7.wav,strings,,train\n"  # 15
    "tracks/song8.wav,organ,,train\n"  # 16
    "tracks/song9.wav,flute,,train\n"  # 17
)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "privatecaps"
    write_audio(root / "tracks/a b/song1.wav", 2.5, 22050, channels=2)
    write_audio(root / "tracks/song2.flac", 3.0, 16000, seed=1)
    write_audio(root / "tracks/song3.mp3", 2.0, 44100, seed=2)
    write_audio(root / "tracks/song4.ogg", 2.0, 32000, seed=3)
    for i, name in enumerate(["song6", "song7", "song8", "song9"]):
        write_audio(root / f"tracks/{name}.wav", 2.0, 16000, seed=4 + i)
    write_audio(root / "tracks/short.wav", 0.5)
    write_garbage(root / "tracks/broken.wav")
    (root / "metadata.csv").write_text(CSV, encoding="utf-8")
    return root


def check_data_dirs(data, root):
    """The data dirs of the miniature, line by line."""
    tracks = root / "tracks"
    assert kaldi(data / "train/wav.scp") == {
        "tracks_a_b_song1": str(tracks / "a b/song1.wav"),
        "tracks_song2": str(tracks / "song2.flac"),
        "tracks_song7": str(tracks / "song7.wav"),
        "tracks_song8": str(tracks / "song8.wav"),
        "tracks_song9": str(tracks / "song9.wav"),
    }
    assert kaldi(data / "train/text") == {
        "tracks_a_b_song1": "A calm piano piece",
        "tracks_song2": 'Upbeat "rock" track with drums ||| loud guitars ||| fast drums',
        "tracks_song7": "strings",
        "tracks_song8": "organ",
        "tracks_song9": "flute",
    }
    assert kaldi(data / "valid/text") == {"tracks_song3": "café jazz; $(rm -rf /) `echo hi`"}
    assert kaldi(data / "test/text") == {"tracks_song4": "ambient | drone", "tracks_song6": "cap a ||| cap b"}
    assert sorted(p.name for p in (data / "test").iterdir()) == ["text", "wav.scp"]
    assert skipped(data, "privatecaps") == {
        "metadata.csv:7": "malformed row",
        "metadata.csv:8": "duplicate id",
        "metadata.csv:9": "missing audio file",
        "metadata.csv:10": "unreadable audio file",
        "metadata.csv:11": "unknown split",
        "metadata.csv:12": "no caption",
        "metadata.csv:13": "audio too short",
    }


def test_recipe_prepares_and_formats_the_corpus(corpus, tmp_path):
    recipe = recipe_copy(tmp_path, "privatecaps")
    log = run_corpus_recipe(
        recipe, {"PRIVATECAPS": str(corpus)}, "--stop_stage", "2", "--local_data_opts", "--min_seconds 1.5"
    )
    check_data_dirs(recipe / "data", corpus)
    assert (
        "skipped: 1 audio too short, 1 duplicate id, 1 malformed row, 1 missing audio file, 1 no caption, "
        "1 unknown split, 1 unreadable audio file"
    ) in log
    assert "repaired: 1 caption: caption delimiter" in log
    dump = recipe / "dump/raw"
    assert kaldi(dump / "train/utt2num_samples") == {
        "tracks_a_b_song1": "40000",
        "tracks_song2": "48000",
        "tracks_song7": "32000",
        "tracks_song8": "32000",
        "tracks_song9": "32000",
    }  # whole tracks at 16 kHz, no crop before training
    assert kaldi(dump / "test/text") == kaldi(recipe / "data/test/text")
    assert kaldi(dump / "valid/utt2num_samples") == {"tracks_song3": "32000"}


def test_jsonl_metadata(corpus, tmp_path):
    rows = [
        {"id": "one", "audio_path": "tracks/song7.wav", "captions": ["a", "b\nc"], "split": "train"},
        {"id": "two", "audio_path": str(corpus / "tracks/song8.wav"), "caption": "d", "split": "valid"},
    ]
    meta = tmp_path / "m.jsonl"
    meta.write_text("\n".join(json.dumps(r) for r in rows) + "\n[1, 2]\n", encoding="utf-8")
    counts = privatecaps.main(
        [
            "--metadata",
            str(meta),
            "--audio_root",
            str(corpus),
            "--data_dir",
            str(tmp_path / "data"),
            "--sets",
            "train",
            "valid",
        ]
    )
    assert counts == {"train": 1, "valid": 1}
    assert kaldi(tmp_path / "data/train/text") == {"one": "a ||| b c"}
    assert skipped(tmp_path / "data", "privatecaps") == {"m.jsonl:3": "malformed row"}


@pytest.mark.slow
def test_training_on_random_crops_with_automatic_sharding(corpus, tmp_path):
    recipe = recipe_copy(tmp_path, "privatecaps")
    log = run_corpus_recipe(
        recipe,
        {"PRIVATECAPS": str(corpus)},
        "--stop_stage",
        "5",
        "--local_data_opts",
        "--min_seconds 1.5",
        "--train_config",
        str(TINY_CONF / "train_slap_tiny.yaml"),
        "--token_type",
        "bpe",
        "--nbpe",
        "30",
        "--split_size",
        "3",
        "--train_args",
        "--max_epoch 1",
    )
    assert "--num_splits auto: 5 training utterances, 3 a split: 2 split(s)" in log
    assert (recipe / "exp/stats_16000/splits2/wav.scp/split.1").is_file()
    assert (recipe / "exp/slap_train_slap_tiny/1epoch.pth").is_file()


def test_reference_csv_layout_with_multi_captions(tmp_path):
    """The SLAP reference's CSV (src/data/audio_csv.py): npy_path, caption, set (train/val/test); ``!!a|b`` holds
    the captions a and b; x.npy stands for the audio next to it; paths start in the directory above the CSV's."""
    root = tmp_path / "collection"
    write_audio(root / "audio/t1.wav", 2.0)
    write_audio(root / "audio/t2.mp3", 2.0, seed=1)
    write_audio(root / "audio/t3.wav", 2.0, seed=2)
    meta = root / "csv" / "tracks.csv"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        "npy_path,caption,set\n"
        "audio/t1.npy,!!calm solo piano|slow and quiet|a lullaby,train\n"
        "audio/t2.npy,fast punk guitars,val\n"
        'audio/t3.npy,"!!dark synth drone, slowly evolving|ambient",test\n'
        "audio/t4.npy,no audio for this one,train\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    assert privatecaps.main(["--metadata", str(meta), "--data_dir", str(data)]) == {"train": 1, "valid": 1, "test": 1}
    assert kaldi(data / "train/text") == {"audio_t1": "calm solo piano ||| slow and quiet ||| a lullaby"}
    assert kaldi(data / "valid/wav.scp") == {"audio_t2": str(root / "audio/t2.mp3")}
    assert kaldi(data / "test/text") == {"audio_t3": "dark synth drone, slowly evolving ||| ambient"}
    assert skipped(data, "privatecaps") == {"tracks.csv:5": "missing audio file"}
    notes = [p["category"] for p in problems(data, "privatecaps") if p["action"] == "kept"]
    assert "caption with shell metacharacters" not in notes


def test_missing_metadata_says_what_to_give(tmp_path, caplog):
    with pytest.raises(SystemExit) as stop:
        privatecaps.main(["--metadata", str(tmp_path / "nowhere.csv"), "--data_dir", str(tmp_path / "data")])
    assert stop.value.code == 1
    assert "nowhere.csv: no such file; give the corpus's metadata file" in caplog.text
