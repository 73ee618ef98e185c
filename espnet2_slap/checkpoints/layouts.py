"""What a downloaded checkpoint is, and its parts under the module names of our models.

Layouts recognised (after DistributedDataParallel's ``module.`` is removed, and weights nested under
``state_dict`` are taken from there):

- ``transformers ClapModel``: a directory with config.json and model.safetensors (or its shards, or
  pytorch_model.bin), or one such file: ``audio_model.audio_encoder.*`` (separate query/key/value),
  ``text_model.*``, ``audio_projection.linear1/linear2``, ``text_projection.*``, ``logit_scale_a``;
- ``LAION-CLAP release`` (630k-audioset-best.pt, music_audioset_epoch_15_esc_90.14.pt, ...):
  ``audio_branch.*`` (HTS-AT), ``text_branch.*`` (RoBERTa), ``audio_projection.0/2``, ``text_projection.0/2``
  (Linear-ReLU-Linear), ``logit_scale_a``;
- ``HTS-AT Lightning checkpoint`` (HTS-Audio-Transformer's AudioSet ``.ckpt``): ``sed_model.*``;
- ``espnet2_slap model``: ``audio_tower.encoder.*``, ``audio_tower.projector.*``, ``text_tower.*``,
  ``logit_scale``;
- ``HTS-AT state dict``: HTS-AT's own names (``patch_embed.*``, ``layers.*``);
- ``transformers text encoder``: a RoBERTa/BERT state dict (``embeddings.*``; ``roberta.*`` as in
  roberta-base's own file).

Parts, each a state dict: ``audio_encoder`` (HTS-AT's names as in LAION-CLAP, or the audio encoder's own),
``text_encoder`` (the text encoder module's names: ``model.*`` for hf_transformer), ``audio_projector`` and
``text_projector`` (our MLP's names: a Linear-ReLU-Linear head is ``0.*`` and ``2.*``), ``temperature``
(``logit_scale`` = log(1 / T)).
"""

import json
import logging
import re
from pathlib import Path
from typing import Callable, Dict, List, Mapping, NamedTuple, Sequence, Tuple

import torch

from espnet2_slap.checkpoints.reader import read_checkpoint

PARTS = ("audio_encoder", "text_encoder", "audio_projector", "text_projector", "temperature")
Weights = Dict[str, torch.Tensor]

# HTS-AT block entries: transformers' ClapAudioEncoder name -> LAION-CLAP's (= ours); query/key/value are
# concatenated into qkv (in that order) separately.
HF_BLOCK_NAMES = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.self.relative_position_bias_table": "attn.relative_position_bias_table",
    "attention.self.relative_position_index": "attn.relative_position_index",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
HF_QKV = ("query", "key", "value")
# Entries transformers models hold that are recomputed, not learnt.
RECOMPUTED_TEXT_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


class Layout(NamedTuple):
    """The name of a checkpoint's layout, its parts (see the module docstring) and the keys of the file that
    belong to none of them (LAION-CLAP's ``audio_transform.*``, ``logit_scale_t``, SLAP's predictors, ...)."""

    name: str
    parts: Dict[str, Weights]
    left_out: Tuple[str, ...] = ()


BLOCK_KEY = re.compile(r"^(layers\.\d+\.blocks\.\d+)\.(.+)$")


def split_blocks(weights: Mapping[str, torch.Tensor], norm_from: str, norm_to: str, out: Weights) -> List[tuple]:
    """Copies the entries outside the Swin blocks into ``out`` (the input BatchNorm's prefix renamed) and returns
    the block entries as (block prefix, name in the block, tensor)."""
    blocks = []
    for key, value in weights.items():
        match = BLOCK_KEY.match(key)
        if match:
            blocks.append((*match.groups(), value))
        elif key.startswith(norm_from):
            out[norm_to + key[len(norm_from) :]] = value
        else:
            out[key] = value
    return blocks


