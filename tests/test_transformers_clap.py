"""transformers' ClapModel both ways: a ClapModel directory (small random ClapConfig, no download) imported into
our CLAP gives transformers' embeddings; our model exported with slap_export gives ours back in transformers,
and the zero-shot audio pipeline runs on it. Also our front end against ClapFeatureExtractor, in dB; the export's
check from a waveform and a caption (it refuses front-end buffers a shared log-mel would pass); the import's check
of our front end against the directory's preprocessor_config.json."""

import json
import logging
import math
import re
import shutil

import numpy as np
import pytest
import torch
import yaml
from test_preprocessor import make_hf_tokenizer

from espnet2_slap.bin import slap_export
from espnet2_slap.layers.logmel import LogMelFrontend
from espnet2_slap.models.transformers_clap import build_clap_model, check_same_embeddings, feature_extractor
from espnet2_slap.tasks.slap import SLAPTask

TEXT = dict(
    vocab_size=300,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=40,
    layer_norm_eps=1e-12,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
AUDIO = dict(patch_embeds_hidden_size=16, depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 4, 8], hidden_size=128)
HTSAT = dict(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
PROJECTION = 24
ALL_PARTS = ["audio_encoder", "text_encoder", "audio_projector", "text_projector", "temperature"]
CLIP = 1001


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


@pytest.fixture(scope="module")
def hf_clap(tmp_path_factory):
    """(directory, ClapModel): every weight and BatchNorm statistic perturbed, so that none is a default."""
    from transformers import ClapConfig, ClapModel

    torch.manual_seed(0)
    model = ClapModel(ClapConfig(text_config=TEXT, audio_config=AUDIO, projection_dim=PROJECTION)).eval()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn_like(value))
                if name.endswith("running_var"):
                    value.abs_()
        model.logit_scale_a.fill_(math.log(50.0))
    out = tmp_path_factory.mktemp("hf_clap") / "clap"
    model.save_pretrained(str(out))
    return out, model


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return make_hf_tokenizer(tmp_path_factory.mktemp("tokenizer") / "roberta")


def write_config(path, tokenizer_dir, model="clap", **model_conf):
    """A training config (48 kHz LAION front end, HTS-AT and RoBERTa of the transformers model's sizes)."""
    conf = dict(
        frontend="logmel",
        normalize=None,
        audio_encoder="htsat",
        audio_encoder_conf=dict(HTSAT, drop_path_rate=0.0),
        text_encoder="hf_transformer",
        text_encoder_conf=dict(config=dict(model_type="roberta", **TEXT), pooling="pooler"),
        model=model,
        model_conf=dict(projection_dim=PROJECTION, projector_hidden=PROJECTION, **model_conf),
        token_type="hugging_face",
        bpemodel=str(tokenizer_dir),
        preprocessor_conf=dict(crop_seconds=10.0),
    )
    path.write_text(yaml.safe_dump(conf))
    return path


def build(config_path, *extra):
    args = SLAPTask.get_parser().parse_args(["--config", str(config_path), *extra])
    torch.manual_seed(1)
    return args, SLAPTask.build_model(args).eval()


def inputs(seed=0):
    """A batch of log-mels (2, 1001, 64) in dB and token ids (2, 11), unpadded, starting <s> and ending </s>."""
    g = torch.Generator().manual_seed(seed)
    mel = -50.0 + 15.0 * torch.randn(2, CLIP, 64, generator=g)
    ids = torch.randint(5, TEXT["vocab_size"], (2, 11), generator=g)
    ids[:, 0], ids[:, -1] = TEXT["bos_token_id"], TEXT["eos_token_id"]
    return mel, ids


@torch.no_grad()
def ours(model, mel, ids):
    lengths = torch.tensor([mel.size(1)] * mel.size(0)), torch.tensor([ids.size(1)] * ids.size(0))
    return model.audio_tower(mel, lengths[0])[1], model.text_tower(ids, lengths[1])[1]


