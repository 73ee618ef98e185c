"""Per-utterance preprocessing for SLAPTask: audio crop and caption tokenization."""

import logging
from pathlib import Path
from typing import Collection, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.cleaner import TextCleaner
from espnet2.text.hugging_face_token_id_converter import HuggingFaceTokenIDConverter
from espnet2.text.token_id_converter import TokenIDConverter
from espnet2.train.preprocessor import AbsPreprocessor
from typeguard import typechecked

from espnet2_slap.audio.io import BadUtterance, audio_num_samples, pcm16_to_float, read_mono
from espnet2_slap.corpora.captions import CAPTION_DELIMITER
from espnet2_slap.train.lazy_sound import AudioFileRef
from espnet2_slap.train.skip_bad_audio import skipped_record

TOKEN_TYPES = ("bpe", "hugging_face")
LOGGED_CUTS = 10  # cut captions logged one by one, by each process; then every hundredth


def special_token_ids(tokenizer, name: str) -> Tuple[List[int], List[int]]:
    """([first id], [last id]) a Hugging Face tokenizer's model expects around a sequence: <s> ... </s> for
    RoBERTa, [CLS] ... [SEP] for BERT (cls/sep when defined, else bos/eos)."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if first is None or last is None:
        raise ValueError(f"tokenizer {name} defines neither cls/sep nor bos/eos tokens")
    return [first], [last]


class SLAPPreprocessor(AbsPreprocessor):
    """One (uid, {"speech": (S,) or (S, C), "text": str}) -> {"speech": (S',) float32, "text": (L,) int64}.

    Audio: a waveform (``sound``; ``kaldi_ark``, whose 16-bit integer samples are scaled to [-1, 1]) or an
    :class:`AudioFileRef` (``lazy_sound``), of which only the crop is read from the file; multi-channel is
    averaged to mono; with ``crop_samples`` a window of that length is taken at a random offset in training and
    centred otherwise (``np.random``, which ESPnet seeds per epoch and loader worker). A clip shorter than the
    crop is an error naming the utterance, or zero-padded with ``short_audio="pad"``.

    Bad files (``lazy_sound``): a missing, unreadable or truncated file, or one not at ``fs`` Hz, is logged
    with its utterance id and path and the utterance is skipped (``bad_audio="skip"``: the collate function
    drops it from its batch and counts it), or is an error (``bad_audio="error"``).

    Text: a ``text`` line may hold several captions separated by ``caption_delimiter`` (default ``|||``, e.g.
    ``utt1 a calm piano piece ||| solo piano, slow``); training draws one at random per step, validation takes
    the first. ``hugging_face`` tokens get the tokenizer's special tokens (``<s> ... </s>`` for RoBERTa, whose
    ``pooler_output`` reads position 0), which ESPnet's converter leaves out; captions are cut to
    ``max_text_length`` tokens, special tokens included (the first ``LOGGED_CUTS`` cut captions of a process are
    logged with their length, then every hundredth).
    """

    @typechecked
    def __init__(
        self,
        train: bool,
        token_type: str,
        token_list: Union[Path, str, Iterable[str], None] = None,
        bpemodel: Union[Path, str, None] = None,
        text_cleaner: Optional[Collection[str]] = None,
        unk_symbol: str = "<unk>",
        caption_delimiter: str = CAPTION_DELIMITER,
        max_text_length: int = 128,
        crop_samples: Optional[int] = None,
        short_audio: str = "error",
        fs: Optional[int] = None,
        bad_audio: str = "skip",
        speech_name: str = "speech",
        text_name: str = "text",
    ):
        super().__init__(train)
        if token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
        if short_audio not in ("error", "pad"):
            raise ValueError(f"short_audio must be 'error' or 'pad', got {short_audio!r}")
        if bad_audio not in ("skip", "error"):
            raise ValueError(f"bad_audio must be 'skip' or 'error', got {bad_audio!r}")
        if bpemodel is None:
            raise ValueError(f"token_type={token_type} needs --bpemodel (a sentencepiece model or a tokenizer dir)")
        self.tokenizer = build_tokenizer(token_type=token_type, bpemodel=str(bpemodel))
        if token_type == "hugging_face":
            self.token_id_converter = HuggingFaceTokenIDConverter(str(bpemodel))
            self.prefix, self.suffix = special_token_ids(self.token_id_converter.tokenizer, str(bpemodel))
        else:
            if token_list is None:
                raise ValueError("token_type=bpe needs --token_list")
            self.token_id_converter = TokenIDConverter(token_list=token_list, unk_symbol=unk_symbol)
            self.prefix, self.suffix = [], []
        self.num_special_tokens = len(self.prefix) + len(self.suffix)
        if max_text_length <= self.num_special_tokens:
            raise ValueError(f"max_text_length {max_text_length} leaves no room for caption tokens")
        self.text_cleaner = TextCleaner(text_cleaner)
        self.caption_delimiter = caption_delimiter
        self.max_text_length = max_text_length
        self.captions_cut = 0
        self.crop_samples = crop_samples
        self.short_audio = short_audio
        self.fs = fs
        self.bad_audio = bad_audio
        self.speech_name = speech_name
        self.text_name = text_name

    def captions(self, uid: str, line: str) -> List[str]:
        """All captions of one ``text`` line; an empty one is an error naming the utterance."""
        captions = [c.strip() for c in line.split(self.caption_delimiter)]
        if not all(captions):
            raise ValueError(f"utterance {uid}: empty caption in text line {line!r}")
        return captions

    def tokenize(self, caption: str) -> np.ndarray:
        """Caption -> token ids (L,) with special tokens, at most max_text_length long."""
        tokens = self.tokenizer.text2tokens(self.text_cleaner(caption))
        ids = self.token_id_converter.tokens2ids(tokens)
        room = self.max_text_length - self.num_special_tokens
        if len(ids) > room:
            self.captions_cut += 1
            if self.captions_cut <= LOGGED_CUTS or self.captions_cut % 100 == 0:
                logging.warning(
                    f"caption cut from {len(ids) + self.num_special_tokens} to max_text_length "
                    f"{self.max_text_length} tokens ({self.captions_cut} cut so far; preprocessor_conf "
                    f"max_text_length sets it): {caption[:80]!r}"
                )
        return np.asarray(self.prefix + ids[:room] + self.suffix, dtype=np.int64)

    def window(self, uid: str, n: int) -> Tuple[int, int]:
        """(offset, length) of the samples to take from ``n``: the crop (a random one in training, the centred
        one otherwise), or all of them without a crop or when they are fewer than the crop (to be padded)."""
        size = self.crop_samples
        if size is None:
            return 0, n
        if n < size:
            if self.short_audio == "error":
                raise ValueError(
                    f"utterance {uid}: {n} samples, shorter than the crop of {size} samples "
                    "(set preprocessor_conf short_audio: pad to zero-pad such clips)"
                )
            return 0, n
        return (np.random.randint(0, n - size + 1) if self.train else (n - size) // 2), size

    def read_crop(self, uid: str, ref: AudioFileRef) -> np.ndarray:
        """The samples of the window of an audio file, decoding nothing else; BadUtterance for a bad file."""
        n = audio_num_samples(ref.path) if ref.num_samples is None else ref.num_samples
        offset, size = self.window(uid, n)
        speech, rate = read_mono(ref.path, offset, size)
        if self.fs is not None and rate != self.fs:
            raise BadUtterance("wrong sampling rate", f"{ref.path}: {rate} Hz, the front end expects {self.fs} Hz")
        return speech

    def speech(self, uid: str, value: Union[np.ndarray, AudioFileRef]) -> np.ndarray:
        """(S,) float32 mono: the crop (zero-padded with short_audio="pad"), or the whole clip without one."""
        if isinstance(value, AudioFileRef):
            speech = self.read_crop(uid, value)
        else:
            speech = pcm16_to_float(value)
            if speech.ndim == 2:
                speech = speech.mean(axis=1)
            if speech.size == 0:
                raise ValueError(f"utterance {uid}: empty audio")
            offset, size = self.window(uid, len(speech))
            speech = speech[offset : offset + size]
        if self.crop_samples is not None and len(speech) < self.crop_samples:
            speech = np.pad(speech, (0, self.crop_samples - len(speech)))
        return speech

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray, AudioFileRef]]) -> Dict[str, np.ndarray]:
        if self.speech_name in data:
            try:
                data[self.speech_name] = self.speech(uid, data[self.speech_name])
            except BadUtterance as bad:
                if self.bad_audio == "error":
                    raise ValueError(f"utterance {uid}: {bad} (preprocessor_conf bad_audio: skip skips it)") from None
                logging.warning(f"skipping utterance {uid}: {bad}")
                return skipped_record()
        if self.text_name in data and isinstance(data[self.text_name], str):
            captions = self.captions(uid, data[self.text_name])
            caption = captions[np.random.randint(len(captions))] if self.train else captions[0]
            data[self.text_name] = self.tokenize(caption)
        return data