def renamed(rest: str, names: Mapping[str, str]) -> str:
    """A block entry's name under ``names`` (whole names, or module names before the parameter's)."""
    if rest in names:  # a parameter without a module: the bias table, the index
        return names[rest]
    name, _, suffix = rest.rpartition(".")
    return f"{names.get(name, name)}.{suffix}"


def hf_audio_to_htsat(weights: Mapping[str, torch.Tensor]) -> Weights:
    """transformers' ClapAudioEncoder state dict -> HTS-AT's (LAION-CLAP's) names."""
    out: Weights = {}
    qkv: Dict[str, Dict[str, torch.Tensor]] = {}  # "layers.i.blocks.j.attn.qkv.weight" -> {"query": ...}
    for block, rest, value in split_blocks(weights, "batch_norm.", "bn0.", out):
        projection, _, param = rest.removeprefix("attention.self.").partition(".")
        if rest.startswith("attention.self.") and projection in HF_QKV:
            qkv.setdefault(f"{block}.attn.qkv.{param}", {})[projection] = value
        else:
            out[f"{block}.{renamed(rest, HF_BLOCK_NAMES)}"] = value
    for key, parts in qkv.items():
        if set(parts) != set(HF_QKV):
            raise ValueError(f"transformers ClapModel: {key} needs query, key and value, found {sorted(parts)}")
        out[key] = torch.cat([parts[p] for p in HF_QKV])
    return out


def htsat_to_hf_audio(weights: Mapping[str, torch.Tensor]) -> Weights:
    """HTS-AT's (LAION-CLAP's) state dict -> transformers' ClapAudioEncoder names (the inverse)."""
    ours_to_hf = {ours: hf for hf, ours in HF_BLOCK_NAMES.items()}
    out: Weights = {}
    for block, rest, value in split_blocks(weights, "bn0.", "batch_norm.", out):
        if rest.startswith("attn.qkv."):
            for projection, chunk in zip(HF_QKV, value.chunk(3)):
                out[f"{block}.attention.self.{projection}.{rest[len('attn.qkv.'):]}"] = chunk.clone()
        else:
            out[f"{block}.{renamed(rest, ours_to_hf)}"] = value
    return out


def two_layer_head(weights: Mapping[str, torch.Tensor], first: str, second: str) -> Weights:
    """A Linear-ReLU-Linear head under our MLP's names (0.*, 2.*) from its two Linear layers' prefixes."""
    return {
        f"{index}.{param}": weights[f"{prefix}.{param}"]
        for index, prefix in ((0, first), (2, second))
        for param in ("weight", "bias")
        if f"{prefix}.{param}" in weights
    }


def with_prefix(weights: Mapping[str, torch.Tensor], prefix: str, add: str = "") -> Weights:
    """The entries under ``prefix``, with it replaced by ``add``."""
    return {add + key[len(prefix) :]: value for key, value in weights.items() if key.startswith(prefix)}


def head_prefixes(*linears: str) -> Tuple[str, ...]:
    """The keys two_layer_head takes from these Linear layers' prefixes."""
    return tuple(f"{linear}.{param}" for linear in linears for param in ("weight", "bias"))


def has_prefix(weights: Mapping[str, torch.Tensor], *prefixes: str) -> bool:
    return any(key.startswith(prefixes) for key in weights)


def recognise(weights: Weights) -> Layout:
    """The layout of a flat state dict (``module.`` already removed), its parts and the keys in none of them."""
    name, parts, taken = parts_of(weights)
    left_out = tuple(key for key in weights if not key.startswith(taken))
    return Layout(name, parts, left_out)


