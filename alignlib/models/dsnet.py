"""DS-Net image tower for DINA (dual-stream network, Mao et al., NeurIPS 2021).

DINA (Wang et al. 2026, §3) encodes each stimulus with the first two stages of a DS-Net
and projects the stage-2 feature map (128 x 16 x 64) to a one-channel 16 x 64 "image map"
that is aligned with the neural tower's map by InfoNCE. This module is written from the
DS-Net paper's description; it is trained end to end (no frozen backbone, no ``detach``,
unlike the official DINA code, which hooks a detached stage-2 output).

Geometry (a choice of this implementation; the paper gives only the 128 x 16 x 64 output)
--------------------------------------------------------------------------------------
The natimg2800 stimuli are 68 x 270 pixels (1 px per degree, grayscale). A DS-Net stem
(non-overlapping conv, kernel = stride = 4) on 68 x 270 gives 17 x 67, and the usual
stride-2 transition would halve that again (8 x 33, what the official code then resizes).
To obtain the 16 x 64 feature grid the paper states *without* resizing features we:

1. bilinearly resize the input to ``input_size`` = 64 x 256 (``antialias=False``; the
   downscale factor is only ~1.06),
2. ``stem_stride=2`` (default; the paper's "spatial resolution reduced between stages"):
   stem Conv2d(in_chans, dims[0], kernel=4, stride=2, padding=1) -> 32 x 128 (stage 1, r = 8),
   stage transition Conv2d(dims[0], dims[1], kernel=3, stride=2, padding=1) -> 16 x 64 (stage 2,
   r = 4). ``stem_stride=4`` (this book's first geometry, kept as a labelled variant): stem
   kernel = stride = 4 -> 16 x 64 and a stride-1 transition, so both stages work at 16 x 64.
4. projection head: 1x1 conv dims[1] -> dims[1] // 2, GELU, 1x1 conv -> 1 channel.

Like DS-Net there is no normalisation after the stem/transition and no absolute position
embedding (each MixBlock starts with a conditional position encoding).

MixBlock (one block; C channels, H x W grid)
--------------------------------------------
* CPE: ``x = x + DWConv3x3(x)``
* ``y = Conv1x1(BN(x))``; global stream g = first C/2 channels, local stream l = last C/2.
* local: ``l = l + DWConv3x3(BN(l))``
* global: bilinear downsample to (max(1, H // r), max(1, W // r)); tokens;
  ``g = g + MHSA(Linear_{C/2 -> 3C/2}(LN(g)))`` (DS-Net: no output projection here).
* inter-scale co-attention (both ways, with output linears and residuals, as in DS-Net;
  the official DINA copy drops these residuals, we keep them):
  local Q/K/V = Conv1x1_{C/2 -> 3C/2}(BN(l)), global Q/K/V = Linear_{C/2 -> 3C/2}(LN(g));
  ``l = l + Linear(Attn(Q_l, K_g, V_g))``, ``g = g + Linear(Attn(Q_g, K_l, V_l))``.
* merge: upsample g bilinearly to H x W; ``x = x + DropPath(Conv1x1(cat[g, l]))``.
* FFN: ``x = x + DropPath(Conv1x1_{4C -> C}(GELU(Conv1x1_{C -> 4C}(BN(x)))))``.

All attention uses :func:`torch.nn.functional.scaled_dot_product_attention` (scale
1/sqrt(head_dim)), so the same code runs on CPU and CUDA.

Input scaling
-------------
The tower expects roughly zero-mean, unit-variance pixels. Images stored as 0..255 should
be passed through :func:`standardize_images` (``(x - 128) / 64``, fixed constants, so no
statistics are fitted on any split) by the caller; :func:`alignlib.training.prepare_pairs` does so.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alignlib.models.attention import merge_heads, split_heads

__all__ = [
    "IMAGE_MEAN",
    "IMAGE_SCALE",
    "standardize_images",
    "DropPath",
    "MixBlock",
    "DSNetImageTower",
]

#: pixel value subtracted by :func:`standardize_images` (mid-grey of 8-bit images)
IMAGE_MEAN = 128.0
#: divisor used by :func:`standardize_images` (about the pixel s.d. of natural images)
IMAGE_SCALE = 64.0


def standardize_images(imgs):
    """Map 8-bit images (0..255) to roughly zero-mean, unit-variance values: ``(x - 128) / 64``.

    Accepts a NumPy array or a torch tensor of any shape; returns the same kind, as float32
    (torch: floating input keeps its dtype). Fixed constants, so nothing is fitted to data.
    """
    if isinstance(imgs, torch.Tensor):
        x = imgs if imgs.is_floating_point() else imgs.float()
        return (x - IMAGE_MEAN) / IMAGE_SCALE
    x = np.asarray(imgs, dtype=np.float32)
    return (x - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_SCALE)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MixBlock(nn.Module):
    """One DS-Net dual-stream block (see the module docstring for the equations)."""

    def __init__(self, dim: int, heads: int, global_ratio: int, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"MixBlock needs an even channel count, got {dim}")
        half = dim // 2
        if half % heads:
            raise ValueError(f"half the channels ({half}) must be divisible by heads ({heads})")
        if global_ratio < 1:
            raise ValueError(f"global_ratio must be >= 1, got {global_ratio}")
        self.dim, self.half, self.heads, self.ratio = dim, half, heads, int(global_ratio)
        self.attn_drop = float(attn_drop)

        self.cpe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm_in = nn.BatchNorm2d(dim)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        # local stream
        self.local_norm = nn.BatchNorm2d(half)
        self.local_dw = nn.Conv2d(half, half, 3, padding=1, groups=half)
        # global stream
        self.global_norm = nn.LayerNorm(half)
        self.global_qkv = nn.Linear(half, 3 * half)
        # co-attention
        self.co_local_norm = nn.BatchNorm2d(half)
        self.co_local_qkv = nn.Conv2d(half, 3 * half, 1)
        self.co_global_norm = nn.LayerNorm(half)
        self.co_global_qkv = nn.Linear(half, 3 * half)
        self.co_local_out = nn.Linear(half, half)
        self.co_global_out = nn.Linear(half, half)
        # merge + FFN
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.norm_ffn = nn.BatchNorm2d(dim)
        hidden = int(round(dim * mlp_ratio))
        self.ffn = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))
        self.drop_path = DropPath(drop_path)
        #: pathway masking for interpretation (DINA Fig. 5a): "local" or "global" zeroes that stream's
        #: output where the streams merge; None (default) leaves the block unchanged
        self.masked_stream: str | None = None

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.attn_drop if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p)

    def global_size(self, h: int, w: int) -> tuple[int, int]:
        """Grid of the global stream for an ``h x w`` input (at least 1 x 1)."""
        return max(1, h // self.ratio), max(1, w // self.ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x + self.cpe(x)
        y = self.proj_in(self.norm_in(x))
        g, l = y[:, : self.half], y[:, self.half:]

        # local stream
        l = l + self.local_dw(self.local_norm(l))

        # global stream: downsample, self-attention over the coarse grid
        hg, wg = self.global_size(h, w)
        g = F.interpolate(g, size=(hg, wg), mode="bilinear", align_corners=False)
        g = g.flatten(2).transpose(1, 2)  # (B, hg*wg, C/2)
        q, k, v = (split_heads(t, self.heads) for t in self.global_qkv(self.global_norm(g)).chunk(3, dim=-1))
        g = g + merge_heads(self._attend(q, k, v))

        # inter-scale co-attention (both directions, computed from the same inputs)
        l_tok = l.flatten(2).transpose(1, 2)  # (B, H*W, C/2)
        ql, kl, vl = (split_heads(t, self.heads) for t in
                      self.co_local_qkv(self.co_local_norm(l)).flatten(2).transpose(1, 2).chunk(3, dim=-1))
        qg, kg, vg = (split_heads(t, self.heads) for t in
                      self.co_global_qkv(self.co_global_norm(g)).chunk(3, dim=-1))
        l_tok = l_tok + self.co_local_out(merge_heads(self._attend(ql, kg, vg)))
        g = g + self.co_global_out(merge_heads(self._attend(qg, kl, vl)))

        # merge
        l = l_tok.transpose(1, 2).reshape(b, self.half, h, w)
        g = g.transpose(1, 2).reshape(b, self.half, hg, wg)
        g = F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        if self.masked_stream is not None:
            if self.masked_stream not in ("local", "global"):
                raise ValueError(f"masked_stream must be 'local', 'global' or None, got {self.masked_stream!r}")
            g, l = (torch.zeros_like(g), l) if self.masked_stream == "global" else (g, torch.zeros_like(l))
        x = x + self.drop_path(self.proj_out(torch.cat([g, l], dim=1)))
        x = x + self.drop_path(self.ffn(self.norm_ffn(x)))
        return x


class DSNetImageTower(nn.Module):
    """Two-stage DS-Net followed by a 1-channel projection head (DINA image tower).

    Parameters
    ----------
    in_chans : input channels (1: grayscale stimuli).
    dims, depths, heads, global_ratios : per-stage channels, number of MixBlocks, attention
        heads and global-stream downsampling ratios (DS-Net-small stages 1-2: (64, 128),
        (3, 4), (1, 2), (8, 4)).
    input_size : (H, W) every input is bilinearly resized to; must be divisible by 4. The
        feature grid and the output map are ``input_size / 4`` (16 x 64 by default).
    mlp_ratio : FFN expansion.
    drop_path : maximum stochastic-depth rate, increased linearly over blocks (DS-Net
        schedule); 0 disables it.
    attn_drop : dropout on attention weights (0 by default).
    stem_stride : 2 (stage 1 at input/2, stride-2 transition; needs two stages) or 4 (stage 1 at
        input/4, stride-1 transitions).

    ``forward(images)`` takes (B, 1, H, W) or (B, H, W) standardised images (see
    :func:`standardize_images`) and returns the (B, 16, 64) image map; ``features(images)``
    returns the stage-2 feature map (B, dims[-1], 16, 64).
    """

    def __init__(self, in_chans: int = 1, dims: Sequence[int] = (64, 128), depths: Sequence[int] = (3, 4),
                 heads: Sequence[int] = (1, 2), global_ratios: Sequence[int] = (8, 4),
                 input_size: Sequence[int] = (64, 256), mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 attn_drop: float = 0.0, stem_stride: int = 2):
        super().__init__()
        dims, depths, heads, global_ratios = tuple(dims), tuple(depths), tuple(heads), tuple(global_ratios)
        if not (len(dims) == len(depths) == len(heads) == len(global_ratios)) or len(dims) < 1:
            raise ValueError("dims, depths, heads and global_ratios must have the same (non-zero) length")
        input_size = tuple(int(s) for s in input_size)
        if len(input_size) != 2 or input_size[0] % 4 or input_size[1] % 4:
            raise ValueError(f"input_size must be two integers divisible by 4, got {input_size}")
        self.in_chans = int(in_chans)
        self.dims, self.depths, self.heads, self.global_ratios = dims, depths, heads, global_ratios
        self.input_size = input_size
        self.map_size = (input_size[0] // 4, input_size[1] // 4)

        if stem_stride not in (2, 4) or (stem_stride == 2 and len(dims) != 2):
            raise ValueError(f"stem_stride must be 4, or 2 with two stages; got {stem_stride} with {len(dims)} stages")
        self.stem_stride = int(stem_stride)
        self.stem = (nn.Conv2d(self.in_chans, dims[0], kernel_size=4, stride=4) if stem_stride == 4 else
                     nn.Conv2d(self.in_chans, dims[0], kernel_size=4, stride=2, padding=1))
        t_stride = 1 if stem_stride == 4 else 2
        rates = np.linspace(0.0, drop_path, sum(depths)).tolist() if sum(depths) else []
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        i = 0
        for s, (dim, depth, nh, r) in enumerate(zip(dims, depths, heads, global_ratios)):
            self.transitions.append(nn.Identity() if s == 0 else nn.Conv2d(dims[s - 1], dim, 3, stride=t_stride,
                                                                               padding=1))
            blocks = []
            for _ in range(depth):
                blocks.append(MixBlock(dim, nh, r, mlp_ratio=mlp_ratio, drop_path=rates[i], attn_drop=attn_drop))
                i += 1
            self.stages.append(nn.Sequential(*blocks))
        hidden = max(1, dims[-1] // 2)
        self.head = nn.Sequential(nn.Conv2d(dims[-1], hidden, 1), nn.GELU(), nn.Conv2d(hidden, 1, 1))
        self.apply(_init_weights)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 3:
            images = images.unsqueeze(1)
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"expected images of shape (B, {self.in_chans}, H, W) or (B, H, W), "
                             f"got {tuple(images.shape)}")
        images = images.float() if not images.is_floating_point() else images
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Stage-2 (last-stage) feature map, (B, dims[-1], 16, 64) for the default geometry."""
        x = self.stem(self._prepare(images))
        for transition, stage in zip(self.transitions, self.stages):
            x = stage(transition(x))
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Image map (B, 16, 64)."""
        return self.head(self.features(images)).squeeze(1)


def _init_weights(m: nn.Module) -> None:
    # DS-Net/timm convention for linears and norms; convolutions keep PyTorch's default.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
