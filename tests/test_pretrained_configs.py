"""Each shipped config that starts from a downloaded checkpoint fits the file it names (issue 25): its audio encoder
loads a file with the keys and shapes of that release, and its front end is the one the release was trained with.

The files are written here from the releases' own hyper-parameters, never from our encoder (that would only check
the encoder against itself): HTS-Audio-Transformer's config.py and model/htsat.py for its AudioSet checkpoint
(HTS-AT tiny, 32 kHz), LAION-CLAP's create_htsat_model and HTSAT-base audio config for its music release (HTS-AT
base, 48 kHz). Only the audio weights are written, zeros sharing one element of storage per dtype, so each file
is a few kilobytes while every tensor has its released shape."""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from espnet2_slap.checkpoints.layouts import read_layout
from espnet2_slap.tasks.slap import SLAPTask, audio_encoder_choices, frontend_choices

CONF = REPO / "egs" / "TEMPLATE" / "slap1" / "conf"
CLIP_SECONDS = 10  # both releases train on 10-s clips


@dataclass(frozen=True)
class Release:
    """What a published HTS-AT checkpoint is: its layout, its size, and the front end it was trained with."""

    layout: str  # "lightning" (HTS-AT's own .ckpt: state_dict, sed_model.*) or "laion" (module.audio_branch.*)
    embed_dim: int
    depths: Tuple[int, ...]
    num_heads: Tuple[int, ...]
    fs: int
    hop_length: int
    # shared by both (HTS-AT's config.py; LAION-CLAP's audio configs and create_htsat_model)
    n_fft: int = 1024
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    window_size: int = 8
    spec_size: int = 256
    patch_size: int = 4  # patch_stride (4, 4)
    num_classes: int = 527


HTSAT_AUDIOSET = Release("lightning", 96, (2, 2, 6, 2), (4, 8, 16, 32), fs=32000, hop_length=320)
LAION_MUSIC = Release("laion", 128, (2, 2, 12, 2), (4, 8, 16, 32), fs=48000, hop_length=480)
RELEASES = {
    "HTSAT_AudioSet_Saved_1.ckpt": HTSAT_AUDIOSET,
    "music_audioset_epoch_15_esc_90.14.pt": LAION_MUSIC,
    "htsat_base.pt": LAION_MUSIC,  # a link to the music release (espnet2_slap/fetch/pretrained_files.py)
}


