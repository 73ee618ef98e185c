"""Crop-only audio reading (the ``lazy_sound`` data type) and skipping utterances with bad audio files."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.dataset import ESPnetDataset
from test_preprocessor import bpe_preprocessor

import espnet2_slap.tasks.slap  # noqa: F401  (registers lazy_sound)
from espnet2_slap.audio.io import read_mono
from espnet2_slap.train.lazy_sound import AudioFileRef, LazySoundScpReader
from espnet2_slap.train.skip_bad_audio import SKIPPED, SkipBadAudioCollateFn, skipped_record

FS = 16000
FORMATS = {  # extension: (soundfile format, subtype, tolerance against a whole-file decode)
    "wav": ("WAV", "PCM_16", 0.0),
    "flac": ("FLAC", "PCM_16", 0.0),
    "ogg": ("OGG", "VORBIS", 1e-4),
    "mp3": ("MP3", "MPEG_LAYER_III", 1e-4),
}


def music(seconds: float, fs: int = FS, seed: int = 0) -> np.ndarray:
    """A stereo chord with a little noise, so that every offset has distinct samples."""
    t = np.arange(round(seconds * fs)) / fs
    rng = np.random.default_rng(seed)
    mono = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t) + 0.01 * rng.standard_normal(len(t))
    return np.stack([mono, 0.5 * mono], axis=1).astype(np.float32)


def write_data_dir(root: Path, clips: dict, num_samples: bool = True) -> Path:
    """wav.scp (and utt2num_samples) of {uid: path}; returns the wav.scp."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav.scp").write_text("".join(f"{uid} {path}\n" for uid, path in clips.items()))
    if num_samples:
        (root / "utt2num_samples").write_text(
            "".join(f"{uid} {sf.info(str(path)).frames}\n" for uid, path in clips.items())
        )
    return root / "wav.scp"


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> dict:
    """A 6-s stereo track in each format: {extension: path}."""
    root = tmp_path_factory.mktemp("tracks")
    paths = {}
    for ext, (fmt, subtype, _) in FORMATS.items():
        if fmt in sf.available_formats():
            paths[ext] = root / f"track.{ext}"
            sf.write(paths[ext], music(6.0), FS, format=fmt, subtype=subtype)
    return paths


@pytest.mark.parametrize("ext", list(FORMATS))
def test_crop_read_equals_whole_file_read_at_that_offset(tracks, ext):
    if ext not in tracks:
        pytest.skip(f"this libsndfile cannot write {ext}")
    whole, rate = read_mono(str(tracks[ext]))
    assert rate == FS
    for offset in (0, 12345, 40000, len(whole) - 16000):
        crop, _ = read_mono(str(tracks[ext]), offset, 16000)
        np.testing.assert_allclose(crop, whole[offset : offset + 16000], rtol=0, atol=FORMATS[ext][2])


@pytest.mark.parametrize("train", [True, False])
def test_preprocessor_takes_the_same_crop_from_a_file_ref_as_from_the_waveform(bpe, tracks, train):
    pre = bpe_preprocessor(bpe, train=train, crop_samples=24000, fs=FS)
    whole = sf.read(tracks["flac"], dtype="float32")[0]
    for seed in range(3):
        np.random.seed(seed)
        from_array = pre("u", {"speech": whole})["speech"]
        np.random.seed(seed)
        from_file = pre("u", {"speech": AudioFileRef(str(tracks["flac"]), len(whole))})["speech"]
        assert from_file.shape == (24000,)
        np.testing.assert_array_equal(from_file, from_array)


def test_reader_takes_lengths_from_utt2num_samples_or_the_header(tmp_path, tracks):
    wav_scp = write_data_dir(tmp_path / "with", {"a": tracks["flac"], "b": tracks["wav"]})
    reader = LazySoundScpReader(str(wav_scp))
    assert list(reader) == ["a", "b"] and len(reader) == 2
    assert reader["a"] == AudioFileRef(str(tracks["flac"]), 96000)
    no_lengths = LazySoundScpReader(str(write_data_dir(tmp_path / "without", {"a": tracks["flac"]}, False)))
    assert no_lengths["a"].num_samples is None


def test_reader_rejects_inconsistent_lists_naming_them(tmp_path, tracks):
    wav_scp = write_data_dir(tmp_path, {"a": tracks["flac"], "b": tracks["wav"]})
    (tmp_path / "utt2num_samples").write_text("a 96000\n")
    with pytest.raises(ValueError, match=r"wav.scp:2: utterance b is missing from .*utt2num_samples"):
        LazySoundScpReader(str(wav_scp))
    (tmp_path / "utt2num_samples").write_text("a 96000\nb 9.6e4\n")
    with pytest.raises(ValueError, match="utterance b has '9.6e4' where a number of samples"):
        LazySoundScpReader(str(wav_scp))
    wav_scp.write_text(f"a {tracks['flac']}\na {tracks['wav']}\n")
    (tmp_path / "utt2num_samples").unlink()
    with pytest.raises(ValueError, match="wav.scp:2: utterance a appears twice"):
        LazySoundScpReader(str(wav_scp))


