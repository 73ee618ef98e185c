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

The other way, ``check_frontend_against_extractor`` compares a ClapModel directory's feature extractor
(preprocessor_config.json) with the front end of a model its audio encoder is loaded into
(``model_conf init``), and refuses features that would differ.
"""

import json
import logging
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet2_slap.checkpoints.layouts import htsat_to_hf_audio
from espnet2_slap.encoders.hf_transformer_text_encoder import HFTransformerTextEncoder
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.layers.logmel import LogMelFrontend
from espnet2_slap.layers.mlp import MLP
from espnet2_slap.models.clap import CLAPModel
from espnet2_slap.models.two_tower import TwoTowerModel

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
# ClapFeatureExtractor fields that set the features of a clip of the model's length, each with the frontend_conf
# key of LogMelFrontend that computes it. Not listed: padding, padding_value (clips shorter than the model's
# length only), top_db (stored, but the extractor's log-mel does not use it). ``truncation`` picks the filter
# bank ("fusion": HTK filters without norm, as torchaudio's defaults; otherwise slaney's), ``max_length_s`` the
# clip length (HTS-AT's clip_frames); both are compared too.
EXTRACTOR_FIELDS = (
    ("sampling_rate", "fs"),
    ("feature_size", "n_mels"),
    ("fft_window_size", "n_fft"),
    ("hop_length", "hop_length"),
    ("frequency_min", "fmin"),
    ("frequency_max", "fmax"),
)
# The layout name checkpoints/layouts.py gives a transformers ClapModel.
CLAP_LAYOUT = "transformers ClapModel"
# The caption of the export's text check.
CHECK_CAPTION = "a calm piano melody with soft drums"
# The logit scale of a SLAP export (SLAP has no temperature): ClapConfig's default, 1 / 0.07.
SLAP_LOGIT_SCALE = math.log(1 / 0.07)


def frontend_settings(frontend: LogMelFrontend) -> Dict[str, object]:
    """LogMelFrontend's settings by frontend_conf key, as its transforms hold them (fmax None: fs / 2)."""
    mel = frontend.mel
    return dict(
        fs=frontend.fs,
        n_mels=frontend.n_mels,
        n_fft=frontend.n_fft,
        win_length=mel.spectrogram.win_length,
        hop_length=frontend.hop_length,
        fmin=mel.mel_scale.f_min,
        fmax=mel.mel_scale.f_max,
        center=frontend.center,
        pad_mode=mel.spectrogram.pad_mode,
        mel_norm=mel.mel_scale.norm,
        mel_scale=mel.mel_scale.mel_scale,
        amin=frontend.amin,
    )


def unexpressible(model: TwoTowerModel) -> List[str]:
    """What of ``model`` a ClapModel cannot hold (empty when it exports)."""
    problems = []
    frontend = model.frontend
    if not isinstance(frontend, LogMelFrontend):
        problems.append(f"frontend {type(frontend).__name__} (ClapFeatureExtractor computes LogMelFrontend's log-mel)")
    else:
        settings = frontend_settings(frontend)
        for name, value in FIXED_FRONTEND.items():
            if settings[name] != value:
                problems.append(f"frontend_conf {name}: {settings[name]} (ClapFeatureExtractor: {value})")
        if settings["pad_mode"] != "reflect" or settings["win_length"] != frontend.n_fft:
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


