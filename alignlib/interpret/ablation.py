"""Neuron ablation of the neural tower (Wang et al. 2026 §4.5, Fig. 6a).

For each test stimulus, neurons are ranked by their response *magnitude* to that stimulus: the absolute
standardised response |z| (the tower's input, z-scored with the training statistics; largest first), so
a neuron far below its average counts as much as one far above it. The map is recomputed from the top p %
only, every other neuron set to its training-set mean (z = 0 in the tower's z-scored input, i.e. "no
deviation from its average"; zero raw activity would instead be a large negative z for active neurons).
SSIM (scikit-image's default 7 x 7 window, data range of the full map) compares it with the map from the
full population. Controls: the same number of neurons drawn at random (``n_random`` draws, averaged) and,
when raw responses are given, the signed ranking by raw trial-averaged response (largest first; a labelled
variant, not the paper's). The fraction needed for SSIM >= 0.9 is read off the mean curve over stimuli by
linear interpolation, but only inside a bracket of tried fractions at most ``max_bracket`` wide; over a
wider bracket it is reported as a bound (:func:`fraction_for_ssim`).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from alignlib.arrays import model_device
from alignlib.interpret.ssim import ssim_batch

__all__ = ["DEFAULT_FRACTIONS", "MAX_BRACKET", "FractionEstimate", "response_ranking", "ablation_curves",
           "stored_ablation_curves", "fraction_for_ssim", "CURVES_VERSION", "energy_kept",
           "energy_at_fraction"]

DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.12, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
MAX_BRACKET = 0.1        # widest gap between tried fractions that is interpolated across
#: format version of stored curves (:func:`stored_ablation_curves`): bump when a change here alters what
#: the same tower and responses give, so a stored result is refused, not reused
CURVES_VERSION = 1


def response_ranking(responses: np.ndarray, magnitude: bool = True) -> np.ndarray:
    """(n, N) neuron indices per stimulus, largest |response| first (``magnitude=False``: largest signed
    response first); ties: lower index first."""
    r = np.asarray(responses, dtype=np.float64)
    return np.argsort(-(np.abs(r) if magnitude else r), axis=1, kind="stable")


def energy_kept(z_responses: np.ndarray, fractions=DEFAULT_FRACTIONS) -> pd.DataFrame:
    """The share of each stimulus's input energy (sum of z squared over the neurons) that each selection of
    :func:`ablation_curves` keeps, per fraction (the same ``k`` per fraction), as the mean over stimuli:
    columns fraction, sorted (the top-|z| neurons: the most energy any k neurons can keep) and random
    (k/N: a random subset keeps that share in expectation). A control for the ranking's advantage: if
    ranked and random subsets reach the same SSIM at the same energy, the advantage is the energy the
    ranking keeps by construction, whatever the tower."""
    z = np.asarray(z_responses, dtype=np.float64)
    n, N = z.shape
    sq = np.sort(z ** 2, axis=1)[:, ::-1]                        # largest |z| first (ties: any order)
    total = sq.sum(axis=1)
    cum = np.cumsum(sq, axis=1) / np.where(total > 0, total, 1.0)[:, None]
    rows = []
    for f in fractions:
        k = max(1, int(round(f * N)))
        rows.append({"fraction": float(f), "sorted": float(cum[:, k - 1].mean()), "random": k / N})
    return pd.DataFrame(rows)


def energy_at_fraction(energy: pd.DataFrame, selection: str, fraction: float) -> float:
    """The mean energy share (:func:`energy_kept`) that ``selection`` keeps at ``fraction`` (linear
    interpolation between the tried fractions; NaN for a NaN fraction, e.g. a bounded crossing)."""
    if not np.isfinite(fraction):
        return float("nan")
    e = energy.sort_values("fraction")
    return float(np.interp(fraction, e["fraction"], e[selection]))


@torch.no_grad()
def _maps(tower: torch.nn.Module, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([tower(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])


def ablation_curves(neural_tower: torch.nn.Module, z_responses: np.ndarray, raw_responses: np.ndarray | None = None,
                    fractions=DEFAULT_FRACTIONS, n_random: int = 10, win_size: int = 7, seed: int = 0
                    ) -> pd.DataFrame:
    """Rows (selection, fraction, n_kept, stimulus, ssim); selection "sorted" (by |z|, the paper's magnitude
    ranking), "random" (means over ``n_random`` draws) and, if ``raw_responses`` (the same stimuli before
    z-scoring) are given, "signed raw" (control variant).

    ``z_responses`` are the tower's inputs (z-scored with the training statistics).
    """
    dev = model_device(neural_tower)
    z = torch.as_tensor(np.asarray(z_responses), dtype=torch.float32, device=dev)
    n, N = z.shape
    if raw_responses is not None and np.shape(raw_responses) != (n, N):
        raise ValueError(f"raw_responses must match z_responses {tuple(z.shape)}, got {np.shape(raw_responses)}")
    neural_tower.eval()
    full = _maps(neural_tower, z)
    orders = {"sorted": torch.as_tensor(response_ranking(z_responses), device=dev)}
    if raw_responses is not None:
        orders["signed raw"] = torch.as_tensor(response_ranking(raw_responses, magnitude=False), device=dev)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for f in fractions:
        k = max(1, int(round(f * N)))
        ranked = {}
        for sel, order in orders.items():
            keep = torch.zeros(n, N, dtype=torch.bool, device=dev).scatter_(1, order[:, :k], True)
            ranked[sel] = ssim_batch(_maps(neural_tower, z * keep), full, win_size).cpu().numpy()
        s_rand = np.zeros(n)
        for _ in range(n_random if k < N else 0):
            idx = torch.argsort(torch.rand(n, N, generator=gen), dim=1)[:, :k].to(dev)
            keep = torch.zeros(n, N, dtype=torch.bool, device=dev).scatter_(1, idx, True)
            s_rand += ssim_batch(_maps(neural_tower, z * keep), full, win_size).cpu().numpy() / n_random
        if k == N:                         # every draw keeps the whole population
            s_rand = ranked["sorted"]
        for sel, s in [*ranked.items(), ("random", s_rand)]:
            rows += [{"selection": sel, "fraction": float(f), "n_kept": k, "stimulus": i, "ssim": float(s[i])}
                     for i in range(n)]
    return pd.DataFrame(rows)


def stored_ablation_curves(neural_tower: torch.nn.Module, z_responses: np.ndarray,
                           raw_responses: np.ndarray | None = None, fractions=DEFAULT_FRACTIONS,
                           n_random: int = 10, win_size: int = 7, seed: int = 0, run=None,
                           chapter: str = "dina") -> tuple[pd.DataFrame, Path]:
    """:func:`ablation_curves`, computed once and kept as a derived result
    (:mod:`alignlib.training.derived`, kind ``ablation``): read from ``runs/derived`` or the run store
    when there, else computed and written. Identified by the tower (its class, structure, mode and
    weights), the responses' bytes, every setting and :data:`CURVES_VERSION`; ``run`` (the folder of the
    run the tower comes from) is recorded with its checkpoint's SHA-256. Returns (curves, folder)."""
    from alignlib.interpret.occlusion import tower_sha256
    from alignlib.training.derived import array_sha256, arrays_frame, cached, frame_arrays, run_source

    z = np.asarray(z_responses, dtype=np.float32)
    raw = None if raw_responses is None else np.asarray(raw_responses, dtype=np.float32)
    identity = {"tower_sha256": tower_sha256(neural_tower), "z_sha256": array_sha256(z),
                "raw_sha256": None if raw is None else array_sha256(raw),
                "fractions": [float(f) for f in fractions], "n_random": int(n_random),
                "win_size": int(win_size), "seed": int(seed), "run": run_source(run)}
    arrays, folder = cached(chapter, "ablation", identity, lambda: frame_arrays(
        ablation_curves(neural_tower, z, raw, fractions, n_random, win_size, seed)))
    return arrays_frame(arrays), folder


