"""Whole-model initialisation from a downloaded checkpoint (``model_conf: {init: {path: ..., parts: [...]}}``).

The checkpoint is read safely and its layout recognised (checkpoints/layouts.py): a LAION-CLAP release, a
transformers ClapModel (directory or file), an espnet2_slap model, HTS-AT's checkpoints (audio encoder only).
Each part named in ``parts`` is loaded into the model, and only those:

- ``audio_encoder``, ``text_encoder``: the towers' encoders (sizes must match: HTS-AT's size, the text
  encoder's config);
- ``audio_projector``, ``text_projector``: the heads, whose structure must be the file's (LAION-CLAP's and
  transformers' are Linear-ReLU-Linear: ``<tower>_projector_conf: {batchnorm: false}``);
- ``temperature``: CLAP's logit_scale from LAION-CLAP's and transformers' ``logit_scale_a`` (the one LAION-CLAP's
  loss uses for both directions), clamped to the model's limit.
"""

import json
import logging
from pathlib import Path
from typing import Dict, Sequence

import torch

from espnet2_slap.checkpoints.htsat import load_htsat_state_dict
from espnet2_slap.checkpoints.layouts import load_weights, read_layout, require_parts
from espnet2_slap.encoders.hf_transformer_text_encoder import load_text_encoder_state_dict
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.models.transformers_clap import check_frontend_against_extractor
from espnet2_slap.models.two_tower import TwoTowerModel


def load_audio_encoder(encoder: torch.nn.Module, weights: Dict[str, torch.Tensor], source: str) -> None:
    if isinstance(encoder, HTSATAudioEncoder):
        load_htsat_state_dict(encoder, weights, source)
        return
    load_weights(
        encoder,
        weights,
        source,
        noun="audio encoder",
        kind="audio encoder",
        shape_hint="the audio_encoder and its conf must be the checkpoint's",
        no_match_hint="the checkpoint's audio encoder is another architecture than audio_encoder",
    )


def load_projector(projector: torch.nn.Module, weights: Dict[str, torch.Tensor], source: str, tower: str) -> None:
    """All of the projector or nothing: its structure (BatchNorm or not, biases) must be the file's."""
    batchnorm = "without" if not any(key.startswith("1.") for key in weights) else "with"
    load_weights(
        projector,
        weights,
        source,
        noun=f"{tower} projector",
        kind=f"{tower} projector",
        shape_hint=f"the file's {tower} projector is an MLP {batchnorm} BatchNorm; set model_conf projection_dim, "
        f"projector_hidden and {tower}_projector_conf (batchnorm, bias_before_batchnorm) to match it, e.g. "
        f"{tower}_projector_conf: {{batchnorm: false}} for LAION-CLAP and transformers ClapModel heads",
        no_match_hint="",
        strict=True,
    )


@torch.no_grad()
def load_temperature(model: TwoTowerModel, weights: Dict[str, torch.Tensor], source: str) -> None:
    if not hasattr(model, "logit_scale"):
        raise ValueError(f"{source}: {type(model).__name__} has no temperature; leave temperature out of parts")
    value = weights["logit_scale"].reshape(()).to(model.logit_scale.dtype)  # a float64 entry compares as stored
    model.logit_scale.copy_(value)
    model.clamp_logit_scale_()
    clamped = "" if model.logit_scale.item() == value.item() else f", clamped to {model.logit_scale.item():.4f}"
    logging.info(f"{source}: logit_scale {value.item():.4f} (temperature {(-value).exp().item():.4f}){clamped}")


def warn_text_config_differences(model: TwoTowerModel, path: str) -> None:
    """Settings shapes do not reveal (layer norm epsilon, activation) that differ between a transformers
    ClapModel directory's text_config and our text encoder's config: warned, naming both values."""
    config_file = Path(path) / "config.json"
    ours = getattr(getattr(model.text_tower.encoder, "model", None), "config", None)
    if not config_file.is_file() or ours is None:
        return
    theirs = json.loads(config_file.read_text(encoding="utf-8")).get("text_config", {})
    for key in ("layer_norm_eps", "hidden_act", "type_vocab_size", "pad_token_id"):
        if key in theirs and theirs[key] != getattr(ours, key, None):
            logging.warning(
                f"model_conf init {path}: text_config {key} is {theirs[key]} there, {getattr(ours, key, None)} in "
                f"text_encoder_conf config; set it there if the checkpoint's value is the one its weights were "
                f"trained with"
            )


def initialize_from_checkpoint(model: TwoTowerModel, path: str, parts: Sequence[str]) -> None:
    """Loads the ``parts`` of the checkpoint at ``path`` into ``model`` (see the module docstring)."""
    if not parts:
        raise ValueError(f"model_conf init {path}: name the parts to load, e.g. parts: [audio_encoder, text_encoder]")
    layout = read_layout(path)
    require_parts(layout, parts, path)
    source = f"model_conf init {path} [{layout.name}]"
    check_frontend_against_extractor(model, path, layout.name, parts)
    if "text_encoder" in parts:
        warn_text_config_differences(model, path)
    for part in parts:
        weights = layout.parts[part]
        if part == "audio_encoder":
            load_audio_encoder(model.audio_tower.encoder, weights, f"{source} audio_encoder")
        elif part == "text_encoder":
            load_text_encoder_state_dict(model.text_tower.encoder, weights, f"{source} text_encoder")
        elif part == "audio_projector":
            load_projector(model.audio_tower.projector, weights, f"{source} audio_projector", "audio")
        elif part == "text_projector":
            load_projector(model.text_tower.projector, weights, f"{source} text_projector", "text")
        else:
            load_temperature(model, weights, f"{source} temperature")
    logging.info(f"{source}: initialised {', '.join(parts)}")
