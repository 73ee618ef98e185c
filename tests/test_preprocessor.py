"""SLAPPreprocessor: caption choice, audio crop and tokenization of one utterance."""

from pathlib import Path
from typing import Iterable

import numpy as np
import pytest
import sentencepiece as spm

from espnet2_slap.train.preprocessor import SLAPPreprocessor

CAPTIONS = ["a calm piano piece", "soft organ music, slow and minor", "loud flute playing a fast major tune"]
LINE = " ||| ".join(CAPTIONS)


def make_hf_tokenizer(out_dir: Path, captions: Iterable[str] = CAPTIONS, vocab_size: int = 300) -> Path:
    """A RoBERTa-style byte-level BPE tokenizer trained offline on ``captions``, saved as a local tokenizer dir.

    Its post-processor wraps a sequence as ``<s> ... </s>`` like roberta-base's; returns ``out_dir``.
    """
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(list(captions), vocab_size=vocab_size, min_frequency=1, special_tokens=specials)
    tok.post_processor = RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    ).save_pretrained(str(out_dir))
    return out_dir


def bpe_preprocessor(bpe, train: bool, **kwargs) -> SLAPPreprocessor:
    bpemodel, token_list = bpe
    return SLAPPreprocessor(train=train, token_type="bpe", bpemodel=bpemodel, token_list=token_list, **kwargs)


@pytest.fixture(scope="module")
def hf_tokenizer_dir(tmp_path_factory) -> Path:
    return make_hf_tokenizer(tmp_path_factory.mktemp("hf_tokenizer"))


# ---------------------------------------------------------------- captions


def test_training_draws_every_caption_of_a_line(bpe):
    """In training each step may use any of a clip's captions, so over many draws all of them appear."""
    pre = bpe_preprocessor(bpe, train=True)
    expected = {tuple(pre.tokenize(c)) for c in CAPTIONS}
    assert len(expected) == len(CAPTIONS)
    np.random.seed(0)
    drawn = {tuple(pre("utt1", {"text": LINE})["text"]) for _ in range(60)}
    assert drawn == expected


def test_validation_always_uses_the_first_caption(bpe):
    """Validation scores are reproducible: the first caption of the line, whatever the random state."""
    pre = bpe_preprocessor(bpe, train=False)
    first = pre.tokenize(CAPTIONS[0])
    np.random.seed(0)
    for _ in range(20):
        np.testing.assert_array_equal(pre("utt1", {"text": LINE})["text"], first)


@pytest.mark.parametrize("line", ["a calm piano piece ||| ", "", "   ", "||| solo piano"])
@pytest.mark.parametrize("train", [True, False])
def test_empty_caption_is_an_error_naming_the_utterance(bpe, line, train):
    """A broken text line is reported with its utterance id instead of training on an empty caption."""
    pre = bpe_preprocessor(bpe, train=train)
    with pytest.raises(ValueError, match="bad_utt_7"):
        pre("bad_utt_7", {"text": line})


def test_custom_caption_delimiter(bpe):
    pre = bpe_preprocessor(bpe, train=False, caption_delimiter="##")
    out = pre("utt1", {"text": "solo piano ## a loud organ tune"})["text"]
    np.testing.assert_array_equal(out, pre.tokenize("solo piano"))


# ---------------------------------------------------------------- audio


def test_training_crops_are_random_exact_slices(bpe):
    """Training crops start at varying offsets and are unmodified windows of the clip."""
    speech = np.arange(1000, dtype=np.float32)  # the value of a sample is its index
    pre = bpe_preprocessor(bpe, train=True, crop_samples=300)
    np.random.seed(0)
    offsets = set()
    for _ in range(30):
        out = pre("utt1", {"speech": speech.copy()})["speech"]
        assert out.shape == (300,) and out.dtype == np.float32
        offset = int(out[0])
        np.testing.assert_array_equal(out, speech[offset : offset + 300])
        offsets.add(offset)
    assert len(offsets) > 10
    assert min(offsets) >= 0 and max(offsets) <= 700


def test_validation_crop_is_the_centred_slice(bpe):
    """Validation crops the middle of the clip, the same on every call."""
    speech = np.arange(1001, dtype=np.float32)
    pre = bpe_preprocessor(bpe, train=False, crop_samples=300)
    np.random.seed(0)
    for _ in range(3):
        np.testing.assert_array_equal(pre("utt1", {"speech": speech.copy()})["speech"], speech[350:650])


def test_clip_as_long_as_the_crop_is_kept_whole(bpe):
    speech = np.random.default_rng(0).standard_normal(300).astype(np.float32)
    for train in (True, False):
        out = bpe_preprocessor(bpe, train=train, crop_samples=300)("utt1", {"speech": speech.copy()})["speech"]
        np.testing.assert_array_equal(out, speech)


@pytest.mark.parametrize("train", [True, False])
def test_clip_shorter_than_the_crop_is_an_error_naming_it(bpe, train):
    pre = bpe_preprocessor(bpe, train=train, crop_samples=300)
    with pytest.raises(ValueError, match="short_clip_3"):
        pre("short_clip_3", {"speech": np.ones(299, dtype=np.float32)})


