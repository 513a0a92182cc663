"""Vi-ST (Wu et al., ECCV 2024 workshop; §3, Figs 1-2, Table 1) and the "prior + MSTCN" baseline of its Table 2.

Input: prior features ``(B, C, T, 16, 16)`` (see :mod:`alignlib.models.prior`); output: ``(B, T, n_cells)``.
Every convolution along time is causal (left padding only), so the prediction at frame ``t`` depends on
frames ``<= t`` only.

Where the paper is silent we follow the official code (wurining/Vi-ST, ``src/models/components/eccv.py``; see
``REFERENCE_NOTES.md``):

* C3TCN (§3.1): 1x1x1 conv ``C -> width``; ``n_layers`` residual layers, layer ``i``: left time padding
  ``2 * 2**i``, depthwise ``(3, 3, 3)`` conv with time dilation ``2**i`` (spatial padding 1), BatchNorm3d, ReLU,
  1x1x1 conv, Dropout, residual; then 1x1x1 conv ``width -> n_cells``. (Paper: BN "after C3TCN"; code: in
  each layer — we follow the code.)
* 3D AdaLN-Zero (§3.2, after DiT): ``shift, scale, gate = Conv1x1(SiLU(c)).chunk(3)``, zero-initialised, and
  ``x + gate * Conv1x1(SiLU(x * (1 + scale) + shift))`` — no LayerNorm, as in the code. The condition ``c`` is
  the SUM of all cells' RF masks on the 16 x 16 grid repeated over channels and time (code);
  ``rf_condition="per_cell"`` gives each cell channel its own mask instead (our option, not the paper's).
* CMST (§3.2, Table 1): four blocks with temporal kernels (1, 25), (1, 13, 21), (1, 7, 9), (1, 3, 5); each
  branch a causal ``(w, 3, 3)`` conv without spatial padding (16 -> 14 -> 12 -> 10 -> 8), grouped per cell for
  ``w > 1`` ("separable") and full for ``w = 1`` ("vanilla"), LeakyReLU(0.1), Dropout3d; branches summed,
  1x1x1 mapping conv, plus the shortcut ``AvgPool3d((1, 3, 3))(Conv1x1(x))``.
* Readout: ``Linear(side * side * n_cells -> n_cells)`` applied to every frame (all cells at once).

Ablation switches (§4.4, Fig. 6a) remove one part at a time: ``use_c3tcn=False`` keeps only a 1x1x1 conv
``C -> n_cells`` (so the shapes still meet), ``use_adaln=False`` drops the conditioning, ``use_cmst=False`` sends
the 16 x 16 map straight to the readout.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["CMST_KERNELS", "VistConfig", "MstcnConfig", "C3TCN", "AdaLNZero3d", "CMSTBlock", "ViST", "MSTCNHead",
           "build_vist_model", "count_parameters", "rf_condition"]

#: temporal kernel sizes of the four CMST blocks (paper Table 1)
CMST_KERNELS: tuple[tuple[int, ...], ...] = ((1, 25), (1, 13, 21), (1, 7, 9), (1, 3, 5))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _DepthwiseConv3d(torch.autograd.Function):
    """Depthwise (one filter per channel) conv3d, no padding, time dilation ``d``, with a hand-written backward.

    Same numbers as ``F.conv3d(x, w, groups=C, dilation=(d, 1, 1))``; used on CPU only, where PyTorch's
    backward of grouped 3D convolutions is ~6x slower than this one (input gradient = a forward conv with the
    flipped kernel; weight gradient = per spatial tap, a batched matmul over channels, read along diagonals).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, d: int) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.d = d
        return F.conv3d(x, w, groups=x.shape[1], dilation=(d, 1, 1))

    @staticmethod
    def backward(ctx, go: torch.Tensor):
        x, w = ctx.saved_tensors
        d = ctx.d
        c, tp = x.shape[1], x.shape[2]
        k, kh, kw = w.shape[2:]
        gi = gw = None
        if ctx.needs_input_grad[0]:
            gi = F.conv3d(F.pad(go, (kw - 1, kw - 1, kh - 1, kh - 1, (k - 1) * d, (k - 1) * d)), w.flip(2, 3, 4),
                          groups=c, dilation=(d, 1, 1))
        if ctx.needs_input_grad[1]:
            t, h, ww = go.shape[2:]
            g = go.permute(1, 2, 0, 3, 4).reshape(c, t, -1)                          # (C, T, B*h*w)
            taps = []
            for i in range(kh):
                for j in range(kw):
                    xs = x[:, :, :, i:i + h, j:j + ww].permute(1, 0, 3, 4, 2).reshape(c, -1, tp)
                    prod = torch.bmm(g, xs)                                           # (C, T, T')
                    taps.append(torch.stack([torch.diagonal(prod, offset=dt * d, dim1=1, dim2=2).sum(-1)
                                             for dt in range(k)], 1))
            gw = torch.stack(taps, -1).reshape(c, k, kh, kw)[:, None]
        return gi, gw, None


