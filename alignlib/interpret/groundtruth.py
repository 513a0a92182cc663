"""Does each interpretability method recover what the ground-truth twin planted? (beyond the paper)

The twin (:mod:`alignlib.data.twin`) stores every neuron's receptive field and noise-free mean response.
From them:

* :func:`rf_coverage_map`: where the population's receptive fields lie: the sum over neurons of their
  Gaussian RF envelopes (truncated as in the twin), optionally weighted by each neuron's signal s.d.
  (noise-free response s.d. over the mouse's images);
* :func:`true_snr`: per neuron, the variance of its noise-free response over the mouse's images divided by
  its trial-to-trial variance (independent noise plus shared fluctuations, noise_sd^2 + |B_n|^2; the twin's
  multiplicative gain fluctuations are left out);
* :func:`map_correlation`: Pearson correlation over pixels (e.g. mean occlusion map vs coverage);
* :func:`bootstrap_map_check`: the occlusion check with its control on the *same* images, a bootstrap
  over images giving a 95 % CI of (trained r - control r) and of the RF-region mass excess over a
  uniform map, and a one-sided bootstrap p (share of resamples with trained r <= control r);
* :func:`keep_order_vs_snr`: Spearman correlation between how early the ablation ranking keeps each neuron
  (mean rank over stimuli) and its true SNR.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import stats

from alignlib.data.twin.stimuli import HEIGHT, WIDTH

__all__ = ["rf_coverage_map", "true_snr", "map_correlation", "keep_order_vs_snr", "region_mass",
           "bootstrap_map_check"]


def rf_coverage_map(gt: Mapping[str, np.ndarray], weighted: bool = False, shape: tuple[int, int] = (HEIGHT, WIDTH)
                    ) -> np.ndarray:
    """(H, W) sum of the neurons' Gaussian RF envelopes (weights: signal s.d. when ``weighted``)."""
    x, y, s = (np.asarray(gt[k], dtype=np.float64) for k in ("x", "y", "sigma"))
    trunc = float(np.asarray(gt.get("rf_truncate", 4.0)))
    w = np.asarray(gt["mean_response"], dtype=np.float64).std(axis=0) if weighted else np.ones(len(x))
    rows, cols = np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64)
    out = np.zeros(shape)
    for i in range(0, len(x), 256):                       # separable envelopes, 256 neurons at a time
        sl = slice(i, i + 256)
        dy = rows[None, :] - y[sl, None]
        dx = cols[None, :] - x[sl, None]
        ey = np.exp(-dy ** 2 / (2 * s[sl, None] ** 2))
        ex = np.exp(-dx ** 2 / (2 * s[sl, None] ** 2))
        env = ey[:, :, None] * ex[:, None, :]
        env *= (dy[:, :, None] ** 2 + dx[:, None, :] ** 2) <= (trunc * s[sl, None, None]) ** 2
        out += np.tensordot(w[sl], env, axes=1)
    return out


def true_snr(gt: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) signal variance over the mouse's images / (noise_sd^2 + |shared loadings|^2)."""
    signal = np.asarray(gt["mean_response"], dtype=np.float64).var(axis=0)
    noise = np.asarray(gt["noise_sd"], dtype=np.float64) ** 2 + (np.asarray(gt["shared_loadings"]) ** 2).sum(axis=1)
    return signal / noise


def map_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps over pixels (NaN if either is constant)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {a.size} vs {b.size}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def region_mass(rf_map: np.ndarray, region) -> tuple[float, float]:
    """(share of the map's total inside ``region`` [row0, row1, col0, col1), share of the area it covers)."""
    m = np.asarray(rf_map, dtype=np.float64)
    r0, r1, c0, c1 = (int(v) for v in region)
    inside = m[r0:r1, c0:c1].sum() / m.sum() if m.sum() > 0 else float("nan")
    return float(inside), float((r1 - r0) * (c1 - c0) / m.size)


