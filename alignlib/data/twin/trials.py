"""Trial structure of the twin: presentation order, shared and gain fluctuations, trial noise.

    r_tn     = [ mu_n(s_t) * g_tn + (B h_t)_n + noise_sd_n * eps_tn ]_+
    spont_tn = [ (B h_t)_n + noise_sd_n * eps_tn ]_+

``g_tn = exp(a_n . u_t - |a_n|^2/2)`` are low-dimensional multiplicative gain fluctuations (mean 1),
``h_t`` low-dimensional AR(1) shared fluctuations with the SAME loadings ``B`` during stimuli and
spontaneous activity (so subtracting the spontaneous PCs, as Stringer et al. do, removes them) and
``eps`` independent trial noise.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.signal import lfilter

__all__ = ["presentations", "shared_fluctuations", "trial_responses"]


def presentations(rng: np.random.Generator, n_images: int, triple_repeat_fraction: float,
                  gray_fraction: float) -> np.ndarray:
    """1-based image ids in presentation order: every image 2-3 times, gray = n_images + 1.

    At least one gray presentation is included: readers take the largest id as the gray screen.
    """
    n = n_images
    reps = np.full(n, 2)
    reps[rng.permutation(n)[: int(round(triple_repeat_fraction * n))]] = 3
    ids = np.concatenate([np.repeat(np.arange(1, n + 1), reps),
                          np.full(max(1, int(round(gray_fraction * n))), n + 1)])
    return rng.permutation(ids)


def shared_fluctuations(rng: np.random.Generator, n_t: int, n_dims: int, ar: float) -> np.ndarray:
    """(n_t, n_dims) AR(1) processes with unit stationary variance."""
    e = rng.standard_normal((n_t, n_dims))
    e[1:] *= np.sqrt(1 - ar ** 2)            # h_0 ~ N(0, 1), h_t = ar h_{t-1} + sqrt(1-ar^2) e_t
    return lfilter([1.0], [1.0, -ar], e, axis=0)


def trial_responses(rng: np.random.Generator, params: Mapping[str, np.ndarray], mu: np.ndarray,
                    istim: np.ndarray, n_spont_timepoints: int, shared_ar: float,
                    rectify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Responses to each presentation and spontaneous activity, both (time, neurons) float32.

    ``params`` holds ``noise_sd`` (n,), ``shared_loadings`` (n, k) and ``gain_loadings`` (n, m);
    ``mu`` is (n_images, n) and ``istim`` 1-based ids with n_images + 1 the gray screen.
    """
    n_neu = mu.shape[1]
    noise_sd = params["noise_sd"].astype(np.float32)
    loadings = params["shared_loadings"].astype(np.float32)
    gain_loadings = params["gain_loadings"].astype(np.float32)

    def noisy(drive: np.ndarray, n_t: int) -> np.ndarray:
        h = shared_fluctuations(rng, n_t, loadings.shape[1], shared_ar).astype(np.float32)
        r = drive + h @ loadings.T
        r += rng.standard_normal((n_t, n_neu), dtype=np.float32) * noise_sd
        return np.maximum(r, 0.0, out=r) if rectify else r

    mu_gray = np.vstack([mu, np.zeros((1, n_neu), np.float32)])   # gray screen: no drive
    drive = mu_gray[istim - 1]
    if gain_loadings.shape[1]:
        u = rng.standard_normal((len(istim), gain_loadings.shape[1]), dtype=np.float32)
        drive *= np.exp(u @ gain_loadings.T - 0.5 * (gain_loadings ** 2).sum(axis=1))
    resp = noisy(drive, len(istim))
    spont = noisy(np.zeros((n_spont_timepoints, n_neu), np.float32), n_spont_timepoints)
    return resp, spont
