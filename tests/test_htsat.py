"""HTS-AT audio encoder: parity with the LAION-CLAP reference, checkpoint loading, clip lengths, named sizes.

The reference input/output (small random weights) live in tests/fixtures/htsat_parity (its README says what they
hold: the compact form, an int16 waveform and no front-end buffers or AudioSet heads); SLAP_FIXTURES names another
directory holding an ``htsat_parity/`` (the full form, float32 waveform, is read too). Without them the parity
tests fail: parity is not optional.
"""

import logging
import os
from pathlib import Path

import pytest
import torch
from conftest import REPO

from espnet2_slap.checkpoints.htsat import load_htsat_checkpoint
from espnet2_slap.encoders.conv_audio_encoder import ConvAudioEncoder
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.layers.logmel import LogMelFrontend

FIXTURES = Path(os.environ.get("SLAP_FIXTURES", REPO / "tests" / "fixtures")) / "htsat_parity"
STATE_DICT = FIXTURES / "state_dict.pt"
# The fixture's architecture (config.json "arch"); every other hyper-parameter is the default.
FIXTURE_ARCH = dict(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
CLIP = 1001  # frames of a 10-s clip


@pytest.fixture(scope="module")
def fixtures_present():
    if not FIXTURES.is_dir():
        pytest.fail(f"HTS-AT parity fixtures missing at {FIXTURES}: set SLAP_FIXTURES to the fixtures directory")


@pytest.fixture(scope="module")
def io():
    """waveform (2, 480000), logmel (2, 1001, 64), embedding (2, 128) of the reference."""
    data = torch.load(FIXTURES / "io.pt", weights_only=True)
    # the compact fixture stores the int16 samples the reference was run on (as waveform_int16.float() / 32768)
    waveform = data["waveform"] if "waveform" in data else data["waveform_int16"].float() / 32768
    return dict(waveform=waveform, logmel=data["logmel"][:, 0], embedding=data["embedding"])


@pytest.fixture(scope="module")
def encoder():
    """The fixture's architecture with the reference weights, in eval mode."""
    return HTSATAudioEncoder(**FIXTURE_ARCH, init_checkpoint=str(STATE_DICT)).eval()


def embed(encoder, feats, lengths=None):
    lengths = torch.full((feats.size(0),), feats.size(1)) if lengths is None else torch.tensor(lengths)
    with torch.no_grad():
        return encoder(feats, lengths)


def assert_embedding_parity(actual, expected):
    """1e-4 relative; the absolute floor (1e-5 against values of order 1) covers entries near zero."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- parity with the reference


@pytest.mark.usefixtures("fixtures_present")
def test_logmel_frontend_matches_reference(io):
    feats, lengths = LogMelFrontend()(io["waveform"], torch.tensor([480000, 480000]))
    assert lengths.tolist() == [CLIP, CLIP]
    torch.testing.assert_close(feats, io["logmel"], rtol=0.0, atol=1e-3)  # dB


@pytest.mark.usefixtures("fixtures_present")
def test_embedding_of_reference_logmel_matches_reference(encoder, io):
    assert_embedding_parity(embed(encoder, io["logmel"]), io["embedding"])


@pytest.mark.usefixtures("fixtures_present")
def test_embedding_of_our_frontend_matches_reference(encoder, io):
    feats, lengths = LogMelFrontend()(io["waveform"], torch.tensor([480000, 480000]))
    assert_embedding_parity(embed(encoder, feats, lengths.tolist()), io["embedding"])


@pytest.mark.usefixtures("fixtures_present")
def test_loader_logs_what_it_loads_and_ignores(caplog, tmp_path):
    """The reference's front-end buffers, AudioSet heads and recomputed Swin buffers (which the compact fixture
    leaves out, so they are added back here) are named as ignored, never as unexpected."""
    reference_only = (
        "spectrogram_extractor.stft.conv_real.weight",
        "logmel_extractor.melW",
        "tscam_conv.weight",
        "head.bias",
        "layers.0.blocks.1.attn_mask",
        "layers.3.blocks.1.attn.relative_position_index",
    )
    weights = torch.load(STATE_DICT, weights_only=True)
    weights.update({key: torch.zeros(2) for key in reference_only})
    path = tmp_path / "reference_layout.pth"
    torch.save(weights, path)
    caplog.set_level(logging.INFO)
    HTSATAudioEncoder(**FIXTURE_ARCH, init_checkpoint=str(path))
    log = caplog.text
    assert "loaded 124 of the encoder's 124 tensors" in log
    for ignored in reference_only:
        assert ignored in log
    assert "missing" not in log and "unexpected" not in log


# ---------------------------------------------------------------- checkpoint layouts and refusals


@pytest.mark.usefixtures("fixtures_present")
@pytest.mark.parametrize("layout", ["laion_clap", "espnet2_slap"])
def test_wrapped_checkpoints_load_the_same_weights(layout, encoder, io, tmp_path):
    """LAION-CLAP nests audio_branch.* under state_dict (with DDP's module.); our models use audio_tower.encoder.*"""
    reference = torch.load(STATE_DICT, weights_only=True)
    if layout == "laion_clap":
        checkpoint = {"epoch": 3, "state_dict": {"module.audio_branch." + k: v for k, v in reference.items()}}
        checkpoint["state_dict"]["module.text_branch.pooler.dense.bias"] = torch.zeros(4)
    else:
        checkpoint = {"audio_tower.encoder." + k: v for k, v in encoder.state_dict().items()}
        checkpoint["text_tower.encoder.weight"] = torch.zeros(4)
    path = tmp_path / "checkpoint.pth"
    torch.save(checkpoint, path)
    loaded = HTSATAudioEncoder(**FIXTURE_ARCH, init_checkpoint=str(path)).eval()
    assert torch.equal(embed(loaded, io["logmel"]), embed(encoder, io["logmel"]))


@pytest.mark.usefixtures("fixtures_present")
def test_partial_checkpoint_warns_with_missing_and_unexpected_keys(tmp_path, caplog):
    weights = torch.load(STATE_DICT, weights_only=True)
    del weights["norm.bias"]
    weights["fusion_model.weight"] = torch.zeros(2)  # e.g. a fused LAION-CLAP model, not implemented here
    path = tmp_path / "partial.pth"
    torch.save(weights, path)
    caplog.set_level(logging.INFO)
    HTSATAudioEncoder(**FIXTURE_ARCH, init_checkpoint=str(path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 unexpected keys: fusion_model.weight" in w for w in warnings)
    assert any("1 encoder tensors missing (left as initialised): norm.bias" in w for w in warnings)


@pytest.mark.usefixtures("fixtures_present")
def test_shape_mismatch_names_first_bad_key_and_loads_nothing(tmp_path):
    weights = torch.load(STATE_DICT, weights_only=True)
    weights["layers.2.blocks.1.mlp.fc1.weight"] = torch.zeros(3, 64)
    weights["norm.weight"] = torch.zeros(5)
    path = tmp_path / "bad.pth"
    torch.save(weights, path)
    torch.manual_seed(0)
    fresh = HTSATAudioEncoder(**FIXTURE_ARCH).state_dict()
    torch.manual_seed(0)
    encoder = HTSATAudioEncoder(**FIXTURE_ARCH)
    with pytest.raises(ValueError, match=r"layers\.2\.blocks\.1\.mlp\.fc1\.weight has shape \(3, 64\) .* \(256, 64\)"):
        load_htsat_checkpoint(encoder, str(path))
    assert all(torch.equal(v, fresh[k]) for k, v in encoder.state_dict().items())


@pytest.mark.usefixtures("fixtures_present")
def test_other_size_is_refused():
    with pytest.raises(ValueError, match=r"patch_embed\.proj\.weight has shape \(16, 1, 4, 4\) .* \(32, 1, 4, 4\)"):
        HTSATAudioEncoder(**dict(FIXTURE_ARCH, embed_dim=32), init_checkpoint=str(STATE_DICT))


def test_other_architecture_is_refused(tmp_path):
    path = tmp_path / "conv.pth"
    torch.save(ConvAudioEncoder(input_size=64).state_dict(), path)
    with pytest.raises(ValueError, match=r"holds no HTS-AT weights.*convs\.0\.weight"):
        HTSATAudioEncoder(**FIXTURE_ARCH, init_checkpoint=str(path))


# ---------------------------------------------------------------- clip length, determinism


@pytest.mark.usefixtures("fixtures_present")
def test_short_clip_is_repeated_to_ten_seconds(encoder, io):
    """300 valid frames (padded with garbage in a batch) embed as the 300 frames repeated to 1001 frames."""
    short = io["logmel"][0, :300]
    repeated = short.repeat(4, 1)[:CLIP]
    batch = torch.full((2, CLIP, 64), 50.0)
    batch[0, :300] = short
    batch[1] = io["logmel"][1]
    together = embed(encoder, batch, [300, CLIP])
    torch.testing.assert_close(together[0], embed(encoder, repeated[None])[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[1], io["embedding"][1], rtol=1e-4, atol=1e-5)
    alone = embed(encoder, short[None])  # a batch of short clips only: T < 1001
    torch.testing.assert_close(alone, together[:1], rtol=1e-5, atol=1e-6)


def test_clip_longer_than_ten_seconds_is_refused():
    encoder = HTSATAudioEncoder(**FIXTURE_ARCH)
    with pytest.raises(ValueError, match=r"1002 frames .* crop_seconds <= 10"):
        encoder(torch.zeros(2, 1002, 64), torch.tensor([1002, 500]))


def test_eval_is_deterministic_and_drop_path_acts_in_training_only():
    torch.manual_seed(0)
    encoder = HTSATAudioEncoder(**FIXTURE_ARCH, drop_path_rate=0.5)
    feats, lengths = torch.randn(2, CLIP, 64), torch.tensor([CLIP, 700])
    with torch.no_grad():
        assert not torch.equal(encoder(feats, lengths), encoder(feats, lengths))
        encoder.eval()
        assert torch.equal(encoder(feats, lengths), encoder(feats, lengths))


# ---------------------------------------------------------------- sizes and registration


@pytest.mark.parametrize(
    "conf, output_size, heads_stage0, blocks_stage2",
    [
        (dict(size="tiny"), 768, 4, 6),
        (dict(size="base"), 1024, 4, 12),
        (dict(size="large"), 2048, 4, 12),
        (dict(size="tiny", embed_dim=32, depths=[2, 2, 2, 2], num_heads=[2, 4, 8, 16]), 256, 2, 2),
    ],
)
def test_named_sizes(conf, output_size, heads_stage0, blocks_stage2):
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        encoder = HTSATAudioEncoder(**conf)
    assert encoder.output_size() == output_size
    assert encoder.layers[0].blocks[0].attn.relative_position_bias_table.shape == (225, heads_stage0)
    assert len(encoder.layers[2].blocks) == blocks_stage2
    assert encoder.norm.weight.shape == (output_size,)


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="size must be one of"):
        HTSATAudioEncoder(size="huge")


def test_registered_in_task():
    from espnet2_slap.tasks.slap import audio_encoder_choices

    assert audio_encoder_choices.get_class("htsat") is HTSATAudioEncoder
