"""Starting from the files users download, read safely: the reader (pickle protocols 2-5, zip and legacy, numpy
values, safetensors), the refusal of a file that would run a command, and each release layout loaded into the
parts the config names (LAION-CLAP release, HTS-AT Lightning checkpoint, safetensors)."""

import logging
import math
import os
import warnings

import numpy as np
import pytest
import torch
import yaml
from test_transformers_clap import HTSAT, TEXT, write_config

from espnet2_slap.checkpoints.reader import UnsafeCheckpointError, read_checkpoint
from espnet2_slap.encoders.hf_transformer_text_encoder import HFTransformerTextEncoder
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.inference import load_model_weights
from espnet2_slap.tasks.slap import SLAPTask

PROJECTION = 24
ROBERTA = dict(model_type="roberta", **TEXT)


def random_state(module: torch.nn.Module, seed: int):
    """``module``'s state dict with every floating entry random (no default values)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: (torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v.clone())
        for k, v in module.state_dict().items()
    }


def head(seed, d_in, d_out=PROJECTION):
    """A Linear-ReLU-Linear head as LAION-CLAP saves it (nn.Sequential: 0 and 2)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "0.weight": torch.randn(d_out, d_in, generator=g),
        "0.bias": torch.randn(d_out, generator=g),
        "2.weight": torch.randn(d_out, d_out, generator=g),
        "2.bias": torch.randn(d_out, generator=g),
    }


