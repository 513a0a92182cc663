"""Per-neuron reliability from two repeats of the same images (Stringer et al. 2019, Nature).

All functions take ``rep1``, ``rep2``: (n_images, n_neurons) responses to the same images in
two repeats, and return one value per neuron. With ``x = rep1 - mean_images(rep1)`` and
``y = rep2 - mean_images(rep2)`` (means over images):

    signal variance  s = mean_i x_i y_i            (covariance across images between repeats)
    noise variance   n = mean_i (x_i - y_i)^2 / 2  (half the variance of the repeat difference)
    SNR              s / n

For a response ``r = f(image) + noise`` with noise independent across repeats, ``s`` estimates
var(f) without bias and ``n`` estimates the noise variance.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_repeats", "signal_noise_variance", "snr", "split_half_reliability"]


def check_repeats(rep1: np.ndarray, rep2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two (n_images, n_neurons) repeats of the same shape (n_images >= 2); return them as float64."""
    rep1 = np.asarray(rep1, dtype=np.float64)
    rep2 = np.asarray(rep2, dtype=np.float64)
    if rep1.ndim != 2 or rep1.shape != rep2.shape:
        raise ValueError("rep1 and rep2 must both be (n_images, n_neurons) arrays of the same shape, "
                         f"got {rep1.shape} and {rep2.shape}")
    if rep1.shape[0] < 2:
        raise ValueError(f"need at least 2 images, got {rep1.shape[0]}")
    return rep1, rep2


def _centred(rep1: np.ndarray, rep2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rep1, rep2 = check_repeats(rep1, rep2)
    return rep1 - rep1.mean(axis=0), rep2 - rep2.mean(axis=0)


def signal_noise_variance(rep1: np.ndarray, rep2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron ``(signal_variance, noise_variance)``: ``mean(x*y)`` and ``mean((x-y)^2)/2``."""
    x, y = _centred(rep1, rep2)
    return (x * y).mean(axis=0), ((x - y) ** 2).mean(axis=0) / 2.0


def snr(rep1: np.ndarray, rep2: np.ndarray) -> np.ndarray:
    """Per-neuron signal-to-noise ratio ``signal_variance / noise_variance`` (NaN where noise is 0)."""
    signal, noise = signal_noise_variance(rep1, rep2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, signal / noise, np.nan)


def split_half_reliability(rep1: np.ndarray, rep2: np.ndarray) -> np.ndarray:
    """Per-neuron Pearson correlation across images between the two repeats (NaN if constant)."""
    x, y = _centred(rep1, rep2)
    denom = np.sqrt((x ** 2).sum(axis=0) * (y ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, (x * y).sum(axis=0) / denom, np.nan)