class CausalConv3d(nn.Conv3d):
    """Conv3d with left-only padding along time (``(k_t - 1) * dilation_t`` frames) and the given spatial padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int, int], dilation_t: int = 1,
                 spatial_padding: int = 0, groups: int = 1, bias: bool = True):
        super().__init__(in_ch, out_ch, kernel, dilation=(dilation_t, 1, 1), padding=(0, spatial_padding, spatial_padding),
                         groups=groups, bias=bias)
        self.left = (kernel[0] - 1) * dilation_t
        self.depthwise = groups > 1 and groups == in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding[1]
        x = F.pad(x, (p, p, p, p, self.left, 0))
        if self.depthwise and x.device.type == "cpu" and torch.is_grad_enabled():
            y = _DepthwiseConv3d.apply(x, self.weight, self.dilation[0])
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)
        return F.conv3d(x, self.weight, self.bias, dilation=self.dilation, groups=self.groups)


class C3TCNLayer(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.depthwise = CausalConv3d(width, width, (3, 3, 3), dilation_t=dilation, spatial_padding=1, groups=width)
        self.bn = nn.BatchNorm3d(width)
        self.pointwise = nn.Conv3d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.pointwise(F.relu(self.bn(self.depthwise(x)))))


class C3TCN(nn.Module):
    """Causal 3D temporal convolutional network (§3.1, Fig. 2a): ``(B, C, T, g, g) -> (B, n_out, T, g, g)``;
    layer ``i`` dilates time by ``2**i``, so the temporal receptive field is ``1 + 2 * (2**n_layers - 1)`` frames."""

    def __init__(self, in_ch: int, width: int, n_out: int, n_layers: int = 6, dropout: float = 0.25):
        super().__init__()
        self.inp = nn.Conv3d(in_ch, width, 1)
        self.layers = nn.ModuleList(C3TCNLayer(width, 2 ** i, dropout) for i in range(n_layers))
        self.out = nn.Conv3d(width, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


def rf_condition(rf_masks: np.ndarray | torch.Tensor, mode: str = "sum") -> torch.Tensor:
    """The AdaLN-Zero condition from RF masks ``(n_cells, g, g)``: ``(n_cells, g, g)`` channels, each the sum of
    all masks (``"sum"``, the official code) or the cell's own mask (``"per_cell"``)."""
    m = torch.as_tensor(np.asarray(rf_masks, dtype=np.float32))
    if m.ndim != 3:
        raise ValueError(f"rf_masks must be (n_cells, side, side), got shape {tuple(m.shape)}")
    if mode == "sum":
        return m.sum(0, keepdim=True).expand_as(m).clone()
    if mode == "per_cell":
        return m.clone()
    raise ValueError(f"unknown rf_condition {mode!r}; choose 'sum' or 'per_cell'")