def shown(value: object) -> str:
    """A setting as a config writes it: 50.0 as 50, None as null."""
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def differ(ours: object, theirs: object) -> bool:
    """Whether two settings differ (numbers by value: 50 and 50.0 are the same)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (ours, theirs))
    return not math.isclose(float(ours), float(theirs), rel_tol=1e-9) if numbers else ours != theirs


def frontend_mismatches(model: TwoTowerModel, config_file: Path, conf: Dict) -> List[str]:
    """Each setting in which ``model``'s front end (and HTS-AT's clip length) would compute other features than
    the ClapFeatureExtractor of ``conf`` (read from ``config_file``): the key to set, our value, theirs."""
    from transformers import ClapFeatureExtractor

    fields = [field for field, _ in EXTRACTOR_FIELDS] + ["max_length_s", "truncation"]
    extractor = ClapFeatureExtractor(**{field: conf[field] for field in fields if field in conf})

    def theirs(field: str) -> str:
        default = "" if field in conf else " (not set there: ClapFeatureExtractor's default)"
        return f"{field} {shown(getattr(extractor, field))} in {config_file}{default}"

    frontend = model.frontend
    if not isinstance(frontend, LogMelFrontend):
        return [
            f"frontend: {type(frontend).__name__} here; the ClapFeatureExtractor of {config_file} computes "
            "LogMelFrontend's log-mel (frontend: logmel)"
        ]
    ours = frontend_settings(frontend)
    problems = [
        f"frontend_conf {key}: {shown(ours[key])} here, {theirs(field)}"
        for field, key in EXTRACTOR_FIELDS
        if differ(ours[key], getattr(extractor, field))
    ]
    if ours["win_length"] != ours["n_fft"]:
        problems.append(
            f"frontend_conf win_length: {ours['win_length']} here; ClapFeatureExtractor's window is its FFT size, "
            f"{theirs('fft_window_size')} (leave win_length unset)"
        )
    # "fusion" computes torchaudio's default filters (HTK mel scale, no norm); the other truncations slaney's
    bank = dict(mel_scale="htk", mel_norm=None) if extractor.truncation == "fusion" else FIXED_FRONTEND
    for key in ("mel_scale", "mel_norm"):
        if ours[key] != bank[key]:
            problems.append(
                f"frontend_conf {key}: {shown(ours[key])} here, {shown(bank[key])} for {theirs('truncation')}"
            )
    for key in ("center", "amin"):
        if ours[key] != FIXED_FRONTEND[key]:
            problems.append(
                f"frontend_conf {key}: {ours[key]} here; ClapFeatureExtractor always uses {FIXED_FRONTEND[key]}"
            )
    if ours["pad_mode"] != "reflect":
        problems.append(f"frontend_conf pad_mode: {ours['pad_mode']} here; ClapFeatureExtractor always uses reflect")
    encoder = model.audio_tower.encoder
    if isinstance(encoder, HTSATAudioEncoder):
        # ClapFeatureExtractor's clip: max_length_s seconds, max_length // hop + 1 frames
        frames = int(extractor.max_length_s * extractor.sampling_rate) // extractor.hop_length + 1
        if encoder.clip_frames != frames:
            problems.append(
                f"audio_encoder_conf clip_frames: {encoder.clip_frames} here, {theirs('max_length_s')} "
                f"({frames} frames; HTS-AT stretches a clip of clip_frames to its input width, so the length "
                "sets the time scale the encoder sees)"
            )
    return problems


def check_frontend_against_extractor(model: TwoTowerModel, path: str, layout_name: str, parts: Sequence[str]) -> None:
    """``model_conf init`` of a transformers ClapModel's audio_encoder: ValueError naming each setting in which
    ``model``'s front end (and HTS-AT's clip length) differs from the ClapFeatureExtractor of the
    preprocessor_config.json beside the weights (the features the audio encoder was made for), with both values
    and the key to set; a warning when there is no such file (the front end is then unchecked). Other layouts,
    or parts without the audio encoder: nothing to check."""
    if layout_name != CLAP_LAYOUT or "audio_encoder" not in parts:
        return
    location = Path(path)
    config_file = (location if location.is_dir() else location.parent) / "preprocessor_config.json"
    source = f"model_conf init {path}"
    if not config_file.is_file():
        logging.warning(
            f"{source}: no {config_file.name} in {config_file.parent}, so the front end could not be checked against "
            "the feature extractor the audio encoder was made for; make sure frontend_conf computes its features"
        )
        return
    conf = json.loads(config_file.read_text(encoding="utf-8"))
    kind = conf.get("feature_extractor_type", "ClapFeatureExtractor")
    if kind != "ClapFeatureExtractor":
        logging.warning(f"{source}: {config_file} describes a {kind}, not a ClapFeatureExtractor; front end unchecked")
        return
    problems = frontend_mismatches(model, config_file, conf)
    if problems:
        raise ValueError(
            f"{source}: the front end does not compute the features of the checkpoint's ClapFeatureExtractor "
            f"({config_file}); set (or, if that file does not describe the features the model was trained on, "
            "correct it):\n  " + "\n  ".join(problems)
        )
    logging.info(f"{source}: the front end computes the features of {config_file}")


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


def clip_samples(model: TwoTowerModel) -> int:
    """Samples of one clip of the model's length: HTS-AT's clip_frames frames of the front end's hop (centred
    frames), i.e. the feature extractor's max_length_s seconds."""
    return (model.audio_tower.encoder.clip_frames - 1) * model.frontend.hop_length


