"""What SLAP and CLAP share: an audio tower and a text tower, each an encoder followed by a projector."""

import logging
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.layers.mlp import MLP
from espnet2_slap.metrics.inbatch import embedding_std, inbatch_recall_at_1


class TowerOutput(NamedTuple):
    """Embeddings of one modality, each (B, D): y, z = g(y) and (SLAP only) q = h(z)."""

    representation: torch.Tensor
    projection: torch.Tensor
    prediction: Optional[torch.Tensor] = None


class Tower(torch.nn.Module):
    """Encoder f followed by projector g: inputs -> (representation y, projection z)."""

    def __init__(self, encoder: torch.nn.Module, projector: torch.nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        y = self.encoder(xs, lengths)
        return y, self.projector(y)


PROJECTOR_OPTIONS = ("batchnorm", "bias_before_batchnorm")


def projector(in_size: int, hidden: int, out_size: int, batchnorm: bool, conf: Optional[Dict[str, Any]], name: str):
    """The MLP [in, hidden, out] of one tower: ``projector_batchnorm`` for both towers, overridden per tower by
    ``<tower>_projector_conf`` ({batchnorm: bool, bias_before_batchnorm: bool})."""
    conf = dict(conf or {})
    unknown = sorted(set(conf) - set(PROJECTOR_OPTIONS))
    if unknown:
        raise ValueError(f"model_conf {name}: unknown options {unknown}; the options are {list(PROJECTOR_OPTIONS)}")
    return MLP([in_size, hidden, out_size], **{"batchnorm": batchnorm, **conf})


class TwoTowerModel(AbsESPnetModel):
    """Waveform -> frontend -> [specaug (training)] -> [normalize] -> audio tower; token ids -> text tower.

    Subclasses own the loss (``forward``), may add predictors (``audio_predictor``/``text_predictor``) and
    what follows each optimizer step (``after_optimizer_step``, registered by SLAPTask).
    Projectors: ``projector_batchnorm`` sets BatchNorm in both; ``audio_projector_conf`` and
    ``text_projector_conf`` override it per tower and say whether the Linear before BatchNorm has a bias
    (``bias_before_batchnorm``). LAION-CLAP's heads have no BatchNorm; the SLAP reference's audio projector has
    none, its text projector has one, with no bias before it.
    """

    def __init__(
        self,
        frontend: AbsFrontend,
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        audio_encoder: AbsAudioEncoder,
        text_encoder: AbsTextEncoder,
        projection_dim: int,
        projector_hidden: int,
        projector_batchnorm: bool,
        audio_projector_conf: Optional[Dict[str, Any]] = None,
        text_projector_conf: Optional[Dict[str, Any]] = None,
    ):
        super().__init__()
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        sizes = (projector_hidden, projection_dim, projector_batchnorm)
        self.audio_tower = Tower(
            audio_encoder, projector(audio_encoder.output_size(), *sizes, audio_projector_conf, "audio_projector_conf")
        )
        self.text_tower = Tower(
            text_encoder, projector(text_encoder.output_size(), *sizes, text_projector_conf, "text_projector_conf")
        )
        self.audio_predictor: Optional[torch.nn.Module] = None
        self.text_predictor: Optional[torch.nn.Module] = None

    def after_optimizer_step(self) -> None:
        """Runs once after every parameter update (SLAPTask registers it on the optimizer's ``step``)."""

    def extract_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, S), (B,) -> audio encoder input (B, T, F), (B,); SpecAug only in training mode."""
        feats, feats_lengths = self.frontend(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        return feats, feats_lengths

    def _audio_output(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> TowerOutput:
        y, z = self.audio_tower(feats, feats_lengths)
        return TowerOutput(y, z, None if self.audio_predictor is None else self.audio_predictor(z))

    def encode_audio(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> TowerOutput:
        """Waveforms (B, S), (B,) -> TowerOutput."""
        return self._audio_output(*self.extract_feats(speech, speech_lengths))

    def encode_text(self, text: torch.Tensor, text_lengths: torch.Tensor) -> TowerOutput:
        """Token ids (B, L), (B,) -> TowerOutput."""
        y, z = self.text_tower(text, text_lengths)
        return TowerOutput(y, z, None if self.text_predictor is None else self.text_predictor(z))

    @staticmethod
    def inbatch_stats(
        audio_keys: torch.Tensor, text_keys: torch.Tensor, z_audio: torch.Tensor, z_text: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """In-batch R@1 both ways on the retrieval embeddings, and the collapse monitor on the projections."""
        return dict(
            r1_a2t=inbatch_recall_at_1(audio_keys, text_keys),
            r1_t2a=inbatch_recall_at_1(text_keys, audio_keys),
            std_audio=embedding_std(z_audio),
            std_text=embedding_std(z_text),
        )

    def loss_output(
        self, loss: torch.Tensor, stats: Dict[str, torch.Tensor], batch_size: int, utt_id: Optional[List[str]]
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """ESPnet's (loss, stats, weight = batch size), gatherable across devices; a non-finite loss is reported
        with the batch's utterance ids and its loss terms (ESPnet's trainer then skips the update)."""
        if not torch.isfinite(loss):
            terms = ", ".join(f"{k} {v.item():.4g}" for k, v in stats.items() if k.startswith("loss_"))
            logging.warning(
                f"{type(self).__name__}: non-finite loss ({terms}) in the batch of {utt_id}; "
                "the trainer skips this update (and with it SLAP's EMA step)"
            )
        return force_gatherable((loss, stats, batch_size), loss.device)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        """Front-end features for ``--collect_stats`` (global_mvn statistics): before SpecAug and normalize."""
        feats, feats_lengths = self.frontend(speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}