def keep_order_vs_snr(ranking: np.ndarray, snr: np.ndarray) -> tuple[float, float]:
    """Spearman rho (and p) between -mean rank of each neuron in a per-stimulus ranking (n, N) and its SNR:
    positive when the neurons kept first carry more signal."""
    ranking = np.asarray(ranking)
    n, N = ranking.shape
    pos = np.empty_like(ranking)
    pos[np.arange(n)[:, None], ranking] = np.arange(N)[None, :]
    res = stats.spearmanr(-pos.mean(axis=0), np.asarray(snr))
    return float(res.statistic), float(res.pvalue)


def bootstrap_map_check(maps: np.ndarray, control_maps: np.ndarray, coverage: np.ndarray, region,
                        n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Trained vs control occlusion maps of the same images (n, H, W) against the true RF ``coverage``.

    ``control_maps``: (n, H, W) for one control network, or (K, n, H, W) for K of them (untrained
    towers of K random initialisations): the control's r is then the mean over networks of each
    network's r, and the bootstrap resamples networks as well as images, so the interval includes the
    spread between initialisations (``r_control_sd``: that spread). Returns r and control r of the mean
    maps (:func:`map_correlation`), their difference with a bootstrap 95 % CI (images resampled with
    replacement, the same resample for both), the one-sided bootstrap p of difference <= 0 (CI and p
    NaN for a single image), and the share of the mean map's mass inside ``region`` minus the region's
    share of the area (excess over a uniform map) with its bootstrap 95 % CI.
    """
    a, b = np.asarray(maps, dtype=np.float64), np.asarray(control_maps, dtype=np.float64)
    if b.ndim == 3:
        b = b[None]
    if a.ndim != 3 or b.ndim != 4 or b.shape[1:] != a.shape:
        raise ValueError(f"maps (n, H, W) and control_maps (n, H, W) or (K, n, H, W) must be the same images, "
                         f"got {a.shape} and {np.shape(control_maps)}")
    area = region_mass(a[0], region)[1]

    def stats_of(idx, nets):
        ma = a[idx].mean(axis=0)
        r_ctrl = np.mean([map_correlation(b[k][idx].mean(axis=0), coverage) for k in nets])
        return (map_correlation(ma, coverage), r_ctrl, region_mass(ma, region)[0] - area)

    all_nets = np.arange(len(b))
    r, r_ctrl, excess = stats_of(np.arange(len(a)), all_nets)
    r_each = [map_correlation(b[k].mean(axis=0), coverage) for k in all_nets]
    spread = {"r_control_sd": float(np.std(r_each, ddof=1)) if len(b) > 1 else float("nan"),
              "n_control_networks": int(len(b))}
    if len(a) < 2:                                  # no resampling variability to measure
        nan = float("nan")
        return {"r": r, "r_control": r_ctrl, "diff": r - r_ctrl, "diff_ci_low": nan, "diff_ci_high": nan, "p": nan,
                "mass_excess": float(excess), "mass_excess_ci_low": nan, "mass_excess_ci_high": nan, "n_images": 1,
                **spread}
    rng = np.random.default_rng(seed)
    boot = np.array([stats_of(rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b)))
                     for _ in range(n_boot)])
    diff = boot[:, 0] - boot[:, 1]
    ok = np.isfinite(diff)
    lo, hi = np.percentile(diff[ok], [2.5, 97.5]) if ok.any() else (np.nan, np.nan)
    elo, ehi = np.percentile(boot[:, 2], [2.5, 97.5])
    return {"r": r, "r_control": r_ctrl, "diff": r - r_ctrl, "diff_ci_low": float(lo), "diff_ci_high": float(hi),
            "p": float(np.mean(diff[ok] <= 0)) if ok.any() else float("nan"),
            "mass_excess": float(excess), "mass_excess_ci_low": float(elo), "mass_excess_ci_high": float(ehi),
            "n_images": int(len(a)), **spread}
