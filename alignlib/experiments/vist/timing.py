"""Where in time do the movie frames sit relative to the spikes? A frame-period x onset scan with a positive control.

The Onken 2016 files give spike times in ms after "stimulus onset" (every trial ends at ~18 s) and the movies'
frames (1800 and 1600), but not the frame period nor where the movie starts relative to the trial. This module
tests every candidate (frame period ``P``, movie onset ``o``) with the simplest model retina researchers trust:
per cell, the mean luminance inside the cell's receptive field, filtered by a free temporal kernel (boxcar lag
bins over the last 400 ms) — a linear model of the trial-averaged rate, scored by contiguous k-fold
cross-validated Pearson CC and averaged over cells.

A response bin at time ``t`` (ms after trial onset) sees frame ``floor((t - o) / P)``; ``o < 0`` means the
trial starts inside the movie, and before the movie starts or after it ends the screen is taken to be the mean
grey (luminance 0 after z-scoring). All onsets are scored at once: the per-window Gram matrices come from
cumulative sums and the cross terms from FFT correlations, so a full scan of one period costs about a second.

:func:`planted_rates` makes synthetic responses from the same frames at a known alignment, so the page can show
that the scan finds an alignment when there is one (its positive control).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from alignlib.data.onken import rf_luminance

__all__ = ["LAG_EDGES_MS", "FOUND_MARGIN", "rf_luminance", "lagged_timeline", "scan_onsets", "planted_rates",
           "onset_grid", "scan_curve", "scan_recording", "stored_scan_recording", "SCAN_VERSION"]

#: format version of the stored scan (:func:`stored_scan_recording`): bump when a change to this module
#: alters what the same rates and frames give, so a stored scan is refused, not reused
SCAN_VERSION = 1

#: temporal basis of the RF-luminance model: mean luminance in these windows before each response bin (ms)
LAG_EDGES_MS = (0, 40, 80, 120, 170, 230, 300, 400)


def lagged_timeline(lum: np.ndarray, frame_ms: float, bin_ms: float, pad_before_ms: float, pad_after_ms: float,
                    lag_edges_ms: Sequence[float] = LAG_EDGES_MS) -> np.ndarray:
    """(T, cells, lags) lagged RF luminance on a ``bin_ms`` grid of movie time, padded with grey on both sides.

    Bin ``i`` covers movie time ``[i * bin_ms - pad_before_ms, ...)``; its luminance is that of the frame shown at
    the bin's centre (0 = mean grey outside the movie); lag feature ``l`` is the mean over the bins between
    ``lag_edges_ms[l]`` and ``lag_edges_ms[l + 1]`` before bin ``i``.
    """
    if not frame_ms >= bin_ms > 0:
        raise ValueError(f"need frame_ms >= bin_ms > 0, got frame_ms={frame_ms}, bin_ms={bin_ms}")
    edges = np.round(np.asarray(lag_edges_ms, dtype=float) / bin_ms).astype(int)
    if np.any(np.diff(edges) <= 0) or edges[0] < 0:
        raise ValueError(f"lag edges {lag_edges_ms} must increase by at least one bin of {bin_ms} ms")
    n_frames = lum.shape[0]
    n_bins = int(np.ceil((pad_before_ms + n_frames * frame_ms + pad_after_ms) / bin_ms))
    centre = (np.arange(n_bins) + 0.5) * bin_ms - pad_before_ms
    frame = np.floor(centre / frame_ms).astype(int)
    inside = (frame >= 0) & (frame < n_frames)
    binned = np.zeros((n_bins, lum.shape[1]), dtype=np.float64)
    binned[inside] = lum[frame[inside]]
    pad = edges[-1]
    cs = np.concatenate([np.zeros((pad + 1, lum.shape[1])), np.cumsum(binned, 0)])  # cs[pad + 1 + i] = sum_{<=i}
    idx = np.arange(n_bins) + pad + 1
    return np.stack([(cs[idx - a] - cs[idx - b]) / (b - a) for a, b in zip(edges[:-1], edges[1:])], axis=2)


def onset_grid(n_frames: int, frame_ms: float, duration_ms: float, bin_ms: float,
               min_overlap: float = 0.5) -> np.ndarray:
    """Movie onsets (ms, multiples of ``bin_ms``) for which the movie covers at least ``min_overlap`` of the trial."""
    movie_ms = n_frames * frame_ms
    lo = -(movie_ms - min_overlap * duration_ms)
    hi = (1 - min_overlap) * duration_ms
    return np.arange(np.ceil(lo / bin_ms), np.floor(hi / bin_ms) + 1) * bin_ms


def scan_onsets(rates: np.ndarray, lum: np.ndarray, frame_ms: float, onsets_ms: np.ndarray, bin_ms: float = 10.0,
                n_folds: int = 5, ridge: float = 1e-3,
                lag_edges_ms: Sequence[float] = LAG_EDGES_MS) -> np.ndarray:
    """Cross-validated CC of the RF-luminance model for every movie onset -> (len(onsets), cells).

    ``rates``: (bins, cells) trial-averaged counts on a ``bin_ms`` grid from trial onset; ``lum``: (frames, cells)
    from :func:`rf_luminance`; ``onsets_ms``: multiples of ``bin_ms``. Folds are contiguous blocks of the trial;
    each fold's model is fitted by (lightly ridged) least squares on the other folds. NaN where a cell's test
    prediction or response is constant.
    """
    rates = np.asarray(rates, dtype=np.float64)
    n_bins, n_cells = rates.shape
    if lum.shape[1] != n_cells:
        raise ValueError(f"rates have {n_cells} cells but lum has {lum.shape[1]}")
    onsets_ms = np.asarray(onsets_ms, dtype=float)
    steps = onsets_ms / bin_ms
    if not np.allclose(steps, np.round(steps)):
        raise ValueError(f"onsets must be multiples of bin_ms={bin_ms}")
    duration = n_bins * bin_ms
    pad_before = max(0.0, onsets_ms.max()) + duration
    pad_after = max(0.0, -onsets_ms.min()) + duration
    Z = lagged_timeline(lum, frame_ms, bin_ms, pad_before, pad_after, lag_edges_ms)
    # trial bin t of onset o sits at timeline index start(o) + t, where start(o) = (pad_before - o) / bin_ms
    starts = np.round((pad_before - onsets_ms) / bin_ms).astype(int)
    folds = np.array_split(np.arange(n_bins), n_folds)
    bounds = [(int(f[0]), int(f[-1]) + 1) for f in folds]
    n_feat = Z.shape[2] + 1
    reg = ridge * np.eye(n_feat)
    reg[-1, -1] = 0.0
    n_fft = next_fast_len(len(Z) + n_bins - 1, real=True)
    y_folds = np.zeros((n_bins, n_folds, n_cells))             # each fold's responses, zero elsewhere
    for i, (a, b) in enumerate(bounds):
        y_folds[a:b, i] = rates[a:b]
    # sum_t X[start + t] * y_fold[t] for every start: cross-correlations, all features and folds at once
    fy = np.conj(rfft(y_folds, n_fft, axis=0))                 # (freq, folds, cells)
    out = np.full((len(onsets_ms), n_cells), np.nan)
    for c in range(n_cells):
        X = np.concatenate([Z[:, c, :], np.ones((len(Z), 1))], axis=1)           # (T, F)
        outer = np.einsum("ti,tj->tij", X, X).reshape(len(X), -1)
        cs = np.concatenate([np.zeros((1, outer.shape[1])), np.cumsum(outer, 0)])
        y = rates[:, c]
        g_test = np.stack([(cs[starts + b] - cs[starts + a]).reshape(-1, n_feat, n_feat)
                           for a, b in bounds])                                   # (folds, onsets, F, F)
        corr = irfft(rfft(X, n_fft, axis=0)[:, :, None] * fy[:, None, :, c], n_fft, axis=0)
        x_test = np.moveaxis(corr[starts], 2, 0)                                  # (folds, onsets, F)
        n = np.array([b - a for a, b in bounds], dtype=float)[:, None]
        sy = np.array([y[a:b].sum() for a, b in bounds])[:, None]
        syy = np.array([(y[a:b] ** 2).sum() for a, b in bounds])[:, None]
        w = np.linalg.solve(g_test.sum(0)[None] - g_test + reg,
                            (x_test.sum(0)[None] - x_test)[..., None])[..., 0]   # (folds, onsets, F)
        sp = np.einsum("kof,kof->ko", w, g_test[:, :, -1, :])    # the ones column sums each feature
        spp = np.einsum("kof,kofg,kog->ko", w, g_test, w)
        spy = np.einsum("kof,kof->ko", w, x_test)
        vp, vy = spp - sp ** 2 / n, syy - sy ** 2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            ccs = np.where((vp > 1e-12) & (vy > 1e-12), (spy - sp * sy / n) / np.sqrt(vp * vy), np.nan)
        counted = np.isfinite(ccs).sum(0)
        out[:, c] = np.where(counted > 0, np.nansum(ccs, 0) / np.maximum(counted, 1), np.nan)
    return out


def planted_rates(lum: np.ndarray, frame_ms: float, onset_ms: float, n_bins: int, bin_ms: float = 10.0,
                  n_trials: int = 30, seed: int = 0, lag_edges_ms: Sequence[float] = LAG_EDGES_MS,
                  return_counts: bool = False, mean_hz: float | np.ndarray = 20.0) -> np.ndarray:
    """Trial-averaged Poisson counts of model cells driven by ``lum`` at a known (frame period, onset).

    Each cell: a random biphasic kernel over the lag bins (OFF or ON at random), an exponential nonlinearity
    scaled to a mean rate of ``mean_hz`` (one value, or one per cell), ``n_trials`` Poisson trials averaged -> (n_bins, cells); the single trials,
    (n_trials, n_bins, cells), with ``return_counts``. The kernels depend only on ``seed`` and the number of
    cells, so the same seed plants the same cells in another movie.
    """
    rng = np.random.default_rng(seed)
    duration = n_bins * bin_ms
    pad_before = max(0.0, onset_ms) + duration
    Z = lagged_timeline(lum, frame_ms, bin_ms, pad_before, max(0.0, -onset_ms) + duration, lag_edges_ms)
    start = int(round((pad_before - onset_ms) / bin_ms))
    Z = Z[start:start + n_bins]                                                  # (n_bins, cells, lags)
    lags = Z.shape[2]
    shape = np.exp(-np.arange(lags) / 1.5) - 0.6 * np.exp(-np.arange(lags) / 3.0)
    sign = rng.choice([-1.0, 1.0], size=lum.shape[1])
    kernel = sign[:, None] * shape[None, :] * rng.uniform(0.7, 1.3, size=(lum.shape[1], 1))
    drive = np.einsum("tcl,cl->tc", Z, kernel)
    drive = drive / np.where(drive.std(0) > 0, drive.std(0), 1.0)
    mean_count = np.broadcast_to(np.asarray(mean_hz, dtype=float), (lum.shape[1],)) * bin_ms / 1000.0
    rate = mean_count * np.exp(drive) / np.exp(drive).mean(0)
    counts = rng.poisson(np.broadcast_to(rate, (n_trials,) + rate.shape))
    return counts if return_counts else counts.mean(0)


#: a recording's timing counts as found when its best CV CC exceeds both nulls by at least this much
FOUND_MARGIN = 0.03


def scan_curve(rates: np.ndarray, lum: np.ndarray, frame_ms: float, duration_ms: float, bin_ms: float = 10.0):
    """(onsets, mean-over-cells CV CC) of :func:`scan_onsets` over the whole :func:`onset_grid`."""
    grid = onset_grid(len(lum), frame_ms, duration_ms, bin_ms)
    return grid, _cell_mean(scan_onsets(rates, lum, frame_ms, grid, bin_ms))


def _cell_mean(cc: np.ndarray) -> np.ndarray:
    """Mean over cells (axis 1) ignoring NaN (cells without spikes); NaN where no cell has a value."""
    counted = np.isfinite(cc).sum(axis=1)
    return np.where(counted > 0, np.nansum(cc, axis=1) / np.maximum(counted, 1), np.nan)


def scan_recording(rates: np.ndarray, lum_by_movie: dict, own_movie: int, periods: Sequence[float],
                   fine_periods: Sequence[float], frame_ms: float, pinned_onset_ms: float | None,
                   duration_ms: float, bin_ms: float = 10.0, seed: int = 0):
    """The data page's timing scan of one recording -> (curves, summary).

    ``curves``: rows (movie, frame_ms, onset_ms, cv_cc) for every movie at ``periods``, and for ``own_movie`` (the
    movie of the file name) also at ``fine_periods``. ``summary``: the best (period, onset) of ``own_movie`` and
    whether that period sits on the edge of the periods tried; the best CC of each movie at ``frame_ms`` and the
    best onset there; two nulls — time-reversed frames (best over onsets at ``frame_ms`` only, a smaller search than
    the real one) and receptive fields shuffled across cells (each cell gets another cell's RF luminance, at the
    best timing); ``found`` (best CC >= both nulls + :data:`FOUND_MARGIN`); the same rule for the other movie(s)
    (``found_other_movie``); and the CC at the loader's pinned onset.
    """
    import pandas as pd

    parts = []
    for movie, lum in lum_by_movie.items():
        grid_periods = sorted(set(periods) | (set(fine_periods) if movie == own_movie else set()) | {frame_ms})
        for p in grid_periods:
            grid, cc = scan_curve(rates, lum, p, duration_ms, bin_ms)
            parts.append(pd.DataFrame({"movie": movie, "frame_ms": p, "onset_ms": grid, "cv_cc": cc}))
    curves = pd.concat(parts, ignore_index=True)
    own = curves[curves.movie == own_movie]
    best = own.loc[own.cv_cc.idxmax()]
    at_p = curves[curves.frame_ms == frame_ms]
    lum = lum_by_movie[own_movie]
    reversed_null = float(np.nanmax(scan_curve(rates, lum[::-1].copy(), frame_ms, duration_ms, bin_ms)[1]))
    n_cells = lum.shape[1]
    rng = np.random.default_rng(seed)
    perm = np.roll(np.arange(n_cells), 1 + int(rng.integers(n_cells - 1))) if n_cells > 1 else np.arange(n_cells)
    shuffled_null = float(_cell_mean(scan_onsets(rates, lum[:, perm], float(best.frame_ms),
                                                 np.array([float(best.onset_ms)]), bin_ms))[0])
    pinned = at_p[(at_p.movie == own_movie) & np.isclose(at_p.onset_ms, pinned_onset_ms if pinned_onset_ms
                                                                                     is not None else np.nan)]
    own_at_p = at_p[at_p.movie == own_movie]
    threshold = max(reversed_null, shuffled_null) + FOUND_MARGIN
    others = curves[curves.movie != own_movie]
    best_other = float(others.cv_cc.max()) if len(others) else float("nan")
    own_periods = sorted(own.frame_ms.unique())
    summary = {"best_cv_cc": float(best.cv_cc), "best_frame_ms": float(best.frame_ms),
               "best_onset_ms": float(best.onset_ms),
               "best_period_on_grid_edge": bool(len(own_periods) > 1 and best.frame_ms in (own_periods[0], own_periods[-1])),
               **{f"best_cc_movie{m}_at_{frame_ms}ms": float(at_p[at_p.movie == m].cv_cc.max()) for m in lum_by_movie},
               "best_onset_at_frame_ms": float(own_at_p.onset_ms[own_at_p.cv_cc.idxmax()]),
               "null_time_reversed": reversed_null, "null_rf_shuffled": shuffled_null,
               "found": bool(best.cv_cc >= threshold),
               # the same rule for the other movie(s), over all their periods and onsets: a swap would show here
               "best_cv_cc_other_movie": best_other,
               "found_other_movie": bool(best_other >= threshold),
               "loader_onset_ms": pinned_onset_ms,
               "cv_cc_at_loader_timing": float(pinned.cv_cc.iloc[0]) if len(pinned) else float("nan")}
    return curves, summary


def stored_scan_recording(name: str, rates: np.ndarray, lum_by_movie: dict, own_movie: int,
                          periods: Sequence[float], fine_periods: Sequence[float], frame_ms: float,
                          pinned_onset_ms: float | None, duration_ms: float, bin_ms: float = 10.0,
                          seed: int = 0, chapter: str = "vist"):
    """:func:`scan_recording`, computed once and kept as a derived result
    (:mod:`alignlib.training.derived`, kind ``timing_scan``): read from ``runs/derived`` or the run store
    when there, else computed and written. Identified by the content of its inputs (the rates' and each
    movie's RF-luminance arrays' SHA-256), every setting and :data:`SCAN_VERSION`; ``name`` (the
    recording) is recorded for the reader. Returns (curves, summary, folder), as :func:`scan_recording`
    plus the folder."""
    import pandas as pd

    from alignlib.training.derived import array_sha256, arrays_frame, cached, frame_arrays

    identity = {"recording": name, "rates_sha256": array_sha256(np.asarray(rates, dtype=np.float64)),
                "luminance_sha256": {str(m): array_sha256(np.asarray(lum, dtype=np.float64))
                                     for m, lum in lum_by_movie.items()},
                "own_movie": int(own_movie), "periods_ms": [float(p) for p in periods],
                "fine_periods_ms": [float(p) for p in fine_periods], "frame_ms": float(frame_ms),
                "pinned_onset_ms": None if pinned_onset_ms is None else float(pinned_onset_ms),
                "duration_ms": float(duration_ms), "bin_ms": float(bin_ms), "seed": int(seed)}

    def compute() -> dict[str, np.ndarray]:
        curves, summary = scan_recording(rates, lum_by_movie, own_movie, periods, fine_periods, frame_ms,
                                         pinned_onset_ms, duration_ms, bin_ms, seed)
        values = {f"summary:{k}": np.asarray(np.nan if v is None else v) for k, v in summary.items()}
        return {**frame_arrays(curves, "curves:"), **values}

    arrays, folder = cached(chapter, "timing_scan", identity, compute,
                            nan_allowed=("curves:cv_cc", "summary:cv_cc_at_loader_timing",
                                         "summary:loader_onset_ms", "summary:best_cv_cc_other_movie"))
    curves = arrays_frame(arrays, "curves:")
    summary = {k.split(":", 1)[1]: v.item() for k, v in arrays.items() if k.startswith("summary:")}
    summary["loader_onset_ms"] = pinned_onset_ms
    return curves, summary, folder