@pytest.fixture(scope="module")
def laion_release(tmp_path_factory):
    """(path, parts): a LAION-CLAP-style release: protocol 4, numpy scalars beside the weights under
    state_dict with DDP's module., RoBERTa's embeddings.position_ids, the HTS-AT reference's extra entries."""
    audio = random_state(HTSATAudioEncoder(**HTSAT), 1)
    audio["head.weight"] = torch.zeros(3)  # the AudioSet head of the reference
    text = random_state(HFTransformerTextEncoder(config=dict(ROBERTA)).model, 2)
    text["embeddings.position_ids"] = torch.arange(TEXT["max_position_embeddings"])[None]
    state = {
        **{f"module.audio_branch.{k}": v for k, v in audio.items()},
        **{f"module.text_branch.{k}": v for k, v in text.items()},
        **{f"module.audio_projection.{k}": v for k, v in head(3, 128).items()},
        **{f"module.text_projection.{k}": v for k, v in head(4, TEXT["hidden_size"]).items()},
        "module.logit_scale_a": torch.tensor(math.log(30.0), dtype=torch.float64),
        "module.logit_scale_t": torch.tensor(math.log(1 / 0.07)),
        # LAION-CLAP's fusion transforms, in no part of our models
        **{f"module.{tower}_transform.sequential.0.{p}": torch.zeros(2) for tower in ("audio", "text") for p in "wb"},
    }
    path = tmp_path_factory.mktemp("laion") / "music_audioset_epoch_15_esc_90.14.pt"
    checkpoint = {"epoch": np.int64(15), "best_metric": np.float64(90.14), "state_dict": state}
    torch.save(checkpoint, path, pickle_protocol=4)
    with pytest.raises(Exception, match="Weights only load failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning about protocol 4
        torch.load(path, weights_only=True)  # what users hit before
    return path, dict(audio=audio, text=text, state=state)


def assert_loaded(module: torch.nn.Module, expected: dict, prefix: str = ""):
    own = module.state_dict()
    for key, value in expected.items():
        if prefix + key in own:
            assert torch.equal(own[prefix + key], value), key


# ---------------------------------------------------------------- the reader


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_reader_reads_every_protocol_and_format_with_numpy_values(tmp_path, protocol, zipped):
    weights = torch.randn(3, 4)
    content = {
        "epoch": np.int64(7),
        "metric": np.float32(0.25),
        "array": np.arange(6.0).reshape(2, 3),
        "state_dict": {"w": weights, "row": weights[1], "p": torch.nn.Parameter(torch.ones(2))},
        "names": ["a", ("b", 1)],
    }
    path = tmp_path / "ckpt.pt"
    torch.save(content, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    read = read_checkpoint(path)
    assert read["epoch"] == 7 and type(read["epoch"]) is int
    assert read["metric"] == 0.25 and type(read["metric"]) is float
    assert torch.equal(read["array"], torch.arange(6.0, dtype=torch.float64).reshape(2, 3))
    assert torch.equal(read["state_dict"]["w"], weights) and torch.equal(read["state_dict"]["row"], weights[1])
    assert type(read["state_dict"]["p"]) is torch.Tensor
    assert read["names"] == ["a", ("b", 1)]


class RunsACommand:
    """What a malicious checkpoint holds: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def build_clap(tmp_path, tokenizer_dir, **model_conf):
    config = write_config(tmp_path / "config.yaml", tokenizer_dir, **model_conf)
    args = SLAPTask.get_parser().parse_args(["--config", str(config)])
    torch.manual_seed(0)
    return SLAPTask.build_model(args)


@pytest.mark.parametrize("entry", ["read_checkpoint", "htsat", "text", "model_conf init", "inference"])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_file_that_would_run_a_command_is_refused_and_the_command_never_runs(tmp_path, entry, zipped):
    marker = tmp_path / "the_command_ran"
    path = tmp_path / "evil.pth"
    weights = {"patch_embed.proj.weight": torch.zeros(16, 1, 4, 4), "payload": RunsACommand(marker)}
    torch.save({"state_dict": weights}, path, _use_new_zipfile_serialization=zipped)
    loaders = {
        "read_checkpoint": lambda: read_checkpoint(path),
        "htsat": lambda: HTSATAudioEncoder(**HTSAT, init_checkpoint=str(path)),
        "text": lambda: HFTransformerTextEncoder(config=dict(ROBERTA), init_checkpoint=str(path)),
        "model_conf init": lambda: build_clap(tmp_path, tmp_path, init=dict(path=str(path), parts=["audio_encoder"])),
        "inference": lambda: load_model_weights(torch.nn.Linear(2, 2), path),
    }
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}: refused to load: .* the global posix\.system"):
        loaders[entry]()
    assert not marker.exists()


def test_other_globals_are_refused_by_name(tmp_path):
    path = tmp_path / "counter.pt"
    torch.save({"state_dict": {}, "counts": __import__("collections").Counter(a=1)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"collections\.Counter"):
        read_checkpoint(path)


# ---------------------------------------------------------------- release layouts


def test_laion_clap_release_initialises_every_part_of_clap(laion_release, tmp_path, caplog):
    path, expected = laion_release
    caplog.set_level(logging.INFO)
    parts = ["audio_encoder", "text_encoder", "audio_projector", "text_projector", "temperature"]
    model = build_clap(
        tmp_path,
        tmp_path,
        audio_projector_conf=dict(batchnorm=False),
        text_projector_conf=dict(batchnorm=False),
        init=dict(path=str(path), parts=parts),
    )
    assert f"checkpoint {path}: LAION-CLAP release" in caplog.text
    assert "embeddings.position_ids" in caplog.text and "unexpected" not in caplog.text
    left_out = (
        "5 entries belong to no part and are left out: logit_scale_t, audio_transform.* (2), text_transform.* (2)"
    )
    assert left_out in caplog.text
    assert "clamped" not in caplog.text  # a float64 logit_scale_a within the limit is not "clamped"
    assert_loaded(model.audio_tower.encoder, expected["audio"])
    assert_loaded(model.text_tower.encoder.model, expected["text"])
    for tower in ("audio", "text"):
        projector = getattr(model, f"{tower}_tower").projector.state_dict()
        for key in ("0.weight", "0.bias", "2.weight", "2.bias"):
            assert torch.equal(projector[key], expected["state"][f"module.{tower}_projection.{key}"])
    assert model.logit_scale.item() == pytest.approx(math.log(30.0))


def test_only_the_parts_named_are_loaded(laion_release, tmp_path):
    path, expected = laion_release
    torch.manual_seed(0)
    fresh = build_clap(tmp_path, tmp_path)
    model = build_clap(tmp_path, tmp_path, init=dict(path=str(path), parts=["text_encoder"]))
    assert_loaded(model.text_tower.encoder.model, expected["text"])
    for name in ("audio_tower", "logit_scale"):
        ours, untouched = getattr(model, name), getattr(fresh, name)
        if isinstance(ours, torch.nn.Module):
            assert all(torch.equal(v, untouched.state_dict()[k]) for k, v in ours.state_dict().items())
        else:
            assert torch.equal(ours, untouched)


def test_slap_reference_heads_refuse_laion_heads_with_what_to_set(laion_release, tmp_path):
    path, _ = laion_release
    with pytest.raises(ValueError, match=r"text_projector_conf: \{batchnorm: false\}"):
        build_clap(
            tmp_path,
            tmp_path,
            model="slap",
            text_projector_conf=dict(batchnorm=True, bias_before_batchnorm=False),
            init=dict(path=str(path), parts=["text_projector"]),
        )
    with pytest.raises(ValueError, match="SLAPModel has no temperature"):
        build_clap(tmp_path, tmp_path, model="slap", init=dict(path=str(path), parts=["temperature"]))


def test_text_encoder_init_checkpoint_alone(laion_release):
    path, expected = laion_release
    encoder = HFTransformerTextEncoder(config=dict(ROBERTA), init_checkpoint=str(path))
    assert_loaded(encoder.model, expected["text"])
    with pytest.raises(ValueError, match=r"hidden_size|has shape .* text_encoder_conf config"):
        HFTransformerTextEncoder(config=dict(ROBERTA, hidden_size=16, intermediate_size=32), init_checkpoint=str(path))


def test_htsat_lightning_checkpoint_loads_its_sed_model(tmp_path, caplog):
    """HTS-AT's AudioSet release: a Lightning .ckpt, weights under state_dict with the prefix sed_model."""
    weights = random_state(HTSATAudioEncoder(**HTSAT), 5)
    state = {f"sed_model.{k}": v for k, v in weights.items()}
    state["sed_model.tscam_conv.weight"] = torch.zeros(2)
    checkpoint = {
        "epoch": 40,
        "global_step": np.int64(123456),
        "pytorch-lightning_version": "1.5.10",
        "state_dict": state,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3}]}],
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.47)}},
    }
    path = tmp_path / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save(checkpoint, path)
    caplog.set_level(logging.INFO)
    encoder = HTSATAudioEncoder(**HTSAT, init_checkpoint=str(path))
    assert "HTS-AT Lightning checkpoint (sed_model.*)" in caplog.text
    assert "loaded 124 of the encoder's 124 tensors" in caplog.text
    assert_loaded(encoder, weights)