class AdaLNZero3d(nn.Module):
    """3D AdaLN-Zero (§3.2, after Peebles & Xie's DiT): identity at initialisation (the modulation conv is
    zero-initialised, so ``gate = 0``). ``cond``: ``(channels, g, g)``, broadcast over batch and time."""

    def __init__(self, channels: int, cond: torch.Tensor):
        super().__init__()
        if cond.shape[0] != channels:
            raise ValueError(f"condition has {cond.shape[0]} channels, features {channels}")
        self.register_buffer("cond", cond[None, :, None].clone())        # (1, C, 1, g, g)
        self.modulation = nn.Conv3d(channels, 3 * channels, 1)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.net = nn.Conv3d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(F.silu(self.cond)).chunk(3, dim=1)
        return x + gate * self.net(F.silu(x * (1 + scale) + shift))


class CMSTBlock(nn.Module):
    """Causal multiscale spatiotemporal block (§3.2, Fig. 2b): ``(B, C, T, s, s) -> (B, C, T, s - 2, s - 2)``."""

    def __init__(self, channels: int, kernels: tuple[int, ...], dropout: float = 0.25):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(
            CausalConv3d(channels, channels, (w, 3, 3), groups=1 if w == 1 else channels),
            nn.LeakyReLU(0.1), nn.Dropout3d(dropout)) for w in kernels)
        self.mapping = nn.Conv3d(channels, channels, 1)
        self.shortcut = nn.Sequential(nn.Conv3d(channels, channels, 1), nn.AvgPool3d((1, 3, 3), stride=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mapping(sum(b(x) for b in self.branches)) + self.shortcut(x)


@dataclass
class VistConfig:
    """Vi-ST architecture. Paper/official code: ``width=256, c3tcn_layers=6, dropout=0.25``; smaller widths
    are the book's quick profile. ``n_cells`` is the number of cells predicted jointly."""

    in_channels: int
    n_cells: int
    grid: int = 16
    width: int = 256
    c3tcn_layers: int = 6
    dropout: float = 0.25
    cmst_kernels: tuple[tuple[int, ...], ...] = CMST_KERNELS
    use_c3tcn: bool = True
    use_adaln: bool = True
    use_cmst: bool = True
    rf_condition: str = "sum"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cmst_kernels"] = [list(k) for k in self.cmst_kernels]
        return d


class ViST(nn.Module):
    """Vi-ST (Fig. 1): C3TCN -> 3D AdaLN-Zero(RF masks) -> 4 CMST blocks -> linear readout per frame."""

    def __init__(self, cfg: VistConfig, rf_masks: np.ndarray | torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        n = cfg.n_cells
        self.extractor = (C3TCN(cfg.in_channels, cfg.width, n, cfg.c3tcn_layers, cfg.dropout) if cfg.use_c3tcn
                          else nn.Conv3d(cfg.in_channels, n, 1))
        if cfg.use_adaln:
            if rf_masks is None:
                raise ValueError("Vi-ST with AdaLN-Zero needs the cells' RF masks on the prior's grid")
            cond = rf_condition(rf_masks, cfg.rf_condition)
            if cond.shape != (n, cfg.grid, cfg.grid):
                raise ValueError(f"RF masks must be ({n}, {cfg.grid}, {cfg.grid}), got {tuple(cond.shape)}")
            self.adaln = AdaLNZero3d(n, cond)
        else:
            self.adaln = nn.Identity()
        self.cmst = nn.Sequential(*(CMSTBlock(n, k, cfg.dropout) for k in cfg.cmst_kernels) if cfg.use_cmst else ())
        side = cfg.grid - 2 * len(cfg.cmst_kernels) if cfg.use_cmst else cfg.grid
        if side < 1:
            raise ValueError(f"{len(cfg.cmst_kernels)} CMST blocks shrink a {cfg.grid}-grid to nothing")
        self.readout = nn.Linear(side * side * n, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, C, T, g, g) -> (B, T, n_cells)."""
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels or x.shape[-2:] != (self.cfg.grid, self.cfg.grid):
            raise ValueError(f"expected (B, {self.cfg.in_channels}, T, {self.cfg.grid}, {self.cfg.grid}), "
                             f"got {tuple(x.shape)}")
        h = self.cmst(self.adaln(self.extractor(x)))                      # (B, n, T, s, s)
        b, n, t = h.shape[:3]
        return self.readout(h.permute(0, 2, 1, 3, 4).reshape(b, t, -1))


@dataclass
class MstcnConfig:
    """The "prior + MSTCN" head of Table 2 (MS-TCN, Farha & Gall 2019, on per-frame prior features).

    The paper gives no details. Our reading: per frame, a 1x1 conv reduces the C prior channels to
    ``reduce`` and the 16 x 16 map is flattened and projected to ``width``; then ``n_stages`` stages of
    ``n_layers`` dilated residual temporal convolutions (kernel 3, dilation ``2**i``), each stage ending in a
    conv to ``n_cells`` and the next stage refining the previous stage's output, as in MS-TCN. Convolutions
    are causal (MS-TCN's own are centred) so that the baseline, like Vi-ST, cannot see future frames."""

    in_channels: int
    n_cells: int
    grid: int = 16
    reduce: int = 8
    width: int = 64
    n_stages: int = 2
    n_layers: int = 8
    dropout: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DilatedResidual1d(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.left = 2 * dilation
        self.conv = nn.Conv1d(width, width, 3, dilation=dilation)
        self.out = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.out(F.relu(self.conv(F.pad(x, (self.left, 0))))))


class _Stage(nn.Module):
    def __init__(self, in_ch: int, width: int, n_out: int, n_layers: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(in_ch, width, 1)
        self.layers = nn.Sequential(*(_DilatedResidual1d(width, 2 ** i, dropout) for i in range(n_layers)))
        self.out = nn.Conv1d(width, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(self.inp(x)))


class MSTCNHead(nn.Module):
    """Prior + MSTCN baseline: ``(B, C, T, g, g) -> (B, T, n_cells)`` (see :class:`MstcnConfig`)."""

    def __init__(self, cfg: MstcnConfig):
        super().__init__()
        self.cfg = cfg
        self.reduce = nn.Conv3d(cfg.in_channels, cfg.reduce, 1)
        self.stages = nn.ModuleList(
            [_Stage(cfg.reduce * cfg.grid * cfg.grid, cfg.width, cfg.n_cells, cfg.n_layers, cfg.dropout)]
            + [_Stage(cfg.n_cells, cfg.width, cfg.n_cells, cfg.n_layers, cfg.dropout) for _ in range(cfg.n_stages - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"expected (B, {self.cfg.in_channels}, T, g, g), got {tuple(x.shape)}")
        h = self.reduce(x)                                               # (B, r, T, g, g)
        b, r, t = h.shape[:3]
        h = h.permute(0, 1, 3, 4, 2).reshape(b, -1, t)                   # (B, r*g*g, T)
        for stage in self.stages:
            h = stage(h)
        return h.transpose(1, 2)


def build_vist_model(name: str, config: dict[str, Any], rf_masks: np.ndarray | None = None) -> nn.Module:
    """``name`` "vist" or "mstcn" with its config dict (as stored in a run's spec)."""
    if name == "vist":
        cfg = dict(config)
        cfg["cmst_kernels"] = tuple(tuple(k) for k in cfg.get("cmst_kernels", CMST_KERNELS))
        return ViST(VistConfig(**cfg), rf_masks)
    if name == "mstcn":
        return MSTCNHead(MstcnConfig(**config))
    raise ValueError(f"unknown model {name!r}; choose 'vist' or 'mstcn'")