@torch.no_grad()
def theirs(clap, mel, ids):
    """ClapModel's projections before normalisation, and its normalised get_*_features."""
    audio = clap.audio_projection(clap.audio_model(input_features=mel[:, None]).pooler_output)
    text = clap.text_projection(clap.text_model(input_ids=ids).pooler_output)
    normalised = (
        features(clap.get_audio_features(input_features=mel[:, None])),
        features(clap.get_text_features(input_ids=ids)),
    )
    return audio, text, normalised


def features(output):
    """get_*_features' embeddings: a tensor in transformers 4, the pooler_output of an output object in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@pytest.mark.parametrize("source", ["directory", "safetensors file"])
def test_clap_model_imports_into_our_clap(hf_clap, tokenizer_dir, tmp_path, source, caplog):
    directory, clap = hf_clap
    path = directory if source == "directory" else directory / "model.safetensors"
    config = write_config(
        tmp_path / "config.yaml",
        tokenizer_dir,
        audio_projector_conf=dict(batchnorm=False),
        text_projector_conf=dict(batchnorm=False),
        init=dict(path=str(path), parts=ALL_PARTS),
    )
    caplog.set_level(logging.INFO)
    _, model = build(config)
    assert "transformers ClapModel" in caplog.text
    assert "no preprocessor_config.json in" in caplog.text and "could not be checked" in caplog.text
    mel, ids = inputs()
    audio, text = ours(model, mel, ids)
    hf_audio, hf_text, (hf_audio_n, hf_text_n) = theirs(clap, mel, ids)
    assert relative_difference(audio, hf_audio) < 1e-5
    assert relative_difference(text, hf_text) < 1e-5
    assert relative_difference(torch.nn.functional.normalize(audio, dim=-1), hf_audio_n) < 1e-5
    assert relative_difference(torch.nn.functional.normalize(text, dim=-1), hf_text_n) < 1e-5
    assert model.logit_scale.item() == pytest.approx(math.log(50.0))


def save_trained(tmp_path, tokenizer_dir, model="clap", **model_conf):
    """(config.yaml, model.pth) of a model with random weights and random BatchNorm statistics and affine
    parameters, of the scale of the features they normalise (so that BatchNorm matters and ReLU keeps some)."""
    config = write_config(tmp_path / f"{model}.yaml", tokenizer_dir, model=model, **model_conf)
    args, built = build(config)
    with torch.no_grad():
        for module in built.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.copy_(0.05 * torch.randn_like(module.running_mean))
                module.running_var.copy_(0.005 + 0.01 * torch.rand_like(module.running_var))
                module.weight.copy_(1.0 + 0.2 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
    config.write_text(yaml.safe_dump(vars(args)))
    model_file = tmp_path / f"{model}.pth"
    torch.save(built.state_dict(), model_file)
    return config, model_file, built


@pytest.fixture(scope="module")
def exported_clap(tmp_path_factory, tokenizer_dir):
    """A CLAP with the SLAP reference's heads (text projector: BatchNorm, no bias before it) exported."""
    tmp = tmp_path_factory.mktemp("export")
    config, model_file, model = save_trained(
        tmp,
        tokenizer_dir,
        audio_projector_conf=dict(batchnorm=False),
        text_projector_conf=dict(batchnorm=True, bias_before_batchnorm=False),
        init_temperature=0.05,
    )
    slap_export.main(
        ["--format", "hf", "--train_config", str(config), "--model_file", str(model_file), str(tmp / "hf")]
    )
    return tmp / "hf", model


def test_exported_clap_gives_our_embeddings_in_transformers(exported_clap):
    from transformers import ClapModel

    out, model = exported_clap
    clap = ClapModel.from_pretrained(str(out), local_files_only=True).eval()
    mel, ids = inputs(seed=1)
    audio, text = ours(model, mel, ids)
    head = model.text_tower.projector  # Linear (no bias), BatchNorm, ReLU, Linear
    with torch.no_grad():  # the folded BatchNorm matters: after it, ReLU keeps some hidden units, drops others
        active = head[1](head[0](model.text_tower.encoder(ids, torch.tensor([ids.size(1)] * 2)))) > 0
    assert 0.1 < active.float().mean() < 0.9
    hf_audio, hf_text, _ = theirs(clap, mel, ids)
    assert relative_difference(audio, hf_audio) < 1e-5
    assert relative_difference(text, hf_text) < 1e-5
    assert clap.logit_scale_a.item() == pytest.approx(model.logit_scale.item())
    info = json.loads((out / "espnet2_slap_export.json").read_text())
    assert info["space"] == "projection" and "exactly" in info["carries"]


