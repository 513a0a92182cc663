"""Scores of predicted neural time courses: Pearson CC, SD-KL (Vi-ST §4.2) and the trial-split noise ceiling.

Arrays are (T, cells) unless stated; every function returns one value per cell.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, peak_widths
from scipy.special import rel_entr
from scipy.stats import gaussian_kde

from alignlib.metrics.reliability import split_half_reliability as _repeat_correlation

__all__ = ["pearson_cc", "mean_abs_cc", "response_durations", "sd_kl", "split_half_reliability",
           "noise_ceiling", "normalized_cc"]


def _as_2d(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be (T, cells) or (T,), got shape {a.shape}")
    return a


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_2d(pred, "pred"), _as_2d(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    if pred.shape[0] < 2:
        raise ValueError(f"need at least 2 time points, got {pred.shape[0]}")
    return pred, target


def pearson_cc(pred, target) -> np.ndarray:
    """Per-cell Pearson correlation across time between prediction and target (NaN where either is constant).

    The paper's Table 2 reports the plain mean over cells of this value.
    """
    pred, target = _pair(pred, target)
    return _repeat_correlation(pred, target)


def mean_abs_cc(pred, target) -> float:
    """Mean over cells of |CC|: what the official Vi-ST code logs as ``val/corr`` (not the paper's mean CC)."""
    return float(np.nanmean(np.abs(pearson_cc(pred, target))))


def response_durations(x: np.ndarray, high_cut: float = 1.0) -> np.ndarray:
    """Durations (in bins) of the response events of a non-negative time course (SD-KL's input).

    Each peak (``find_peaks(x, height=0)``) gets the full width at its base, ``peak_widths(.., rel_height=1)``
    on the signal clipped at ``high_cut`` — rise from and return to the surrounding minimum, the
    official code's reading of "from non-spike to non-spike".
    """
    x = np.asarray(x, dtype=np.float64)
    peaks, _ = find_peaks(x, height=0)
    if peaks.size == 0:
        return np.zeros(0)
    return peak_widths(np.minimum(x, high_cut), peaks, rel_height=1.0)[0]


def _sd_kl_one(pred: np.ndarray, target: np.ndarray, bandwidth: float, direction: str, high_cut: float,
               grid_size: int, cut: float, fill: float) -> float:
    d_pred, d_target = response_durations(pred, high_cut), response_durations(target, high_cut)
    if d_pred.size < 2 or d_target.size < 2:
        return fill
    pooled = np.concatenate([d_pred, d_target])
    try:
        bw = float(np.sqrt(gaussian_kde(pooled, bw_method=bandwidth).covariance.squeeze()))
        grid = np.linspace(pooled.min() - cut * bw, pooled.max() + cut * bw, grid_size)
        p_pred = gaussian_kde(d_pred, bw_method=bandwidth)(grid)
        p_target = gaussian_kde(d_target, bw_method=bandwidth)(grid)
    except np.linalg.LinAlgError:  # all durations identical: no density
        return fill
    p_pred, p_target = p_pred / p_pred.sum(), p_target / p_target.sum()
    p, q = (p_pred, p_target) if direction == "pred||target" else (p_target, p_pred)
    kl = float(np.sum(rel_entr(p, q)))
    return fill if not np.isfinite(kl) else float(np.clip(kl, 0.0, fill))


def sd_kl(pred, target, bandwidth: float = 0.3, direction: str = "pred||target", high_cut: float = 1.0,
          cut_negative: bool = True, grid_size: int = 200, cut: float = 3.0, fill: float = 1000.0) -> np.ndarray:
    """SD-KL per cell (Vi-ST §4.2): KL divergence between the densities of response durations.

    Durations of prediction and target (:func:`response_durations`) are smoothed by ``gaussian_kde``
    with scalar factor ``bandwidth`` (paper's supplement: 0.3; the official code's effective factor is
    0.25), evaluated on a shared ``grid_size``-point grid spanning the pooled durations +- ``cut``
    kernel widths, normalised, and compared by KL in ``direction`` ("pred||target" as the paper states,
    "target||pred" as the official code computes). Clipped to [0, ``fill``]; fewer than 2 events in
    either signal, or a singular density, score ``fill`` (1000, as the paper's clipping).
    Note: durations ignore *when* events happen — a time-shifted copy scores 0.
    """
    if direction not in ("pred||target", "target||pred"):
        raise ValueError(f"direction must be 'pred||target' or 'target||pred', got {direction!r}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    pred, target = _pair(pred, target)
    if cut_negative:
        pred, target = np.maximum(pred, 0.0), np.maximum(target, 0.0)
    return np.array([_sd_kl_one(pred[:, k], target[:, k], bandwidth, direction, high_cut, grid_size, cut, fill)
                     for k in range(pred.shape[1])])


def split_half_reliability(counts, n_splits: int = 20, seed: int = 0, corrected: bool = True) -> np.ndarray:
    """Per-cell reliability of the trial-averaged response from random half splits of the trials.

    ``counts``: (trials, T, cells). For each of ``n_splits`` random splits into two halves, the Pearson
    r across time between the two half-averages; the mean r over splits is Spearman-Brown corrected
    to the full number of trials, ``2 r / (1 + r)`` (``corrected=False`` returns the mean r). NaN for a
    cell that is constant in a half.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[0] < 2:
        raise ValueError(f"counts must be (trials >= 2, T, cells), got shape {counts.shape}")
    rng = np.random.default_rng(seed)
    n = counts.shape[0]
    rs = []
    for _ in range(n_splits):
        order = rng.permutation(n)
        a, b = counts[order[: n // 2]].mean(axis=0), counts[order[n // 2:]].mean(axis=0)
        with np.errstate(invalid="ignore"):
            rs.append(_repeat_correlation(a, b))
    r = np.mean(rs, axis=0)
    return 2 * r / (1 + r) if corrected else r


def noise_ceiling(reliability) -> np.ndarray:
    """Highest expected CC of a perfect model with the trial average: sqrt of the corrected reliability.

    A model that predicts the true (noise-free) rate correlates with the N-trial average at
    ``sqrt(rho_N)``, ``rho_N`` the Spearman-Brown corrected split-half reliability. Negative -> NaN.
    """
    rel = np.asarray(reliability, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(rel > 0, np.sqrt(np.clip(rel, 0, None)), np.nan)


def normalized_cc(cc, reliability) -> np.ndarray:
    """CC divided by the noise ceiling (:func:`noise_ceiling`): 1 = as good as the trial noise allows."""
    return np.asarray(cc, dtype=np.float64) / noise_ceiling(reliability)
