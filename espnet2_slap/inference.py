"""A trained SLAP or CLAP model for inference: embeddings, zero-shot classification and text-to-music search.

    model = AudioTextModel.from_pretrained("exp/slap/config.yaml", "exp/slap/valid.r1_t2a.ave.pth")
    audio = model.embed_audio(["a.wav", "b.flac"])        # {"representation", "projection", "prediction"}
    text = model.embed_text(["a calm piano piece"])
    model.zero_shot(["a.wav"], ["piano", "organ"])         # {prompt: (N, C) cosine scores}
    model.search("a calm piano piece", audio["prediction"], k=5)

Audio files are read as in training and stage 2 (``audio.io``: mono, soxr resampling to the model's rate).
Long audio: the model saw crops of the training length (``crop_seconds``), so a clip is cut into windows of
that length (the last one aligned to the clip's end, so every window is whole) and its embedding is the mean
of the windows' embeddings. A clip shorter than one window is embedded whole.
"""

import argparse
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import yaml

from espnet2_slap.audio.io import BadUtterance, read_mono, resample
from espnet2_slap.checkpoints.reader import read_checkpoint
from espnet2_slap.metrics.cosine import cosine_scores
from espnet2_slap.models.two_tower import TwoTowerModel
from espnet2_slap.prompts import PROMPTS, class_words
from espnet2_slap.tasks.slap import SLAPTask

Audio = Union[str, Path, np.ndarray]


def load_model_weights(model: torch.nn.Module, model_file: Union[str, Path]) -> None:
    """Strictly loads an ESPnet ``*.pth`` (a state dict, read safely: checkpoints/reader.py); any key or
    shape that does not match the config is an error naming it (ESPnet's own loader would silently skip it)."""
    state = read_checkpoint(model_file)
    if not isinstance(state, dict):
        raise ValueError(f"{model_file}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{model_file} does not match the model of its config: {len(missing)} missing keys "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}), {len(unexpected)} unexpected keys "
            f"({', '.join(unexpected[:5])}{', ...' if len(unexpected) > 5 else ''})"
        )
    for key, value in own.items():
        if state[key].shape != value.shape:
            raise ValueError(
                f"{model_file}: {key} has shape {tuple(state[key].shape)}, the config's model {tuple(value.shape)}"
            )
    model.load_state_dict(state)


def load_config(train_config: Union[str, Path]) -> argparse.Namespace:
    """The arguments of a training's config.yaml."""
    with open(train_config, encoding="utf-8") as f:
        return argparse.Namespace(**yaml.safe_load(f))


def load_trained_model(train_config: Union[str, Path], model_file: Union[str, Path]):
    """(args, model) of a training's config.yaml and one of its ``*.pth``, in eval mode. The checkpoints the
    training started from (init_checkpoint, model_conf init) are not read: the weights come from ``model_file``."""
    args = load_config(train_config)
    model = SLAPTask.build_model(SLAPTask.without_init(args))
    load_model_weights(model, model_file)
    return args, model.eval()


def read_audio(audio: Audio, sample_rate: int) -> np.ndarray:
    """A path (any format soundfile reads, resampled with soxr as stage 2 does) or a waveform at ``sample_rate``
    -> (S,) float32."""
    if isinstance(audio, np.ndarray):
        wave = audio.astype(np.float32)
    else:
        try:
            wave, rate = read_mono(str(audio))
        except BadUtterance as e:
            raise ValueError(f"cannot read audio {audio}: {e}") from e
        wave = resample(wave, rate, sample_rate)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"audio {audio if not isinstance(audio, np.ndarray) else '(array)'}: empty or not mono")
    return wave


def windows(wave: np.ndarray, size: Optional[int]) -> np.ndarray:
    """(S,) -> (W, size): whole windows covering the clip, the last aligned to its end; (1, S) if S <= size."""
    if size is None or len(wave) <= size:
        return wave[None]
    starts = list(range(0, len(wave) - size, size)) + [len(wave) - size]
    return np.stack([wave[s : s + size] for s in starts])


