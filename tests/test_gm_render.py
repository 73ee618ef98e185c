"""espnet2_slap.corpora.gm_render: the Standard MIDI File writer read back byte by byte, the clip draws, and (when
fluidsynth and the GM soundfont are installed) a 6-clip render through the command line."""

import shutil
import struct
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf
from conftest import run_module

from espnet2_slap.corpora import gm_render
from espnet2_slap.corpora.captions import CAPTION_DELIMITER


def read_varlen(data: bytes, pos: int):
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def read_midi(data: bytes):
    """(format, tracks, division, events as (tick, bytes)) of a one-track SMF; asserts its chunk lengths."""
    assert data[:4] == b"MThd"
    length, fmt, tracks, division = struct.unpack(">IHHH", data[4:14])
    assert length == 6
    assert data[14:18] == b"MTrk"
    (track_length,) = struct.unpack(">I", data[18:22])
    assert len(data) == 22 + track_length, "the track length must cover the rest of the file exactly"
    track, pos, tick, events = data[22:], 0, 0, []
    while pos < len(track):
        delta, pos = read_varlen(track, pos)
        tick += delta
        status = track[pos]
        if status == 0xFF:  # meta event: type, length, data
            length, start = read_varlen(track, pos + 2)
            end = start + length
        else:
            end = pos + {0x80: 3, 0x90: 3, 0xC0: 2}[status & 0xF0]
        events.append((tick, track[pos:end]))
        pos = end
    assert events[-1][1] == b"\xff\x2f\x00", "the track must end with an end-of-track event"
    return fmt, tracks, division, events


@pytest.mark.parametrize("value,encoded", [(0, b"\x00"), (0x7F, b"\x7f"), (0x80, b"\x81\x00"), (0x3FFF, b"\xff\x7f")])
def test_varlen(value, encoded):
    assert gm_render._varlen(value) == encoded
    assert read_varlen(encoded, 0) == (value, len(encoded))


def test_midi_file_parses():
    notes = [(0.0, 0.45, 60, 100), (0.5, 0.45, 64, 100), (1.0, 200.0, 67, 40)]  # the last note: a long delta
    fmt, tracks, division, events = read_midi(gm_render.midi_file(notes, program=40, bpm=120.0))
    assert (fmt, tracks, division) == (0, 1, gm_render.TICKS_PER_BEAT)
    assert events[0] == (0, b"\xff\x51\x03" + (500000).to_bytes(3, "big"))  # 120 bpm: 0.5 s a beat
    assert events[1] == (0, bytes([0xC0, 40]))
    ons = [(tick, e[1], e[2]) for tick, e in events if e[0] == 0x90]
    offs = [(tick, e[1]) for tick, e in events if e[0] == 0x80]
    assert ons == [(0, 60, 100), (240, 64, 100), (480, 67, 40)]
    assert offs == [(216, 60), (456, 64), (480 + 200 * 480, 67)]
    assert [tick for tick, _ in events] == sorted(tick for tick, _ in events)


def test_melody_stays_in_its_mode():
    clip = gm_render.Clip(
        "x", {"instrument": "flute", "tempo": "slow", "mode": "minor"}, root=60, figure=0, velocity=50
    )
    notes = gm_render.melody(clip, seconds=3.0)
    assert len(notes) == 8  # eighth notes at 72 bpm over 3 s (7.2), the last one cut
    assert {(pitch - 60) % 12 for _, _, pitch, _ in notes} == {0, 3, 7}  # a minor triad


def test_draws_are_deterministic_disjoint_and_cover_the_instruments():
    num = {"train": 256, "valid": 32, "test": 64}
    splits = gm_render.draw_clips(num, seed=0)
    assert splits == gm_render.draw_clips(num, seed=0)
    assert splits != gm_render.draw_clips(num, seed=1)
    keys = [(tuple(c.attrs.values()), c.root, c.figure, c.velocity) for clips in splits.values() for c in clips]
    assert len(set(keys)) == len(keys), "two clips of the corpus would be the same"
    for split, clips in splits.items():
        assert len(clips) == num[split]
        assert set(Counter(c.attrs["instrument"] for c in clips).values()) == {num[split] // 8}
        for attribute in ("tempo", "mode", "register", "dynamics"):
            assert set(Counter(c.attrs[attribute] for c in clips).values()) == {num[split] // 2}


def test_missing_tools_name_the_packages(tmp_path):
    with pytest.raises(SystemExit, match="apt-get install fluidsynth fluid-soundfont-gm"):
        gm_render.check_tools("no-such-fluidsynth-here", tmp_path / "none.sf2")


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(gm_render.DEFAULT_SOUNDFONT).is_file(),
    reason=f"needs fluidsynth and {gm_render.DEFAULT_SOUNDFONT}: apt-get install fluidsynth fluid-soundfont-gm",
)
def test_render_six_clips(tmp_path):
    out = tmp_path / "data"
    args = ["--num_train", "2", "--num_valid", "2", "--num_test", "2", "--seconds", "3", "--fs", "16000"]
    run_module("espnet2_slap.bin.gm_render_corpus", out, *args, cwd=tmp_path)
    names = ["wav.scp", "text"] + [f"utt2{a}" for a in gm_render.ATTRIBUTES]
    all_ids = set()
    for split in ("train", "valid", "test"):
        tables = {name: (out / split / name).read_text().splitlines() for name in names}
        ids = [line.split(" ", 1)[0] for line in tables["wav.scp"]]
        assert len(ids) == 2 and not all_ids & set(ids)
        all_ids |= set(ids)
        for name, lines in tables.items():
            assert [line.split(" ", 1)[0] for line in lines] == ids, f"{split}/{name} has other ids than wav.scp"
        for line in tables["text"]:
            captions = line.split(" ", 1)[1].split(f" {CAPTION_DELIMITER} ")
            assert len(captions) == 2 and all(caption.strip() for caption in captions)
        for line in tables["utt2instrument"]:
            assert line.split(" ", 1)[1] in gm_render.PROGRAMS
        for line in tables["wav.scp"]:
            wav = Path(line.split(" ", 1)[1])
            assert wav.is_relative_to((out / "audio").resolve())
            info = sf.info(str(wav))
            assert (info.channels, info.samplerate, info.frames, info.subtype) == (1, 16000, 48000, "PCM_16")
            audio, _ = sf.read(str(wav))
            assert abs(audio).max() > 1e-3, f"{wav} is silent"
