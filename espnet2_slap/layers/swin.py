"""Swin Transformer pieces (Liu et al., 2021) with the module and parameter names of HTS-AT.

Tokens of a stage form an (H, W) grid stored row-major as (B, H * W, C). A block attends within
non-overlapping windows of ``window_size x window_size`` tokens; every second block shifts the grid by half a
window first, so that information crosses window borders, and masks the pairs of tokens that the cyclic shift
brought together from opposite edges. Attention logits carry a learnt bias per head and relative offset
between the two tokens of a window.
"""

from typing import List, Optional, Tuple

import torch

# Added to the logits of token pairs a shifted window must not connect (the value of the Swin reference).
MASKED_LOGIT = -100.0


class DropPath(torch.nn.Module):
    """Stochastic depth: in training, zeroes a residual branch for a random ``rate`` of the samples and
    rescales the others by 1 / (1 - rate); identity in eval mode."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = torch.rand((x.size(0),) + (1,) * (x.dim() - 1), device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)


def partition_windows(grid: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, num_windows, window_size ** 2, C); windows and their tokens row-major."""
    B, H, W, C = grid.shape
    windows = grid.view(B, H // window_size, window_size, W // window_size, window_size, C)
    return windows.permute(0, 1, 3, 2, 4, 5).reshape(B, -1, window_size * window_size, C)


def merge_windows(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of ``partition_windows``: (B, num_windows, window_size ** 2, C) -> (B, H, W, C)."""
    B, _, _, C = windows.shape
    grid = windows.view(B, height // window_size, width // window_size, window_size, window_size, C)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(B, height, width, C)


def relative_position_index(window_size: int) -> torch.Tensor:
    """(N, N) long, N = window_size ** 2: row of the bias table for the offset from token j to token i.

    The offset (dy, dx), each in [-(window_size - 1), window_size - 1], is stored at
    (dy + window_size - 1) * (2 * window_size - 1) + (dx + window_size - 1).
    """
    ys, xs = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window_size - 1
    dx = xs[:, None] - xs[None, :] + window_size - 1
    return dy * (2 * window_size - 1) + dx


def shifted_window_mask(height: int, width: int, window_size: int, shift: int) -> torch.Tensor:
    """(num_windows, N, N) additive mask for a grid rolled by ``-shift`` on both axes: 0 between tokens from the
    same region of the unrolled grid, MASKED_LOGIT between tokens the roll brought together from opposite edges.
    """
    region = torch.zeros(1, height, width, 1)
    bounds = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            region[:, rows, cols, :] = label
            label += 1
    region_windows = partition_windows(region, window_size)[0, :, :, 0]  # (num_windows, N)
    different = region_windows[:, :, None] != region_windows[:, None, :]
    return torch.zeros(different.shape).masked_fill(different, MASKED_LOGIT)


class WindowAttention(torch.nn.Module):
    """Multi-head self-attention within windows, with a learnt relative position bias.

    Parameters: ``qkv`` (C -> 3C), ``proj`` (C -> C), ``relative_position_bias_table``
    ((2 * window_size - 1) ** 2, num_heads). The table's index is recomputed (a buffer outside the state dict).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, attn_drop: float, proj_drop: float):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"Swin attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.attn_drop = torch.nn.Dropout(attn_drop)
        self.proj = torch.nn.Linear(dim, dim)
        self.proj_drop = torch.nn.Dropout(proj_drop)
        self.relative_position_bias_table = torch.nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        torch.nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        """(num_heads, N, N)."""
        bias = self.relative_position_bias_table[self.relative_position_index]  # (N, N, num_heads)
        return bias.permute(2, 0, 1)

    def forward(self, windows: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, num_windows, N, C), mask (num_windows, N, N) or None -> (B, num_windows, N, C)."""
        B, num_windows, N, C = windows.shape
        qkv = self.qkv(windows).view(B, num_windows, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)  # each (B, num_windows, heads, N, head_dim)
        logits = (q * self.scale) @ k.transpose(-2, -1) + self.relative_position_bias()
        if mask is not None:
            logits = logits + mask[:, None]
        weights = self.attn_drop(logits.softmax(dim=-1))
        out = (weights @ v).transpose(2, 3).reshape(B, num_windows, N, C)
        return self.proj_drop(self.proj(out))


class FeedForward(torch.nn.Module):
    """Linear ``fc1`` (C -> hidden), GELU, dropout, linear ``fc2`` (hidden -> C), dropout: (..., C) -> (..., C)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim, hidden_dim)
        self.fc2 = torch.nn.Linear(hidden_dim, dim)
        self.drop = torch.nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(torch.nn.functional.gelu(self.fc1(x)))))


