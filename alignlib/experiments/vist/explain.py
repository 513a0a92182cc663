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
* :func:`heldout_placement` / :func:`placement_verdict` search the placement on one half of the
  trial and score it on the other; :func:`jitter_costs` runs the jitter control and scores the real
  cells with a jittered schedule (:func:`schedule_fit`); :func:`stored_stimulus_checks` keeps both as
  derived results.

And how much of the reliable response stimulus models explain at all (§1's goal, §3's table):

* :func:`explained_share` -- every frame held out once (:func:`contiguous_folds`), an RF-luminance
  LN and a small retina CNN (:func:`fit_retina_cnn`), CC against the noise ceiling at several bin
  widths, and a learning curve over the training frames;
* :func:`augmented_share` -- the same folds with frames of the other recording of the same retina
  added (:func:`segment_stretches`, :func:`stretch_extras`), and a time-shifted control: does more
  aligned movie raise the CC?
* :func:`stored_share` keeps both as derived results; :func:`share_summary` and
  :func:`share_difference` read them (bootstrap over cells).
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

__all__ = ["model_timeline", "segment_alignment", "segment_verdict", "SEGMENT_MARGIN", "segment_stretches",
           "recording_stretch", "window_cc", "stretches_agree", "stretch_extras", "placement_scan",
           "jittered_schedule_control", "display_schedule", "schedule_fit", "placement_search",
           "heldout_placement", "placement_verdict", "LOADER_PLACEMENT", "jitter_costs",
           "stored_stimulus_checks", "PLACEMENT_VERSION", "PLACEMENT_SHIFTS", "PLACEMENT_SCALES",
           "PLACEMENT_MARGIN", "REFRESH_HZ", "contiguous_folds", "explained_share", "stored_share",
           "augmented_share", "scored", "share_summary", "share_difference", "SHARE_MODELS", "SHARE_VERSION"]


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


def segment_stretches(segments: pd.DataFrame, onset_ms: float, margin: float = SEGMENT_MARGIN,
                      agree_ms: float = 50.0) -> dict[str, dict[str, float]]:
    """The trial stretches a :func:`segment_alignment` table can place, each with the onset that places
    it -> {"placed": {start_ms, end_ms, onset_ms}, "leading": ...} (either absent when there is none).

    ``placed``: the longest run of consecutive segments placed by the pinned ``onset_ms`` (rule of
    :func:`segment_verdict`). ``leading``: the unplaced segments at the start of the trial whose best
    offsets agree within ``agree_ms`` of their median (at least two), with the onset that their
    best match implies (``onset_ms`` - median offset, rounded to 10 ms) -- the reading of a movie
    that starts at another onset and later jumps."""
    placed = (segments.cc_expected > segments.cc_best_elsewhere + margin).to_numpy()
    out: dict[str, dict[str, float]] = {}
    best, run = None, None
    for i, ok in enumerate(placed):
        run = (run if run is not None else i) if ok else None
        if run is not None and (best is None or i - run > best[1] - best[0]):
            best = (run, i)
    if best is not None:
        out["placed"] = {"start_ms": float(segments.start_s.iloc[best[0]] * 1000),
                         "end_ms": float(segments.end_s.iloc[best[1]] * 1000),
                         "onset_ms": float(onset_ms)}
    lead = 0
    while lead < len(placed) and not placed[lead]:
        lead += 1
    if lead >= 2:
        offsets = segments.offset_ms.to_numpy()[:lead]
        median = float(np.median(offsets))
        agree = np.abs(offsets - median) <= agree_ms
        n = int(np.argmin(agree)) if not agree.all() else lead      # leading run that agrees
        if n >= 2:
            median = float(np.median(offsets[:n]))
            out["leading"] = {"start_ms": float(segments.start_s.iloc[0] * 1000),
                              "end_ms": float(segments.end_s.iloc[n - 1] * 1000),
                              "onset_ms": float(np.round((onset_ms - median) / 10.0) * 10.0)}
    return out


def stretches_agree(found: dict[str, dict[str, float]], pinned: Sequence[tuple[float, float, float]],
                    boundary_ms: float = 1500.0, onset_tolerance_ms: float = 10.0) -> bool:
    """Whether the stretches a :func:`segment_stretches` run finds are the pinned ones
    (:data:`alignlib.data.onken.STRETCHES`): as many, in trial order, each boundary within
    ``boundary_ms`` (the segments' step) and each onset within ``onset_tolerance_ms``."""
    got = sorted((st["start_ms"], st["end_ms"], st["onset_ms"]) for st in found.values())
    want = sorted(tuple(map(float, p)) for p in pinned)
    return len(got) == len(want) and all(
        abs(g[0] - w[0]) <= boundary_ms and abs(g[1] - w[1]) <= boundary_ms
        and abs(g[2] - w[2]) <= onset_tolerance_ms for g, w in zip(got, want))