@pytest.mark.parametrize("train", [True, False])
def test_short_clip_is_zero_padded_with_short_audio_pad(bpe, train):
    speech = np.arange(1, 101, dtype=np.float32)
    pre = bpe_preprocessor(bpe, train=train, crop_samples=300, short_audio="pad")
    out = pre("utt1", {"speech": speech.copy()})["speech"]
    assert out.shape == (300,) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:100], speech)
    np.testing.assert_array_equal(out[100:], 0.0)


def test_stereo_becomes_the_channel_mean(bpe):
    """Audio read as (samples, channels) is mixed down to mono float32."""
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((500, 2))
    out = bpe_preprocessor(bpe, train=False)("utt1", {"speech": stereo})["speech"]
    assert out.shape == (500,) and out.dtype == np.float32
    np.testing.assert_allclose(out, stereo.mean(axis=1), rtol=1e-6, atol=1e-6)


def test_kaldi_ark_waveforms_are_scaled_like_sound_files(bpe, tmp_path):
    """A waveform stored in a Kaldi ark (16-bit PCM, read by ESPnet's kaldi_ark type as integers) gives the same
    samples as the same audio read from a wav file by the sound type."""
    import kaldiio
    import soundfile as sf
    from espnet2.train.dataset import ESPnetDataset

    pcm = (np.random.default_rng(0).standard_normal(800) * 3000).astype(np.int16)
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/wav.ark,{tmp_path}/ark.scp") as writer:
        writer("utt1", (16000, pcm))
    sf.write(tmp_path / "utt1.wav", pcm, 16000, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"utt1 {tmp_path}/utt1.wav\n")
    pre = bpe_preprocessor(bpe, train=False)
    from_ark = ESPnetDataset([(str(tmp_path / "ark.scp"), "speech", "kaldi_ark")], preprocess=pre)["utt1"][1]
    from_wav = ESPnetDataset([(str(tmp_path / "wav.scp"), "speech", "sound")], preprocess=pre)["utt1"][1]
    assert from_ark["speech"].dtype == np.float32
    np.testing.assert_array_equal(from_ark["speech"], from_wav["speech"])


@pytest.mark.parametrize("speech", [np.zeros(0, dtype=np.float32), np.zeros((0, 2), dtype=np.float32)])
@pytest.mark.parametrize("crop_samples", [None, 100])
def test_empty_audio_is_an_error_naming_the_utterance(bpe, speech, crop_samples):
    pre = bpe_preprocessor(bpe, train=True, crop_samples=crop_samples, short_audio="pad")
    with pytest.raises(ValueError, match="silent_utt_9"):
        pre("silent_utt_9", {"speech": speech})


# ---------------------------------------------------------------- bpe tokens


def test_bpe_ids_are_int64_and_map_back_to_the_caption(bpe):
    """The ids index tokens.txt, whose entries are the sentencepiece pieces of the caption."""
    bpemodel, token_list = bpe
    tokens = Path(token_list).read_text(encoding="utf-8").splitlines()
    sp = spm.SentencePieceProcessor(model_file=str(bpemodel))
    caption = "a calm piano piece"
    ids = bpe_preprocessor(bpe, train=False)("utt1", {"text": caption})["text"]
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert [tokens[i] for i in ids] == sp.encode(caption, out_type=str)
    assert sp.decode(ids.tolist()) == caption


def test_bpe_captions_are_cut_to_max_text_length(bpe, caplog):
    caption = "this is a minor piece for strings: loud, fast, high"
    full = bpe_preprocessor(bpe, train=False)("utt1", {"text": caption})["text"]
    assert len(full) > 5
    assert "caption cut" not in caplog.text
    cut = bpe_preprocessor(bpe, train=False, max_text_length=5)("utt1", {"text": caption})["text"]
    np.testing.assert_array_equal(cut, full[:5])
    assert f"caption cut from {len(full)} to max_text_length 5 tokens (1 cut so far" in caplog.text  # said, not silent


# ---------------------------------------------------------------- hugging_face tokens


def test_hugging_face_ids_are_wrapped_in_bos_and_eos(hf_tokenizer_dir):
    """A RoBERTa tower needs ``<s>`` first (its pooler reads position 0) and ``</s>`` last."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_tokenizer_dir))
    caption = "a calm piano piece"
    pre = SLAPPreprocessor(train=False, token_type="hugging_face", bpemodel=hf_tokenizer_dir)
    ids = pre("utt1", {"text": caption})["text"]
    assert ids.dtype == np.int64
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[1:-1].tolist() == tok(caption, add_special_tokens=False)["input_ids"]
    assert tok.bos_token_id not in ids[1:-1] and tok.eos_token_id not in ids[1:-1]


def test_hugging_face_truncation_keeps_eos_and_max_length(hf_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_tokenizer_dir))
    caption = "loud flute playing a fast major tune"
    content = tok(caption, add_special_tokens=False)["input_ids"]
    assert len(content) > 6
    pre = SLAPPreprocessor(train=False, token_type="hugging_face", bpemodel=hf_tokenizer_dir, max_text_length=6)
    ids = pre("utt1", {"text": caption})["text"]
    assert len(ids) == 6
    assert ids.tolist() == [tok.bos_token_id, *content[:4], tok.eos_token_id]