def test_safetensors_state_dict_loads(tmp_path, caplog):
    from safetensors.torch import save_file

    weights = random_state(HTSATAudioEncoder(**HTSAT), 6)
    path = tmp_path / "htsat.safetensors"
    save_file(weights, str(path))
    caplog.set_level(logging.INFO)
    assert_loaded(HTSATAudioEncoder(**HTSAT, init_checkpoint=str(path)), weights)
    assert "HTS-AT state dict" in caplog.text


def test_unknown_part_and_missing_part_are_named(laion_release, tmp_path):
    path, _ = laion_release
    with pytest.raises(ValueError, match="unknown part 'predictor'"):
        build_clap(tmp_path, tmp_path, init=dict(path=str(path), parts=["predictor"]))
    lightning = tmp_path / "sed.ckpt"
    torch.save({"state_dict": {"sed_model.patch_embed.proj.weight": torch.zeros(16, 1, 4, 4)}}, lightning)
    with pytest.raises(ValueError, match=r"\[HTS-AT Lightning checkpoint \(sed_model\.\*\)\] has no text_encoder"):
        build_clap(tmp_path, tmp_path, init=dict(path=str(lightning), parts=["text_encoder"]))


def test_inference_rebuilds_without_the_checkpoints_training_started_from(laion_release, tmp_path):
    """A trained model's config names its start (init_checkpoint, model_conf init); inference must not need
    those files, since the weights come from the model file."""
    from espnet2_slap.inference import load_trained_model

    path, _ = laion_release
    config = write_config(tmp_path / "config.yaml", tmp_path, init=dict(path=str(path), parts=["text_encoder"]))
    conf = yaml.safe_load(config.read_text())
    conf["audio_encoder_conf"]["init_checkpoint"] = str(path)
    config.write_text(yaml.safe_dump(conf))
    args = SLAPTask.get_parser().parse_args(["--config", str(config)])
    model = SLAPTask.build_model(args)
    config.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    path.rename(tmp_path / "gone.pt")
    try:
        _, loaded = load_trained_model(config, tmp_path / "model.pth")
    finally:
        (tmp_path / "gone.pt").rename(path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


# ---------------------------------------------------------------- the recipe's configs


def test_paper_configs_have_the_reference_heads_and_laion_config_loads_laion_parts():
    """train_slap*.yaml: audio projector without BatchNorm, text projector with it and no bias before it (the SLAP
    reference); train_clap_laion.yaml: LAION-CLAP's heads and every part of the release."""
    from conftest import REPO

    from espnet2_slap.models.two_tower import projector

    conf_dir = REPO / "egs" / "TEMPLATE" / "slap1" / "conf"
    for name in ("train_slap", "train_slap_pretrained"):
        conf = yaml.safe_load((conf_dir / f"{name}.yaml").read_text())["model_conf"]
        default = conf.get("projector_batchnorm", False)
        audio = projector(1024, 512, 512, default, conf["audio_projector_conf"], "audio_projector_conf")
        text = projector(768, 512, 512, default, conf["text_projector_conf"], "text_projector_conf")
        assert [type(m).__name__ for m in audio] == ["Linear", "ReLU", "Linear"]
        assert [type(m).__name__ for m in text] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
        assert text[0].bias is None and text[3].bias is not None
    conf = yaml.safe_load((conf_dir / "train_clap_laion.yaml").read_text())
    assert conf["model"] == "clap" and conf["model_conf"]["projector_batchnorm"] is False
    assert conf["model_conf"]["init"]["parts"] == [
        "audio_encoder",
        "text_encoder",
        "audio_projector",
        "text_projector",
        "temperature",
    ]