class FractionEstimate(NamedTuple):
    """Where the mean SSIM curve crosses the level: ``value`` (interpolated, or the bound), ``kind``
    ("interpolated" | "at or below" | "above" | "never reached") and the bracket of tried fractions."""

    value: float
    kind: str
    low: float
    high: float

    def label(self) -> str:
        if self.kind == "interpolated":
            return f"{100 * self.value:.1f}"
        if self.kind == "at or below":
            return f"<= {100 * self.value:g}"
        return f"> {100 * self.low:g}"


def fraction_for_ssim(curve: pd.DataFrame, level: float = 0.9, max_bracket: float = MAX_BRACKET
                      ) -> FractionEstimate:
    """Smallest fraction at which the mean SSIM over stimuli reaches ``level``; ``curve``: one selection.

    Linear interpolation between the two tried fractions that bracket the crossing, only when they are at
    most ``max_bracket`` apart; otherwise a bound "> low" (kind "above", value NaN). Already reached at
    the smallest fraction: "at or below" it; never reached: "never reached" ("> largest tried", NaN).
    """
    m = curve.groupby("fraction")["ssim"].mean().sort_index()
    f, s = m.index.to_numpy(dtype=np.float64), m.to_numpy()
    above = np.flatnonzero(s >= level)
    if above.size == 0:
        return FractionEstimate(float("nan"), "never reached", float(f[-1]), float("nan"))
    j = above[0]
    if j == 0:
        return FractionEstimate(float(f[0]), "at or below", float("nan"), float(f[0]))
    lo, hi = float(f[j - 1]), float(f[j])
    if hi - lo > max_bracket + 1e-9:
        return FractionEstimate(float("nan"), "above", lo, hi)
    return FractionEstimate(lo + (level - s[j - 1]) * (hi - lo) / (s[j] - s[j - 1]), "interpolated", lo, hi)
