"""Stage 2 audio formatting (``python -m espnet2_slap.bin.format_audio``): mono, resampling, segments, file formats,
bad entries, parallel parts and reruns, on small files written here."""

import logging
import re
from pathlib import Path
from typing import Dict, List

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from conftest import run_module

from espnet2_slap.bin.format_audio import main

FS = 16000
HAS_MP3 = "MP3" in sf.available_formats()


def tone(freq: float, seconds: float, fs: int, amplitude: float, offset: float = 0.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * (np.arange(round(seconds * fs)) / fs + offset))


def noise(seconds: float, fs: int, seed: int) -> np.ndarray:
    """int16 white noise at a tenth of full scale."""
    return (np.random.default_rng(seed).standard_normal(round(seconds * fs)) * 3000).astype(np.int16)


def read_list(path: Path) -> Dict[str, str]:
    """A Kaldi list as {id: value}; a repeated id is an error."""
    lines = path.read_text().splitlines()
    pairs = [line.split(maxsplit=1) for line in lines]
    assert len({k for k, _ in pairs}) == len(pairs), f"repeated id in {path}"
    return dict(pairs)


def snapshot(out_dir: Path) -> Dict[str, tuple]:
    return {
        str(p.relative_to(out_dir)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Audio files of several formats and rates, bad files, and two data dirs: ``plain`` (wav.scp of utterances)
    and ``seg`` (wav.scp of recordings + segments). Returns a dict of their paths and the source waveforms."""
    root = tmp_path_factory.mktemp("sources")
    audio = root / "audio"
    audio.mkdir()
    left = tone(1000, 1.3, 44100, 0.6) + tone(9000, 1.3, 44100, 0.3)
    right = tone(1000, 1.3, 44100, 0.2) + tone(9000, 1.3, 44100, 0.3)
    sf.write(audio / "a.wav", np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    sf.write(audio / "b.flac", noise(2.0, FS, seed=1), FS, subtype="PCM_16")
    sf.write(audio / "c.ogg", tone(440, 1.0, 22050, 0.3), 22050, format="OGG", subtype="VORBIS")
    good = {"a_wav44": audio / "a.wav", "b_flac16": audio / "b.flac", "c_ogg22": audio / "c.ogg"}
    if HAS_MP3:
        sf.write(audio / "d.mp3", tone(440, 1.0, 48000, 0.3), 48000, format="MP3", subtype="MPEG_LAYER_III")
        good["d_mp3_48"] = audio / "d.mp3"
    (audio / "f.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    sf.write(audio / "long.flac", noise(3.0, FS, seed=2), FS, subtype="PCM_16")
    (audio / "g.flac").write_bytes((audio / "long.flac").read_bytes()[:20000])
    (audio / "h.flac").write_bytes(b"")
    bad = {
        "e_missing": (audio / "e.wav", "missing audio file"),
        "f_garbage": (audio / "f.wav", "unreadable audio file"),
        "g_truncated": (audio / "g.flac", "unreadable audio file"),
        "h_empty": (audio / "h.flac", "empty audio file"),
    }
    if HAS_MP3:  # decodes without an error, to fewer samples than its header announces
        sf.write(audio / "long.mp3", tone(440, 2.0, 48000, 0.3), 48000, format="MP3", subtype="MPEG_LAYER_III")
        (audio / "i.mp3").write_bytes((audio / "long.mp3").read_bytes()[:8000])
        bad["i_truncated_mp3"] = (audio / "i.mp3", "unreadable audio file")
    plain = root / "plain"
    plain.mkdir()
    lines = [f"{uid} {path}" for uid, path in good.items()] + [f"{uid} {path}" for uid, (path, _) in bad.items()]
    lines.append(f"b_flac16 {audio / 'a.wav'}")  # a repeated id
    (plain / "wav.scp").write_text("\n".join(lines) + "\n")

    rec1 = noise(3.0, FS, seed=3)
    sf.write(audio / "rec1.flac", rec1, FS, subtype="PCM_16")
    sf.write(audio / "rec2.wav", tone(500, 2.0, 8000, 0.5), 8000, subtype="PCM_16")
    seg = root / "seg"
    seg.mkdir()
    (seg / "wav.scp").write_text(
        f"rec1 {audio / 'rec1.flac'}\nrec2 {audio / 'rec2.wav'}\nrecbad {audio / 'nothing.flac'}\n"
    )
    (seg / "segments").write_text(
        "s1 rec1 0.5 1.25\ns2 rec1 1.25 -1\ns3 rec2 0.1 0.6\n"
        "s4 rec1 2.5 3.5\ns5 rec1 1.0 1.0\ns6 recX 0 1\ns7 recbad 0 1\n"
    )
    return dict(root=root, plain=plain, seg=seg, good=good, bad=bad, rec1=rec1)


def run(data: Path, out: Path, *extra: str, segments: bool = False) -> None:
    options = ["--segments", str(data / "segments")] if segments else []
    main(["--fs", str(FS), *options, *extra, str(data / "wav.scp"), str(out)])


@pytest.fixture(scope="module")
def plain_out(sources, tmp_path_factory):
    """The plain data dir formatted to 16-kHz flac in one run, and its log messages."""
    out = tmp_path_factory.mktemp("plain_out")
    with LogCapture() as messages:
        run(sources["plain"], out)
    return out, messages


class LogCapture(logging.Handler):
    """The messages logged while in the with-block (a module-scoped fixture cannot use caplog)."""

    def __enter__(self) -> List[str]:
        self.messages: List[str] = []
        self.setLevel(logging.INFO)
        logging.getLogger().addHandler(self)
        self.previous = logging.getLogger().level
        logging.getLogger().setLevel(logging.INFO)
        return self.messages

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        logging.getLogger().setLevel(self.previous)


def test_help(tmp_path):
    help_text = run_module("espnet2_slap.bin.format_audio", "--help", cwd=tmp_path).stdout
    for option in ("--fs", "--audio_format", "--segments", "--job", "--nj", "--strict", "utt2num_samples"):
        assert option in help_text


def test_lists_name_every_formatted_utterance(sources, plain_out):
    out, _ = plain_out
    good = sources["good"]
    wav_scp, num_samples, durations = (read_list(out / name) for name in ("wav.scp", "utt2num_samples", "utt2dur"))
    assert list(wav_scp) == sorted(good)  # sorted, bad ones left out
    for uid in good:
        path = Path(wav_scp[uid])
        assert path.is_absolute() and path == (out / "data" / f"{uid}.flac").resolve()
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (FS, 1, "PCM_16")
        assert int(num_samples[uid]) == info.frames
        assert durations[uid] == f"{info.frames / FS:.3f}"
        n_in, fs_in = sf.info(str(good[uid])).frames, sf.info(str(good[uid])).samplerate
        assert len(sf.read(str(good[uid]))[0]) == n_in
        assert info.frames == round(n_in * FS / fs_in), uid  # soxr's length rule
    assert num_samples["a_wav44"] == str(round(1.3 * 44100 * FS / 44100)) == "20800"


def test_stereo_44k_is_mixed_to_mono_and_resampled_without_aliasing(plain_out):
    out, _ = plain_out
    wave, fs = sf.read(str(out / "data" / "a_wav44.flac"))
    # mean of the channels: 0.4 at 1 kHz; the 9-kHz tone is above the new Nyquist frequency and must be gone
    reference = tone(1000, 1.3, FS, 0.4)
    inner = slice(800, -800)  # the abrupt start and end ring
    assert fs == FS and np.max(np.abs(wave[inner] - reference[inner])) < 1e-3


def test_same_rate_is_copied_sample_for_sample(sources, plain_out):
    out, _ = plain_out
    formatted, _ = sf.read(str(out / "data" / "b_flac16.flac"), dtype="int16")
    np.testing.assert_array_equal(formatted, noise(2.0, FS, seed=1))


def test_bad_entries_are_skipped_named_and_counted(sources, plain_out):
    out, messages = plain_out
    skipped = read_list(out / "skipped")
    expected = {uid: category for uid, (_, category) in sources["bad"].items()}
    expected["b_flac16"] = "duplicate id"
    assert {uid: reason.split(":")[0] for uid, reason in skipped.items()} == expected
    wav_scp = sources["plain"] / "wav.scp"
    last_line = len(sources["good"]) + len(sources["bad"]) + 1
    assert skipped["b_flac16"] == f"duplicate id: already at {wav_scp}:2 ({wav_scp}:{last_line})"
    for uid, (path, category) in sources["bad"].items():
        assert str(path) in skipped[uid]
        assert any(uid in m and str(path) in m and category in m for m in messages), uid
    num_bad, total = len(expected), len(sources["good"]) + len(expected)
    assert [m for m in messages if re.match(r"skipped \d+ of", m)] == [
        f"skipped {num_bad} of {total} utterances: 1 duplicate id, 1 empty audio file, 1 missing audio file, "
        f"{num_bad - 3} unreadable audio file (listed in {out / 'skipped'})"
    ]
    assert not list((out / "data").glob(".*"))  # no temporary file left


def test_segments_are_cut_exactly_and_bad_ones_skipped(sources, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run(sources["seg"], tmp_path, segments=True)
    rec1 = sources["rec1"]
    num_samples = read_list(tmp_path / "utt2num_samples")
    assert num_samples == {"s1": "12000", "s2": "28000", "s3": "8000"}
    assert read_list(tmp_path / "utt2dur") == {"s1": "0.750", "s2": "1.750", "s3": "0.500"}
    s1, _ = sf.read(str(tmp_path / "data" / "s1.flac"), dtype="int16")
    s2, _ = sf.read(str(tmp_path / "data" / "s2.flac"), dtype="int16")
    np.testing.assert_array_equal(s1, rec1[8000:20000])
    np.testing.assert_array_equal(s2, rec1[20000:])
    s3, fs = sf.read(str(tmp_path / "data" / "s3.flac"))  # 8 kHz recording: cut from its 16-kHz resampling
    reference = tone(500, 0.5, FS, 0.5, offset=0.1)
    assert fs == FS and np.max(np.abs(s3[400:-400] - reference[400:-400])) < 1e-3
    skipped = read_list(tmp_path / "skipped")
    segments = sources["seg"] / "segments"
    rec1_path = sources["root"] / "audio" / "rec1.flac"
    assert (
        skipped["s4"]
        == f"segment outside its recording: 2.5 to 3.5 s of rec1, {rec1_path} lasts 3.000 s ({segments}:4)"
    )
    assert skipped["s5"] == f"bad segment times: start 1.0 s, end 1.0 s ({segments}:5)"
    assert skipped["s6"] == f"unknown recording: recording recX is not in wav.scp ({segments}:6)"
    nothing = sources["root"] / "audio" / "nothing.flac"
    assert skipped["s7"] == f"missing audio file: {nothing} does not exist ({segments}:7)"
    assert list(skipped) == ["s4", "s5", "s6", "s7"]
    assert "skipped 4 of 7 utterances" in caplog.text


def test_malformed_lines_are_skipped(sources, tmp_path):
    rec1 = sources["root"] / "audio" / "rec1.flac"
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text(f"r1 {rec1}\nr1 {rec1}\nr2\nr3 sox x.wav -t wav - |\nr4 {rec1}\nx/y {rec1}\n")
    run(tmp_path, tmp_path / "plain")
    assert list(read_list(tmp_path / "plain" / "wav.scp")) == ["r1", "r4"]
    assert read_list(tmp_path / "plain" / "skipped") == {
        "r1": f"duplicate id: already at {wav_scp}:1 ({wav_scp}:2)",
        "r2": f"malformed line: no audio path ({wav_scp}:3)",
        "r3": f"unsupported entry: command pipes are not read, give a file ({wav_scp}:4)",
        "x/y": f"id not usable as a file name: 'x/y' contains '/' ({wav_scp}:6)",
    }
    segments = tmp_path / "segments"
    segments.write_text("a r1 0 1\nb r2 0 1\nc r3 0 1\nd r4 0 nan\ne r4 0\nf r4 0.5 1\nf r4 1 2\n")
    run(tmp_path, tmp_path / "seg", segments=True)
    assert read_list(tmp_path / "seg" / "utt2num_samples") == {"f": "8000"}
    assert read_list(tmp_path / "seg" / "skipped") == {
        "a": f"duplicate id: recording r1 is listed twice: {wav_scp}:1 and {wav_scp}:2 ({segments}:1)",
        "b": f"malformed line: recording r2: no audio path ({wav_scp}:3) ({segments}:2)",
        "c": f"unsupported entry: recording r3: command pipes are not read, give a file ({wav_scp}:4) ({segments}:3)",
        "d": f"bad segment times: start 0 s, end nan s ({segments}:4)",
        "e": f"malformed line: expected '<seg-id> <rec-id> <start-s> <end-s>' ({segments}:5)",
        "f": f"duplicate id: already at {segments}:6 ({segments}:7)",
    }


def test_strict_stops_at_the_first_bad_utterance(sources, tmp_path):
    with pytest.raises(ValueError, match=r"utterance b_flac16: duplicate id: already at .*wav.scp:2 \(.*wav.scp:\d+\)"):
        run(sources["plain"], tmp_path / "plain", "--strict", "true")
    with pytest.raises(ValueError, match=r"utterance s4: segment outside its recording: .*segments:4"):
        run(sources["seg"], tmp_path / "seg", "--strict", "true", segments=True)


def test_nothing_formatted_exits_non_zero(tmp_path):
    (tmp_path / "wav.scp").write_text(f"x {tmp_path / 'absent.wav'}\n")
    with pytest.raises(SystemExit, match="none of the 1 utterances"):
        run(tmp_path, tmp_path / "out")
    with pytest.raises(SystemExit) as error:  # the usage error of argparse
        run(tmp_path, tmp_path / "out", "--audio_format", "flac", "--subtype", "FLOAT")
    assert error.value.code == 2


def test_two_jobs_writing_a_shared_record_at_once_both_succeed(tmp_path, monkeypatch):
    """Stage 2's --nj jobs all record the output dir's rate and format (``audio_format``): another job's write
    that lands between this one's temporary file and its rename must not take that file away."""
    import os

    from espnet2_slap.audio import dump as audio_format

    record, real_replace, interleaved = tmp_path / "audio_format", os.replace, []

    def replace_after_another_job(src, dst):
        if not interleaved:
            interleaved.append(True)
            with monkeypatch.context() as other_job:
                other_job.setattr(os, "getpid", lambda: os.getppid() + 100000)
                audio_format.write_if_changed(record, "16000 Hz flac PCM_16\n")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_another_job)
    audio_format.write_if_changed(record, "16000 Hz flac PCM_16\n")
    assert interleaved and record.read_text() == "16000 Hz flac PCM_16\n"
    assert [p.name for p in tmp_path.iterdir()] == ["audio_format"]  # no temporary file left behind


@pytest.mark.parametrize("data", ["plain", "seg"])
def test_parts_concatenated_equal_one_run(sources, data, tmp_path):
    segments = data == "seg"
    one, parts = tmp_path / "one", tmp_path / "parts"
    run(sources[data], one, segments=segments)
    for job in (1, 2, 3):
        run(sources[data], parts, "--job", str(job), "--nj", "3", segments=segments)
    assert not (parts / "wav.scp").exists()
    for name in ("wav.scp", "utt2num_samples", "utt2dur", "skipped"):
        sizes = [len((parts / f"{name}.{job}").read_text().splitlines()) for job in (1, 2, 3)]
        joined = "".join((parts / f"{name}.{job}").read_text() for job in (1, 2, 3))
        assert joined.replace(str(parts.resolve()), "OUT") == (one / name).read_text().replace(
            str(one.resolve()), "OUT"
        )
        assert name != "wav.scp" or sum(sizes) == len(read_list(one / name))
    for path in (one / "data").iterdir():
        assert (parts / "data" / path.name).read_bytes() == path.read_bytes()


def test_rerun_changes_nothing_and_redoes_only_what_is_missing(sources, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run(sources["plain"], tmp_path)
    first = snapshot(tmp_path)
    run(sources["plain"], tmp_path)
    assert snapshot(tmp_path) == first
    assert f"kept {len(sources['good'])} formatted by an earlier run" in caplog.text
    (tmp_path / "data" / "b_flac16.flac").unlink()
    caplog.clear()
    run(sources["plain"], tmp_path)
    again = snapshot(tmp_path)
    assert {k: v[1] for k, v in again.items()} == {k: v[1] for k, v in first.items()}
    changed = [k for k in first if again[k][0] != first[k][0]]
    assert changed == ["data/b_flac16.flac"]
    assert f"formatted 1 utterances, kept {len(sources['good']) - 1}" in caplog.text


def test_ark_is_read_by_kaldiio_and_espnet(sources, plain_out, tmp_path):
    from espnet2.train.dataset import kaldi_loader

    for job in (1, 2):
        run(sources["plain"], tmp_path, "--audio_format", "ark", "--job", str(job), "--nj", "2")
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text((tmp_path / "wav.scp.1").read_text() + (tmp_path / "wav.scp.2").read_text())
    values = read_list(wav_scp)
    assert list(values) == sorted(sources["good"])
    arks = {str((tmp_path / "data" / f"wav.{job}.ark").resolve()) for job in (1, 2)}
    assert {value.rsplit(":", 1)[0] for value in values.values()} <= arks
    flac_dir = plain_out[0] / "data"
    espnet_reader = kaldi_loader(str(wav_scp))
    for uid, (rate, samples) in kaldiio.load_scp(str(wav_scp)).items():
        reference, _ = sf.read(str(flac_dir / f"{uid}.flac"), dtype="int16")
        assert rate == FS and samples.dtype == np.int16
        np.testing.assert_array_equal(samples, reference)
        np.testing.assert_array_equal(espnet_reader[uid], reference)
    assert espnet_reader.rate == FS
    before = snapshot(tmp_path)
    for job in (1, 2):
        run(sources["plain"], tmp_path, "--audio_format", "ark", "--job", str(job), "--nj", "2")
    assert snapshot(tmp_path) == before


def test_ark_rerun_adds_an_utterance_that_became_readable(tmp_path):
    sf.write(tmp_path / "x.wav", noise(0.5, FS, seed=4), FS, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"x {tmp_path / 'x.wav'}\ny {tmp_path / 'y.wav'}\n")
    out = tmp_path / "out"
    run(tmp_path, out, "--audio_format", "ark")
    assert list(read_list(out / "wav.scp")) == ["x"] and list(read_list(out / "skipped")) == ["y"]
    sf.write(tmp_path / "y.wav", noise(0.25, FS, seed=5), FS, subtype="PCM_16")
    run(tmp_path, out, "--audio_format", "ark")
    loaded = {uid: samples for uid, (_, samples) in kaldiio.load_scp(str(out / "wav.scp")).items()}
    np.testing.assert_array_equal(loaded["x"], noise(0.5, FS, seed=4))
    np.testing.assert_array_equal(loaded["y"], noise(0.25, FS, seed=5))
    assert (out / "skipped").read_text() == "" and read_list(out / "utt2num_samples") == {"x": "8000", "y": "4000"}


def test_overshoot_is_clipped_in_pcm16_and_kept_in_float(tmp_path, caplog):
    import soxr

    caplog.set_level(logging.INFO)
    square = np.sign(tone(441, 0.5, 44100, 1.0)) * 32767 / 32768  # full scale: resampling rings above it
    sf.write(tmp_path / "sq.wav", square, 44100, subtype="FLOAT")
    (tmp_path / "wav.scp").write_text(f"sq {tmp_path / 'sq.wav'}\n")
    run(tmp_path, tmp_path / "pcm", "--audio_format", "wav")
    run(tmp_path, tmp_path / "float", "--audio_format", "wav", "--subtype", "FLOAT")
    reference = soxr.resample(square.astype(np.float32), 44100, FS, quality="HQ")
    assert np.max(np.abs(reference)) > 1.01
    pcm, _ = sf.read(str(tmp_path / "pcm" / "data" / "sq.wav"), dtype="int16")
    np.testing.assert_array_equal(pcm, np.clip(np.rint(reference * 32768), -32768, 32767).astype(np.int16))
    assert "sq: " in caplog.text and "samples clipped to the 16-bit range" in caplog.text
    floats, _ = sf.read(str(tmp_path / "float" / "data" / "sq.wav"), dtype="float32")
    assert sf.info(str(tmp_path / "float" / "data" / "sq.wav")).subtype == "FLOAT"
    np.testing.assert_array_equal(floats, reference)


def test_a_changed_source_is_formatted_again(tmp_path, caplog):
    """Issue 13, item 6: a source rewritten after stage 2 ran is formatted again by a rerun, not kept."""
    caplog.set_level(logging.INFO)
    sf.write(tmp_path / "x.wav", noise(0.5, FS, seed=1), FS, subtype="PCM_16")
    sf.write(tmp_path / "y.wav", noise(0.5, FS, seed=2), FS, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"x {tmp_path / 'x.wav'}\ny {tmp_path / 'y.wav'}\n")
    for audio_format in ("flac", "ark"):
        out = tmp_path / audio_format
        run(tmp_path, out, "--audio_format", audio_format)
        sf.write(tmp_path / "x.wav", noise(0.75, FS, seed=3), FS, subtype="PCM_16")
        caplog.clear()
        run(tmp_path, out, "--audio_format", audio_format)
        assert "formatted 1 utterances, kept 1 formatted by an earlier run; 1 formatted again" in caplog.text
        loaded = (
            {uid: samples for uid, (_, samples) in kaldiio.load_scp(str(out / "wav.scp")).items()}
            if (audio_format == "ark")
            else {uid: sf.read(path, dtype="int16")[0] for uid, path in read_list(out / "wav.scp").items()}
        )
        np.testing.assert_array_equal(loaded["x"], noise(0.75, FS, seed=3))
        np.testing.assert_array_equal(loaded["y"], noise(0.5, FS, seed=2))
        assert read_list(out / "utt2num_samples") == {"x": "12000", "y": "8000"}
        sf.write(tmp_path / "x.wav", noise(0.5, FS, seed=1), FS, subtype="PCM_16")


def test_another_rate_in_the_same_output_dir_is_refused(tmp_path):
    """Issue 13, item 5: the output dir records its rate and format; another is refused with what to do."""
    sf.write(tmp_path / "x.wav", noise(0.5, FS, seed=1), FS, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"x {tmp_path / 'x.wav'}\n")
    out = tmp_path / "out"
    main(["--fs", "48000", str(tmp_path / "wav.scp"), str(out)])
    assert (out / "audio_format").read_text() == "48000 Hz flac PCM_16\n"
    with pytest.raises(SystemExit, match=r"holds audio formatted as 48000 Hz flac PCM_16 .* asks 16000 Hz flac"):
        main(["--fs", "16000", str(tmp_path / "wav.scp"), str(out)])
    assert sf.info(str(out / "data" / "x.flac")).samplerate == 48000


@pytest.mark.skipif(not HAS_MP3, reason="libsndfile without MP3")
def test_a_100_byte_mp3_is_unreadable_not_missing_and_the_decoder_stays_quiet(tmp_path, capfd):
    """Issue 13, item 7: libsndfile calls such a file one that "does not exist"; libmpg123 prints notes."""
    from espnet2_slap.corpora.common import audio_problem

    sf.write(tmp_path / "long.mp3", tone(440, 1.0, 48000, 0.3), 48000, format="MP3", subtype="MPEG_LAYER_III")
    tiny = tmp_path / "tiny.mp3"
    tiny.write_bytes((tmp_path / "long.mp3").read_bytes()[-100:])
    category, detail = audio_problem(tiny, 0.0, None)
    assert category == "unreadable audio file" and "does not exist" not in detail
    assert f"{tiny}: 100 bytes that do not decode" in detail
    (tmp_path / "wav.scp").write_text(f"tiny {tiny}\n")
    run(tmp_path, tmp_path / "out", "--job", "1", "--nj", "1")
    assert read_list(tmp_path / "out" / "skipped.1")["tiny"].startswith("unreadable audio file: ")
    console = capfd.readouterr()
    assert "libmpg123" not in console.err + console.out and "Illegal Audio-MPEG-Header" not in console.err
