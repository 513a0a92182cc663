"""Why does the aligned movie explain so little of the retina's reliable response? Checks of issue
19 §1.

Each check fixes everything but one suspect and asks whether changing that suspect raises the
RF-luminance model's cross-validated CC (:func:`alignlib.experiments.vist.timing.scan_onsets`), with
a null for the same search:

* :func:`segment_alignment` -- timing that drifts, drops frames or plays another segment within a
  trial: each 3-s segment of the response is matched against every position of the movie, through
  the model fitted at the pinned timing. A drift shows as a trend of the best offset along the
  trial, dropped frames as a step, another segment or order as a jump; the null is the best match
  away from the expected offset.
* :func:`placement_scan` -- the movie's position, scale and orientation on the screen, scored with
  the movie itself (the flashed images fixed only the orientation).
* :func:`jittered_schedule_control` -- frames shown for a varying number of display refreshes:
  planted responses under a jittered schedule, scored with the regular one, say how much CC such
  jitter can cost.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from alignlib.data import onken
from alignlib.experiments.vist.timing import (
    LAG_EDGES_MS,
    lagged_timeline,
    planted_rates,
    scan_onsets,
)

__all__ = ["model_timeline", "segment_alignment", "segment_verdict", "SEGMENT_MARGIN", "placement_scan",
           "jittered_schedule_control"]


def model_timeline(
    rates: np.ndarray,
    lum: np.ndarray,
    frame_ms: float,
    onset_ms: float,
    bin_ms: float = 10.0,
    ridge: float = 1e-3,
) -> tuple[np.ndarray, int, float]:
    """The RF-luminance model fitted on the whole trial at (``frame_ms``, ``onset_ms``), evaluated
    along the movie padded by one trial of grey on each side -> (prediction (timeline bins, cells),
    the timeline index of trial bin 0, the timeline's ``pad_before_ms``).

    The timeline bin ``i`` covers movie time ``i * bin_ms - pad_before_ms``.
    """
    n_bins, n_cells = rates.shape
    duration = n_bins * bin_ms
    pad_before = max(0.0, onset_ms) + duration
    pad_after = max(0.0, -onset_ms) + duration
    Z = lagged_timeline(lum, frame_ms, bin_ms, pad_before, pad_after)
    start = int(round((pad_before - onset_ms) / bin_ms))
    pred = np.zeros((len(Z), n_cells))
    ones = np.ones((len(Z), 1))
    for c in range(n_cells):
        A = np.concatenate([Z[:, c], ones], axis=1)
        At = A[start : start + n_bins]
        reg = ridge * np.eye(A.shape[1])
        reg[-1, -1] = 0.0
        w = np.linalg.solve(At.T @ At + reg, At.T @ rates[:, c])
        pred[:, c] = A @ w
    return pred, start, pad_before


def _sliding_cc(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean over cells of corr(pred[j:j+L, c], y[:, c]) for every offset j (cells with constant y
    skipped)."""
    L = len(y)
    ok = np.flatnonzero(y.std(0) > 0)
    acc = np.zeros(len(pred) - L + 1)
    for c in ok:
        yc = (y[:, c] - y[:, c].mean()) / y[:, c].std()
        p = pred[:, c]
        num = fftconvolve(p, yc[::-1], mode="valid")
        cs, cs2 = np.r_[0.0, np.cumsum(p)], np.r_[0.0, np.cumsum(p**2)]
        m = (cs[L:] - cs[:-L]) / L
        v = (cs2[L:] - cs2[:-L]) / L - m**2
        acc += np.where(v > 1e-12, num / L / np.sqrt(np.maximum(v, 1e-12)), 0.0)
    return acc / max(len(ok), 1)


def segment_alignment(
    rates: np.ndarray,
    lum: np.ndarray,
    frame_ms: float,
    onset_ms: float,
    bin_ms: float = 10.0,
    segment_ms: float = 3000.0,
    step_ms: float = 1500.0,
    null_exclusion_ms: float = 500.0,
) -> pd.DataFrame:
    """Where in the movie does each segment of the response come from? One row per ``segment_ms``
    segment of the trial (every ``step_ms``).

    The RF-luminance model is fitted on the whole trial at the pinned timing
    (:func:`model_timeline`); each segment's response is then correlated (mean over cells) with the
    model's prediction at every offset of the movie. Columns: ``start_s`` and ``end_s`` (the segment,
    s after trial onset), ``expected_movie_ms`` (where the pinned timing puts it in the movie),
    ``best_movie_ms``, ``offset_ms`` (best - expected: 0 along the whole trial means no drift, no
    dropped frames, no other segment), ``cc_best``, ``cc_expected``, and the null
    ``cc_best_elsewhere``: the best match more than ``null_exclusion_ms`` away from the expected
    offset. :func:`segment_verdict` reads the table by a stated rule.
    """
    rates = np.asarray(rates, dtype=np.float64)
    pred, start, pad_before = model_timeline(rates, lum, frame_ms, onset_ms, bin_ms)
    L, step = int(round(segment_ms / bin_ms)), int(round(step_ms / bin_ms))
    excl = int(round(null_exclusion_ms / bin_ms))
    rows = []
    for a in range(0, rates.shape[0] - L + 1, step):
        acc = _sliding_cc(pred, rates[a : a + L])
        j, exp_j = int(np.argmax(acc)), start + a
        far = np.abs(np.arange(len(acc)) - exp_j) > excl
        rows.append(
            {
                "start_s": a * bin_ms / 1000,
                "end_s": (a + L) * bin_ms / 1000,
                "expected_movie_ms": exp_j * bin_ms - pad_before,
                "best_movie_ms": j * bin_ms - pad_before,
                "offset_ms": (j - exp_j) * bin_ms,
                "cc_best": float(acc[j]),
                "cc_expected": float(acc[exp_j]),
                "cc_best_elsewhere": float(acc[far].max()),
            }
        )
    return pd.DataFrame(rows)


#: :func:`segment_verdict`'s rule: a segment is placed by the pinned timing when the model's match
#: at the expected position beats its best match anywhere more than ``null_exclusion_ms`` away
#: (the null of the same search) by at least this much
SEGMENT_MARGIN = 0.0


def segment_verdict(segments: pd.DataFrame, margin: float = SEGMENT_MARGIN) -> dict:
    """Is a recording aligned along its whole trial? Reads a :func:`segment_alignment` table: each
    segment is *placed* when ``cc_expected > cc_best_elsewhere + margin``. Returns ``n_segments``,
    ``n_placed``, ``placed_spans`` (the trial stretches covered by runs of consecutive placed
    segments, e.g. "0.0-6.0 s, 9.0-16.5 s") and ``verdict``: "whole trial" (every segment placed),
    "in part" (some) or "nowhere" (none)."""
    if segments.empty:
        raise ValueError("no segments: the trial is shorter than one segment")
    placed = (segments.cc_expected > segments.cc_best_elsewhere + margin).to_numpy()
    spans, run = [], None
    for ok, a, b in zip(placed, segments.start_s, segments.end_s):
        if ok:
            run = [a, b] if run is None else [run[0], b]
        elif run is not None:
            spans.append(run)
            run = None
    if run is not None:
        spans.append(run)
    n = len(placed)
    verdict = "whole trial" if placed.all() else "in part" if placed.any() else "nowhere"
    return {"n_segments": n, "n_placed": int(placed.sum()),
            "placed_spans": ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans) or "none",
            "verdict": verdict}


