"""Loading HTS-AT weights from any checkpoint layout that holds them (checkpoints/layouts.py): a raw HTS-AT
state dict, HTS-AT's AudioSet Lightning checkpoint (``sed_model.*``), a LAION-CLAP release (``audio_branch.*``),
a transformers ClapModel (``audio_model.audio_encoder.*``) or an espnet2_slap model (``audio_tower.encoder.*``)."""

from typing import Mapping

import torch

from espnet2_slap.checkpoints.layouts import load_weights, read_layout, require_parts

# Entries of the reference HTS-AT module that this encoder does not use, and why.
REFERENCE_ONLY_PREFIXES = {
    "spectrogram_extractor.": "STFT of the reference front end (LogMelFrontend computes it)",
    "logmel_extractor.": "mel filters of the reference front end (LogMelFrontend computes them)",
    "tscam_conv.": "AudioSet classification head",
    "head.": "AudioSet classification head",
}
RECOMPUTED_BUFFER_SUFFIXES = {
    ".attn_mask": "shifted-window masks (recomputed)",
    ".relative_position_index": "relative position indices (recomputed)",
}


def reference_only_reason(key: str) -> str:
    """Why the reference's ``key`` is not needed here, or "" when it is not one of the reference's extras."""
    for prefix, reason in REFERENCE_ONLY_PREFIXES.items():
        if key.startswith(prefix):
            return reason
    for suffix, reason in RECOMPUTED_BUFFER_SUFFIXES.items():
        if key.endswith(suffix):
            return reason
    return ""


def load_htsat_state_dict(encoder: torch.nn.Module, weights: Mapping[str, torch.Tensor], source: str) -> None:
    """Copies ``weights`` (HTS-AT key names) into ``encoder`` and logs what was loaded, missing and ignored.

    Raises ValueError when no key matches (another architecture) or when a shape differs (another size).
    Missing keys keep their initialisation; keys the encoder does not have are ignored, with a warning unless
    they are the reference's front end, classification head or recomputed buffers.
    """
    load_weights(
        encoder,
        weights,
        source,
        noun="encoder",
        kind="HTS-AT",
        shape_hint="check size, embed_dim, depths, num_heads, window_size",
        no_match_hint="expected a raw HTS-AT state dict, an HTS-AT Lightning checkpoint (sed_model.*), a LAION-CLAP "
        "release (audio_branch.*), a transformers ClapModel (audio_model.*) or an espnet2_slap model "
        "(audio_tower.encoder.*)",
        ignored_reason=reference_only_reason,
    )


def load_htsat_checkpoint(encoder: torch.nn.Module, path: str) -> None:
    """Loads the HTS-AT weights of the checkpoint at ``path`` (any layout above) into ``encoder``; see
    ``load_htsat_state_dict``."""
    layout = read_layout(path)
    require_parts(layout, ["audio_encoder"], path)
    load_htsat_state_dict(encoder, layout.parts["audio_encoder"], f"htsat init_checkpoint {path} [{layout.name}]")