def parts_of(weights: Weights) -> Tuple[str, Dict[str, Weights], Tuple[str, ...]]:
    """The layout's name, its parts, and the prefixes of the keys the parts are made of."""
    if has_prefix(weights, "audio_model.audio_encoder.", "text_model."):
        parts = {
            "audio_encoder": hf_audio_to_htsat(with_prefix(weights, "audio_model.audio_encoder.")),
            "text_encoder": with_prefix(weights, "text_model.", "model."),
            "audio_projector": two_layer_head(weights, "audio_projection.linear1", "audio_projection.linear2"),
            "text_projector": two_layer_head(weights, "text_projection.linear1", "text_projection.linear2"),
            "temperature": with_prefix(weights, "logit_scale_a", "logit_scale"),
        }
        heads = head_prefixes("audio_projection.linear1", "audio_projection.linear2", "text_projection.linear")
        return "transformers ClapModel", parts, ("audio_model.audio_encoder.", "text_model.", "logit_scale_a", *heads)
    if has_prefix(weights, "audio_branch.", "text_branch."):
        parts = {
            "audio_encoder": with_prefix(weights, "audio_branch."),
            "text_encoder": with_prefix(weights, "text_branch.", "model."),
            "audio_projector": two_layer_head(weights, "audio_projection.0", "audio_projection.2"),
            "text_projector": two_layer_head(weights, "text_projection.0", "text_projection.2"),
            "temperature": with_prefix(weights, "logit_scale_a", "logit_scale"),
        }
        heads = head_prefixes("audio_projection.0", "audio_projection.2", "text_projection.0", "text_projection.2")
        return "LAION-CLAP release", parts, ("audio_branch.", "text_branch.", "logit_scale_a", *heads)
    if has_prefix(weights, "sed_model."):
        name = "HTS-AT Lightning checkpoint (sed_model.*)"
        return name, {"audio_encoder": with_prefix(weights, "sed_model.")}, ("sed_model.",)
    if has_prefix(weights, "audio_tower.", "text_tower."):
        parts = {
            "audio_encoder": with_prefix(weights, "audio_tower.encoder."),
            "text_encoder": with_prefix(weights, "text_tower.encoder."),
            "audio_projector": with_prefix(weights, "audio_tower.projector."),
            "text_projector": with_prefix(weights, "text_tower.projector."),
            "temperature": with_prefix(weights, "logit_scale"),
        }
        taken = ("audio_tower.encoder.", "text_tower.encoder.", "audio_tower.projector.", "text_tower.projector.")
        return "espnet2_slap model", parts, (*taken, "logit_scale")
    if "patch_embed.proj.weight" in weights:
        return "HTS-AT state dict", {"audio_encoder": dict(weights)}, ("",)
    if has_prefix(weights, "embeddings.word_embeddings.", "roberta.embeddings."):
        text = {("model." + key.removeprefix("roberta.")): value for key, value in weights.items()}
        return "transformers text encoder", {"text_encoder": text}, ("",)
    # Unknown: each loader names the keys it finds when none of them is its own.
    return "unrecognised state dict", {"audio_encoder": dict(weights), "text_encoder": dict(weights)}, ("",)


