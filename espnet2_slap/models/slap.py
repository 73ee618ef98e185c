"""SLAP: Siamese Language-Audio Pretraining (BYOL-style, no negatives)."""

from typing import Any, Dict, List, Optional, Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from typeguard import typechecked

from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.layers.ema import TauSchedule, ema_update_, make_target
from espnet2_slap.layers.mlp import MLP
from espnet2_slap.losses.byol import inter_modal_loss, intra_modal_loss, regression_distance
from espnet2_slap.metrics.inbatch import embedding_std, inbatch_recall_at_1
from espnet2_slap.models.two_tower import TowerOutput, TwoTowerModel


class SLAPModel(TwoTowerModel):
    """Context towers + predictors trained by gradient; target towers are their EMA.

    loss = lambda_inter * L_inter + (1 - lambda_inter) * L_intra (see losses/byol.py). The EMA update is
    ``ema_step()``, run by ``after_optimizer_step``, which SLAPTask registers as a post-hook of the optimizer's
    ``step``, so it runs exactly once per parameter update (once per effective batch with --accum_grad, never
    for a step the trainer or the AMP grad scaler skips). ``ema_updates`` counts updates, drives the tau
    schedule and is saved with the model. Target parameters have requires_grad=False and are only computed
    under no_grad. Targets start as copies of the context towers at the first training forward of a fresh run
    (``ema_updates == 0``), so weights loaded by ``build_model`` (model_conf ``init``) or after it (ESPnet's
    ``--init_param``, ``--init``) reach them too.
    """

    @typechecked
    def __init__(
        self,
        frontend: AbsFrontend,
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        audio_encoder: AbsAudioEncoder,
        text_encoder: AbsTextEncoder,
        projection_dim: int = 512,
        projector_hidden: int = 512,
        projector_batchnorm: bool = False,
        audio_projector_conf: Optional[Dict[str, Any]] = None,
        text_projector_conf: Optional[Dict[str, Any]] = None,
        predictor_hidden: int = 4096,
        predictor_batchnorm: bool = False,
        predictor_dropout: float = 0.0,
        lambda_inter: float = 0.5,
        tau: float = 0.995,
        tau_end: float = 1.0,
        tau_schedule: str = "constant",
        tau_total_steps: Optional[int] = None,
    ):
        super().__init__(
            frontend,
            specaug,
            normalize,
            audio_encoder,
            text_encoder,
            projection_dim,
            projector_hidden,
            projector_batchnorm,
            audio_projector_conf,
            text_projector_conf,
        )
        if not 0.0 <= lambda_inter <= 1.0:
            raise ValueError(f"lambda_inter must lie in [0, 1], got {lambda_inter}")
        self.lambda_inter = lambda_inter
        predictor_dims = [projection_dim, predictor_hidden, projection_dim]
        self.audio_predictor = MLP(predictor_dims, batchnorm=predictor_batchnorm, dropout=predictor_dropout)
        self.text_predictor = MLP(predictor_dims, batchnorm=predictor_batchnorm, dropout=predictor_dropout)
        self.audio_target = make_target(self.audio_tower)
        self.text_target = make_target(self.text_tower)
        self.tau_schedule = TauSchedule(tau, tau_end, tau_schedule, tau_total_steps)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self._targets_checked = False

    @property
    def tau(self) -> float:
        """The tau the next EMA update will use."""
        return self.tau_schedule(int(self.ema_updates))

    @torch.no_grad()
    def ema_step(self) -> None:
        """Move both target towers towards the context towers, then count the update."""
        tau = self.tau
        ema_update_(self.audio_target, self.audio_tower, tau)
        ema_update_(self.text_target, self.text_tower, tau)
        self.ema_updates += 1

    def after_optimizer_step(self) -> None:
        self.ema_step()

    @torch.no_grad()
    def copy_towers_to_targets(self) -> None:
        self.audio_target.load_state_dict(self.audio_tower.state_dict())
        self.text_target.load_state_dict(self.text_tower.state_dict())

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        utt_id: Optional[List[str]] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Waveforms (B, S) and caption ids (B, L) -> (loss, stats, weight = B)."""
        if self.training and not self._targets_checked:
            if int(self.ema_updates) == 0:
                self.copy_towers_to_targets()
            self._targets_checked = True
        feats, feats_lengths = self.extract_feats(speech, speech_lengths)
        audio = self._audio_output(feats, feats_lengths)
        text_out = self.encode_text(text, text_lengths)
        with torch.no_grad():
            _, target_audio = self.audio_target(feats, feats_lengths)
            _, target_text = self.text_target(text, text_lengths)
        terms = (audio.prediction, text_out.prediction, target_audio, target_text)
        loss_inter = inter_modal_loss(*terms)
        loss_intra = intra_modal_loss(*terms)
        loss = self.lambda_inter * loss_inter + (1.0 - self.lambda_inter) * loss_intra
        stats = dict(
            loss=loss.detach(),
            loss_inter=loss_inter.detach(),
            loss_intra=loss_intra.detach(),
            **self.inbatch_stats(audio.prediction, text_out.prediction, audio.projection, text_out.projection),
            **self.learning_stats(audio, text_out, target_audio, target_text),
            tau=torch.tensor(self.tau),
        )
        return self.loss_output(loss, stats, speech.size(0), utt_id)

    @staticmethod
    @torch.no_grad()
    def learning_stats(
        audio: TowerOutput, text: TowerOutput, target_audio: torch.Tensor, target_text: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        """What tells learning from collapse, beside the loss terms and ``std_*`` of the projections: the spread
        of the predictions (``std_*_pred``), in-batch R@1 on the projections (``r1_*_proj``; ``r1_*`` are on the
        predictions) and the online-target distance d(z, z~) of each tower (``target_dist_*``, 0 when the target
        has caught up with the online tower, as in a collapse or with tau near 0)."""
        return dict(
            std_audio_pred=embedding_std(audio.prediction),
            std_text_pred=embedding_std(text.prediction),
            r1_a2t_proj=inbatch_recall_at_1(audio.projection, text.projection),
            r1_t2a_proj=inbatch_recall_at_1(text.projection, audio.projection),
            target_dist_audio=regression_distance(audio.projection.detach(), target_audio).mean(),
            target_dist_text=regression_distance(text.projection.detach(), target_text).mean(),
        )