def release_entries(release: Release) -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
    """key -> (shape, dtype) of the HTS-AT module's state dict, as the reference code registers it."""
    f32, i64 = torch.float32, torch.int64
    bins = release.n_fft // 2 + 1
    entries = {
        "spectrogram_extractor.stft.conv_real.weight": ((bins, 1, release.n_fft), f32),
        "spectrogram_extractor.stft.conv_imag.weight": ((bins, 1, release.n_fft), f32),
        "logmel_extractor.melW": ((bins, release.n_mels), f32),
        **{f"bn0.{name}": ((release.n_mels,), f32) for name in ("weight", "bias", "running_mean", "running_var")},
        "bn0.num_batches_tracked": ((), i64),
        "patch_embed.proj.weight": ((release.embed_dim, 1, release.patch_size, release.patch_size), f32),
        **{f"patch_embed.{name}": ((release.embed_dim,), f32) for name in ("proj.bias", "norm.weight", "norm.bias")},
    }
    grid = release.spec_size // release.patch_size
    for i, (depth, heads) in enumerate(zip(release.depths, release.num_heads)):
        dim, resolution = release.embed_dim * 2**i, grid // 2**i
        window = min(release.window_size, resolution)  # no shift where one window covers the stage
        for j in range(depth):
            block = f"layers.{i}.blocks.{j}"
            entries.update(
                {
                    f"{block}.norm1.weight": ((dim,), f32),
                    f"{block}.norm1.bias": ((dim,), f32),
                    f"{block}.attn.relative_position_bias_table": (((2 * window - 1) ** 2, heads), f32),
                    f"{block}.attn.relative_position_index": ((window**2, window**2), i64),
                    f"{block}.attn.qkv.weight": ((3 * dim, dim), f32),
                    f"{block}.attn.qkv.bias": ((3 * dim,), f32),
                    f"{block}.attn.proj.weight": ((dim, dim), f32),
                    f"{block}.attn.proj.bias": ((dim,), f32),
                    f"{block}.norm2.weight": ((dim,), f32),
                    f"{block}.norm2.bias": ((dim,), f32),
                    f"{block}.mlp.fc1.weight": ((4 * dim, dim), f32),
                    f"{block}.mlp.fc1.bias": ((4 * dim,), f32),
                    f"{block}.mlp.fc2.weight": ((dim, 4 * dim), f32),
                    f"{block}.mlp.fc2.bias": ((dim,), f32),
                }
            )
            if j % 2 and resolution > release.window_size:  # shifted windows: the mask is a saved buffer
                entries[f"{block}.attn_mask"] = (((resolution // window) ** 2, window**2, window**2), f32)
        if i < len(release.depths) - 1:
            entries[f"layers.{i}.downsample.reduction.weight"] = ((2 * dim, 4 * dim), f32)
            entries[f"layers.{i}.downsample.norm.weight"] = ((4 * dim,), f32)
            entries[f"layers.{i}.downsample.norm.bias"] = ((4 * dim,), f32)
    features = release.embed_dim * 2 ** (len(release.depths) - 1)
    stages = len(release.depths) - 1
    freq_rows = release.spec_size // 2**stages // release.patch_size // (release.spec_size // release.n_mels)
    entries.update(
        {
            "norm.weight": ((features,), f32),
            "norm.bias": ((features,), f32),
            "tscam_conv.weight": ((release.num_classes, features, freq_rows, 3), f32),
            "tscam_conv.bias": ((release.num_classes,), f32),
            "head.weight": ((release.num_classes, release.num_classes), f32),
            "head.bias": ((release.num_classes,), f32),
        }
    )
    return entries


def write_release(release: Release, path: Path) -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
    """Writes ``path`` in the release's layout (its audio weights only) and returns its entries."""
    entries = release_entries(release)
    storage = {dtype: torch.zeros((), dtype=dtype) for dtype in (torch.float32, torch.int64)}
    weights = {key: storage[dtype].expand(shape) for key, (shape, dtype) in entries.items()}
    if release.layout == "lightning":  # pytorch_lightning's checkpoint of HTS-AT's SEDWrapper
        state = {f"sed_model.{key}": value for key, value in weights.items()}
        content = {"epoch": 40, "global_step": 0, "pytorch-lightning_version": "1.5.9", "state_dict": state}
        torch.save(content, path)
    else:  # LAION-CLAP's release: DDP's module., numpy scalars, pickle protocol 4
        state = {f"module.audio_branch.{key}": value for key, value in weights.items()}
        torch.save({"epoch": np.int64(15), "state_dict": state}, path, pickle_protocol=4)
    return entries


def start_files(conf: dict) -> list:
    """The checkpoints a config starts from: its audio encoder's init_checkpoint, its model_conf init path."""
    paths = [
        (conf.get("audio_encoder_conf") or {}).get("init_checkpoint"),
        ((conf.get("model_conf") or {}).get("init") or {}).get("path"),
    ]
    return [path for path in paths if path]


def shipped_start_configs() -> list:
    named = set(CONF.glob("*pretrained*.yaml"))
    starting = {path for path in CONF.glob("*.yaml") if start_files(yaml.safe_load(path.read_text()) or {})}
    return sorted(named | starting)


def misfits(config: Path, tmp_path: Path) -> list:
    """What does not fit between ``config`` and the releases it names, one line each (empty: it fits)."""
    conf = yaml.safe_load(config.read_text())
    assert start_files(conf), f"{config.name} starts from no checkpoint (init_checkpoint or model_conf init path)"
    args = SLAPTask.get_parser().parse_args(["--config", str(config)])
    frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
    problems = []
    have = dict(fs=frontend.fs, n_fft=frontend.n_fft, hop_length=frontend.hop_length, n_mels=frontend.n_mels)
    have.update(fmin=frontend.mel.f_min, fmax=frontend.mel.f_max)
    have.update(mel_scale=frontend.mel.mel_scale.mel_scale, mel_norm=frontend.mel.mel_scale.norm)
    have.update(crop_seconds=args.preprocessor_conf.get("crop_seconds"))
    for name in sorted({Path(path).name for path in start_files(conf)}):
        assert name in RELEASES, f"{config.name} starts from {name}: add that release's facts to RELEASES"
        release = RELEASES[name]
        wanted = dict(fs=release.fs, n_fft=release.n_fft, hop_length=release.hop_length, n_mels=release.n_mels)
        wanted.update(fmin=release.fmin, fmax=release.fmax, mel_scale="slaney", mel_norm="slaney")
        wanted.update(crop_seconds=CLIP_SECONDS)
        for key, value in wanted.items():
            if have[key] != value:
                problems.append(f"{name} was trained with {key} {value}, the config has {have[key]}")
        entries = write_release(release, tmp_path / name)
        encoder_conf = dict(args.audio_encoder_conf, init_checkpoint=str(tmp_path / name))
        try:  # a shape that differs is a ValueError naming the key
            encoder = audio_encoder_choices.get_class(args.audio_encoder)(
                input_size=frontend.output_size(), **encoder_conf
            )
        except ValueError as e:
            problems.append(f"{name}: {e}")
            continue
        left = sorted(set(encoder.state_dict()) - set(entries))
        if left:
            problems.append(f"{name} does not hold {len(left)} of the encoder's tensors: {', '.join(left[:5])}")
        frames = int(frontend.num_frames(torch.tensor(CLIP_SECONDS * frontend.fs)))
        if frames != encoder.clip_frames:
            problems.append(f"a {CLIP_SECONDS}-s clip is {frames} frames, the encoder takes {encoder.clip_frames}")
    return problems


@pytest.mark.parametrize("config", shipped_start_configs(), ids=lambda path: path.name)
def test_pretrained_config_fits_the_release_it_names(config: Path, tmp_path):
    problems = misfits(config, tmp_path)
    assert not problems, f"{config.name} does not fit the file it starts from:\n" + "\n".join(problems)


def test_the_written_releases_are_read_as_their_layouts_and_are_small(tmp_path):
    """The files stand for the releases: the reader recognises their layouts and gives every entry its shape."""
    for name, release, layout_name in (
        ("tiny.ckpt", HTSAT_AUDIOSET, "Lightning"),
        ("base.pt", LAION_MUSIC, "LAION-CLAP"),
    ):
        entries = write_release(release, tmp_path / name)
        assert (tmp_path / name).stat().st_size < 200_000
        layout = read_layout(str(tmp_path / name))
        assert layout_name in layout.name
        shapes = {key: tuple(value.shape) for key, value in layout.parts["audio_encoder"].items()}
        assert shapes == {key: shape for key, (shape, _) in entries.items()}
