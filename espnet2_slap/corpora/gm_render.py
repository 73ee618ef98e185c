#!/usr/bin/env python3
"""A small music-caption corpus of General-MIDI instruments rendered with a real soundfont (FluidSynth), to check
on realistic timbres what the numpy corpus (``espnet2_slap.corpora.synth``) suggests.

Each clip is a short melody (an arpeggio or a scale figure) written as a Standard MIDI File and rendered by
``fluidsynth`` with a General-MIDI soundfont; it has the attributes of the synthetic corpus: instrument (one of
8 GM programs of clearly different timbre), tempo (slow/fast), mode (major/minor), register (low/high) and
dynamics (soft/loud, the note velocity). Captions are the synthetic corpus's templates with words for these
instruments, several per clip joined by the caption delimiter.

    python -m espnet2_slap.bin.gm_render_corpus OUT_DATA_DIR [--num_train 256 --num_valid 32 --num_test 64]

writes ``OUT/{train,valid,test}/{wav.scp,text,utt2instrument,utt2tempo,utt2mode,utt2register,utt2dynamics}``
and the clips (16-bit mono wav at --fs, exactly --seconds long) under ``OUT/audio/<set>/``. The attributes and
melodies are drawn from --seed alone; no two clips of the corpus share instrument, attributes, key, melody
figure and velocity, so the splits are disjoint, and each split cycles through the 8 instruments (all of them
in a split of 8 clips or more). Needs the Debian packages fluidsynth and fluid-soundfont-gm.
"""

import itertools
import logging
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from contextlib import ExitStack
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import soundfile as sf

from espnet2_slap.corpora.captions import join_captions
from espnet2_slap.corpora.synth import TEMPLATES, TEMPO_BPM, WORDS

logger = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
INSTALL_HINT = "install them with: apt-get install fluidsynth fluid-soundfont-gm (Debian/Ubuntu packages)"
PROGRAMS = {  # class label -> General-MIDI program (0-based)
    "piano": 0,  # acoustic grand piano
    "organ": 19,  # church organ
    "guitar": 24,  # acoustic guitar (nylon)
    "bass": 32,  # acoustic bass
    "violin": 40,
    "trumpet": 56,
    "saxophone": 65,  # alto sax
    "flute": 73,
}
ATTRIBUTES: Dict[str, List[str]] = {
    "instrument": list(PROGRAMS),
    "tempo": ["slow", "fast"],
    "mode": ["major", "minor"],
    "register": ["low", "high"],
    "dynamics": ["soft", "loud"],
}
GM_WORDS = {
    **WORDS,
    "piano": ["piano", "grand piano", "acoustic piano"],
    "organ": ["organ", "church organ", "pipe organ"],
    "guitar": ["guitar", "nylon-string guitar", "classical guitar"],
    "bass": ["bass", "acoustic bass", "double bass"],
    "violin": ["violin", "violin", "fiddle"],
    "trumpet": ["trumpet", "trumpet", "brass trumpet"],
    "saxophone": ["saxophone", "alto sax", "alto saxophone"],
    "flute": ["flute", "flute", "concert flute"],
}
ROOT_NOTE = {"low": 48, "high": 72}  # C3 and C5, as the synthetic corpus (130.81 and 523.25 Hz)
TRANSPOSE = [-2, -1, 0, 1, 2]  # semitones around the root
VELOCITIES = {"soft": [36, 44, 52], "loud": [100, 110, 120]}
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
FIGURES = [  # scale degrees (0-based, 7 = the octave), repeated over the clip; each has the mode's third
    [0, 2, 4, 7, 4, 2],
    [0, 4, 2, 4, 7, 4, 2, 4],
    [0, 1, 2, 3, 4, 3, 2, 1],
]
TICKS_PER_BEAT = 480
LEGATO = 0.9  # a note sounds for this part of its step
FADE_SECONDS = 0.02  # at the end of a clip, where it is cut


