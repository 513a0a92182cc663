"""Soft-DTW (Cuturi & Blondel 2017) in torch and the Vi-ST loss (Vi-ST paper eqs. 1-4).

:func:`soft_dtw` runs the soft-min recursion one anti-diagonal at a time (all cells of an anti-diagonal
depend only on the two previous ones), batched over series; autograd gives the gradient. It matches
``tslearn.metrics.SoftDTWLossPyTorch`` (squared Euclidean cost), tested in ``tests/test_softdtw.py``.
"""
from __future__ import annotations

import torch

__all__ = ["soft_dtw", "rolling_soft_dtw", "vist_loss"]

_FAR = 1e10  # stands for +inf outside the DTW grid (a finite value keeps gradients NaN-free)


def _soft_dtw_raw(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    b, n, _ = x.shape
    m = y.shape[1]
    cost = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)  # (B, n, m) squared Euclidean
    # pad: cost_pad[:, i, j] = cost[:, i-1, j-1] for i, j >= 1
    cost_pad = torch.nn.functional.pad(cost, (1, 0, 1, 0))
    i = torch.arange(n + 1, device=x.device)
    prev2 = torch.full((b, n + 1), _FAR, dtype=x.dtype, device=x.device)
    prev2[:, 0] = 0.0                                   # diagonal 0: R[0, 0] = 0
    prev1 = torch.full((b, n + 1), _FAR, dtype=x.dtype, device=x.device)  # diagonal 1: R[0,1], R[1,0] = inf
    far_col = torch.full((b, 1), _FAR, dtype=x.dtype, device=x.device)
    for k in range(2, n + m + 1):
        j = k - i
        valid = (i >= 1) & (j >= 1) & (j <= m)
        d = cost_pad[:, i, j.clamp(0, m)]                # (B, n+1)
        diag_prev = torch.cat([far_col, prev2[:, :-1]], dim=1)   # R[i-1, j-1]
        up = torch.cat([far_col, prev1[:, :-1]], dim=1)          # R[i-1, j]
        left = prev1                                              # R[i, j-1]
        stacked = torch.stack([diag_prev, up, left], dim=0)
        softmin = -gamma * torch.logsumexp(-stacked / gamma, dim=0)
        cur = torch.where(valid, d + softmin, torch.full_like(softmin, _FAR))
        prev2, prev1 = prev1, cur
    return prev1[:, n]


def soft_dtw(x: torch.Tensor, y: torch.Tensor, gamma: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """Soft-DTW between series ``x`` (B, n, D) and ``y`` (B, m, D) with squared Euclidean cost -> (B,).

    ``gamma`` > 0 is the soft-min temperature (gamma -> 0 gives DTW). ``normalize`` returns the
    soft-DTW divergence ``sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2`` (tslearn's ``normalize=True``).
    2-D inputs (B, T) are read as univariate series.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    if x.dim() == 2:
        x = x.unsqueeze(-1)
    if y.dim() == 2:
        y = y.unsqueeze(-1)
    if x.dim() != 3 or y.dim() != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        raise ValueError(f"x and y must be (B, n, D) and (B, m, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    value = _soft_dtw_raw(x, y, gamma)
    if normalize:
        value = value - 0.5 * (_soft_dtw_raw(x, x, gamma) + _soft_dtw_raw(y, y, gamma))
    return value


def _windows(t: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(B, T, C) -> (n_windows * B, size, C): windows starting at 0, stride, ... < T - size (official code)."""
    starts = range(0, t.shape[1] - size, stride)
    return torch.cat([t[:, s:s + size] for s in starts], dim=0)


def rolling_soft_dtw(pred: torch.Tensor, target: torch.Tensor, window: int, stride: int | None = None,
                     gamma: float = 0.1, normalize: bool = True) -> torch.Tensor:
    """Mean soft-DTW over rolling windows of ``window`` frames (Vi-ST eq. 2); each window is a series over cells.

    ``pred``/``target`` are (B, T, cells). Windows start at 0, stride, ... below ``T - window`` (as the
    official code; eq. 2's i = 1 .. L - n); ``stride`` defaults to half a window (official code), 1 is
    eq. 2's every-frame rolling window.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (B, T, cells), got {tuple(pred.shape)}, {tuple(target.shape)}")
    stride = max(1, window // 2) if stride is None else int(stride)
    if window < 2 or pred.shape[1] <= window:
        raise ValueError(f"window {window} needs 2 <= window < T = {pred.shape[1]}")
    return soft_dtw(_windows(pred, window, stride), _windows(target, window, stride), gamma, normalize).mean()


def vist_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.1, beta: float = 0.5,
              gamma_weight: float = 5e-6, windows: tuple[int, ...] = (6, 12), stride: int | None = None,
              softdtw_gamma: float = 0.1, normalize: bool = True) -> torch.Tensor:
    """Vi-ST loss (eq. 4): ``alpha RMSE + beta mean(ReLU(-pred)) + gamma_weight * sum_n SoftDTW^n``.

    ``pred``, ``target``: (B, T, cells). Defaults are the paper's alpha = 0.1, beta = 0.5, gamma = 5e-6
    and windows 6 and 12 (eq. 2), with the official code's choices where the paper is silent: soft-DTW
    temperature 0.1, the normalised soft-DTW divergence, windows every half window. (The official code
    writes 0.5 * 1e-5 = 5e-6 and windows T // 20, T // 10, which are 6 and 12 at its T = 128.)
    Windows of length >= T are skipped, so short clips still get the RMSE and ReLU terms.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (B, T, cells), got {tuple(pred.shape)}, {tuple(target.shape)}")
    loss = alpha * torch.sqrt(torch.mean((pred - target) ** 2)) + beta * torch.relu(-pred).mean()
    for w in windows:
        if w < pred.shape[1]:
            loss = loss + gamma_weight * rolling_soft_dtw(pred, target, w, stride, softdtw_gamma, normalize)
    return loss