def test_zero_shot_pipeline_runs_on_the_export(exported_clap):
    from transformers import AutoTokenizer, pipeline

    out, _ = exported_clap
    assert set(AutoTokenizer.from_pretrained(str(out))("a calm piano")) == {"input_ids", "attention_mask"}
    classifier = pipeline("zero-shot-audio-classification", model=str(out))
    wave = (0.1 * np.random.default_rng(0).standard_normal(48000 * 3)).astype(np.float32)
    result = classifier(wave, candidate_labels=["piano", "drums", "voice"])
    assert sorted(r["label"] for r in result) == ["drums", "piano", "voice"]
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)


def test_slap_exports_its_projection_space_and_refuses_its_predictions(tmp_path, tokenizer_dir):
    from transformers import ClapModel

    config, model_file, model = save_trained(
        tmp_path,
        tokenizer_dir,
        model="slap",
        predictor_hidden=32,
        audio_projector_conf=dict(batchnorm=False),
        text_projector_conf=dict(batchnorm=True, bias_before_batchnorm=False),
    )
    files = ["--train_config", str(config), "--model_file", str(model_file)]
    with pytest.raises(SystemExit, match="SLAP's predictions .* do not fit ClapModel's two-layer projection"):
        slap_export.main([*files, "--space", "prediction", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()
    slap_export.main([*files, str(tmp_path / "hf")])
    info = json.loads((tmp_path / "hf" / "espnet2_slap_export.json").read_text())
    assert info["space"] == "projection" and "predictions" in info["carries"]
    clap = ClapModel.from_pretrained(str(tmp_path / "hf"), local_files_only=True).eval()
    mel, ids = inputs(seed=2)
    audio, text = ours(model, mel, ids)
    hf_audio, hf_text, _ = theirs(clap, mel, ids)
    assert relative_difference(audio, hf_audio) < 1e-5 and relative_difference(text, hf_text) < 1e-5


def test_what_clap_model_cannot_hold_is_refused(tmp_path, tokenizer_dir):
    config = write_config(tmp_path / "conv.yaml", tokenizer_dir)
    conf = yaml.safe_load(config.read_text())
    conf.update(audio_encoder="conv", audio_encoder_conf={}, normalize="utterance_mvn")
    config.write_text(yaml.safe_dump(conf))
    args, model = build(config)
    config.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), tmp_path / "conv.pth")
    cmd = ["--train_config", str(config), "--model_file", str(tmp_path / "conv.pth"), str(tmp_path / "hf")]
    with pytest.raises(SystemExit, match=r"(?s)normalize UtteranceMVN.*audio_encoder ConvAudioEncoder"):
        slap_export.main(cmd)
    assert not (tmp_path / "hf").exists()