def placement_scan(
    rates: np.ndarray,
    frames: np.ndarray,
    contours_display: Sequence[np.ndarray],
    frame_ms: float,
    onset_ms: float,
    scales: Sequence[float] = (1.0,),
    shifts: Sequence[tuple[float, float]] = ((0.0, 0.0),),
    orientations: Sequence[str] = ("as loaded",),
    bin_ms: float = 10.0,
) -> pd.DataFrame:
    """Cross-validated CC (mean over cells) of the RF-luminance model at the pinned timing for every
    placement of the movie on the screen: ``scale`` (display pixels per movie pixel), ``shift`` (dx,
    dy of the movie centre, display pixels) and the frames' ``orientation`` (one of
    :data:`alignlib.data.onken._ORIENTATIONS`, relative to the loader's). Placements that leave a
    cell's RF wholly off the movie give that cell no luminance (CC NaN, counted in ``n_cells_off``).
    The loader's placement is scale 1, shift (0, 0), "as loaded"."""
    side = frames.shape[1]
    rows = []
    for orientation in orientations:
        fn = onken._ORIENTATIONS[orientation]
        oriented = np.stack([fn(f) for f in frames]) if orientation != "as loaded" else frames
        for scale in scales:
            for dx, dy in shifts:
                masks = np.zeros((len(contours_display), side, side), dtype=bool)
                off = 0
                for i, c in enumerate(contours_display):
                    fc = onken._display_to_frame(c, side, scale=scale, shift=(dx, dy))
                    try:
                        masks[i] = onken.contour_masks([fc], side)[0][0]
                    except onken.DataFormatError:
                        off += 1
                lum = onken.rf_luminance(oriented, masks)
                cc = scan_onsets(rates, lum, frame_ms, np.array([onset_ms]), bin_ms)[0]
                rows.append(
                    {
                        "orientation": orientation,
                        "scale": scale,
                        "dx": dx,
                        "dy": dy,
                        "cv_cc": float(np.nanmean(cc)),
                        "n_cells_off": off,
                    }
                )
    return pd.DataFrame(rows)


