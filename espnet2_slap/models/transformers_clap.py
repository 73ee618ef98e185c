"""A trained model as a transformers ``ClapModel`` directory (config.json, model.safetensors, the feature
extractor's and the tokenizer's files), for ``ClapModel.from_pretrained`` and the zero-shot audio pipeline.

What ClapModel can express: LAION-CLAP's log-mel front end (LogMelFrontend with slaney mel filters, no
``normalize`` layer), HTS-AT (non-overlapping patches), a RoBERTa text encoder with its pooler, and two-layer
heads Linear-ReLU-Linear whose hidden size is the projection size. A projector with BatchNorm is folded into
its first Linear (BatchNorm in eval mode is affine), so the SLAP reference's text projector exports too.
CLAP exports exactly, temperature included. SLAP exports its projection space: its predictions (projector then
predictor, four Linear layers) do not fit ClapModel's two-layer projection; SLAP has no temperature, so the
export's logit scale is ClapConfig's default 1/0.07 (only the pipeline's softmax sharpness depends on it).
Anything else is refused with the list of what does not fit.
"""

import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from espnet2_slap.encoders.hf_transformer_text_encoder import HFTransformerTextEncoder
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.layers.logmel import LogMelFrontend
from espnet2_slap.layers.mlp import MLP
from espnet2_slap.models.clap import CLAPModel
from espnet2_slap.models.two_tower import TwoTowerModel
from espnet2_slap.utils.checkpoint_layouts import htsat_to_hf_audio

# RoBERTa config entries ClapTextConfig takes over as they are.
TEXT_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)
# LogMelFrontend settings that ClapFeatureExtractor's slaney path computes, and what it cannot change.
FIXED_FRONTEND = dict(center=True, mel_norm="slaney", mel_scale="slaney", amin=1e-10)
# The logit scale of a SLAP export (SLAP has no temperature): ClapConfig's default, 1 / 0.07.
SLAP_LOGIT_SCALE = math.log(1 / 0.07)


def unexpressible(model: TwoTowerModel) -> List[str]:
    """What of ``model`` a ClapModel cannot hold (empty when it exports)."""
    problems = []
    frontend = model.frontend
    if not isinstance(frontend, LogMelFrontend):
        problems.append(f"frontend {type(frontend).__name__} (ClapFeatureExtractor computes LogMelFrontend's log-mel)")
    else:
        mel = frontend.mel
        settings = dict(
            center=frontend.center,
            mel_norm=mel.mel_scale.norm,
            mel_scale=mel.mel_scale.mel_scale,
            amin=frontend.amin,
        )
        for name, value in FIXED_FRONTEND.items():
            if settings[name] != value:
                problems.append(f"frontend_conf {name}: {settings[name]} (ClapFeatureExtractor: {value})")
        if mel.spectrogram.pad_mode != "reflect" or mel.spectrogram.win_length != frontend.n_fft:
            problems.append("frontend_conf pad_mode/win_length (ClapFeatureExtractor: reflect, win_length = n_fft)")
    if model.normalize is not None:
        problems.append(f"normalize {type(model.normalize).__name__} (ClapModel has no input normalisation)")
    encoder = model.audio_tower.encoder
    if not isinstance(encoder, HTSATAudioEncoder):
        problems.append(f"audio_encoder {type(encoder).__name__} (ClapModel's audio model is HTS-AT)")
    elif isinstance(frontend, LogMelFrontend) and ((encoder.clip_frames - 1) * frontend.hop_length) % frontend.fs:
        problems.append(f"htsat clip_frames {encoder.clip_frames} (ClapFeatureExtractor needs whole seconds)")
    text = model.text_tower.encoder
    if not isinstance(text, HFTransformerTextEncoder) or text.model.config.model_type != "roberta":
        problems.append(f"text_encoder {type(text).__name__} (ClapModel's text model is RoBERTa: hf_transformer)")
    elif text.pooling != "pooler":
        problems.append(f"text_encoder_conf pooling: {text.pooling} (ClapModel uses RoBERTa's pooler)")
    elif getattr(text.model.config, "position_embedding_type", "absolute") != "absolute":
        problems.append("text position_embedding_type (ClapModel: absolute)")
    for tower in ("audio", "text"):
        projector = getattr(model, f"{tower}_tower").projector
        linears = [m for m in projector if isinstance(m, torch.nn.Linear)]
        others = [type(m).__name__ for m in projector if not isinstance(m, (torch.nn.Linear, torch.nn.ReLU))]
        if len(linears) != 2 or others not in ([], ["BatchNorm1d"]):
            problems.append(f"{tower} projector {projector} (ClapModel: Linear-ReLU-Linear)")
        elif linears[0].out_features != linears[1].out_features:
            problems.append(
                f"{tower} projector hidden size {linears[0].out_features} != projection size "
                f"{linears[1].out_features} (ClapModel's projection is [in, projection_dim, projection_dim])"
            )
    return problems


