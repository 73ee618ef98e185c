"""Log-mel front end computed with torchaudio."""

from typing import Optional, Tuple

import torch
import torchaudio
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from typeguard import typechecked


class LogMelFrontend(AbsFrontend):
    """Waveform (B, S) -> log-mel power in dB (B, T, n_mels).

    The defaults are the LAION-CLAP HTS-AT front end (48 kHz, n_fft 1024, hop 480, 64 slaney mel bins over
    50 Hz-14 kHz, ``10 * log10(max(x, amin))``). ESPnet's DefaultFrontend uses librosa filters and log(x + eps)
    instead, so it cannot reproduce that reference; this class exists for that reason.
    """

    @typechecked
    def __init__(
        self,
        fs: int = 48000,
        n_fft: int = 1024,
        win_length: Optional[int] = None,
        hop_length: int = 480,
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: Optional[float] = 14000.0,
        center: bool = True,
        pad_mode: str = "reflect",
        mel_norm: Optional[str] = "slaney",
        mel_scale: str = "slaney",
        amin: float = 1e-10,
    ):
        super().__init__()
        self.fs = fs
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.center = center
        self.n_mels = n_mels
        self.amin = amin
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=fs,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            f_min=fmin,
            f_max=fmax,
            n_mels=n_mels,
            power=2.0,
            center=center,
            pad_mode=pad_mode,
            norm=mel_norm,
            mel_scale=mel_scale,
        )

    def output_size(self) -> int:
        return self.n_mels

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames the STFT makes of ``num_samples`` samples (any shape)."""
        if self.center:
            return torch.div(num_samples, self.hop_length, rounding_mode="floor") + 1
        return torch.div(num_samples - self.n_fft, self.hop_length, rounding_mode="floor") + 1

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, S), (B,) -> (B, T, n_mels), (B,). Always computed in float32, also under autocast."""
        if input.dim() != 2:
            raise ValueError(f"LogMelFrontend expects mono waveforms (B, S), got shape {tuple(input.shape)}")
        with torch.autocast(device_type=input.device.type, enabled=False):
            power = self.mel(input.float())  # (B, n_mels, T)
            feats = 10.0 * torch.log10(torch.clamp(power, min=self.amin))
        return feats.transpose(1, 2), self.num_frames(input_lengths)