class AudioTextModel:
    """Inference wrapper around a SLAPModel or CLAPModel (eval mode, no gradient). ``model`` may be a function
    that builds it, called at its first use (``from_pretrained(..., lazy=True)``)."""

    def __init__(
        self,
        model: Union[TwoTowerModel, Callable[[], TwoTowerModel]],
        args: argparse.Namespace,
        device: str = "cpu",
        batch_size: int = 16,
    ):
        self._model = model.to(device).eval() if isinstance(model, torch.nn.Module) else None
        self._build = model
        self.args = args
        self.device = device
        self.batch_size = batch_size
        self.sample_rate = SLAPTask.sample_rate(args)
        crop_seconds = args.preprocessor_conf.get("crop_seconds")
        self.window = None if crop_seconds is None else int(round(float(crop_seconds) * self.sample_rate))
        self.preprocessor = SLAPTask.build_preprocess_fn(args, train=False)

    @classmethod
    def from_pretrained(
        cls,
        train_config: Union[str, Path],
        model_file: Union[str, Path],
        device: str = "cpu",
        batch_size: int = 16,
        lazy: bool = False,
    ) -> "AudioTextModel":
        """The config.yaml a training wrote and one of its ``*.pth`` (e.g. the n-best average); with ``lazy`` the
        weights are read at the first embedding (the preprocessor and sample rate come from the config alone)."""
        if lazy:
            return cls(
                lambda: load_trained_model(train_config, model_file)[1], load_config(train_config), device, batch_size
            )
        args, model = load_trained_model(train_config, model_file)
        return cls(model, args, device, batch_size)

    @property
    def model(self) -> TwoTowerModel:
        if self._model is None:
            self._model = self._build().to(self.device).eval()
        return self._model

    @property
    def kinds(self) -> Tuple[str, ...]:
        """The embeddings this model gives; the last is the one retrieval uses (SLAP: predictions)."""
        return ("representation", "projection") + (("prediction",) if self.model.audio_predictor is not None else ())

    @torch.no_grad()
    def _encode_audio_windows(self, waves: np.ndarray) -> Dict[str, np.ndarray]:
        """(W, S) windows of equal length -> {kind: (W, D)}."""
        out = {kind: [] for kind in self.kinds}
        for i in range(0, len(waves), self.batch_size):
            speech = torch.from_numpy(waves[i : i + self.batch_size]).to(self.device)
            lengths = torch.full((speech.size(0),), speech.size(1), device=self.device)
            emb = self.model.encode_audio(speech, lengths)
            for kind in self.kinds:
                out[kind].append(getattr(emb, kind).float().cpu().numpy())
        return {kind: np.concatenate(parts) for kind, parts in out.items()}

    def embed_audio(self, audio: Sequence[Audio]) -> Dict[str, np.ndarray]:
        """Paths or waveforms -> {kind: (N, D) float32}; each clip the mean over its windows."""
        out = {kind: [] for kind in self.kinds}
        for item in audio:
            emb = self._encode_audio_windows(windows(read_audio(item, self.sample_rate), self.window))
            for kind in self.kinds:
                out[kind].append(emb[kind].mean(axis=0))
        return {kind: np.stack(rows).astype(np.float32) for kind, rows in out.items()}

    @torch.no_grad()
    def embed_text(self, captions: Sequence[str]) -> Dict[str, np.ndarray]:
        """Captions -> {kind: (N, D) float32}."""
        out = {kind: [] for kind in self.kinds}
        for i in range(0, len(captions), self.batch_size):
            ids = []
            for caption in captions[i : i + self.batch_size]:
                if not caption.strip():
                    raise ValueError(f"empty caption at position {len(ids) + i}")
                ids.append(torch.from_numpy(self.preprocessor.tokenize(caption)))
            lengths = torch.tensor([len(x) for x in ids], device=self.device)
            text = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=-1).to(self.device)
            emb = self.model.encode_text(text, lengths)
            for kind in self.kinds:
                out[kind].append(getattr(emb, kind).float().cpu().numpy())
        return {kind: np.concatenate(parts).astype(np.float32) for kind, parts in out.items()}

    def zero_shot(
        self, audio: Sequence[Audio], labels: Sequence[str], prompts: Sequence[str] = PROMPTS
    ) -> Dict[str, np.ndarray]:
        """{prompt: (N, C) cosine similarity of each clip to ``prompt.format(class_words(label))``} on the retrieval
        kind: a label fills a prompt as in stages 7-8 (``no_vocals`` as "no vocals")."""
        kind = self.kinds[-1]
        audio_emb = self.embed_audio(audio)[kind]
        words = [class_words(label) for label in labels]
        return {
            prompt: cosine_scores(audio_emb, self.embed_text([prompt.format(w) for w in words])[kind])
            for prompt in prompts
        }

    def search(
        self, text: str, catalogue: np.ndarray, k: int = 10, ids: Optional[Sequence[str]] = None
    ) -> List[Tuple[Union[str, int], float]]:
        """The ``k`` clips of ``catalogue`` ((N, D) audio embeddings of the retrieval kind) most similar to
        ``text``: [(id or row, cosine)], best first."""
        scores = cosine_scores(catalogue, self.embed_text([text])[self.kinds[-1]])[:, 0]
        top = np.argsort(-scores, kind="stable")[:k]
        return [(ids[i] if ids is not None else int(i), float(scores[i])) for i in top]