class Clip(NamedTuple):
    uid: str
    attrs: Dict[str, str]
    root: int  # MIDI note number
    figure: int
    velocity: int


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, most significant first, the high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(notes: Sequence[Tuple[float, float, int, int]], program: int, bpm: float, channel: int = 0) -> bytes:
    """A Standard MIDI File (format 0, one track) of ``notes`` (start beat, length in beats, note number,
    velocity) on ``channel``, played with GM ``program`` at ``bpm`` quarter notes a minute."""
    events = []  # (tick, order, bytes): at one tick, note-offs (0) come before note-ons (1)
    for start, length, pitch, velocity in notes:
        on, off = round(start * TICKS_PER_BEAT), round((start + length) * TICKS_PER_BEAT)
        events.append((on, 1, bytes([0x90 | channel, pitch, velocity])))
        events.append((max(off, on + 1), 0, bytes([0x80 | channel, pitch, 64])))
    track = _varlen(0) + b"\xff\x51\x03" + round(60_000_000 / bpm).to_bytes(3, "big")  # microseconds a beat
    track += _varlen(0) + bytes([0xC0 | channel, program])
    tick = 0
    for when, _, event in sorted(events, key=lambda e: e[:2]):
        track += _varlen(when - tick) + event
        tick = when
    track += _varlen(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def melody(clip: Clip, seconds: float) -> List[Tuple[float, float, int, int]]:
    """The notes of a clip: eighth notes of its figure over ``seconds`` (the last one may be cut)."""
    scale, figure = SCALES[clip.attrs["mode"]], FIGURES[clip.figure]
    steps = int(np.ceil(seconds * TEMPO_BPM[clip.attrs["tempo"]] / 60.0 * 2))
    notes = []
    for i in range(steps):
        degree = figure[i % len(figure)]
        pitch = clip.root + 12 * (degree // 7) + scale[degree % 7]
        notes.append((i / 2, LEGATO / 2, pitch, clip.velocity))
    return notes


def captions(attrs: Dict[str, str], rng: np.random.Generator, num: int) -> List[str]:
    """``num`` different templated captions describing ``attrs`` (the synthetic corpus's templates)."""
    picked = rng.choice(len(TEMPLATES), size=num, replace=False)
    return [
        TEMPLATES[i].format(**{k: GM_WORDS[v][rng.integers(len(GM_WORDS[v]))] for k, v in attrs.items()})
        for i in picked
    ]


def check_tools(fluidsynth: str, soundfont: Path) -> str:
    """The fluidsynth executable's path; SystemExit naming the Debian packages when it or the soundfont is missing."""
    exe = shutil.which(fluidsynth)
    missing = []
    if exe is None:
        missing.append(f"the fluidsynth program ({fluidsynth!r} is not on PATH)")
    if not Path(soundfont).is_file():
        missing.append(f"the soundfont {soundfont}")
    if missing:
        raise SystemExit(
            f"gm_render: missing {' and '.join(missing)}; {INSTALL_HINT}, or give --fluidsynth/--soundfont"
        )
    return exe


def draw_clips(num: Dict[str, int], seed: int) -> Dict[str, List[Clip]]:
    """The clips of each split: instruments in turn, the other attributes of each instrument from a shuffled cycle
    of their 16 combinations (a split of 16 * 8 clips has every combination once), chosen to keep each attribute's
    values balanced in the split, and key, figure and velocity drawn among those that no other clip of the corpus
    has."""
    rng = np.random.default_rng(seed)
    names = list(ATTRIBUTES)[1:]
    others = list(itertools.product(*(ATTRIBUTES[a] for a in names)))
    used = set()
    splits = {}
    for split, n in num.items():
        cycles = {instrument: [] for instrument in PROGRAMS}
        counts = Counter()
        clips = []
        order = [ATTRIBUTES["instrument"][j] for j in rng.permutation(len(PROGRAMS))]  # a small split's instruments
        for i in rng.permutation(n):
            instrument = order[i % len(order)]
            cycle = cycles[instrument]
            if not cycle:
                cycle += [others[j] for j in rng.permutation(len(others))]
            # of the combinations left in the cycle, the first of those whose values the split has least so far
            score = [sum(counts[a, v] for a, v in zip(names, other)) for other in cycle]
            attrs = dict(zip(ATTRIBUTES, (instrument, *cycle.pop(score.index(min(score))))))
            counts.update(attrs.items())
            free = [
                variant
                for variant in itertools.product(TRANSPOSE, range(len(FIGURES)), VELOCITIES[attrs["dynamics"]])
                if (tuple(attrs.values()), variant) not in used
            ]
            if not free:
                raise ValueError(f"too many clips: every variant of {attrs} is taken; ask for fewer clips")
            variant = free[rng.integers(len(free))]
            used.add((tuple(attrs.values()), variant))
            shift, figure, velocity = variant
            clips.append(Clip("", attrs, ROOT_NOTE[attrs["register"]] + shift, figure, velocity))
        splits[split] = [clip._replace(uid=f"gm_{split}_{k:05d}") for k, clip in enumerate(clips)]
    return splits


def render(job: Tuple[Clip, Path, float, int, str, str]) -> float:
    """Render one clip with fluidsynth into a mono 16-bit wav of exactly ``seconds`` at ``fs``; its RMS."""
    clip, wav, seconds, fs, fluidsynth, soundfont = job
    with tempfile.TemporaryDirectory(prefix="gm_render_") as tmp:
        mid, raw = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(
            midi_file(melody(clip, seconds), PROGRAMS[clip.attrs["instrument"]], TEMPO_BPM[clip.attrs["tempo"]])
        )
        cmd = [fluidsynth, "-ni", "-q", "-g", "0.6", "-r", str(fs), "-O", "float", "-T", "wav", "-F", str(raw)]
        proc = subprocess.run([*cmd, soundfont, str(mid)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"{' '.join(cmd)} {soundfont} {mid} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        audio, rate = sf.read(raw, dtype="float32", always_2d=True)
    if rate != fs:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, not the {fs} Hz asked for with -r")
    total = int(round(seconds * fs))
    mono = np.zeros(total, dtype=np.float32)
    kept = audio.mean(axis=1)[:total]
    mono[: len(kept)] = kept
    fade = min(total, int(FADE_SECONDS * fs))
    mono[total - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    mono = np.clip(mono, -1.0, 1.0)
    sf.write(wav, mono, fs, subtype="PCM_16")
    return float(np.sqrt(np.mean(mono.astype(np.float64) ** 2)))


def make_corpus(
    out_dir: Path,
    num_train: int = 256,
    num_valid: int = 32,
    num_test: int = 64,
    seconds: float = 3.0,
    fs: int = 16000,
    seed: int = 0,
    soundfont: Path = Path(DEFAULT_SOUNDFONT),
    fluidsynth: str = "fluidsynth",
    num_captions: int = 2,
    nj: int = 2,
) -> Dict[str, List[Clip]]:
    """Render the clips and write the Kaldi data dirs ``out_dir/{train,valid,test}``; the clips of each split."""
    exe = check_tools(fluidsynth, soundfont)
    splits = draw_clips({"train": num_train, "valid": num_valid, "test": num_test}, seed)
    rng = np.random.default_rng([seed, 1])  # the captions' draws, apart from the clips'
    jobs = []
    for split, clips in splits.items():
        (out_dir / "audio" / split).mkdir(parents=True, exist_ok=True)
        jobs += [
            (clip, (out_dir / "audio" / split / f"{clip.uid}.wav").resolve(), seconds, fs, exe, str(soundfont))
            for clip in clips
        ]
    logger.info(f"rendering {len(jobs)} clips with {exe} and {soundfont} ({nj} jobs)")
    with Pool(nj) as pool:
        rms = pool.map(render, jobs, chunksize=1)
    silent = [job[0].uid for job, level in zip(jobs, rms) if level < 1e-4]
    if silent:
        raise RuntimeError(f"fluidsynth rendered silence for {len(silent)} clips, e.g. {silent[:5]}")
    for split, clips in splits.items():
        data_dir = out_dir / split
        data_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            files = {
                name: stack.enter_context(open(data_dir / name, "w", encoding="utf-8"))
                for name in ["wav.scp", "text"] + [f"utt2{a}" for a in ATTRIBUTES]
            }
            for clip in clips:
                wav = (out_dir / "audio" / split / f"{clip.uid}.wav").resolve()
                files["wav.scp"].write(f"{clip.uid} {wav}\n")
                files["text"].write(f"{clip.uid} {join_captions(captions(clip.attrs, rng, num_captions))}\n")
                for a, value in clip.attrs.items():
                    files[f"utt2{a}"].write(f"{clip.uid} {value}\n")
        logger.info(f"{data_dir}: {len(clips)} clips")
    return splits
