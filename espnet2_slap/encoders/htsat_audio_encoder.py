"""HTS-AT (Chen et al., 2022), the audio tower of LAION-CLAP and SLAP, as an ESPnet audio encoder."""

from typing import List, Optional

import torch
from typeguard import typechecked

from espnet2_slap.checkpoints.htsat import load_htsat_checkpoint
from espnet2_slap.encoders.abs_audio_encoder import AbsAudioEncoder
from espnet2_slap.layers.swin import PatchEmbed, SwinStage, init_swin_weights

# LAION-CLAP's create_htsat_model: all three use 4/8/16/32 heads (Swin-T's 3/6/12/24 would not load them).
HTSAT_SIZES = {
    "tiny": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[4, 8, 16, 32]),
    "base": dict(embed_dim=128, depths=[2, 2, 12, 2], num_heads=[4, 8, 16, 32]),
    "large": dict(embed_dim=256, depths=[2, 2, 12, 2], num_heads=[4, 8, 16, 32]),
}


class HTSATAudioEncoder(AbsAudioEncoder):
    """Log-mel (B, T, n_mels) in dB -> (B, embed_dim * 2 ** (num_stages - 1)): HTS-AT's clip embedding.

    Input: LogMelFrontend's default output (LAION-CLAP's front end: 48 kHz, hop 480, 64 mel bins, dB); a 10-s
    clip is ``clip_frames`` = 1001 frames. ``bn0`` holds the input normalisation, so with LAION-CLAP weights
    use no ``normalize`` layer. The steps, under LAION-CLAP's module names (its checkpoints load, see
    ``init_checkpoint``):

    1. clip length: a clip's valid frames are repeated cyclically to ``clip_frames``: (B, 1001, n_mels). This
       is the frame-level counterpart of LAION-CLAP's "repeatpad" of short waveforms, which repeats whole copies
       and fills the rest with silence; we go on repeating instead, which depends neither on the dB floor nor
       on a ``normalize`` layer. A clip longer than ``clip_frames`` is refused (ValueError): crop clips to at
       most 10 s with ``preprocessor_conf: {crop_seconds: 10}``.
    2. ``bn0``: BatchNorm over the mel bins.
    3. image: time is resized to ``freq_ratio * spec_size`` = 1024 frames (bicubic, corners aligned), cut into
       ``freq_ratio`` = spec_size / n_mels = 4 chunks of spec_size frames, stacked along frequency:
       (B, 1, 256, 256) whose row c * n_mels + f holds mel bin f of chunk c.
    4. ``patch_embed`` (B, 64 * 64, embed_dim), ``layers`` (Swin stages, patch merging between them),
       ``norm`` (LayerNorm), mean over the final 8 x 8 tokens (the reference's ``embedding``).

    size: ``tiny`` (768-d), ``base`` (1024-d, the paper's) or ``large`` (2048-d); embed_dim, depths and
    num_heads override it. Dropout (``drop_rate``, ``attn_drop_rate``) and stochastic depth (rates rising
    linearly to ``drop_path_rate`` over the blocks) act in training mode only.
    init_checkpoint: weights to start from, see ``load_htsat_checkpoint``; ``--init`` would overwrite them.
    """

    @typechecked
    def __init__(
        self,
        input_size: int = 64,
        size: str = "base",
        embed_dim: Optional[int] = None,
        depths: Optional[List[int]] = None,
        num_heads: Optional[List[int]] = None,
        window_size: int = 8,
        mlp_ratio: float = 4.0,
        patch_size: int = 4,
        spec_size: int = 256,
        clip_frames: int = 1001,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        init_checkpoint: Optional[str] = None,
    ):
        super().__init__()
        if size not in HTSAT_SIZES:
            raise ValueError(f"htsat: size must be one of {list(HTSAT_SIZES)}, got {size!r}")
        embed_dim = HTSAT_SIZES[size]["embed_dim"] if embed_dim is None else embed_dim
        depths = HTSAT_SIZES[size]["depths"] if depths is None else depths
        num_heads = HTSAT_SIZES[size]["num_heads"] if num_heads is None else num_heads
        if len(depths) != len(num_heads):
            raise ValueError(f"htsat: depths {depths} and num_heads {num_heads} need one entry per stage")
        if spec_size % input_size:
            raise ValueError(f"htsat: spec_size {spec_size} must be a multiple of the {input_size} mel bins")
        self.freq_ratio = spec_size // input_size
        if clip_frames > self.freq_ratio * spec_size:
            raise ValueError(f"htsat: clip_frames {clip_frames} exceeds the {self.freq_ratio * spec_size} image frames")
        if spec_size % patch_size:
            raise ValueError(f"htsat: spec_size {spec_size} must be a multiple of patch_size {patch_size}")
        self.spec_size = spec_size
        self.clip_frames = clip_frames

        self.bn0 = torch.nn.BatchNorm1d(input_size)
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.embed_dropout = torch.nn.Dropout(drop_rate)
        num_blocks = sum(depths)
        drop_path_rates = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        grid = spec_size // patch_size
        self.layers = torch.nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            self.layers.append(
                SwinStage(
                    dim=embed_dim * 2**i,
                    resolution=(grid // 2**i, grid // 2**i),
                    depth=depth,
                    num_heads=heads,
                    window_size=window_size,
                    mlp_ratio=mlp_ratio,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path_rates=drop_path_rates[sum(depths[:i]) : sum(depths[: i + 1])],
                    downsample=i < len(depths) - 1,
                )
            )
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = torch.nn.LayerNorm(self.num_features)
        self.apply(init_swin_weights)
        if init_checkpoint is not None:
            load_htsat_checkpoint(self, init_checkpoint)

    def output_size(self) -> int:
        return self.num_features

    def repeat_to_clip(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) -> (B, clip_frames, F): frame t of a clip is its valid frame t mod length."""
        longest = int(feats_lengths.max())
        if longest > self.clip_frames:
            raise ValueError(
                f"htsat: a clip of {longest} frames is longer than the model's {self.clip_frames} frames "
                f"(10 s at 48 kHz with hop 480, or at 32 kHz with hop 320); set preprocessor_conf crop_seconds <= 10"
            )
        frames = torch.arange(self.clip_frames, device=feats.device)
        source = frames[None, :] % feats_lengths[:, None].to(feats.device)  # (B, clip_frames)
        return feats.gather(1, source[:, :, None].expand(-1, -1, feats.size(2)))

    def mel_to_image(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, clip_frames, F) -> (B, 1, freq_ratio * F, spec_size), i.e. (B, 1, 256, 256) for 64 mel bins."""
        B, _, F = mel.shape
        resized = torch.nn.functional.interpolate(
            mel[:, None], size=(self.freq_ratio * self.spec_size, F), mode="bicubic", align_corners=True
        )
        chunks = resized.view(B, self.freq_ratio, self.spec_size, F).transpose(2, 3)  # (B, chunk, F, frame)
        return chunks.reshape(B, 1, self.freq_ratio * F, self.spec_size)

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> torch.Tensor:
        mel = self.repeat_to_clip(feats, feats_lengths)
        mel = self.bn0(mel.transpose(1, 2)).transpose(1, 2)
        tokens = self.embed_dropout(self.patch_embed(self.mel_to_image(mel)))
        for stage in self.layers:
            tokens = stage(tokens)
        return self.norm(tokens).mean(dim=1)