class SwinBlock(torch.nn.Module):
    """Pre-norm block: x + attention(norm1(x)) within (shifted) windows, then x + mlp(norm2(x)).

    A grid no larger than the window in one dimension is one window, unshifted (the reference's rule).
    """

    def __init__(
        self,
        dim: int,
        resolution: Tuple[int, int],
        num_heads: int,
        window_size: int,
        shifted: bool,
        mlp_ratio: float,
        drop: float,
        attn_drop: float,
        drop_path: float,
    ):
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window_size:
            window_size, shifted = min(resolution), False
        if resolution[0] % window_size or resolution[1] % window_size:
            raise ValueError(f"Swin block: token grid {resolution} is not divisible into {window_size}-windows")
        self.window_size = window_size
        self.shift = window_size // 2 if shifted else 0
        self.norm1 = torch.nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), drop)
        mask = shifted_window_mask(*resolution, window_size, self.shift) if self.shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H * W, C) -> (B, H * W, C)."""
        B, L, C = x.shape
        H, W = self.resolution
        grid = self.norm1(x).view(B, H, W, C)
        if self.shift:
            grid = torch.roll(grid, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(partition_windows(grid, self.window_size), mask=self.attn_mask)
        grid = merge_windows(windows, self.window_size, H, W)
        if self.shift:
            grid = torch.roll(grid, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(grid.reshape(B, L, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(torch.nn.Module):
    """Halves the grid: each 2x2 group of tokens is concatenated (order (0,0), (1,0), (0,1), (1,1) as
    (row, column)), layer-normed (``norm``) and projected 4C -> 2C (``reduction``, no bias).
    (B, H * W, C) -> (B, H / 2 * W / 2, 2C)."""

    def __init__(self, dim: int, resolution: Tuple[int, int]):
        super().__init__()
        if resolution[0] % 2 or resolution[1] % 2:
            raise ValueError(f"Swin patch merging needs an even token grid, got {resolution}")
        self.resolution = resolution
        self.norm = torch.nn.LayerNorm(4 * dim)
        self.reduction = torch.nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, C = x.shape
        grid = x.view(B, *self.resolution, C)
        groups = [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(groups, dim=-1).view(B, -1, 4 * C)))


class SwinStage(torch.nn.Module):
    """``blocks`` (alternately plain and shifted windows), then ``downsample`` (PatchMerging) unless last.
    (B, H * W, C) -> (B, H * W, C), or (B, H / 2 * W / 2, 2C) with downsampling."""

    def __init__(
        self,
        dim: int,
        resolution: Tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop: float,
        attn_drop: float,
        drop_path_rates: List[float],
        downsample: bool,
    ):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            SwinBlock(
                dim, resolution, num_heads, window_size, i % 2 == 1, mlp_ratio, drop, attn_drop, drop_path_rates[i]
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim, resolution) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(torch.nn.Module):
    """Non-overlapping ``patch_size`` patches of a one-channel image, projected (``proj``, a strided Conv2d)
    and layer-normed (``norm``): (B, 1, H, W) -> (B, H / p * W / p, embed_dim), row-major."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = torch.nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = torch.nn.LayerNorm(embed_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(image).flatten(2).transpose(1, 2))


def init_swin_weights(module: torch.nn.Module) -> None:
    """The reference initialisation, for ``Module.apply``: linear weights ~ truncated N(0, 0.02), zero biases."""
    if isinstance(module, torch.nn.Linear):
        torch.nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)