def transformers_weights_file(directory: Path) -> List[Path]:
    """The weight files of a transformers model directory (one file or the shards of its index)."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            return [directory / shard for shard in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return [directory / name]
    raise ValueError(
        f"{directory}: a directory without model.safetensors or pytorch_model.bin (not a transformers model)"
    )


def checkpoint_weights(path: str) -> Weights:
    """The tensors of a checkpoint file or transformers directory, read safely (checkpoints/reader.py),
    taken from under ``state_dict`` where they are nested there (Lightning, LAION-CLAP), ``module.`` removed."""
    location = Path(path)
    files = transformers_weights_file(location) if location.is_dir() else [location]
    weights: Weights = {}
    for file in files:
        content = read_checkpoint(file)
        if not isinstance(content, Mapping):
            raise ValueError(f"checkpoint {file}: expected a state dict, got {type(content).__name__}")
        state = content.get("state_dict", content)
        if not isinstance(state, Mapping):
            raise ValueError(f"checkpoint {file}: its state_dict is a {type(state).__name__}, not a dict")
        weights.update(
            {key.removeprefix("module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}
        )
    return weights


def read_layout(path: str) -> Layout:
    """The layout of the checkpoint at ``path`` (file or transformers directory), logged by name."""
    layout = recognise(checkpoint_weights(path))
    found = ", ".join(f"{part} ({len(w)} tensors)" for part, w in layout.parts.items() if w)
    logging.info(f"checkpoint {path}: {layout.name}; parts: {found or 'none'}")
    if layout.left_out:
        logging.info(
            f"checkpoint {path}: {len(layout.left_out)} entries belong to no part and are left out: "
            f"{grouped_keys(layout.left_out)}"
        )
    return layout


def grouped_keys(keys: Sequence[str]) -> str:
    """Keys named by their first component, with counts: "audio_transform.* (4), logit_scale_t"."""
    groups: Dict[str, int] = {}
    for key in keys:
        head, dot, _ = key.partition(".")
        group = f"{head}.*" if dot else head
        groups[group] = groups.get(group, 0) + 1
    return ", ".join(f"{group} ({count})" if group.endswith("*") else group for group, count in groups.items())


def load_weights(
    module: torch.nn.Module,
    weights: Mapping[str, torch.Tensor],
    source: str,
    noun: str,
    kind: str,
    shape_hint: str,
    no_match_hint: str,
    ignored_reason: Callable[[str], str] = lambda key: "",
    strict: bool = False,
) -> None:
    """Copies ``weights`` (the module's own names) into ``module`` and logs what was loaded, missing and ignored.

    ValueError, with nothing loaded, when no key matches (another architecture), when a shape differs (another
    size) or, with ``strict``, when a key is missing or unexpected. Otherwise missing keys keep their
    initialisation and unexpected keys are ignored, with a warning unless ``ignored_reason`` gives a reason.
    """
    own = module.state_dict()
    matching = [key for key in own if key in weights]
    if not matching:
        found = ", ".join(list(weights)[:5]) or "no tensors"
        raise ValueError(
            f"{source} holds no {kind} weights: none of its {len(weights)} keys ({found}, ...) is a key of this "
            f"{noun} (e.g. {next(iter(own), '')}); {no_match_hint}"
        )
    for key in matching:
        if weights[key].shape != own[key].shape:
            raise ValueError(
                f"{source}: {key} has shape {tuple(weights[key].shape)} in the checkpoint but "
                f"{tuple(own[key].shape)} in the {noun}; {shape_hint}"
            )
    missing = [key for key in own if key not in weights]
    ignored: Dict[str, List[str]] = {}  # reason -> the keys it covers
    unexpected = []
    for key in weights:
        if key not in own:
            reason = ignored_reason(key)
            if reason:
                ignored.setdefault(reason, []).append(key)
            else:
                unexpected.append(key)
    if strict and (missing or unexpected):
        raise ValueError(
            f"{source}: the {noun} of the checkpoint ({', '.join(weights)}) does not have the structure of this "
            f"model's ({', '.join(own)}); {shape_hint}"
        )
    module.load_state_dict({key: weights[key] for key in matching}, strict=False)
    logging.info(f"{source}: loaded {len(matching)} of the {noun}'s {len(own)} tensors")
    if ignored:
        lines = "".join(f"\n  {reason}: {', '.join(keys)}" for reason, keys in ignored.items())
        count = sum(map(len, ignored.values()))
        logging.info(f"{source}: ignored {count} entries not used here:{lines}")
    if unexpected:
        logging.warning(f"{source}: ignored {len(unexpected)} unexpected keys: {', '.join(unexpected)}")
    if missing:
        logging.warning(f"{source}: {len(missing)} {noun} tensors missing (left as initialised): {', '.join(missing)}")


def text_buffer_reason(key: str) -> str:
    """Why a transformers text model's entry is not needed, or ""."""
    return "buffers transformers recomputes" if key.endswith(RECOMPUTED_TEXT_BUFFERS) else ""


def require_parts(layout: Layout, parts: Sequence[str], path: str) -> None:
    """ValueError naming the layout and what it holds when a requested part is unknown or absent."""
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"init parts: unknown part {part!r}; choose from {list(PARTS)}")
        if not layout.parts.get(part):
            held = [name for name, weights in layout.parts.items() if weights]
            raise ValueError(f"init checkpoint {path} [{layout.name}] has no {part}; it holds {held or 'nothing'}")
