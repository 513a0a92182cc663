"""Structural similarity of many pairs of small maps at once (torch), identical to scikit-image's SSIM.

The occlusion and ablation analyses compare thousands of 16 x 64 maps to a reference map; calling
:func:`skimage.metrics.structural_similarity` once per pair would dominate their run time. This is
the same computation as scikit-image's defaults (uniform ``win_size`` window, sample covariances,
K1 = 0.01, K2 = 0.03, mean over the locations whose window lies inside the map), batched; the tests
check it against scikit-image pair by pair.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ssim_batch", "map_data_range"]


def map_data_range(reference: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-map data range (max - min over the map; 1 where the map is constant) of (B, H, W) maps."""
    ref = torch.as_tensor(reference, dtype=torch.float32)
    rng = ref.flatten(1).amax(1) - ref.flatten(1).amin(1)
    return torch.where(rng > 0, rng, torch.ones_like(rng))


def ssim_batch(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, win_size: int = 7,
               data_range: torch.Tensor | np.ndarray | float | None = None) -> torch.Tensor:
    """Mean SSIM of each pair ``(x[b], y[b])`` of (B, H, W) maps (``y`` may be one (H, W) map, broadcast).

    ``data_range``: a number or one per pair (default: the range of ``y``, the reference map, per pair).
    Equals ``skimage.metrics.structural_similarity(x[b], y[b], win_size=win_size, data_range=...)``.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.float32, device=x.device)
    if y.ndim == 2:
        y = y.expand_as(x)
    if x.ndim != 3 or x.shape != y.shape:
        raise ValueError(f"expected (B, H, W) maps of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if win_size < 3 or win_size % 2 == 0 or win_size > min(x.shape[-2:]):
        raise ValueError(f"win_size must be odd, >= 3 and <= the map's sides {tuple(x.shape[-2:])}, got {win_size}")
    if data_range is None:
        data_range = map_data_range(y)
    dr = torch.as_tensor(data_range, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
    c1, c2 = (0.01 * dr) ** 2, (0.03 * dr) ** 2
    n = win_size * win_size
    cov_norm = n / (n - 1.0)
    a, b = x.unsqueeze(1).double(), y.unsqueeze(1).double()
    pool = lambda t: F.avg_pool2d(t, win_size, stride=1)  # noqa: E731 (valid windows only = skimage's crop)
    ux, uy = pool(a), pool(b)
    vx = cov_norm * (pool(a * a) - ux * ux)
    vy = cov_norm * (pool(b * b) - uy * uy)
    vxy = cov_norm * (pool(a * b) - ux * uy)
    c1, c2 = c1.double(), c2.double()
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()