def window_cc(rates: np.ndarray, lum: np.ndarray, frame_ms: float, onset_ms: float,
              window_ms: tuple[float, float], bin_ms: float = 10.0) -> float:
    """Mean over cells of the RF-luminance model's cross-validated CC
    (:func:`alignlib.experiments.vist.timing.scan_onsets`) at one timing, fitted and scored on the
    trial stretch ``window_ms`` of the ``bin_ms`` rates only: e.g. the whole trial against its part
    outside the tiled block (:func:`alignlib.data.onken.clean_window`)."""
    r, onset = _cut(rates, onset_ms, window_ms, bin_ms)
    return float(np.nanmean(scan_onsets(r, lum, frame_ms, np.array([onset]), bin_ms)[0]))


def recording_stretch(name: str, onset_ms: float, start_ms: float, end_ms: float,
                      root=None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, trial-averaged rates per frame) of recording ``name`` loaded with the movie at
    ``onset_ms``, only the frames on screen wholly within ``start_ms``-``end_ms`` of the trial and
    outside its copied block (the loader's default, :data:`alignlib.data.onken.TILED_MS`)."""
    rec = onken.load_recording(name, root=root, onset_ms=onset_ms, window_ms=(start_ms, end_ms))
    return rec.frames, rec.rates


def stretch_extras(name: str, stretches: dict[str, dict[str, float]], root=None
                   ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Training extras for :func:`augmented_share` from the stretches of :func:`segment_stretches`
    of recording ``name``, one pair per stretch -> {stretch kind: {label: (frames, rates)}}: the
    stretch at its onset ("<name> <start>-<end> s at <onset> ms (<kind>)") and its own control
    ("..., rates shifted (control)"): the same frames with the rates rolled by half the stretch's
    length, so the pair differs only in the alignment."""
    out = {}
    for which, st in stretches.items():
        start, end = onken.clean_window(name, (st["start_ms"], st["end_ms"]))   # what the loader keeps
        label = (f"{name} {start / 1000:.1f}-{end / 1000:.1f} s at "
                 f"{st['onset_ms']:+.0f} ms ({which})")
        frames, rates = recording_stretch(name, st["onset_ms"], st["start_ms"], st["end_ms"], root)
        out[which] = {label: (frames, rates),
                      f"{label[:label.rindex(' (')]}, rates shifted ({which} control)": (
                          frames, np.roll(rates, len(rates) // 2, axis=0))}
    return out


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


def display_schedule(n_frames: int, frame_ms: float, refresh_ms: float, step_ms: float = 1.0) -> np.ndarray:
    """The frame on screen in each ``step_ms`` step when frame ``k`` starts at the first display refresh
    (period ``refresh_ms``) at or after ``k * frame_ms``: frames last a varying whole number of
    refreshes (none: a dropped frame) with the mean period ``frame_ms``. ``refresh_ms = step_ms`` is
    the regular schedule on the same grid."""
    starts = np.ceil(np.arange(n_frames + 1) * frame_ms / refresh_ms - 1e-9) * refresh_ms
    return np.repeat(np.arange(n_frames), np.diff(np.round(starts / step_ms).astype(int)))


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

    Planted cells (:func:`alignlib.experiments.vist.timing.planted_rates`, Poisson, ``n_trials``) are
    driven by the movie on the jittered schedule (:func:`display_schedule` at ``refresh_ms``) and, as
    the comparator, on the regular schedule through the same ``bin_ms`` path (refresh = ``bin_ms``);
    both are scored with the RF-luminance model on the regular schedule (5-fold CV CC, onset 0).
    Returns both CCs (mean over cells)."""
    k = int(round(out_bin_ms / bin_ms))
    out = {}
    for label, refresh in (("regular", bin_ms), ("jittered", refresh_ms)):
        sequence = display_schedule(lum.shape[0], frame_ms, refresh, bin_ms)
        r_fine = planted_rates(lum[sequence], bin_ms, 0.0, n_bins * k, bin_ms=bin_ms, n_trials=1,
                               seed=seed, mean_hz=mean_hz * n_trials, lag_edges_ms=LAG_EDGES_MS)
        r = r_fine.reshape(n_bins, k, -1).sum(1) / n_trials
        out[label] = float(np.nanmean(scan_onsets(r, lum, frame_ms, np.array([0.0]), out_bin_ms)[0]))
    return out


def schedule_fit(rates: np.ndarray, lum: np.ndarray, frame_ms: float, refresh_ms: float, onset_ms: float,
                 bin_ms: float = 10.0, step_ms: float = 1.0) -> float:
    """The real cells scored with a display schedule as the model's stimulus: the RF-luminance model's
    CV CC (mean over cells, :func:`alignlib.experiments.vist.timing.scan_onsets`) when the frames are
    shown on :func:`display_schedule` at ``refresh_ms`` (``refresh_ms = step_ms``: the regular
    schedule on the same grid). A schedule the display used would raise it."""
    sequence = display_schedule(lum.shape[0], frame_ms, refresh_ms, step_ms)
    # the frame at each bin's centre, as one "frame" per bin (the model reads the frame at bin centres)
    centres = ((np.arange(int(len(sequence) * step_ms // bin_ms)) + 0.5) * bin_ms / step_ms).astype(int)
    cc = scan_onsets(rates, lum[sequence[centres]], bin_ms, np.array([onset_ms]), bin_ms)[0]
    return float(np.nanmean(cc))


#: version of the stored stimulus checks (:func:`stored_stimulus_checks`); bump when their computation changes
PLACEMENT_VERSION = 2
#: :func:`placement_search`'s grid: the movie centre moved up to 40 display pixels each way in 10-px steps
#: (a 10-px step is 1/36 of the 360-px movie), then scales (display pixels per movie pixel) about the best shift
PLACEMENT_SHIFTS = tuple(float(v) for v in range(-40, 41, 10))
PLACEMENT_SCALES = (0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5)
#: rule of :func:`placement_verdict`: the loader's placement is confirmed when the best placement of one half
#: of the trial, scored on the other half, beats the loader's there by at most this mean CC over cells
#: (averaged over the two directions)
PLACEMENT_MARGIN = 0.01
#: display refresh rates (Hz) for :func:`jitter_costs`: the files do not state the display's; at 60 and
#: 75 Hz a 12.45-ms frame is shorter than a refresh, so some frames are never shown (dropped)
REFRESH_HZ = (60.0, 75.0, 120.0, 360.0)


def placement_search(
    rates: np.ndarray,
    frames: np.ndarray,
    contours_display: Sequence[np.ndarray],
    frame_ms: float,
    onset_ms: float,
    shifts: Sequence[float] = PLACEMENT_SHIFTS,
    scales: Sequence[float] = PLACEMENT_SCALES,
    bin_ms: float = 10.0,
) -> pd.DataFrame:
    """The movie's placement on the screen, searched with the movie itself in three steps of
    :func:`placement_scan` (column ``scan``): every shift (dx, dy) of the grid ``shifts`` x ``shifts``
    at scale 1 in the loader's orientation ("shift"); every scale at the best shift ("scale"); every
    orientation of :data:`alignlib.data.onken._ORIENTATIONS` at the best shift and scale
    ("orientation"). A step search, not the full product (which would cost 8 x 7 x 81 fits), so it
    finds a better placement when moving one of the three alone improves on the loader's.
    ``shifts`` must hold 0 and ``scales`` 1 (the loader's placement)."""
    if 0.0 not in [float(v) for v in shifts] or 1.0 not in [float(v) for v in scales]:
        raise ValueError("shifts must include 0 and scales 1: the loader's placement is the reference")
    grid = [(float(dx), float(dy)) for dx in shifts for dy in shifts]
    args = (rates, frames, contours_display, frame_ms, onset_ms)
    by_shift = placement_scan(*args, shifts=grid, bin_ms=bin_ms).assign(scan="shift")
    best = by_shift.loc[by_shift.cv_cc.idxmax()]
    by_scale = placement_scan(*args, scales=[float(v) for v in scales], shifts=[(best.dx, best.dy)],
                              bin_ms=bin_ms).assign(scan="scale")
    best = by_scale.loc[by_scale.cv_cc.idxmax()]
    by_orientation = placement_scan(*args, scales=[best.scale], shifts=[(best.dx, best.dy)],
                                    orientations=tuple(onken._ORIENTATIONS), bin_ms=bin_ms)
    return pd.concat([by_shift, by_scale, by_orientation.assign(scan="orientation")], ignore_index=True)


def _cut(rates: np.ndarray, onset_ms: float, window_ms: tuple[float, float], bin_ms: float
         ) -> tuple[np.ndarray, float]:
    """The ``bin_ms`` rates of a trial stretch, with the movie onset relative to its start."""
    a, b = (int(round(v / bin_ms)) for v in window_ms)
    if not 0 <= a < b <= len(rates):
        raise ValueError(f"window {window_ms} ms is outside the {len(rates) * bin_ms:.0f} ms of rates")
    return np.asarray(rates)[a:b], onset_ms - a * bin_ms


LOADER_PLACEMENT = {"scale": 1.0, "dx": 0.0, "dy": 0.0, "orientation": "as loaded"}


def heldout_placement(
    rates: np.ndarray,
    frames: np.ndarray,
    contours_display: Sequence[np.ndarray],
    frame_ms: float,
    onset_ms: float,
    window_ms: tuple[float, float],
    shifts: Sequence[float] = PLACEMENT_SHIFTS,
    scales: Sequence[float] = PLACEMENT_SCALES,
    bin_ms: float = 10.0,
) -> pd.DataFrame:
    """:func:`placement_search` on each half of the trial stretch ``window_ms`` (column ``chosen_on``),
    then the best placement of each half and the loader's scored on the other half (``scan`` =
    "held-out", ``scored_on``): a gain that survives choosing on data the score does not see.
    ``rates``: ``bin_ms`` rates from trial start; ``onset_ms``: the movie's onset in the trial."""
    mid = round((window_ms[0] + window_ms[1]) / 2 / bin_ms) * bin_ms
    halves = {"first half": (window_ms[0], mid), "second half": (mid, window_ms[1])}
    out = []
    for chosen, scored in (("first half", "second half"), ("second half", "first half")):
        r, on = _cut(rates, onset_ms, halves[chosen], bin_ms)
        search = placement_search(r, frames, contours_display, frame_ms, on, shifts, scales, bin_ms)
        out.append(search.assign(chosen_on=chosen, scored_on=chosen))
        best = search.loc[search.cv_cc.idxmax()]
        r, on = _cut(rates, onset_ms, halves[scored], bin_ms)
        for place in (LOADER_PLACEMENT, best):
            held = placement_scan(r, frames, contours_display, frame_ms, on, scales=[float(place["scale"])],
                                  shifts=[(float(place["dx"]), float(place["dy"]))],
                                  orientations=(str(place["orientation"]),), bin_ms=bin_ms)
            out.append(held.assign(scan="held-out", chosen_on=chosen, scored_on=scored))
    return pd.concat(out, ignore_index=True)


def placement_verdict(table: pd.DataFrame, margin: float = PLACEMENT_MARGIN) -> dict:
    """The loader's placement against the best of a :func:`heldout_placement` table. In-sample: the
    best placement of each half's search against the loader's on the same half (biased upward by the
    search). Held out: each half's best scored on the other half against the loader's there, averaged
    over the two directions. ``confirmed``: the held-out gain is at most ``margin``. Also the best
    placement of each half, the lowest CC of the shift grids (how much placement matters at all) and
    the number of distinct placements searched."""
    keys = ["scale", "dx", "dy", "orientation"]

    def is_loader(t):
        return (t.scale == 1.0) & (t.dx == 0.0) & (t.dy == 0.0) & (t.orientation == "as loaded")

    out, held_gains, in_gains = {}, [], []
    for half, search in table[table.scan != "held-out"].groupby("chosen_on", sort=False):
        if not is_loader(search).any():
            raise ValueError("the table does not hold the loader's placement (scale 1, shift 0, as loaded)")
        best = search.loc[search.cv_cc.idxmax()]
        in_gains.append(float(best.cv_cc - search[is_loader(search)].cv_cc.iloc[0]))
        held = table[(table.scan == "held-out") & (table.chosen_on == half)]
        at_loader = held[is_loader(held)].cv_cc.iloc[0]
        at_best = held[~is_loader(held)].cv_cc
        held_gains.append(float(at_best.iloc[0] - at_loader) if len(at_best) else 0.0)
        tag = half.split()[0]
        out[f"best_on_{tag}"] = (f"{best.dx:+.0f}, {best.dy:+.0f} px, scale {best.scale:g}, "
                                 f"{best.orientation}")
    searched = table[table.scan != "held-out"]
    held_all = table[table.scan == "held-out"]
    out.update(cc_loader=float(held_all[is_loader(held_all)].cv_cc.mean()),
               gain_in_sample=float(np.mean(in_gains)), gain_held_out=float(np.mean(held_gains)),
               cc_worst_shift=float(searched[searched.scan == "shift"].cv_cc.min()),
               n_placements=int(len(searched.drop_duplicates(keys))),
               confirmed=bool(np.mean(held_gains) <= margin))
    return out


def jitter_costs(lum: np.ndarray, frame_ms: float, refresh_hz: Sequence[float] = REFRESH_HZ,
                 bin_ms: float = 10.0, seeds: Sequence[int] = (0, 1, 2), rates: np.ndarray | None = None,
                 onset_ms: float | None = None) -> pd.DataFrame:
    """Per display refresh rate: the share of frames a jittered schedule never shows, the planted-cell
    control (:func:`jittered_schedule_control`, mean over ``seeds``: CC with the regular and the
    jittered schedule, and the cost) and, with the real ``rates`` and ``onset_ms``, the real cells
    scored with the regular and with the jittered schedule (:func:`schedule_fit`; the gain)."""
    n_bins = int(lum.shape[0] * frame_ms // bin_ms)
    rows = []
    for hz in refresh_hz:
        refresh_ms = 1000.0 / float(hz)
        starts = np.ceil(np.arange(lum.shape[0] + 1) * frame_ms / refresh_ms - 1e-9)
        cc = [jittered_schedule_control(lum, frame_ms, refresh_ms, n_bins, out_bin_ms=bin_ms, seed=s)
              for s in seeds]
        row = {"refresh_hz": float(hz), "refresh_ms": refresh_ms,
               "frames_dropped": float(np.mean(np.diff(starts) == 0)),
               "planted_regular": float(np.mean([c["regular"] for c in cc])),
               "planted_jittered": float(np.mean([c["jittered"] for c in cc])), "n_seeds": len(cc)}
        row["planted_cost"] = row["planted_regular"] - row["planted_jittered"]
        if rates is not None:
            row["real_regular"] = schedule_fit(rates, lum, frame_ms, 1.0, onset_ms, bin_ms)
            row["real_jittered"] = schedule_fit(rates, lum, frame_ms, refresh_ms, onset_ms, bin_ms)
            row["real_gain"] = row["real_jittered"] - row["real_regular"]
        rows.append(row)
    return pd.DataFrame(rows)


def stored_stimulus_checks(name: str, rates: np.ndarray, frames: np.ndarray,
                           contours_display: Sequence[np.ndarray], lum: np.ndarray, frame_ms: float,
                           onset_ms: float, window_ms: tuple[float, float], chapter: str = "vist",
                           **settings) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """:func:`heldout_placement` and :func:`jitter_costs` (planted cells, and the real cells) of one
    recording on the trial stretch ``window_ms``, computed once and kept as a derived result
    (:mod:`alignlib.training.derived`, kind ``stimulus_checks``), identified by the SHA-256 of the
    rates, frames, contours and RF luminance, the timing and window, every setting and
    :data:`PLACEMENT_VERSION`. ``settings``: ``shifts``, ``scales``, ``refresh_hz``, ``bin_ms``.
    Returns (placements, jitter, folder)."""
    from alignlib.training.derived import array_sha256, arrays_frame, cached, frame_arrays

    known = {"shifts": PLACEMENT_SHIFTS, "scales": PLACEMENT_SCALES, "refresh_hz": REFRESH_HZ, "bin_ms": 10.0}
    unknown = set(settings) - set(known)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)} for the stimulus checks")
    chosen = {**known, **settings}
    identity = {"recording": name, "rates_sha256": array_sha256(np.asarray(rates, dtype=np.float64)),
                "frames_sha256": array_sha256(np.asarray(frames, dtype=np.float32)),
                "contours_sha256": array_sha256(np.concatenate([np.asarray(c, dtype=np.float64).ravel()
                                                                for c in contours_display])),
                "luminance_sha256": array_sha256(np.asarray(lum, dtype=np.float32)),
                "frame_ms": float(frame_ms), "onset_ms": float(onset_ms),
                "window_ms": [float(v) for v in window_ms],
                **{k: ([float(x) for x in v] if isinstance(v, (tuple, list)) else float(v))
                   for k, v in chosen.items()}}

    def compute() -> dict[str, np.ndarray]:
        placements = heldout_placement(rates, frames, contours_display, frame_ms, onset_ms, window_ms,
                                       shifts=chosen["shifts"], scales=chosen["scales"], bin_ms=chosen["bin_ms"])
        r, on = _cut(rates, onset_ms, window_ms, chosen["bin_ms"])
        jitter = jitter_costs(lum, frame_ms, chosen["refresh_hz"], bin_ms=chosen["bin_ms"], rates=r, onset_ms=on)
        return {**frame_arrays(placements, "placement:"), **frame_arrays(jitter, "jitter:")}

    arrays, folder = cached(chapter, "stimulus_checks", identity, compute, nan_allowed=("placement:cv_cc",))
    return arrays_frame(arrays, "placement:"), arrays_frame(arrays, "jitter:"), folder


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
    train: slice | np.ndarray,
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
    """Train :class:`alignlib.models.retina_cnn.RetinaCNN` on frames ``train`` (a slice or an index
    array; Poisson loss on the
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
    idx = np.arange(len(frames))[train]
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


# --- how much of the reliable response do stimulus models explain? (issue 19 §1, §3) ---------------

#: format version of the stored explained-share result (kind ``explained_share``)
SHARE_VERSION = 1
#: the models of :func:`explained_share`
SHARE_MODELS = ("RF-luminance LN", "retina CNN")


def contiguous_folds(n_frames: int, n_folds: int = 5, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` contiguous test blocks covering the frames -> [(train indices, test indices)]; the
    ``gap`` frames on each side of a test block are in neither (a model with ``gap`` frames of causal
    context never sees test frames while training)."""
    if n_folds < 2 or n_frames < n_folds:
        raise ValueError(f"cannot cut {n_frames} frames into {n_folds} folds")
    edges = np.linspace(0, n_frames, n_folds + 1).astype(int)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        train = np.r_[0:max(0, a - gap), min(n_frames, b + gap):n_frames]
        if len(train) == 0:
            raise ValueError(f"gap {gap} leaves no training frames for the fold {a}-{b}")
        out.append((train, np.arange(a, b)))
    return out


def _fold_scores(pred: np.ndarray, counts: np.ndarray, test: np.ndarray,
                 bin_frames: Sequence[int], seed: int) -> list[dict]:
    """Per-cell CC with the trial mean and noise ceiling on the test frames, at each bin width."""
    from alignlib.experiments.vist.workflow import bin_counts
    from alignlib.metrics.neural_prediction import noise_ceiling, pearson_cc, split_half_reliability

    rows = []
    for k in bin_frames:
        c = bin_counts(np.asarray(counts)[:, test], k).astype(np.float64)
        p = bin_counts(np.asarray(pred)[None, test], k)[0].astype(np.float64)
        cc = pearson_cc(p, c.mean(0))
        ceiling = noise_ceiling(split_half_reliability(c, seed=seed))
        rows += [{"bin_frames": int(k), "cell": j, "cc": float(cc[j]), "ceiling": float(ceiling[j])}
                 for j in range(c.shape[2])]
    return rows


def _fit_predict(model: str, inputs: np.ndarray, rates: np.ndarray, centres: np.ndarray | None,
                 train: np.ndarray, seed: int, cnn_kwargs: dict | None) -> np.ndarray:
    """One fit of a :data:`SHARE_MODELS` model on the frames ``train`` -> prediction for every frame.
    ``inputs``: RF luminance (T, cells) for the LN, cropped frames (T, s, s) for the CNN."""
    from alignlib.models.linear_nonlinear import RFLuminanceLN

    if model == "RF-luminance LN":
        return RFLuminanceLN().fit(inputs, rates, rows=train).predict(inputs)
    return fit_retina_cnn(inputs, rates, centres, train, seed=seed, **(cnn_kwargs or {}))[0]


def explained_share(
    frames: np.ndarray,
    counts: np.ndarray,
    masks: np.ndarray,
    n_folds: int = 5,
    gap: int = 32,
    bin_frames: Sequence[int] = (1, 4, 8, 16),
    seeds: Sequence[int] = (0, 1, 2),
    fractions: Sequence[float] = (0.25, 0.5, 1.0),
    models: Sequence[str] = SHARE_MODELS,
    cnn_kwargs: dict | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Held-out CC of stimulus models with the trial-averaged response, fold by fold -> one row per
    (model, seed, fraction, fold, bin width, cell) with ``cc`` and the test block's ``ceiling``.

    ``frames`` (T, H, W) of one aligned recording, ``counts`` (trials, T, cells) per frame, ``masks``
    (cells, H, W) RF masks. Every frame is tested once (:func:`contiguous_folds`, ``gap`` frames left
    out beside each test block). Models: ``"RF-luminance LN"``
    (:class:`alignlib.models.linear_nonlinear.RFLuminanceLN`; deterministic, seed 0 only) and
    ``"retina CNN"`` (:func:`fit_retina_cnn` on the frames cropped around the RFs, one fit per seed).
    ``fractions`` < 1 train on that share of each fold's training frames -- a learning curve: the
    first and the last contiguous stretch of that length, scored separately (``stretch`` "first" /
    "last"; the CNN at seed 0 only). Scores are at each width in ``bin_frames`` (frames summed)."""
    from tqdm.auto import tqdm

    unknown = set(models) - set(SHARE_MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(SHARE_MODELS)}")
    counts = np.asarray(counts)
    rates = counts.mean(0, dtype=np.float64)
    n_frames = len(frames)
    if counts.shape[1] != n_frames or masks.shape[0] != counts.shape[2]:
        raise ValueError(f"frames {np.shape(frames)}, counts {counts.shape} and masks {masks.shape} "
                         "disagree")
    folds = contiguous_folds(n_frames, n_folds, gap)
    lum = onken.rf_luminance(frames, masks) if "RF-luminance LN" in models else None
    crop = centres = None
    if "retina CNN" in models:
        crop, centres = crop_around_rfs(frames, masks)
    jobs = []
    for fraction in fractions:
        for stretch in (("all",) if fraction >= 1 else ("first", "last")):
            for model in models:
                for seed in (seeds if (model == "retina CNN" and fraction >= 1) else seeds[:1]):
                    for i in range(len(folds)):
                        jobs.append((model, seed, float(fraction), stretch, i))
    rows = []
    for model, seed, fraction, stretch, i in tqdm(jobs, desc="explained share", disable=not progress):
        train, test = folds[i]
        n = max(1, int(round(len(train) * fraction)))
        train = train[:n] if stretch == "first" else train[len(train) - n:]
        pred = _fit_predict(model, lum if model == "RF-luminance LN" else crop, rates, centres, train,
                            seed, cnn_kwargs)
        info = {"model": model, "seed": seed, "fraction": fraction, "stretch": stretch, "fold": i,
                "train_frames": len(train)}
        rows += [{**info, **r} for r in _fold_scores(pred, counts, test, bin_frames, seed=0)]
    return pd.DataFrame(rows)


def stored_share(analysis: str, name: str, frames: np.ndarray, counts: np.ndarray, masks: np.ndarray,
                 extras: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, chapter: str = "vist",
                 progress: bool = False, **settings) -> tuple[pd.DataFrame, object]:
    """:func:`explained_share` (``analysis="explained"``) or :func:`augmented_share` (``"augmented"``,
    with ``extras``), computed once and kept as a derived result (:mod:`alignlib.training.derived`,
    kind ``explained_share``), identified by the SHA-256 of the frames, counts, masks and extras,
    every setting and :data:`SHARE_VERSION`; ``name`` (the recording) is recorded for the reader.
    Returns (table, folder)."""
    import inspect

    from alignlib.training.derived import array_sha256, arrays_frame, cached, frame_arrays

    functions = {"explained": explained_share, "augmented": augmented_share}
    if analysis not in functions:
        raise ValueError(f"analysis must be one of {', '.join(functions)}, got {analysis!r}")
    if (analysis == "augmented") != (extras is not None):
        raise ValueError("extras are given to, and only to, the 'augmented' analysis")
    fn = functions[analysis]
    defaults = {k: v.default for k, v in inspect.signature(fn).parameters.items()
                if v.default is not inspect.Parameter.empty and k != "progress"}
    unknown = set(settings) - set(defaults)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)} for the {analysis!r} analysis")
    chosen = {**defaults, **settings}
    identity = {"analysis": analysis, "recording": name,
                "frames_sha256": array_sha256(np.asarray(frames, dtype=np.float32)),
                "counts_sha256": array_sha256(np.asarray(counts)),
                "masks_sha256": array_sha256(np.asarray(masks, dtype=bool)),
                "extras_sha256": {label: [array_sha256(np.asarray(f, dtype=np.float32)),
                                          array_sha256(np.asarray(r, dtype=np.float64))]
                                  for label, (f, r) in (extras or {}).items()},
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in chosen.items()}}

    def compute() -> dict[str, np.ndarray]:
        args = (frames, counts, masks) + ((extras,) if extras is not None else ())
        return frame_arrays(fn(*args, progress=progress, **chosen), "share:")

    arrays, folder = cached(chapter, "explained_share", identity, compute,
                            nan_allowed=("share:cc", "share:ceiling"))
    return arrays_frame(arrays, "share:"), folder


def augmented_share(
    frames: np.ndarray,
    counts: np.ndarray,
    masks: np.ndarray,
    extras: dict[str, tuple[np.ndarray, np.ndarray]],
    n_folds: int = 5,
    gap: int = 32,
    bin_frames: Sequence[int] = (1, 8),
    seeds: Sequence[int] = (0,),
    models: Sequence[str] = SHARE_MODELS,
    context: int = 32,
    baseline: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Does more movie raise the held-out CC? :func:`explained_share`'s folds and models, trained on
    each fold's training frames alone (``added`` "none") and with each of ``extras`` added ->
    one row per (added, model, seed, fold, bin width, cell).

    ``extras``: label -> (frames (N, H, W), rates (N, cells)) of the same cells (another recording of
    the same retina); its first ``context`` frames only feed the stimulus history (no training
    target), so no sample mixes the two recordings. A control extra with the same frames and its
    rates shifted in time tells what added frames without alignment do. ``baseline=False`` leaves
    out the "none" rows (:func:`explained_share` at fraction 1 has them, same folds and fits)."""
    from tqdm.auto import tqdm

    counts = np.asarray(counts)
    n_frames = len(frames)
    folds = contiguous_folds(n_frames, n_folds, gap)
    rows = []
    labels = ("none", *extras) if baseline else tuple(extras)
    jobs = [(label, model, seed) for label in labels for model in models
            for seed in (seeds if model == "retina CNN" else seeds[:1])]
    inputs_of = {}
    for label, model, seed in tqdm(jobs, desc="augmented share", disable=not progress):
        extra_frames, extra_rates = extras.get(label, (frames[:0], np.zeros((0, counts.shape[2]))))
        if len(extra_frames) and len(extra_frames) <= context:
            raise ValueError(f"extra {label!r} has {len(extra_frames)} frames, not more than its "
                             f"context of {context}")
        all_frames = np.concatenate([frames, extra_frames])
        rates = np.concatenate([counts.mean(0, dtype=np.float64), np.asarray(extra_rates, float)])
        key = (label, model)
        if key not in inputs_of:
            if model == "RF-luminance LN":
                inputs_of[key] = (onken.rf_luminance(all_frames, masks), None)
            else:
                inputs_of[key] = crop_around_rfs(all_frames, masks)
        inputs, centres = inputs_of[key]
        added = np.arange(n_frames + context, len(all_frames)) if len(extra_frames) else np.arange(0)
        for i, (train, test) in enumerate(folds):
            # added frames first: the CNN validates on the last of its own training frames
            pred = _fit_predict(model, inputs, rates, centres, np.r_[added, train], seed, None)
            info = {"added": label, "model": model, "seed": seed, "fold": i,
                    "train_frames": len(train) + len(added)}
            rows += [{**info, **r} for r in _fold_scores(pred[:n_frames], counts, test, bin_frames,
                                                         seed=0)]
    return pd.DataFrame(rows)


def scored(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a CC of 0 where the model's prediction was constant on a test block whose
    response was not (CC undefined, but the model explained nothing there: dropping it would flatter
    the model); CC stays NaN where the response itself is flat (ceiling undefined too)."""
    return table.assign(cc=np.where(table.cc.isna() & table.ceiling.notna(), 0.0, table.cc))


def share_summary(table: pd.DataFrame, keys: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """One row per ``keys`` group of an :func:`explained_share` / :func:`augmented_share` table: each
    cell's CC and ceiling averaged over folds and seeds, then the mean over cells with a 95 %
    bootstrap CI over cells (:func:`alignlib.metrics.uncertainty.bootstrap_ci`), the mean ceiling,
    and the share of the ceiling (each cell's mean CC / its mean ceiling, mean over cells, CI)."""
    from alignlib.metrics.uncertainty import bootstrap_ci

    table = scored(table)
    rows = []
    for key, g in table.groupby(list(keys), sort=False):
        cell = g.groupby("cell")[["cc", "ceiling"]].mean()
        cc = cell.cc.dropna().to_numpy()
        share = (cell.cc / cell.ceiling).replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
        lo, hi = bootstrap_ci(cc, seed=seed)
        s_lo, s_hi = bootstrap_ci(share, seed=seed)
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                     "n_cells": len(cc), "n_folds": g.fold.nunique(), "n_seeds": g.seed.nunique(),
                     "mean_cc": float(cc.mean()), "ci_low": lo, "ci_high": hi,
                     "mean_ceiling": float(cell.ceiling.mean()), "share": float(share.mean()),
                     "share_ci_low": s_lo, "share_ci_high": s_hi})
    return pd.DataFrame(rows)


def share_difference(table: pd.DataFrame, column: str, a: str, b: str, seed: int = 0,
                     **where) -> dict:
    """``column`` == ``a`` minus ``column`` == ``b`` in mean CC, paired by cell (each cell's CC averaged
    over folds and seeds first), 95 % paired bootstrap over cells
    (:func:`alignlib.metrics.uncertainty.paired_difference_ci`). ``where``: column == value filters."""
    from alignlib.metrics.uncertainty import paired_difference_ci

    sel = scored(table)
    for col, value in where.items():
        sel = sel[sel[col] == value]
    both = pd.concat({v: sel[sel[column] == v].groupby("cell").cc.mean() for v in (a, b)},
                     axis=1).dropna()
    if both.empty:
        raise ValueError(f"no cells scored for both {a!r} and {b!r} where {where}")
    d, lo, hi = paired_difference_ci(both[a].to_numpy(), both[b].to_numpy(), seed=seed)
    return {"a": a, "b": b, **where, "difference": d, "ci_low": lo, "ci_high": hi,
            "n_cells": len(both)}
