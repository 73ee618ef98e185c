"""CLAP: the contrastive baseline on the same towers."""

import math
from typing import Any, Dict, List, Optional, Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from typeguard import typechecked

from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.encoders.abs_text_encoder import AbsTextEncoder
from espnet2_slap.losses.infonce import symmetric_infonce
from espnet2_slap.models.two_tower import TwoTowerModel


class CLAPModel(TwoTowerModel):
    """Symmetric InfoNCE with a learnable temperature T = exp(-logit_scale). Negatives span all DDP ranks
    (losses/infonce.py).

    As LAION-CLAP and open_clip do, the parameter itself is clamped in place to [0, log(max_logit_scale)]
    (T >= 0.01 by default) after every optimizer step (``after_optimizer_step``, registered by SLAPTask), and
    ``forward`` uses it as it is: a clamp inside ``forward`` would let the parameter drift past the limit, where
    it gets no gradient and cannot come back.
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
        init_temperature: float = 0.1,
        max_logit_scale: float = 100.0,
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
        if not 1.0 / max_logit_scale <= init_temperature <= 1.0:
            raise ValueError(f"init_temperature must lie in [1/max_logit_scale, 1], got {init_temperature}")
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log_scale = math.log(max_logit_scale)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """logit_scale into [0, log(max_logit_scale)], in place."""
        self.logit_scale.clamp_(0.0, self.max_log_scale)

    def after_optimizer_step(self) -> None:
        self.clamp_logit_scale_()

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
        audio = self.encode_audio(speech, speech_lengths)
        text_out = self.encode_text(text, text_lengths)
        logit_scale = self.logit_scale.exp()
        loss_a2t, loss_t2a = symmetric_infonce(audio.projection, text_out.projection, logit_scale)
        loss = (loss_a2t + loss_t2a) / 2.0
        stats = dict(
            loss=loss.detach(),
            loss_a2t=loss_a2t.detach(),
            loss_t2a=loss_t2a.detach(),
            **self.inbatch_stats(audio.projection, text_out.projection, audio.projection, text_out.projection),
            temperature=(1.0 / logit_scale).detach(),
        )
        return self.loss_output(loss, stats, speech.size(0), utt_id)
