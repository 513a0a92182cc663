"""A small convolutional model of retinal ganglion cells driven by movies, of the kind fitted to
salamander retina (McIntosh et al. 2016, NeurIPS; Maheswaranathan et al. 2023, Neuron): stimulus
history -> two convolutional layers -> per-cell readout -> softplus rate, trained with a Poisson loss.

Layer 1 is space-time separable: a 1x1 convolution over the history (frames as channels) gives
``temporal`` time courses per pixel, then a ``kernel1`` spatial convolution mixes them into
``channels1`` maps (each map's filter is a sum of ``temporal`` separable space-time filters),
softplus; layer 2 a ``kernel2`` convolution, softplus. The readout of cell ``c`` pools the last maps
with an isotropic Gaussian centred on the cell's receptive-field centre (known from the recording's
RF contour; its width is learned) and weighs the channels, then softplus. Fixing the readout's
position with the measured RF keeps the parameter count small enough for the few seconds of movie a
recording holds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["RetinaCNN", "stimulus_history"]


def stimulus_history(frames: np.ndarray, n_history: int, step: int = 1) -> np.ndarray:
    """(T, H, W) -> (T, n_history, H, W) float32: sample ``t`` holds the means of frames
    ``t - step*k - step + 1 .. t - step*k`` for ``k = 0..n_history-1`` (k = 0 the most recent);
    frames before the start count as 0 (the mean, once centred)."""
    frames = np.asarray(frames, dtype=np.float32)
    t = len(frames)
    cs = np.concatenate(
        [np.zeros((1,) + frames.shape[1:], np.float64), np.cumsum(frames, 0, dtype=np.float64)]
    )
    idx = np.arange(t)
    out = np.empty((t, n_history) + frames.shape[1:], np.float32)
    for k in range(n_history):
        hi = np.clip(idx - k * step + 1, 0, t)
        lo = np.clip(idx - (k + 1) * step + 1, 0, t)
        out[:, k] = (cs[hi] - cs[lo]) / step
    return out


class RetinaCNN(nn.Module):
    """``forward(x)``: (B, n_history, H, W) centred stimulus history -> (B, cells) rates (counts per
    bin).

    ``centres``: (cells, 2) RF centres as (row, col) in input pixels.
    """

    def __init__(
        self,
        n_history: int,
        side: int,
        centres: np.ndarray,
        temporal: int = 6,
        channels1: int = 8,
        kernel1: int = 9,
        channels2: int = 8,
        kernel2: int = 5,
        init_sigma: float = 1.5,
        mean_rate: np.ndarray | None = None,
    ):
        super().__init__()
        self.temporal = nn.Conv2d(n_history, temporal, 1, bias=False)
        self.conv1 = nn.Conv2d(temporal, channels1, kernel1, padding=kernel1 // 2)
        self.conv2 = nn.Conv2d(channels1, channels2, kernel2, padding=kernel2 // 2)
        centres = torch.as_tensor(np.asarray(centres, dtype=np.float32))
        if centres.ndim != 2 or centres.shape[1] != 2:
            raise ValueError(f"centres must be (cells, 2) (row, col), got {tuple(centres.shape)}")
        n_cells = len(centres)
        rows, cols = torch.meshgrid(
            torch.arange(side, dtype=torch.float32),
            torch.arange(side, dtype=torch.float32),
            indexing="ij",
        )
        d2 = (rows[None] - centres[:, 0, None, None]) ** 2 + (
            cols[None] - centres[:, 1, None, None]
        ) ** 2
        self.register_buffer("d2", d2.reshape(n_cells, -1))
        self.log_sigma = nn.Parameter(torch.full((n_cells,), float(np.log(init_sigma))))
        self.weight = nn.Parameter(torch.randn(n_cells, channels2) * 0.1)
        rate = (
            np.full(n_cells, 0.1)
            if mean_rate is None
            else np.maximum(np.asarray(mean_rate, float), 1e-3)
        )
        self.bias = nn.Parameter(torch.as_tensor(np.log(np.expm1(rate)), dtype=torch.float32))

    def readout_masks(self) -> torch.Tensor:
        """(cells, H*W) Gaussian pooling weights (each sums to 1)."""
        return torch.softmax(-self.d2 / (2 * torch.exp(self.log_sigma)[:, None] ** 2), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.softplus(self.conv1(self.temporal(x)))
        h = F.softplus(self.conv2(h))  # (B, C, H, W)
        pooled = torch.einsum("bcp,np->bnc", h.flatten(2), self.readout_masks())  # (B, cells, C)
        return F.softplus((pooled * self.weight[None]).sum(-1) + self.bias)