def test_espnet_dataset_reads_lazy_sound_through_the_preprocessor(bpe, tmp_path, tracks):
    wav_scp = write_data_dir(tmp_path, {"a": tracks["mp3"] if "mp3" in tracks else tracks["flac"]})
    (tmp_path / "text").write_text("a a calm piano piece ||| slow piano\n")
    dataset = ESPnetDataset(
        [(str(wav_scp), "speech", "lazy_sound"), (str(tmp_path / "text"), "text", "text")],
        preprocess=bpe_preprocessor(bpe, train=False, crop_samples=16000, fs=FS),
    )
    uid, data = dataset["a"]
    assert uid == "a" and data["speech"].shape == (16000,) and data["speech"].dtype == np.float32
    whole, _ = read_mono(str(tracks.get("mp3", tracks["flac"])))
    np.testing.assert_allclose(data["speech"], whole[40000:56000], atol=1e-4)  # the centred crop


@pytest.fixture
def bad_files(tmp_path, tracks) -> dict:
    """{uid: AudioFileRef} of a missing file, a truncated flac, a file at 8 kHz and one that is not audio."""
    truncated = tmp_path / "truncated.flac"
    data = tracks["flac"].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    other_rate = tmp_path / "8k.wav"
    sf.write(other_rate, music(6.0, fs=8000), 8000)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    return {
        "missing": AudioFileRef(str(tmp_path / "gone.flac"), 96000),
        "truncated": AudioFileRef(str(truncated), 96000),
        "rate": AudioFileRef(str(other_rate), None),
        "garbage": AudioFileRef(str(garbage), None),
    }


@pytest.mark.parametrize("train", [True, False])
def test_a_bad_file_is_logged_with_its_id_and_path_and_skipped(bpe, bad_files, caplog, train):
    pre = bpe_preprocessor(bpe, train=train, crop_samples=16000, fs=FS)
    reasons = {"missing": "does not exist", "truncated": "", "rate": "8000 Hz", "garbage": "unreadable"}
    for uid, ref in bad_files.items():
        caplog.clear()
        np.random.seed(1)  # training: a crop beyond the first third of the truncated file
        with caplog.at_level(logging.WARNING):
            out = pre(uid, {"speech": ref, "text": "a calm piano piece"})
        assert set(out) == {SKIPPED}, uid
        assert f"skipping utterance {uid}: " in caplog.text and ref.path in caplog.text
        assert reasons[uid] in caplog.text


def test_bad_audio_error_makes_a_bad_file_fatal(bpe, bad_files):
    pre = bpe_preprocessor(bpe, train=True, crop_samples=16000, fs=FS, bad_audio="error")
    with pytest.raises(ValueError, match=r"utterance missing: missing audio file: .*gone.flac does not exist"):
        pre("missing", {"speech": bad_files["missing"], "text": "a calm piano piece"})


def test_truncation_is_found_against_utt2num_samples(bpe, tmp_path, tracks):
    """A wav cut short (and its header rewritten) is shorter than stage 2 recorded: the crop past its end is
    reported as truncated instead of being read from a different place."""
    short = tmp_path / "short.wav"
    sf.write(short, music(2.0), FS)
    pre = bpe_preprocessor(bpe, train=False, crop_samples=16000, fs=FS)
    out = pre("cut", {"speech": AudioFileRef(str(short), 96000)})
    assert SKIPPED in out


def test_collate_drops_skipped_records_and_counts_them():
    collate = SkipBadAudioCollateFn(CommonCollateFn(float_pad_value=0.0, int_pad_value=-1), name="train")
    good = {"speech": np.ones(4, np.float32), "text": np.arange(3)}
    uids, batch = collate([("a", good), ("b", skipped_record()), ("c", dict(good))])
    assert uids == ["a", "c"] and batch["speech"].shape == (2, 4)
    assert torch.equal(batch["text_lengths"], torch.tensor([3, 3]))
    assert collate.num_skipped.value == 1
    with pytest.raises(RuntimeError, match=r"every utterance of a train batch has a bad audio file: \['b', 'd'\]"):
        collate([("b", skipped_record()), ("d", skipped_record())])
    assert collate.num_skipped.value == 3


def test_a_shard_of_split_scps_takes_its_lengths_from_the_matching_shard(tmp_path, tracks):
    """--num_splits: ESPnet's split_scps writes <dir>/wav.scp/split.N and <dir>/utt2num_samples/split.N."""
    for name, value in (("wav.scp", str(tracks["flac"])), ("utt2num_samples", "96000")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "split.1").write_text(f"b {value}\n")
    assert LazySoundScpReader(str(tmp_path / "wav.scp" / "split.1"))["b"] == AudioFileRef(str(tracks["flac"]), 96000)
