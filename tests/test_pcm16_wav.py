"""The fast path of 16-bit PCM wav (``audio.io.read_pcm16_wav``, taken by ``read_mono``): exactly libsndfile's
samples at every offset, the same as the flac of the same audio, libsndfile's frame counts, and libsndfile for
everything it does not handle."""

import numpy as np
import pytest
import soundfile as sf
from test_lazy_sound import music

from espnet2_slap.audio.io import (
    BadUtterance,
    audio_num_samples,
    opened_fd,
    pcm16_to_float,
    pcm16_wav_layout,
    read_mono,
    read_pcm16_wav,
)

FS = 48000
OFFSETS = [0, 1, 12345, 3 * FS - 16000]


def libsndfile_mono(path, offset, frames):
    data = sf.read(str(path), start=offset, frames=-1 if frames is None else frames, dtype="float32", always_2d=True)[0]
    return data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """The same 3 s of 16-bit samples as mono and stereo wav (plain and WAVE_FORMAT_EXTENSIBLE) and mono flac
    (written as integers: libsndfile scales floats to 16 bits differently for wav and flac)."""
    root = tmp_path_factory.mktemp("pcm16")
    stereo = np.round(music(3.0, FS) * 32767).astype(np.int16)
    paths = {
        "mono.wav": (stereo[:, 0], "WAV"),
        "stereo.wav": (stereo, "WAV"),
        "mono_ext.wav": (stereo[:, 0], "WAVEX"),
        "mono.flac": (stereo[:, 0], "FLAC"),
    }
    for name, (samples, fmt) in paths.items():
        sf.write(root / name, samples, FS, format=fmt, subtype="PCM_16")
    return {name: root / name for name in paths}


@pytest.mark.parametrize("name", ["mono.wav", "stereo.wav", "mono_ext.wav"])
def test_fast_path_returns_exactly_libsndfiles_samples(clips, name):
    for offset in OFFSETS:
        crop, rate = read_pcm16_wav(str(clips[name]), offset, 16000)
        assert rate == FS and crop.dtype == np.float32 and crop.shape == (16000,)
        np.testing.assert_array_equal(crop, libsndfile_mono(clips[name], offset, 16000))
    whole, _ = read_pcm16_wav(str(clips[name]))
    np.testing.assert_array_equal(whole, libsndfile_mono(clips[name], 0, None))
    assert audio_num_samples(str(clips[name])) == sf.info(str(clips[name])).frames == 3 * FS


def test_wav_and_flac_of_the_same_audio_give_the_same_crops(clips):
    for offset in OFFSETS:
        np.testing.assert_array_equal(
            read_mono(str(clips["mono.wav"]), offset, 16000)[0], read_mono(str(clips["mono.flac"]), offset, 16000)[0]
        )


def test_frame_counts_are_libsndfiles_for_a_file_cut_short_and_extra_chunks(clips, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(clips["stereo.wav"].read_bytes()[:-1001])  # half a frame too: cut mid-frame
    with opened_fd(str(cut)) as fd:
        assert pcm16_wav_layout(fd).frames == sf.info(str(cut)).frames
    tagged = tmp_path / "tagged.wav"
    with sf.SoundFile(tagged, "w", FS, 1, format="WAV", subtype="PCM_16") as f:
        f.title = "a title in a LIST chunk"
        f.write(music(1.0, FS)[:, 0])
    assert audio_num_samples(str(tagged)) == sf.info(str(tagged)).frames == FS
    np.testing.assert_array_equal(read_pcm16_wav(str(tagged), 100, 500)[0], libsndfile_mono(tagged, 100, 500))


@pytest.mark.parametrize("fmt, subtype", [("WAV", "FLOAT"), ("WAV", "PCM_24"), ("FLAC", "PCM_16"), ("WAV", "PCM_U8")])
def test_other_files_go_through_libsndfile(tmp_path, fmt, subtype):
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, music(1.0, FS)[:, 0], FS, format=fmt, subtype=subtype)
    assert read_pcm16_wav(str(path), 0, 100) is None
    np.testing.assert_array_equal(read_mono(str(path), 10, 100)[0], libsndfile_mono(path, 10, 100))


def test_crops_not_all_in_the_file_are_libsndfiles_errors(clips, tmp_path):
    assert read_pcm16_wav(str(clips["mono.wav"]), 3 * FS - 10, 11) is None
    with pytest.raises(BadUtterance, match=r"truncated, 11 samples from sample 143990 expected, 10 decoded"):
        read_mono(str(clips["mono.wav"]), 3 * FS - 10, 11)
    with pytest.raises(BadUtterance, match="does not exist"):
        read_mono(str(tmp_path / "missing.wav"), 0, 10)
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(clips["mono.wav"].read_bytes()[:44])
    with pytest.raises(BadUtterance, match="has no samples"):
        read_mono(str(header_only))


def test_pcm16_to_float_is_one_exact_pass():
    ints = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(pcm16_to_float(ints), (ints / 32768.0).astype(np.float32))
    wide = np.array([2**24 + 1, -(2**30) - 3, 7], dtype=np.int32)
    np.testing.assert_array_equal(pcm16_to_float(wide), (wide / 32768.0).astype(np.float32))
    assert pcm16_to_float(np.array([0.5], dtype=np.float64)).dtype == np.float32