def folded_head(projector: MLP) -> Dict[str, torch.Tensor]:
    """The projector as ClapProjectionLayer's linear1/linear2; a BatchNorm (eval mode) folded into linear1."""
    linears = [m for m in projector if isinstance(m, torch.nn.Linear)]
    weight = linears[0].weight.detach().clone()
    bias = torch.zeros(weight.size(0)) if linears[0].bias is None else linears[0].bias.detach().clone()
    norms = [m for m in projector if isinstance(m, torch.nn.BatchNorm1d)]
    if norms:
        norm = norms[0]
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
        weight = weight * scale[:, None]
        bias = (bias - norm.running_mean) * scale + norm.bias.detach()
    return {
        "linear1.weight": weight,
        "linear1.bias": bias,
        "linear2.weight": linears[1].weight.detach().clone(),
        "linear2.bias": linears[1].bias.detach().clone(),
    }


def logit_scale(model: TwoTowerModel) -> float:
    """CLAP's logit scale (log(1 / T)); for SLAP, SLAP_LOGIT_SCALE."""
    return model.logit_scale.item() if isinstance(model, CLAPModel) else SLAP_LOGIT_SCALE


def clap_config(model: TwoTowerModel):
    """The transformers ClapConfig of an exportable model."""
    from transformers import ClapConfig

    encoder = model.audio_tower.encoder
    stages = encoder.layers
    attention = [stage.blocks[0].attn for stage in stages]
    text_config = {key: getattr(model.text_tower.encoder.model.config, key) for key in TEXT_CONFIG_KEYS}
    projection_dim = model.audio_tower.projector[-1].out_features
    patch = encoder.patch_embed.proj
    audio_config = dict(
        num_mel_bins=encoder.bn0.num_features,
        spec_size=encoder.spec_size,
        patch_size=patch.kernel_size[0],
        patch_stride=list(patch.stride),
        patch_embeds_hidden_size=patch.out_channels,
        depths=[len(stage.blocks) for stage in stages],
        num_attention_heads=[attn.relative_position_bias_table.size(1) for attn in attention],
        window_size=stages[0].blocks[0].window_size,
        mlp_ratio=stages[0].blocks[0].mlp.fc1.out_features / patch.out_channels,
        hidden_size=encoder.output_size(),
        layer_norm_eps=encoder.norm.eps,
        enable_fusion=False,
        drop_path_rate=0.0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        projection_dim=projection_dim,
    )
    return ClapConfig(
        text_config=dict(text_config, projection_dim=projection_dim),
        audio_config=audio_config,
        projection_dim=projection_dim,
        logit_scale_init_value=math.exp(logit_scale(model)),
    )


def clap_state_dict(model: TwoTowerModel) -> Dict[str, torch.Tensor]:
    """Our weights under ClapModel's names (the audio encoder's query/key/value split from qkv)."""
    state: Dict[str, torch.Tensor] = {}
    audio = htsat_to_hf_audio(model.audio_tower.encoder.state_dict())
    state.update({f"audio_model.audio_encoder.{key}": value for key, value in audio.items()})
    text = model.text_tower.encoder.model.state_dict()
    state.update({f"text_model.{key}": value for key, value in text.items()})
    for tower in ("audio", "text"):
        head = folded_head(getattr(model, f"{tower}_tower").projector)
        state.update({f"{tower}_projection.{key}": value for key, value in head.items()})
    state["logit_scale_a"] = state["logit_scale_t"] = torch.tensor(logit_scale(model))
    return state