def frontend_difference_db(seconds: float = 10.0):
    """Max and mean |ours - ClapFeatureExtractor| in dB on noise plus a tone, and the dB range of the clip."""
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(0)
    t = np.arange(int(48000 * seconds)) / 48000
    wave = (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="rand_trunc")
    reference = extractor(wave, sampling_rate=48000, return_tensors="pt")["input_features"][0, 0]
    feats, _ = LogMelFrontend()(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
    diff = (feats[0] - reference).abs()
    return float(diff.max()), float(diff.mean()), float(reference.max() - reference.min())


def test_our_frontend_matches_clap_feature_extractor_in_db():
    max_db, mean_db, range_db = frontend_difference_db()
    print(f"LogMelFrontend vs ClapFeatureExtractor: max {max_db:.2e} dB, mean {mean_db:.2e} dB (range {range_db:.1f})")
    assert max_db < 1e-3


# ---------------------------------------------------------------- the export's check, from a waveform

HEADS = dict(audio_projector_conf=dict(batchnorm=False), text_projector_conf=dict(batchnorm=False))


def test_export_check_runs_a_waveform_and_a_caption_through_each_sides_preprocessing(exported_clap):
    out, _ = exported_clap
    info = json.loads((out / "espnet2_slap_export.json").read_text())
    diffs = info["check_max_relative_difference"]
    print(f"export check from a waveform and a caption: audio {diffs['audio']:.2e}, text {diffs['text']:.2e}")
    assert "own preprocessing" in info["check"] and max(diffs.values()) < 1e-4


def test_export_check_refuses_front_end_buffers_a_shared_log_mel_would_pass(tmp_path, tokenizer_dir):
    """A model file whose mel filter bank buffer is that of fmin 0 while its front end says 50 Hz (the buffer
    is in the state dict): both audio towers agree on any log-mel, so the earlier check (one random log-mel fed
    to both) passed it; from a waveform, our front end and the saved ClapFeatureExtractor disagree."""
    from transformers import AutoTokenizer

    config, model_file, model = save_trained(tmp_path, tokenizer_dir, **HEADS)
    state = torch.load(model_file)
    state["frontend.mel.mel_scale.fb"] = LogMelFrontend(fmin=0.0).mel.mel_scale.fb
    torch.save(state, model_file)
    model.load_state_dict(state)
    assert model.frontend.mel.mel_scale.f_min == 50.0
    clap = build_clap_model(model)
    mel, ids = inputs(seed=3)  # the earlier check: the same log-mel into both audio towers
    shared_mel = relative_difference(ours(model, mel, ids)[0], theirs(clap, mel, ids)[0])
    print(f"the same model on one shared log-mel: {shared_mel:.2e}")
    assert shared_mel < 1e-5
    with pytest.raises(ValueError, match=r"differ from ours by (\S+) \(audio\).*not written") as refused:
        check_same_embeddings(model, clap, feature_extractor(model), AutoTokenizer.from_pretrained(tokenizer_dir))
    print(f"front end with fmin-0 filters under fmin 50: {refused.value}")
    assert float(re.search(r"by (\S+) \(audio\)", str(refused.value)).group(1)) > 1e-2
    files = ["--train_config", str(config), "--model_file", str(model_file)]
    with pytest.raises(SystemExit, match=r"\(audio\).*above 1e-4: not written"):
        slap_export.main([*files, str(tmp_path / "hf")])
    assert not (tmp_path / "hf").exists()


def test_export_check_refuses_a_tokenizer_that_is_not_our_preprocessors(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    _, _, model = save_trained(tmp_path, tokenizer_dir, **HEADS)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(ValueError, match=r"gives the ids \[0, .*, our preprocessor \[0, 7, 2\]"):
        check_same_embeddings(model, build_clap_model(model), feature_extractor(model), tokenizer, lambda _: [0, 7, 2])


def test_clap_has_no_predictions_to_export(tmp_path, tokenizer_dir):
    config, model_file, _ = save_trained(tmp_path, tokenizer_dir, **HEADS)
    files = ["--train_config", str(config), "--model_file", str(model_file), "--space", "prediction"]
    with pytest.raises(SystemExit, match="CLAPModel has no predictor; its projections are its embeddings: export "):
        slap_export.main([*files, str(tmp_path / "hf")])
    assert not (tmp_path / "hf").exists()


# ---------------------------------------------------------------- the import's front-end check

# The ClapFeatureExtractor of LogMelFrontend's defaults (LAION-CLAP's unfused front end).
LAION_EXTRACTOR = dict(frequency_min=50, frequency_max=14000, truncation="rand_trunc")


def clap_directory(hf_clap, tmp_path, drop=(), **changes):
    """A copy of the ClapModel directory with a preprocessor_config.json: LAION_EXTRACTOR with ``changes``,
    without the entries ``drop``."""
    from transformers import ClapFeatureExtractor

    directory = tmp_path / "clap"
    shutil.copytree(hf_clap[0], directory)
    ClapFeatureExtractor(**dict(LAION_EXTRACTOR, **changes)).save_pretrained(str(directory))
    config_file = directory / "preprocessor_config.json"
    conf = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({k: v for k, v in conf.items() if k not in drop}))
    return directory


def build_from(directory, tokenizer_dir, tmp_path, parts=("audio_encoder",)):
    config = write_config(tmp_path / "config.yaml", tokenizer_dir, **HEADS, init=dict(path=directory, parts=parts))
    return build(config)[1]


@pytest.mark.parametrize("source", ["directory", "safetensors file"])
def test_import_checks_the_front_end_against_the_directorys_feature_extractor(
    hf_clap, tokenizer_dir, tmp_path, source, caplog
):
    directory = clap_directory(hf_clap, tmp_path)
    path = directory if source == "directory" else directory / "model.safetensors"
    caplog.set_level(logging.INFO)
    model = build_from(str(path), tokenizer_dir, tmp_path, ALL_PARTS)
    assert f"the front end computes the features of {directory / 'preprocessor_config.json'}" in caplog.text
    mel, ids = inputs()
    assert relative_difference(ours(model, mel, ids)[0], theirs(hf_clap[1], mel, ids)[0]) < 1e-5


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(frequency_min=0), ["frontend_conf fmin: 50 here, frequency_min 0 in {file}"]),
        (
            dict(truncation="fusion"),
            [
                "frontend_conf mel_scale: slaney here, htk for truncation fusion in {file}",
                "frontend_conf mel_norm: slaney here, null for truncation fusion in {file}",
            ],
        ),
        (
            dict(sampling_rate=44100, hop_length=441, frequency_max=16000),
            [
                "frontend_conf fs: 48000 here, sampling_rate 44100 in {file}",
                "frontend_conf hop_length: 480 here, hop_length 441 in {file}",
                "frontend_conf fmax: 14000 here, frequency_max 16000 in {file}",
            ],
        ),
        (
            dict(feature_size=128, fft_window_size=2048),
            [
                "frontend_conf n_mels: 64 here, feature_size 128 in {file}",
                "frontend_conf n_fft: 1024 here, fft_window_size 2048 in {file}",
            ],
        ),
        (dict(max_length_s=5), ["audio_encoder_conf clip_frames: 1001 here, max_length_s 5 in {file} (501 frames"]),
    ],
)
def test_import_refuses_a_front_end_other_than_the_directorys_feature_extractor(
    hf_clap, tokenizer_dir, tmp_path, changes, expected
):
    directory = clap_directory(hf_clap, tmp_path, **changes)
    with pytest.raises(ValueError, match="does not compute the features of the checkpoint's ClapFeatureExtractor") as e:
        build_from(str(directory), tokenizer_dir, tmp_path)
    message = str(e.value)
    print(message)
    for line in expected:
        assert line.format(file=directory / "preprocessor_config.json") in message
    assert message.count("\n  ") == len(expected)


