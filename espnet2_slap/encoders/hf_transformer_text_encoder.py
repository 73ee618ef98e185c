"""Any Hugging Face transformers encoder (RoBERTa, BERT, ...) as a pooled text tower, offline."""

import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from typeguard import typechecked

from espnet2_slap.checkpoints.layouts import load_weights, read_layout, require_parts, text_buffer_reason
from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.layers.pooling import masked_mean

POOLINGS = ("pooler", "cls", "mean")
SHIPPED_CONFIGS = Path(__file__).parent / "hf_configs"


def load_config_dict(config: Union[str, Dict[str, Any]]) -> Dict[str, Any]:
    """A config dict as given, or read from a JSON file path, or shipped with this package by name
    (``roberta-base``: the paper's text tower, random init without any download)."""
    if isinstance(config, dict):
        return dict(config)
    path = Path(config)
    if not path.is_file():
        path = SHIPPED_CONFIGS / f"{config}.json"
    if not path.is_file():
        shipped = sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.json"))
        raise ValueError(f"hf_transformer: config {config!r} is neither a JSON file nor one of {shipped}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_text_encoder_state_dict(encoder: torch.nn.Module, weights: Dict[str, torch.Tensor], source: str) -> None:
    """Copies ``weights`` (the encoder's own names: ``model.*`` for this class) into a text encoder; ValueError
    when no key matches or a shape differs. transformers' recomputed buffers (position and token type ids) are
    ignored; other differences are logged (checkpoints/layouts.load_weights)."""
    load_weights(
        encoder,
        weights,
        source,
        noun="text encoder",
        kind="text encoder",
        shape_hint="text_encoder_conf config must describe the checkpoint's text model (RoBERTa base, the "
        "shipped roberta-base config, for LAION-CLAP releases and laion/clap-* models)",
        no_match_hint="expected a LAION-CLAP release (text_branch.*), a transformers ClapModel (text_model.*), "
        "an espnet2_slap model (text_tower.encoder.*) or a transformers text model's state dict",
        ignored_reason=text_buffer_reason,
    )


class HFTransformerTextEncoder(AbsTextEncoder):
    """Token ids (B, L) -> (B, hidden_size) with a transformers ``AutoModel``.

    Built from exactly one of ``model_name_or_path`` (a local directory; nothing is downloaded) or ``config``
    (random initialisation from a dict for ``AutoConfig.for_model``, a config.json path, or the name of a config
    shipped in ``hf_configs/``, e.g. ``roberta-base``). ESPnet's HuggingFaceTransformersEncoder is
    an ASR encoder that only loads by name and returns sequences, hence this class.

    pooling: ``pooler`` (the model's ``pooler_output``: RoBERTa's tanh layer over position 0, which must be
    ``<s>``; the preprocessor adds the special tokens), ``cls`` (hidden state at position 0) or ``mean``.
    init_checkpoint: text weights to start from, read safely from any layout that holds them
    (checkpoints/layouts.py: a LAION-CLAP release's ``text_branch``, a transformers ClapModel's
    ``text_model``, an espnet2_slap model's text encoder, a RoBERTa state dict); the architecture comes from
    ``config`` or ``model_name_or_path`` and must match it. ``--init`` would overwrite them.
    """

    @typechecked
    def __init__(
        self,
        model_name_or_path: Optional[str] = None,
        config: Union[str, Dict[str, Any], None] = None,
        pooling: str = "pooler",
        init_checkpoint: Optional[str] = None,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if (model_name_or_path is None) == (config is None):
            raise ValueError("hf_transformer: give exactly one of model_name_or_path (a local dir) or config")
        if pooling not in POOLINGS:
            raise ValueError(f"hf_transformer: pooling must be one of {POOLINGS}, got {pooling!r}")
        if model_name_or_path is not None:
            self.model = AutoModel.from_pretrained(model_name_or_path, local_files_only=True)
        else:
            config = load_config_dict(config)
            model_type = config.pop("model_type", None)
            if model_type is None:
                raise ValueError("hf_transformer: config needs a model_type, e.g. roberta")
            self.model = AutoModel.from_config(AutoConfig.for_model(model_type, **config))
        if pooling == "pooler" and getattr(self.model, "pooler", None) is None:
            raise ValueError(f"hf_transformer: {type(self.model).__name__} has no pooler; use pooling: cls or mean")
        self.pooling = pooling
        self.pad_token_id = self.model.config.pad_token_id or 0
        if init_checkpoint is not None:
            layout = read_layout(init_checkpoint)
            require_parts(layout, ["text_encoder"], init_checkpoint)
            load_text_encoder_state_dict(
                self, layout.parts["text_encoder"], f"text init_checkpoint {init_checkpoint} [{layout.name}]"
            )

    def output_size(self) -> int:
        return self.model.config.hidden_size

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        pad = make_pad_mask(text_lengths, text, length_dim=1)
        out = self.model(input_ids=text.masked_fill(pad, self.pad_token_id), attention_mask=(~pad).long())
        if self.pooling == "pooler":
            return out.pooler_output
        if self.pooling == "cls":
            return out.last_hidden_state[:, 0]
        return masked_mean(out.last_hidden_state, text_lengths)