def jittered_schedule_control(
    lum: np.ndarray,
    frame_ms: float,
    refresh_ms: float,
    n_bins: int,
    bin_ms: float = 1.0,
    out_bin_ms: float = 10.0,
    n_trials: int = 30,
    seed: int = 0,
    mean_hz: float = 20.0,
) -> dict[str, float]:
    """How much CC can frames shown for a varying number of display refreshes cost the
    regular-schedule model?

    Planted cells (:func:`alignlib.experiments.vist.timing.planted_rates`) are driven by the movie
    on a jittered schedule: frame ``k`` starts at the first refresh (period ``refresh_ms``) at or
    after ``k * frame_ms``, so frames last a varying whole number of refreshes with the mean period
    ``frame_ms``. The RF-luminance model with the regular schedule is scored on them (5-fold CV CC,
    onset 0) and on cells planted with the regular schedule. Returns both CCs."""
    n_frames = lum.shape[0]
    # expand the jittered schedule to a 1-ms "frame" sequence, then plant at 1 ms per frame
    starts = np.ceil(np.arange(n_frames + 1) * frame_ms / refresh_ms) * refresh_ms
    fine = np.repeat(np.arange(n_frames), np.diff(np.round(starts / bin_ms).astype(int)))
    k = int(round(out_bin_ms / bin_ms))
    out = {}
    for label, sequence in (("regular", None), ("jittered", fine)):
        if sequence is None:
            r = planted_rates(
                lum,
                frame_ms,
                0.0,
                n_bins,
                bin_ms=out_bin_ms,
                n_trials=n_trials,
                seed=seed,
                mean_hz=mean_hz,
            )
        else:
            r_fine = planted_rates(
                lum[sequence],
                bin_ms,
                0.0,
                n_bins * k,
                bin_ms=bin_ms,
                n_trials=1,
                seed=seed,
                mean_hz=mean_hz * n_trials,
                lag_edges_ms=LAG_EDGES_MS,
            )
            r = r_fine.reshape(n_bins, k, -1).sum(1) / n_trials
        out[label] = float(
            np.nanmean(scan_onsets(r, lum, frame_ms, np.array([0.0]), out_bin_ms)[0])
        )
    return out


# --- a model that can fit a nonlinear retina (issue 19 §1: "so a weak fit is not blamed on the
# model") --------