def check_waveform(samples: int, fs: int, seed: int = 0) -> np.ndarray:
    """A deterministic clip (S,) float32: three tones (at 0.5 %, 3 % and 11 % of the sampling rate, so inside
    any front end's band) with seeded phases, and seeded noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / fs
    wave = 0.02 * rng.standard_normal(samples)
    for share, amplitude in ((0.005, 0.3), (0.03, 0.2), (0.11, 0.1)):
        wave += amplitude * np.sin(2 * np.pi * share * fs * t + rng.uniform(0, 2 * np.pi))
    return wave.astype(np.float32)


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


@torch.no_grad()
def check_same_embeddings(
    model: TwoTowerModel,
    clap,
    extractor,
    tokenizer,
    tokenize: Optional[Callable[[str], np.ndarray]] = None,
    seed: int = 0,
) -> Tuple[float, float]:
    """Relative max differences (audio, text) between our projections and ClapModel's, each side from its own
    preprocessing; the export is refused above 1e-4.

    Audio: one deterministic clip (``check_waveform``) of exactly the model's length, (clip_frames - 1) * hop
    samples = max_length_s seconds. ClapFeatureExtractor neither pads nor crops a clip of that length (repeatpad
    and rand_trunc act only on shorter and longer ones), so both sides see the same samples. Ours: the model's
    front end, normalize (if any) and audio tower (``encode_audio``, what espnet2_slap.inference runs on each
    window); theirs: ``extractor`` (the ClapFeatureExtractor the export saves), audio_model and audio_projection
    (get_audio_features before its normalisation). Front-end buffers or settings that differ from the
    extractor's fail here; a check that fed one log-mel to both sides could not see them.
    Text: CHECK_CAPTION through ``tokenizer`` (the one the export saves), text_model and text_projection; ours
    through ``tokenize`` (our preprocessor's tokenisation, whose ids must be the tokenizer's; default: the
    tokenizer's ids) and the text tower."""
    samples = clip_samples(model)
    if samples != extractor.nb_max_samples:
        raise ValueError(
            f"ClapModel export: a clip of the model is {samples} samples, the feature extractor's "
            f"{extractor.nb_max_samples} (a bug: please report it)"
        )
    wave = check_waveform(samples, model.frontend.fs, seed)
    ours_audio = model.encode_audio(torch.from_numpy(wave)[None], torch.tensor([samples])).projection
    features = extractor(wave, sampling_rate=extractor.sampling_rate, return_tensors="pt")
    audio = clap.audio_model(input_features=features["input_features"].float(), is_longer=features["is_longer"])
    theirs_audio = clap.audio_projection(audio.pooler_output)
    encoded = tokenizer(CHECK_CAPTION, return_tensors="pt")
    ids = encoded["input_ids"]
    if tokenize is not None:
        ours_ids = [int(i) for i in tokenize(CHECK_CAPTION)]
        if ours_ids != ids[0].tolist():
            raise ValueError(
                f"ClapModel export: the tokenizer it saves gives the ids {ids[0].tolist()} for {CHECK_CAPTION!r}, "
                f"our preprocessor {ours_ids}; not written"
            )
    ours_text = model.encode_text(ids, torch.tensor([ids.size(1)])).projection
    text = clap.text_model(input_ids=ids, attention_mask=encoded["attention_mask"])
    theirs_text = clap.text_projection(text.pooler_output)
    diffs = (relative_difference(ours_audio, theirs_audio), relative_difference(ours_text, theirs_text))
    if max(diffs) > 1e-4:
        raise ValueError(
            f"ClapModel export: from the same waveform and caption, ClapModel's embeddings differ from ours by "
            f"{diffs[0]:.2e} (audio) and {diffs[1]:.2e} (text), relative; above 1e-4: not written"
        )
    return diffs


def export_clap(
    model: TwoTowerModel,
    tokenizer_dir: str,
    out_dir: Path,
    note: Dict,
    tokenize: Optional[Callable[[str], np.ndarray]] = None,
) -> None:
    """Writes the ClapModel directory ``out_dir``: weights and config, ClapFeatureExtractor, the tokenizer of
    ``tokenizer_dir``, and ``espnet2_slap_export.json`` (``note`` and what the export carries), once
    ``check_same_embeddings`` passed (``tokenize``: our preprocessor's tokenisation, to compare with the
    tokenizer's)."""
    from transformers import AutoTokenizer

    model = model.eval()
    clap = build_clap_model(model)
    extractor = feature_extractor(model)
    # ClapModel takes no token_type_ids: a tokenizer that gives them (a generic PreTrainedTokenizerFast) would
    # break transformers 4's zero-shot pipeline, so the saved one gives input ids and attention mask only
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_dir, local_files_only=True, model_input_names=["input_ids", "attention_mask"]
    )
    audio_diff, text_diff = check_same_embeddings(model, clap, extractor, tokenizer, tokenize)
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
    extractor.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    info = dict(
        note,
        space=space,
        carries=carries,
        check="one clip of the model's length and one caption, each side through its own preprocessing",
        check_max_relative_difference=dict(audio=audio_diff, text=text_diff),
    )
    (out_dir / "espnet2_slap_export.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    largest = max(audio_diff, text_diff)
    logging.info(f"wrote transformers ClapModel {out_dir}: {carries}; embeddings equal ours within {largest:.2e}")