def build_clap_model(model: TwoTowerModel):
    """A transformers ClapModel holding ``model``'s weights (eval mode); ValueError listing what does not fit."""
    from transformers import ClapModel

    problems = unexpressible(model)
    if problems:
        raise ValueError("this model cannot be expressed as a transformers ClapModel:\n  " + "\n  ".join(problems))
    clap = ClapModel(clap_config(model)).eval()
    state = clap_state_dict(model)
    own = clap.state_dict()
    # buffers ClapModel computes itself: position and token type ids, relative position indices
    missing = [k for k in own if k not in state and not k.endswith(("_ids", "relative_position_index"))]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(f"ClapModel export: missing {missing}, unexpected {unexpected} (a bug: please report it)")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise ValueError(f"ClapModel export: {key} is {tuple(value.shape)}, ClapModel's {tuple(own[key].shape)}")
    clap.load_state_dict(state, strict=False)
    return clap


def feature_extractor(model: TwoTowerModel):
    """The ClapFeatureExtractor computing our front end on (up to) one clip of the model's length."""
    from transformers import ClapFeatureExtractor

    frontend = model.frontend
    seconds = (model.audio_tower.encoder.clip_frames - 1) * frontend.hop_length // frontend.fs
    return ClapFeatureExtractor(
        feature_size=frontend.n_mels,
        sampling_rate=frontend.fs,
        hop_length=frontend.hop_length,
        max_length_s=seconds,
        fft_window_size=frontend.n_fft,
        frequency_min=frontend.mel.mel_scale.f_min,
        frequency_max=frontend.mel.mel_scale.f_max,
        truncation="rand_trunc",
        padding="repeatpad",
    )


@torch.no_grad()
def check_same_embeddings(model: TwoTowerModel, clap, seed: int = 0) -> Tuple[float, float]:
    """Relative max differences (audio, text) between our projections and ClapModel's on a random log-mel
    clip and random token ids; the export is refused above 1e-4."""
    g = torch.Generator().manual_seed(seed)
    encoder = model.audio_tower.encoder
    mel = -60.0 + 20.0 * torch.randn(1, encoder.clip_frames, encoder.bn0.num_features, generator=g)
    config = model.text_tower.encoder.model.config
    ids = torch.randint(3, config.vocab_size, (1, 12), generator=g)
    ids[:, 0], ids[:, -1] = config.bos_token_id, config.eos_token_id
    ours_audio = model.audio_tower(mel, torch.tensor([mel.size(1)]))[1]
    ours_text = model.text_tower(ids, torch.tensor([ids.size(1)]))[1]
    theirs_audio = clap.audio_projection(clap.audio_model(input_features=mel[:, None]).pooler_output)
    theirs_text = clap.text_projection(clap.text_model(input_ids=ids).pooler_output)
    diffs = tuple(
        float((a - b).abs().max() / b.abs().max()) for a, b in ((ours_audio, theirs_audio), (ours_text, theirs_text))
    )
    if max(diffs) > 1e-4:
        raise ValueError(f"ClapModel export: embeddings differ from ours by {diffs} (relative); not written")
    return diffs


def export_clap(model: TwoTowerModel, tokenizer_dir: str, out_dir: Path, note: Dict) -> None:
    """Writes the ClapModel directory ``out_dir``: weights and config, ClapFeatureExtractor, the tokenizer of
    ``tokenizer_dir``, and ``espnet2_slap_export.json`` (``note`` and what the export carries)."""
    from transformers import AutoTokenizer

    model = model.eval()
    clap = build_clap_model(model)
    audio_diff, text_diff = check_same_embeddings(model, clap)
    space = "projection"
    if isinstance(model, CLAPModel):
        carries = "CLAP exported exactly: encoders, projections and temperature"
    else:
        carries = (
            "SLAP's projection space (context towers' encoders and projectors); its predictions, which SLAP "
            "retrieves with by default, are not in the export (they do not fit ClapModel's two-layer "
            "projection); logit scale: ClapConfig's default 1/0.07 (SLAP has no temperature)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    clap.save_pretrained(str(out_dir))
    feature_extractor(model).save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True).save_pretrained(str(out_dir))
    info = dict(
        note, space=space, carries=carries, check_max_relative_difference=dict(audio=audio_diff, text=text_diff)
    )
    (out_dir / "espnet2_slap_export.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    largest = max(audio_diff, text_diff)
    logging.info(f"wrote transformers ClapModel {out_dir}: {carries}; embeddings equal ours within {largest:.2e}")