def crop_around_rfs(
    frames: np.ndarray, masks: np.ndarray, margin: int = 16, factor: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The square of the frames holding every RF (plus ``margin`` pixels), block-averaged by
    ``factor`` -> ((T, s, s) frames, (cells, 2) RF centroids as (row, col) in the cropped,
    downsampled pixels)."""
    from skimage.measure import block_reduce

    side = frames.shape[1]
    rows, cols = np.nonzero(masks.any(0))
    centre = np.array([(rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2])
    half = max(rows.max() - rows.min(), cols.max() - cols.min()) / 2 + margin
    size = min(side, int(np.ceil(2 * half / factor)) * factor)
    lo = np.clip(np.round(centre - size / 2).astype(int), 0, side - size)
    crop = frames[:, lo[0] : lo[0] + size, lo[1] : lo[1] + size]
    small = block_reduce(crop, (1, factor, factor), np.mean).astype(np.float32)
    centroids = np.array([np.argwhere(m).mean(0) for m in masks]) - lo
    return small, (centroids + 0.5) / factor - 0.5


def heldout_scores(
    pred: np.ndarray, counts: np.ndarray, bins: slice, frames_per_bin: int = 1, seed: int = 0
) -> pd.DataFrame:
    """Per-cell held-out scores of ``pred`` (T, cells, counts per frame) against ``counts`` (trials,
    T, cells) on frames ``bins``, after summing ``frames_per_bin`` frames: Pearson CC with the trial
    mean, split-half reliability, noise ceiling
    (:func:`alignlib.metrics.neural_prediction.noise_ceiling`) and CC / ceiling."""
    from alignlib.experiments.vist.workflow import bin_counts
    from alignlib.metrics.neural_prediction import noise_ceiling, pearson_cc, split_half_reliability

    c = bin_counts(np.asarray(counts)[:, bins], frames_per_bin).astype(np.float64)
    p = bin_counts(np.asarray(pred)[None, bins], frames_per_bin)[0].astype(np.float64)
    cc = pearson_cc(p, c.mean(0))
    rel = split_half_reliability(c, seed=seed)
    ceiling = noise_ceiling(rel)
    return pd.DataFrame(
        {
            "cell": np.arange(c.shape[2]),
            "cc": cc,
            "reliability": rel,
            "ceiling": ceiling,
            "cc_over_ceiling": cc / ceiling,
        }
    )


def fit_retina_cnn(
    frames: np.ndarray,
    rates: np.ndarray,
    centres: np.ndarray,
    train: slice,
    seed: int = 0,
    n_history: int = 16,
    history_step: int = 2,
    validation_fraction: float = 0.15,
    epochs: int = 120,
    patience: int = 20,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    model_kwargs: dict | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Train :class:`alignlib.models.retina_cnn.RetinaCNN` on frames ``train`` (Poisson loss on the
    trial-averaged counts per frame; Adam; the last ``validation_fraction`` of the training frames
    held out for early stopping on the validation Poisson loss, best epoch kept) -> (prediction for
    every frame (T, cells), history).

    ``frames`` (T, s, s) from :func:`crop_around_rfs`, centred and scaled by the training frames'
    mean and s.d.; the history covers ``n_history * history_step`` frames."""
    import torch

    from alignlib.models.retina_cnn import RetinaCNN, stimulus_history
    from alignlib.repro import seed_everything

    frames = np.asarray(frames, dtype=np.float32)
    mu, sd = frames[train].mean(), frames[train].std() + 1e-6
    x = torch.as_tensor(stimulus_history((frames - mu) / sd, n_history, history_step))
    y = torch.as_tensor(np.asarray(rates, dtype=np.float32))
    idx = np.arange(train.start, train.stop)
    n_val = int(round(len(idx) * validation_fraction))
    fit_idx, val_idx = idx[:-n_val], idx[-n_val:]
    rng = seed_everything(seed)
    model = RetinaCNN(
        n_history,
        frames.shape[1],
        centres,
        mean_rate=rates[fit_idx].mean(0),
        **(model_kwargs or {}),
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def poisson(pred, target):
        return (pred - target * torch.log(pred + 1e-8)).mean()

    best, best_state, history, waited = np.inf, None, [], 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(fit_idx)
        losses = []
        for b in range(0, len(order), batch_size):
            j = torch.as_tensor(order[b : b + batch_size])
            loss = poisson(model(x[j]), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = float(poisson(model(x[torch.as_tensor(val_idx)]), y[torch.as_tensor(val_idx)]))
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val})
        if progress:
            print(history[-1], flush=True)
        if val < best - 1e-5:
            best, waited = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)]).numpy()
    return pred, pd.DataFrame(history)
