"""What the search tests index: a freshly initialised tiny SLAP model saved as a training writes it, and short
synthetic clips (sine, chirp, noise) in the formats a collection holds."""

import numpy as np
import soundfile
import torch
import yaml
from conftest import tiny_args

from espnet2_slap.tasks.slap import SLAPTask

FS = 16000


def save_model(directory, bpe, seed=0):
    """(config.yaml, model.pth) of a freshly initialised tiny SLAP model, as a training writes them."""
    bpemodel, token_list = bpe
    directory.mkdir(parents=True, exist_ok=True)
    args = tiny_args(directory, "slap", "--token_list", str(token_list), "--bpemodel", str(bpemodel))
    torch.manual_seed(seed)
    model = SLAPTask.build_model(args)
    config, model_file = directory / "config.yaml", directory / "model.pth"
    config.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), model_file)
    return config, model_file


def clip(kind: str, seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    if kind == "sine":
        wave = np.sin(2 * np.pi * (110 * (seed + 1)) * t)
    elif kind == "chirp":
        wave = np.sin(2 * np.pi * (100 + 2000 * t) * t)
    else:
        wave = rng.standard_normal(len(t)) * (0.1 + 0.2 * seed)
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def write_clip(path, kind, seed, seconds=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, clip(kind, seed, seconds), FS)


def write_music(root, seconds=1.0):
    """A folder of four clips (wav, flac, ogg, two in a subfolder), a text file and a hidden clip; ``root``."""
    write_clip(root / "a_sine.wav", "sine", 1, seconds)
    write_clip(root / "b_noise.flac", "noise", 0, seconds)
    write_clip(root / "sub" / "c_chirp.wav", "chirp", 0, seconds)
    write_clip(root / "sub" / "d_sine.ogg", "sine", 4, seconds)
    (root / "notes.txt").write_text("not audio")
    write_clip(root / ".hidden" / "x.wav", "sine", 2, seconds)
    return root
