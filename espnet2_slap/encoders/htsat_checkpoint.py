"""Loading HTS-AT weights from a raw HTS-AT state dict, a LAION-CLAP checkpoint or an espnet2_slap model."""

import logging
from typing import Dict, List, Mapping, Tuple

import torch

# Where the HTS-AT weights sit in each supported layout (after a DistributedDataParallel "module." is removed).
CHECKPOINT_PREFIXES = {
    "LAION-CLAP checkpoint": "audio_branch.",
    "espnet2_slap model": "audio_tower.encoder.",
}

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


def htsat_weights(checkpoint: Mapping, source: str) -> Tuple[Dict[str, torch.Tensor], str]:
    """The tensors of a loaded checkpoint under HTS-AT's own key names, and the name of the layout found.

    LAION-CLAP nests its weights under ``state_dict``, and its DDP-trained ones prefix them with ``module.``.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"htsat init_checkpoint {source}: expected a state dict, got {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    state = {key.removeprefix("module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}
    for layout, prefix in CHECKPOINT_PREFIXES.items():
        weights = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if weights:
            return weights, f"{layout} ({prefix}*)"
    return state, "HTS-AT state dict"


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
    own = encoder.state_dict()
    matching = [key for key in own if key in weights]
    if not matching:
        found = ", ".join(list(weights)[:5]) or "no tensors"
        raise ValueError(
            f"htsat init_checkpoint {source} holds no HTS-AT weights: none of its {len(weights)} keys ({found}, ...) "
            f"is a key of this encoder (e.g. patch_embed.proj.weight); expected a raw HTS-AT state dict, a "
            f"LAION-CLAP checkpoint (audio_branch.*) or an espnet2_slap model (audio_tower.encoder.*)"
        )
    for key in matching:
        if weights[key].shape != own[key].shape:
            raise ValueError(
                f"htsat init_checkpoint {source}: {key} has shape {tuple(weights[key].shape)} in the checkpoint "
                f"but {tuple(own[key].shape)} in the encoder; check size, embed_dim, depths, num_heads, window_size"
            )
    encoder.load_state_dict({key: weights[key] for key in matching}, strict=False)

    missing = [key for key in own if key not in weights]
    ignored: Dict[str, List[str]] = {}  # reason -> the reference's keys it covers
    unexpected = []
    for key in weights:
        if key not in own:
            reason = reference_only_reason(key)
            if reason:
                ignored.setdefault(reason, []).append(key)
            else:
                unexpected.append(key)
    logging.info(f"htsat init_checkpoint {source}: loaded {len(matching)} of the encoder's {len(own)} tensors")
    if ignored:
        lines = "".join(f"\n  {reason}: {', '.join(keys)}" for reason, keys in ignored.items())
        count = sum(map(len, ignored.values()))
        logging.info(f"htsat init_checkpoint: ignored {count} entries of the reference not used here:{lines}")
    if unexpected:
        logging.warning(f"htsat init_checkpoint: ignored {len(unexpected)} unexpected keys: {', '.join(unexpected)}")
    if missing:
        logging.warning(
            f"htsat init_checkpoint: {len(missing)} encoder tensors missing (left as initialised): {', '.join(missing)}"
        )


def load_htsat_checkpoint(encoder: torch.nn.Module, path: str) -> None:
    """Loads HTS-AT weights from ``path`` into ``encoder``: a raw HTS-AT state dict, a LAION-CLAP checkpoint
    (``audio_branch.*``, possibly under ``state_dict`` and ``module.``) or an espnet2_slap model
    (``audio_tower.encoder.*``, e.g. ``valid.acc.best.pth``). See ``load_htsat_state_dict``."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    weights, layout = htsat_weights(checkpoint, path)
    load_htsat_state_dict(encoder, weights, f"{path} [{layout}]")
