"""Audio and text encoders and the log-mel front end: shapes, padding invariance, construction errors."""

import librosa
import pytest
import torch

from espnet2_slap.encoders.conv_audio_encoder import ConvAudioEncoder
from espnet2_slap.encoders.hf_transformer_text_encoder import HFTransformerTextEncoder
from espnet2_slap.encoders.transformer_text_encoder import TransformerTextEncoder
from espnet2_slap.layers.logmel import LogMelFrontend

TINY_ROBERTA = dict(
    model_type="roberta",
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=64,
    pad_token_id=1,
)
VOCAB = 100


def padded_pair(short: torch.Tensor, long: torch.Tensor, pad_value) -> torch.Tensor:
    """Stack a short and a long sequence (time first) into one batch, padding the short one with pad_value."""
    out = torch.full((2, *long.shape), pad_value, dtype=long.dtype)
    out[0, : short.size(0)] = short
    out[1] = long
    return out


def token_batch(lengths, seed: int = 0, pad: int = -1):
    """Caption ids (B, L) in [3, VOCAB) padded with ``pad`` like ESPnet's collate, and their lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    text = torch.randint(3, VOCAB, (len(lengths), int(lengths.max())), generator=g)
    text[torch.arange(text.size(1)) >= lengths[:, None]] = pad
    return text, lengths


def assert_padding_invariant(encoder, short: torch.Tensor, long: torch.Tensor, pad_value):
    """The short sequence encodes the same alone as next to a longer one that pads it with pad_value."""
    alone = encoder(short[None], torch.tensor([short.size(0)]))
    batch = encoder(padded_pair(short, long, pad_value), torch.tensor([short.size(0), long.size(0)]))
    torch.testing.assert_close(batch[0], alone[0], atol=1e-5, rtol=1e-5)
    long_alone = encoder(long[None], torch.tensor([long.size(0)]))
    torch.testing.assert_close(batch[1], long_alone[0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- ConvAudioEncoder


def test_conv_audio_encoder_output_shape():
    torch.manual_seed(0)
    enc = ConvAudioEncoder(input_size=16, channels=[8, 12, 24])
    y = enc(torch.randn(3, 40, 16), torch.tensor([40, 31, 9]))
    assert y.shape == (3, 24) and enc.output_size() == 24
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("short_len", [9, 20, 21])
def test_conv_audio_encoder_is_padding_invariant(short_len):
    """A clip's embedding does not depend on what the batch pads it with, or how much."""
    torch.manual_seed(0)
    enc = ConvAudioEncoder(input_size=16, channels=[8, 12, 24]).eval()
    short, long = torch.randn(short_len, 16), torch.randn(45, 16)
    with torch.no_grad():
        assert_padding_invariant(enc, short, long, pad_value=0.0)
        assert_padding_invariant(enc, short, long, pad_value=50.0)  # garbage past the length must be ignored


def test_conv_audio_encoder_needs_a_block():
    with pytest.raises(ValueError):
        ConvAudioEncoder(input_size=16, channels=[])


# ---------------------------------------------------------------- TransformerTextEncoder


def tiny_transformer():
    torch.manual_seed(0)
    return TransformerTextEncoder(vocab_size=VOCAB, output_size=16, attention_heads=2, linear_units=32, num_blocks=2)


def test_transformer_text_encoder_output_shape():
    enc = tiny_transformer()
    text, lengths = token_batch([7, 3, 12])
    y = enc(text, lengths)
    assert y.shape == (3, 16) and enc.output_size() == 16


def test_transformer_text_encoder_is_padding_invariant():
    """In eval mode a caption's embedding ignores the batch's padding (ESPnet pads ids with -1)."""
    enc = tiny_transformer().eval()
    (short, long), _ = token_batch([5, 13], seed=1, pad=0)
    with torch.no_grad():
        assert_padding_invariant(enc, short[:5], long, pad_value=-1)
        assert_padding_invariant(enc, short[:5], long, pad_value=7)


# ---------------------------------------------------------------- HFTransformerTextEncoder


def tiny_roberta(pooling: str = "pooler") -> HFTransformerTextEncoder:
    torch.manual_seed(0)
    return HFTransformerTextEncoder(config=dict(TINY_ROBERTA), pooling=pooling)


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean"])
def test_hf_text_encoder_output_shape(pooling):
    enc = tiny_roberta(pooling).eval()
    text, lengths = token_batch([7, 3, 12])
    with torch.no_grad():
        y = enc(text, lengths)
    assert y.shape == (3, 32) and enc.output_size() == 32


def test_hf_text_encoder_poolings_differ():
    """pooling selects a different summary of the same hidden states."""
    text, lengths = token_batch([7, 3, 12])
    with torch.no_grad():
        ys = {p: tiny_roberta(p).eval()(text, lengths) for p in ("pooler", "cls", "mean")}
    assert not torch.allclose(ys["pooler"], ys["cls"])
    assert not torch.allclose(ys["cls"], ys["mean"])
    assert torch.all(ys["pooler"].abs() <= 1.0)  # RoBERTa's pooler ends in tanh


@pytest.mark.parametrize("pooling", ["pooler", "mean"])
def test_hf_text_encoder_loads_a_saved_model_from_a_local_dir(tmp_path, pooling):
    """A model saved with save_pretrained comes back identical through model_name_or_path, offline."""
    enc = tiny_roberta(pooling).eval()
    enc.model.save_pretrained(str(tmp_path / "roberta"))
    loaded = HFTransformerTextEncoder(model_name_or_path=str(tmp_path / "roberta"), pooling=pooling).eval()
    text, lengths = token_batch([7, 3, 12])
    with torch.no_grad():
        torch.testing.assert_close(loaded(text, lengths), enc(text, lengths), atol=0.0, rtol=0.0)