def test_import_names_a_setting_the_file_leaves_to_the_extractors_default(hf_clap, tokenizer_dir, tmp_path):
    """ClapFeatureExtractor's default frequency_min is 0, not LAION-CLAP's 50."""
    directory = clap_directory(hf_clap, tmp_path, drop=("frequency_min",))
    with pytest.raises(ValueError, match=r"fmin: 50 here, frequency_min 0 in \S+ \(not set there: ClapFeatureExt"):
        build_from(str(directory), tokenizer_dir, tmp_path)


def test_import_without_the_audio_encoder_does_not_check_the_front_end(hf_clap, tokenizer_dir, tmp_path, caplog):
    directory = clap_directory(hf_clap, tmp_path, frequency_min=0)
    caplog.set_level(logging.INFO)
    build_from(str(directory), tokenizer_dir, tmp_path, parts=["text_encoder", "text_projector"])
    assert "front end" not in caplog.text


def test_an_export_imports_back_with_its_front_end_checked(exported_clap, tokenizer_dir, tmp_path, caplog):
    """slap_export's preprocessor_config.json describes the front end it was made from: importing it passes."""
    out, model = exported_clap
    caplog.set_level(logging.INFO)
    back = build_from(str(out), tokenizer_dir, tmp_path, ALL_PARTS)
    assert f"the front end computes the features of {out / 'preprocessor_config.json'}" in caplog.text
    mel, ids = inputs(seed=4)
    audio, text = ours(back, mel, ids)
    original_audio, original_text = ours(model, mel, ids)
    assert relative_difference(audio, original_audio) < 1e-5 and relative_difference(text, original_text) < 1e-5
