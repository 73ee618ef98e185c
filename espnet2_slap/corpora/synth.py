"""A deterministic synthetic music-caption corpus made with numpy, for tests and the tiny recipe.

Each clip is an arpeggiated melody whose attributes are controlled: instrument (timbre), tempo, mode,
register and dynamics. Each clip gets several templated captions in varied wording, joined by the
preprocessor's caption delimiter. Some (instrument, mode, register) combinations never occur in training
and make half of the test split.
"""

import argparse
import itertools
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile as sf

from espnet2_slap.corpora.captions import join_captions

ATTRIBUTES: Dict[str, List[str]] = {
    "instrument": ["piano", "organ", "flute", "strings"],
    "tempo": ["slow", "fast"],
    "mode": ["major", "minor"],
    "register": ["low", "high"],
    "dynamics": ["soft", "loud"],
}
WORDS = {
    "slow": ["slow", "calm", "leisurely"],
    "fast": ["fast", "quick", "lively"],
    "major": ["major", "happy", "cheerful"],
    "minor": ["minor", "sad", "melancholic"],
    "low": ["low", "deep", "low-pitched"],
    "high": ["high", "high-pitched", "airy"],
    "soft": ["soft", "quiet", "gentle"],
    "loud": ["loud", "powerful", "strong"],
    "piano": ["piano", "piano", "keyboard piano"],
    "organ": ["organ", "church organ", "electric organ"],
    "flute": ["flute", "flute", "wooden flute"],
    "strings": ["strings", "string section", "bowed strings"],
}
TEMPLATES = [
    "a {tempo} {mode} melody played on {instrument} in the {register} register, {dynamics}",
    "{dynamics} {instrument} playing a {tempo} {mode} tune",
    "{register} {instrument} music, {tempo} and {mode}",
    "this is a {mode} piece for {instrument}: {dynamics}, {tempo}, {register}",
]
HELD_OUT = {
    ("piano", "minor", "high"),
    ("organ", "major", "low"),
    ("flute", "minor", "low"),
    ("strings", "major", "high"),
}
TEMPO_BPM = {"slow": 72.0, "fast": 152.0}
ROOT_HZ = {"low": 130.81, "high": 523.25}
GAIN = {"soft": 0.08, "loud": 0.45}
SCALE_STEPS = {"major": [0, 4, 7, 12, 7, 4], "minor": [0, 3, 7, 12, 7, 3]}


def note(instrument: str, freq: float, n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """One note of ``n`` samples with the instrument's harmonic spectrum and envelope."""
    t = np.arange(n) / fs
    if instrument == "piano":
        amps, env = [1.0 / k for k in range(1, 9)], np.exp(-t * 6.0)
    elif instrument == "organ":
        amps, env = [1.0 if k % 2 else 0.0 for k in range(1, 8)], np.minimum(1.0, t * 80.0)
    elif instrument == "flute":
        amps, env = [1.0, 0.15, 0.05], np.minimum(1.0, t * 15.0)
        freq = freq * (1.0 + 0.006 * np.sin(2 * np.pi * 5.0 * t))
    else:  # strings
        amps, env = [1.0 / k for k in range(1, 12)], np.minimum(1.0, t * 5.0)
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(freq, t.shape)) / fs
    wave = sum(a * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(amps, 1) if a)
    fade = np.minimum(1.0, (n - np.arange(n)) / (0.01 * fs))
    return wave * env * fade / np.sqrt(sum(a * a for a in amps))


def synthesize(attrs: Dict[str, str], seconds: float, fs: int, rng: np.random.Generator) -> np.ndarray:
    """A mono clip (seconds * fs,) float32 in [-1, 1] with the given attributes."""
    total = int(round(seconds * fs))
    beat = int(round(60.0 / TEMPO_BPM[attrs["tempo"]] * fs / 2))  # eighth notes
    root = ROOT_HZ[attrs["register"]] * 2 ** (rng.integers(-2, 3) / 12)
    steps = SCALE_STEPS[attrs["mode"]]
    out = np.zeros(total)
    for i, start in enumerate(range(0, total, beat)):
        n = min(beat, total - start)
        out[start : start + n] = note(attrs["instrument"], root * 2 ** (steps[i % len(steps)] / 12), n, fs, rng)
    out *= GAIN[attrs["dynamics"]] * rng.uniform(0.8, 1.2)
    out += 0.002 * rng.standard_normal(total)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def captions(attrs: Dict[str, str], rng: np.random.Generator, num: int) -> List[str]:
    """``num`` different templated captions describing ``attrs``."""
    picked = rng.choice(len(TEMPLATES), size=num, replace=False)
    return [TEMPLATES[i].format(**{k: WORDS[v][rng.integers(len(WORDS[v]))] for k, v in attrs.items()}) for i in picked]


def make_corpus(
    out_dir: Path, num_train: int, num_valid: int, num_test: int, seconds: float, fs: int, seed: int
) -> None:
    """Write wav files and Kaldi data dirs ``out_dir/{train,valid,test}`` (wav.scp, text, utt2dur, utt2<attr>)."""
    rng = np.random.default_rng(seed)
    combos = [dict(zip(ATTRIBUTES, values)) for values in itertools.product(*ATTRIBUTES.values())]
    seen = [c for c in combos if (c["instrument"], c["mode"], c["register"]) not in HELD_OUT]
    unseen = [c for c in combos if (c["instrument"], c["mode"], c["register"]) in HELD_OUT]
    splits = {
        "train": [seen[i % len(seen)] for i in rng.permutation(num_train)],
        "valid": [seen[i] for i in rng.integers(len(seen), size=num_valid)],
        "test": [
            unseen[rng.integers(len(unseen))] if i % 2 else seen[rng.integers(len(seen))] for i in range(num_test)
        ],
    }
    for split, clips in splits.items():
        data_dir, wav_dir = out_dir / split, out_dir / "wav" / split
        data_dir.mkdir(parents=True, exist_ok=True)
        wav_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            files = {
                name: stack.enter_context(open(data_dir / name, "w", encoding="utf-8"))
                for name in ["wav.scp", "text", "utt2dur"] + [f"utt2{a}" for a in ATTRIBUTES]
            }
            for i, attrs in enumerate(clips):
                uid = f"synth_{split}_{i:05d}"
                wav = wav_dir / f"{uid}.wav"
                sf.write(wav, synthesize(attrs, seconds, fs, rng), fs, subtype="PCM_16")
                files["wav.scp"].write(f"{uid} {wav.resolve()}\n")
                files["text"].write(f"{uid} {join_captions(captions(attrs, rng, 2))}\n")
                files["utt2dur"].write(f"{uid} {seconds:.3f}\n")
                for a, value in attrs.items():
                    files[f"utt2{a}"].write(f"{uid} {value}\n")


def add_corpus_options(parser: argparse.ArgumentParser) -> None:
    """The options of a generated corpus (synth_corpus, gm_render_corpus): output dir, split sizes, clip length,
    sampling rate and seed."""
    parser.add_argument("out_dir", type=Path, help="Output directory")
    parser.add_argument("--num_train", type=int, default=256)
    parser.add_argument("--num_valid", type=int, default=32)
    parser.add_argument("--num_test", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="Clip length")
    parser.add_argument("--fs", type=int, default=16000, help="Sampling rate")
    parser.add_argument("--seed", type=int, default=0)