def test_hf_text_encoder_needs_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        HFTransformerTextEncoder()
    with pytest.raises(ValueError, match="exactly one"):
        HFTransformerTextEncoder(model_name_or_path=str(tmp_path), config=dict(TINY_ROBERTA))


def test_hf_text_encoder_config_needs_model_type():
    config = {k: v for k, v in TINY_ROBERTA.items() if k != "model_type"}
    with pytest.raises(ValueError, match="model_type"):
        HFTransformerTextEncoder(config=config)


def test_hf_text_encoder_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        HFTransformerTextEncoder(config=dict(TINY_ROBERTA), pooling="max")


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean"])
def test_hf_text_encoder_is_padding_invariant(pooling):
    enc = tiny_roberta(pooling).eval()
    (short, long), _ = token_batch([5, 13], seed=1, pad=0)
    with torch.no_grad():
        assert_padding_invariant(enc, short[:5], long, pad_value=-1)
        assert_padding_invariant(enc, short[:5], long, pad_value=7)


# ---------------------------------------------------------------- LogMelFrontend


def test_logmel_shapes_and_lengths():
    """(B, S) -> (B, S // hop + 1, n_mels); each clip's frame count follows its own sample count."""
    fe = LogMelFrontend()  # 48 kHz, hop 480, 64 mels
    num_samples = torch.tensor([24000, 13000, 1500])
    feats, lengths = fe(torch.randn(3, 24000), num_samples)
    assert feats.shape == (3, 24000 // 480 + 1, 64) and feats.dtype == torch.float32
    assert lengths.tolist() == [24000 // 480 + 1, 13000 // 480 + 1, 1500 // 480 + 1]
    # the frame count of a clip computed alone is the length reported for it in the batch
    for n, length in zip(num_samples.tolist(), lengths.tolist()):
        alone, _ = fe(torch.randn(1, n), torch.tensor([n]))
        assert alone.size(1) == length


@pytest.mark.parametrize("mel_bin", [20, 45])
def test_logmel_sine_peaks_in_its_mel_bin(mel_bin):
    """A sine at the centre frequency of mel bin k has its energy in bin k (and the mel axis is last)."""
    fs, fmin, fmax, n_mels = 48000, 50.0, 14000.0, 64
    centres = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=False)[1:-1]
    t = torch.arange(fs // 2) / fs
    sine = 0.5 * torch.sin(2 * torch.pi * float(centres[mel_bin]) * t)
    feats, _ = LogMelFrontend(fs=fs, fmin=fmin, fmax=fmax, n_mels=n_mels)(sine[None], torch.tensor([fs // 2]))
    per_frame = feats[0, 2:-2].argmax(dim=-1)  # the edge frames see the reflect padding's kink
    assert (per_frame == mel_bin).all(), per_frame.tolist()
    # far from the tone the power is orders of magnitude lower (dB scale)
    assert feats[0, :, mel_bin].mean() - feats[0, :, (mel_bin + 15) % n_mels].mean() > 30.0


@pytest.mark.parametrize("shape", [(2, 1, 4800), (4800,)])
def test_logmel_rejects_non_batch_of_mono(shape):
    with pytest.raises(ValueError, match="mono"):
        LogMelFrontend()(torch.randn(*shape), torch.tensor([4800, 4800]))


def test_hf_config_by_shipped_name_or_json_file(tmp_path):
    """The paper's RoBERTa-base builds from the config shipped in the package, without any download."""
    import json

    from espnet2_slap.encoders.hf_transformer_text_encoder import load_config_dict

    roberta = load_config_dict("roberta-base")
    assert (roberta["model_type"], roberta["hidden_size"], roberta["num_hidden_layers"]) == ("roberta", 768, 12)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_ROBERTA))
    assert HFTransformerTextEncoder(config=str(path)).output_size() == TINY_ROBERTA["hidden_size"]
    with pytest.raises(ValueError, match="roberta-base"):
        load_config_dict("no-such-model")


def test_hugging_face_tokenizer_defaults_to_the_text_encoder_dir(tmp_path):
    """With --token_type hugging_face and no --bpemodel, captions are tokenized by the tokenizer saved beside
    the hf_transformer's weights, and the model builds from the same directory."""
    from conftest import tiny_args
    from test_preprocessor import make_hf_tokenizer

    from espnet2_slap.tasks.slap import SLAPTask

    model_dir = make_hf_tokenizer(tmp_path / "roberta")
    HFTransformerTextEncoder(config=dict(TINY_ROBERTA, vocab_size=512)).model.save_pretrained(str(model_dir))
    args = tiny_args(tmp_path, "slap", "--token_type", "hugging_face", "--text_encoder", "hf_transformer")
    args.text_encoder_conf = dict(model_name_or_path=str(model_dir))  # instead of the yaml's transformer options
    ids = SLAPTask.build_preprocess_fn(args, train=False)("utt1", {"text": "a calm piano piece"})["text"]
    assert ids[0] == 0 and ids[-1] == 2 and len(ids) > 2  # <s> ... </s> of the saved tokenizer
    model = SLAPTask.build_model(args).eval()  # one caption: BatchNorm in the projectors needs eval mode
    out = model.encode_text(torch.as_tensor(ids)[None], torch.tensor([len(ids)]))
    assert out.representation.shape == (1, TINY_ROBERTA["hidden_size"])
