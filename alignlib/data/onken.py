"""Salamander retina responses to natural movies (Onken et al. 2016, PLoS Comput Biol; Dryad doi:10.5061/dryad.4ch10).

Layout, as published on Dryad (and copied under ``<ALIGNLIB_DATA_DIR>/onken2016``):

* ``NeuralData/Spikes/<Rec>.mat``: ``Spikes`` a MATLAB cell array (cells x 30 trials), each entry the
  spike times in ms after stimulus onset; ``n_trials``, ``n_neurons``.
* ``NeuralData/ReceptiveFields/<Rec>.mat``: ``ReceptiveFields`` a (1, cells) cell array of 2 x n contour
  coordinates (row 0 = x = column, row 1 = y = row) in display pixels.
* ``Stimuli/Movie<m>/frameNNNN.raw``: uint8 frames written column-major by MATLAB (transpose after
  reshaping); 360 x 360 in the original archive (the side is inferred from the file size, so a 2x2-binned
  copy reads the same way).

Choices (shown with their evidence on the book's data page, ``notebooks/vist/data.py``):

* Timing: the files state neither the frame period nor where the movie starts within a trial. The data page's
  scan of frame periods and movie onsets (:mod:`alignlib.experiments.vist.timing`) finds one frame period,
  :data:`FRAME_MS` = 12.45 ms (about 80 Hz), at which the frames predict the spikes of three recordings, each with
  its own onset (:data:`TIMING`; Movie1Exp2's movie jumps back within the trial, so it is read stretch by
  stretch, :data:`STRETCHES`); time-reversed frames and receptive fields shuffled across cells do not. No
  timing is found for ``Movie2Exp1``: it is loaded at the working reading (:data:`DEFAULT_FRAME_MS` = 10 ms, onset
  0) and flagged in ``meta["timing"]``.
* Movie identity: :data:`MOVIE_OF` follows the file names. At the timing above, each experiment-2 recording is
  predicted by the movie its file name says, not by the other one, so the Dryad README's naming swap
  (:data:`MOVIE_BY_README`) is contradicted by the data.
* RF contours are in display coordinates; the movie is centred on the 800 x 600 display (its corner at
  :data:`MOVIE_ORIGIN_ON_DISPLAY`; every published contour falls inside it), and the contours' y runs opposite
  to the frame rows (:data:`RF_Y_FLIPPED`). Both are checked on the flashed natural images of the same retinas,
  whose responses the luminance inside each RF predicts only in this orientation (:func:`rf_orientation_evidence`).
* Trials: a trial whose spike count over all cells is below :data:`SILENT_TRIAL_FRACTION` of the
  median trial's
  is excluded (:func:`silent_trials`; listed in ``meta["excluded_trials"]``). This drops
  Movie2Exp2's trial 0
  (68 spikes against 2,263-3,066) and no other trial of the movie recordings
  (:func:`trial_exclusions`).
* Spikes outside the frames on screen during a trial (before the first kept frame or after the last) are
  dropped and counted in ``meta["n_spikes_outside_frames"]``; a cell without a spike in any trial is kept (indices stay aligned with its RF)
  and listed in ``meta["silent_cells"]``; contour points outside the frame are clipped (cells listed in
  ``meta["rf_clipped_cells"]``) and a contour wholly outside the frame is an error.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from skimage.draw import polygon

from alignlib.data.errors import ChecksumError, DataFormatError
from alignlib.paths import data_dir

__all__ = ["FIRMLY_ALIGNED", "RECORDINGS", "MOVIE_OF", "MOVIE_BY_README", "MOVIE_FRAMES", "DEFAULT_FRAME_MS", "FRAME_MS", "TIMING",
           "TRIAL_MS", "STRETCHES", "recording_timing", "load_stretches", "DRYAD_DOI", "SHA256",
           "RetinaRecording", "load_recording", "load_frames", "read_spike_times", "read_rf_contours",
           "bin_spike_times", "contour_masks", "contour_area_on_grid", "split_windows", "default_dir",
           "verify_checksums", "population_rate", "frame_rate_evidence", "reliability_by_window",
           "load_natural_images", "rf_luminance", "natural_image_counts", "rf_orientation_evidence",
           "RF_Y_FLIPPED", "SILENT_TRIAL_FRACTION", "silent_trials", "trial_exclusions",
           "TILE_BIN_MS", "TILE_MIN_SPIKES", "TILE_FRACTION", "TILE_LAGS_MS", "TILED_MS", "tiling_period",
           "tiled_mask", "tiled_blocks", "tiled_block", "clean_window", "placed_stretch",
           "DUPLICATE_SHARE", "DUPLICATE_WINDOW_MS", "DUPLICATE_RATIO", "DUPLICATE_CONTROL_MS",
           "coincidence_shares",
           "duplicate_units", "duplicate_cells"]

DRYAD_DOI = "10.5061/dryad.4ch10"
RECORDINGS = ("Movie1Exp1", "Movie2Exp1", "Movie1Exp2", "Movie2Exp2")
#: the movie each recording saw: the one its file name says (the data page's timing scan supports this, not the
#: README's swap)
MOVIE_OF = {name: int(name[5]) for name in RECORDINGS}
#: the Dryad README's claim ("Movie2Exp2 - Recording 2 with movie 1; Movie1Exp2 - Recording 2 with movie 2")
MOVIE_BY_README = {"Movie1Exp1": 1, "Movie2Exp1": 2, "Movie1Exp2": 2, "Movie2Exp2": 1}
#: length of every movie trial in the spike files (ms)
TRIAL_MS = 18000.0
#: the frame period at which the frames predict the spikes (data page: scan of 10-50 ms, refined in 0.05 ms steps)
FRAME_MS = 12.45
#: per recording, the movie onset in ms after trial start (negative: the trial starts inside the movie) at
#: :data:`FRAME_MS`, from the data page's scan; None: no timing found (loaded at the working reading).
#: Movie1Exp2's +2590 ms holds only from about 7.5 s on: see :data:`STRETCHES`
TIMING: dict[str, float | None] = {"Movie1Exp1": -1510.0, "Movie2Exp1": None, "Movie1Exp2": 2590.0,
                                   "Movie2Exp2": -170.0}
#: recordings whose movie timing changes within the trial -> ((start_ms, end_ms, onset_ms), ...): the trial
#: stretches, each with the onset at :data:`FRAME_MS` that places it (:func:`load_stretches`). Movie1Exp2 is
#: placed by the movie at -90 ms for its first 6 s and at +2590 ms from 7.5 s on; between them lies its
#: copied block (:data:`TILED_MS`, about 6.6-9.6 s). The jump is shorter than the block, so the movie may
#: have run on across it (a pause or a replay hidden inside it fits the clean spikes as well; the copies
#: hide what was on screen). From the data page's segment
#: alignment (3-s segments in 1.5-s steps, so the boundaries are known to 1.5 s), and each stretch is
#: confirmed by adding it to models of Movie2Exp2 (the same cells) against its time-shifted copy
#: (``explain.augmented_share``); the data page checks this table against both on every run
STRETCHES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "Movie1Exp2": ((0.0, 6000.0, -90.0), (7500.0, 18000.0, 2590.0))}
#: recordings whose timing holds along the whole trial: every 3-s segment is placed at its pinned position
#: (the data page's segment alignment, :func:`alignlib.experiments.vist.explain.segment_verdict`: Movie2Exp2
#: 11 of 11 segments; Movie1Exp1 8 of 11, Movie1Exp2 7 of 11) and an independent blind search over ~700,000
#: period x onset timings finds Movie2Exp2's timing far above a time-reversed null (z 23.8 vs a null maximum of
#: 15.9; issue 19). Models are compared only on these; the others are shown, flagged
FIRMLY_ALIGNED = ("Movie2Exp2",)
MOVIE_FRAMES = {1: 1800, 2: 1600}
DEFAULT_FRAME_MS = 10.0
ORIGINAL_SIDE = 360
DISPLAY_SIZE = (800, 600)  # (width, height) of the OLED display in pixels
MOVIE_ORIGIN_ON_DISPLAY = ((DISPLAY_SIZE[0] - ORIGINAL_SIDE) / 2, (DISPLAY_SIZE[1] - ORIGINAL_SIDE) / 2)
#: the contours' display y runs opposite to the stimulus rows (row 0 of a frame, as MATLAB reads it, sits at the
#: largest display y): on the natural-image recordings this orientation, and no other of the eight, makes the
#: luminance inside each RF predict the flash responses (:func:`rf_orientation_evidence`)
RF_Y_FLIPPED = True
NATURAL_IMAGE_SIDE = 256
#: trial-exclusion rule (:func:`silent_trials`): a trial whose spike count summed over all cells is
#: below this
#: fraction of the median trial's is an artefact (the recording or the stimulus failed), not
#: variation of the
#: response. On the four movie recordings normal trials span 0.87-1.66 of the median; Movie2Exp2's
#: trial 0
#: (68 spikes, all after 11 s) has 0.026 and is the only trial excluded.
SILENT_TRIAL_FRACTION = 0.5
#: tiled-block rule (:func:`tiled_blocks`): the spike times are whole milliseconds, and in one stretch of
#: every movie recording the whole population's spike trains repeat exactly, to the millisecond, every
#: 290 ms (a different pattern in each trial; the movie does not repeat there): copies made by the
#: recording or its export, not responses. A spike is tiled when the same cell in the same trial has a
#: spike exactly one period earlier or later; a 100-ms bin of a trial (all cells) with at least
#: TILE_MIN_SPIKES spikes is tiled when more than TILE_FRACTION of them are; a trial's block is its
#: longest run of tiled bins (bins with fewer spikes neither break nor start it). The period is the most
#: common exact difference between two spikes of one cell in one trial, 50-5000 ms.
TILE_BIN_MS = 100.0
TILE_MIN_SPIKES = 5
TILE_FRACTION = 0.5
TILE_LAGS_MS = (50, 5000)
#: per recording, the trial stretch (start_ms, end_ms) holding the tiled block of any trial, one bin wider
#: on each side (:func:`tiled_block`, pinned from the data page, which recomputes it); ``load_recording(...,
#: exclude_tiled=True)`` keeps the longest part of the trial outside it
TILED_MS: dict[str, tuple[float, float]] = {"Movie1Exp1": (13200.0, 17700.0),
                                            "Movie2Exp1": (8600.0, 12900.0),
                                            "Movie1Exp2": (6500.0, 9700.0),
                                            "Movie2Exp2": (16100.0, 18000.0)}

#: duplicate-unit rule (:func:`duplicate_units`): two units of one recording carry the same spikes (one
#: neuron sorted twice, or one signal picked up twice) when, on the part of the trial outside its copied
#: block, more than DUPLICATE_SHARE of the sparser unit's spikes have a spike of the other unit within
#: DUPLICATE_WINDOW_MS (the times are whole ms, so a copy can sit 1 ms off), and that share is at least
#: DUPLICATE_RATIO times the share in the same-width window centred DUPLICATE_CONTROL_MS either way (the
#: larger of the two). Two distinct cells driven by the same stimulus fire together over a few ms: their
#: share beside the centre is as large as at it. The control windows also hold each unit's own bursts
#: (for a duplicate, its partner's spikes repeat its own), so the ratio is modest.
DUPLICATE_SHARE = 0.5
DUPLICATE_WINDOW_MS = 1
DUPLICATE_CONTROL_MS = 3
DUPLICATE_RATIO = 3.0

#: sha256 of the published neural-data files this package reads, pinned from the copy this book is built with
#: (the Dryad originals, unmodified; the movie frames are not pinned because that copy is 2x2-binned, and the
#: loader checks their count and sizes instead). :func:`verify_checksums` raises on a mismatch.
SHA256: dict[str, str] = {
    "NeuralData/Spikes/Movie1Exp1.mat": "19346c1c00ba1c2463623eae699d47c17be23a79cab5e62944a74de719eb70f1",
    "NeuralData/Spikes/Movie1Exp2.mat": "20ee3ffa89596a6272adda50847ff874d314313c65f051b794f8729e144b86af",
    "NeuralData/Spikes/Movie2Exp1.mat": "280daaf7d64252e79761c2e6945d8cbec4f784872ff33a5715e94c82f353be8c",
    "NeuralData/Spikes/Movie2Exp2.mat": "9432941af5b8cd42bff440ad2f872e27f980abe8d3e2ab7b8941a7456115ef05",
    "NeuralData/Spikes/NaturalImages1.mat": "7e91e1d7523f18dd0220474930b0a597e8199708bb583549f33754c4c0cfb0b2",
    "NeuralData/Spikes/NaturalImages2.mat": "0b857caf5b0c7f33c45585251c03dcaddeb3922a4afa0022ce1ab98a002168bc",
    "NeuralData/ReceptiveFields/Movie1Exp1.mat": "1617e84f7ca7ddf36a1665d66e87ad938c5c103ab7769c0953496f732a5214e1",
    "NeuralData/ReceptiveFields/Movie1Exp2.mat": "94573987120dbe4bcede1993e0cc2a91c7fdb38a42037e8ec7dfee53bf403d0a",
    "NeuralData/ReceptiveFields/Movie2Exp1.mat": "84bf7c7034085ed2e1fd4a73d2aadc5a01e2425ba0848f50d4035d9862c4de4a",
    "NeuralData/ReceptiveFields/Movie2Exp2.mat": "35ecad8d3f4d49189e3998d2b7918dcf514fa62298ed37e5ac45f1aa663542b1",
    "NeuralData/ReceptiveFields/NaturalImages1.mat": "9f131afef20b09243033011f88a22e47748d8c298212d54d25cdef83b2f25944",
    "NeuralData/ReceptiveFields/NaturalImages2.mat": "2035ee424bf487fc41609985e53fcf4c1ac66bb069cc80e96fe8530d804c91f7",
}


def default_dir() -> Path:
    """``<ALIGNLIB_DATA_DIR>/onken2016``."""
    return data_dir() / "onken2016"


def _root(root) -> Path:
    root = Path(root) if root is not None else default_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no Onken 2016 data folder (set ALIGNLIB_DATA_DIR to the folder "
                                f"holding onken2016/, downloaded from Dryad doi:{DRYAD_DOI})")
    return root


def _loadmat(path: Path, variable: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (Dryad layout expected: NeuralData/Spikes/<Rec>.mat, "
                                f"NeuralData/ReceptiveFields/<Rec>.mat)")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises many types on garbage/truncated input
        raise DataFormatError(f"{path}: not a readable MAT file: {type(e).__name__}: {e}") from e
    if variable not in mat:
        raise DataFormatError(f"{path}: no variable {variable!r} (found {sorted(k for k in mat if not k.startswith('__'))})")
    return mat


def read_spike_times(path: str | Path) -> list[list[np.ndarray]]:
    """``Spikes`` of a Dryad spike file as ``[cell][trial] -> float64 spike times (ms)``."""
    path = Path(path)
    cells = _loadmat(path, "Spikes")["Spikes"]
    if cells.dtype != object or cells.ndim != 2:
        raise DataFormatError(f"{path}: Spikes must be a 2-D MATLAB cell array (cells x trials), got "
                              f"{cells.dtype} {cells.shape}")
    out = []
    for i in range(cells.shape[0]):
        row = []
        for j in range(cells.shape[1]):
            t = np.asarray(cells[i, j], dtype=np.float64).ravel()
            if not np.all(np.isfinite(t)):
                raise DataFormatError(f"{path}: cell {i}, trial {j}: non-finite spike times")
            row.append(np.sort(t))
        out.append(row)
    return out


def bin_spike_times(spikes: list[list[np.ndarray]], n_bins: int, bin_ms: float) -> tuple[np.ndarray, int]:
    """Count spikes per bin ``[k*bin_ms, (k+1)*bin_ms)`` -> ((trials, n_bins, cells) int32, n spikes dropped).

    Spikes before 0 or at/after ``n_bins * bin_ms`` are dropped and counted.
    """
    n_cells, n_trials = len(spikes), len(spikes[0]) if spikes else 0
    counts = np.zeros((n_trials, n_bins, n_cells), dtype=np.int32)
    dropped = 0
    for i, row in enumerate(spikes):
        if len(row) != n_trials:
            raise DataFormatError(f"cell {i} has {len(row)} trials, cell 0 has {n_trials}")
        for j, t in enumerate(row):
            k = np.floor(t / bin_ms).astype(np.int64)
            ok = (k >= 0) & (k < n_bins)
            dropped += int((~ok).sum())
            counts[j, :, i] = np.bincount(k[ok], minlength=n_bins)
    return counts, dropped


def read_rf_contours(path: str | Path) -> list[np.ndarray]:
    """``ReceptiveFields`` of a Dryad RF file as a list of (2, n) float64 arrays [x; y] in display pixels."""
    path = Path(path)
    cells = np.ravel(_loadmat(path, "ReceptiveFields")["ReceptiveFields"])
    out = []
    for i, c in enumerate(cells):
        c = np.asarray(c, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != 2 or c.shape[1] < 3 or not np.all(np.isfinite(c)):
            raise DataFormatError(f"{path}: receptive field {i} must be a finite 2 x n contour (n >= 3), "
                                  f"got shape {c.shape}")
        out.append(c)
    return out


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("frame*.raw"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not files:
        raise FileNotFoundError(f"{folder}: no frameNNNN.raw files (Dryad layout: Stimuli/Movie<m>/)")
    return files


def load_frames(movie: int, root: str | Path | None = None, n_frames: int | None = None) -> np.ndarray:
    """Movie ``movie`` as (T, side, side) float32 in [0, 1]; side from the file size, MATLAB order transposed.

    ``n_frames`` (default :data:`MOVIE_FRAMES`) is checked against the number of files.
    """
    folder = _root(root) / "Stimuli" / f"Movie{movie}"
    files = _frame_files(folder)
    expected = MOVIE_FRAMES.get(movie) if n_frames is None else n_frames
    if expected is not None and len(files) != expected:
        raise DataFormatError(f"{folder}: {len(files)} frame files, expected {expected} for movie {movie}")
    size = files[0].stat().st_size
    side = int(round(np.sqrt(size)))
    if side * side != size:
        raise DataFormatError(f"{files[0]}: {size} bytes is not a square uint8 frame")
    frames = np.empty((len(files), side, side), dtype=np.uint8)
    for k, f in enumerate(files):
        raw = np.fromfile(f, dtype=np.uint8)
        if raw.size != size:
            raise DataFormatError(f"{f}: {raw.size} bytes, the other frames have {size}")
        frames[k] = raw.reshape(side, side).T  # MATLAB wrote column-major
    return frames.astype(np.float32) / 255.0


def _display_to_frame(contour: np.ndarray, side: int, original_side: int = ORIGINAL_SIDE,
                      scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(2, n) display [x; y] -> frame pixel [x; y] on a ``side`` x ``side`` copy of an
    ``original_side`` stimulus.

    The stimulus is centred on the display; its rows run opposite to the display y of the contours
    (:data:`RF_Y_FLIPPED`, established by :func:`rf_orientation_evidence`). ``scale`` (display
    pixels per stimulus pixel, about the display centre) and ``shift`` (the stimulus centre's offset
    from the display centre, display pixels) are alternative placements, tested by
    :func:`alignlib.experiments.vist.explain.placement_scan`; the loader uses 1 and (0, 0)."""
    cx, cy = DISPLAY_SIZE[0] / 2 + shift[0], DISPLAY_SIZE[1] / 2 + shift[1]
    x = (contour[0] - cx) / scale + original_side / 2
    y = (contour[1] - cy) / scale + original_side / 2
    if RF_Y_FLIPPED:
        y = original_side - y
    return np.stack([x, y]) * (side / original_side)


def contour_masks(contours: list[np.ndarray], side: int) -> tuple[np.ndarray, list[int]]:
    """Filled contours (frame pixel [x; y]) as (cells, side, side) bool masks; also cells clipped at the edge.

    Raises :class:`DataFormatError` for a contour wholly outside the frame.
    """
    masks = np.zeros((len(contours), side, side), dtype=bool)
    clipped = []
    for i, c in enumerate(contours):
        x, y = c
        rr, cc = polygon(y, x, shape=(side, side))
        if rr.size == 0:
            raise DataFormatError(f"receptive field {i}: contour (x {x.min():.0f}..{x.max():.0f}, "
                                  f"y {y.min():.0f}..{y.max():.0f}) lies outside the {side} x {side} frame")
        masks[i, rr, cc] = True
        if x.min() < 0 or y.min() < 0 or x.max() > side or y.max() > side:
            clipped.append(i)
    return masks, clipped


def contour_area_on_grid(contours: list[np.ndarray], frame_side: int, grid: int = 16,
                         oversample: int = 24) -> np.ndarray:
    """Fraction of each cell of a ``grid`` x ``grid`` patch grid covered by each contour -> (cells, grid, grid).

    The contour (frame pixels of a ``frame_side`` frame) is filled on a ``grid * oversample`` raster and
    block-averaged, so the value is the covered area fraction of each patch (paper §4.3: RF on the 16 x 16
    DINOv2 patch grid).
    """
    fine = grid * oversample
    out = np.zeros((len(contours), grid, grid), dtype=np.float32)
    for i, c in enumerate(contours):
        x, y = c * (fine / frame_side)
        rr, cc = polygon(y, x, shape=(fine, fine))
        m = np.zeros((fine, fine), dtype=np.float32)
        m[rr, cc] = 1.0
        out[i] = m.reshape(grid, oversample, grid, oversample).mean(axis=(1, 3))
    return out


@dataclass
class RetinaRecording:
    """One movie recording: frames, binned spikes of all trials, trial-averaged rates and RFs."""

    name: str              # file name as published
    movie: int             # 1 or 2: the movie shown (the file name's; the data page's scan contradicts the README)
    frame_ms: float        # the frame period = the bin
    frames: np.ndarray     # (T, H, W) float32 in [0, 1]
    counts: np.ndarray     # (trials, T, cells) spike counts per frame bin
    rates: np.ndarray      # (T, cells) trial-averaged counts per bin
    rf_masks: np.ndarray   # (cells, H, W) bool on the stimulus grid
    rf_contours: list      # per cell, (2, n) [x; y] in stimulus (frame) pixels
    meta: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return int(self.counts.shape[2])

    @property
    def n_trials(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.counts.shape[1])

    def rf_masks_on_grid(self, side: int = 16) -> np.ndarray:
        """(cells, side, side) float32 area fraction of each patch inside each RF contour."""
        return contour_area_on_grid(self.rf_contours, self.frames.shape[1], grid=side)


def silent_trials(spikes: list[list[np.ndarray]],
                  fraction: float = SILENT_TRIAL_FRACTION) -> list[int]:
    """Trials to exclude: those whose total spike count over all cells is below ``fraction`` x the
    median trial's total (:data:`SILENT_TRIAL_FRACTION`). ``spikes``: ``[cell][trial]`` spike times.

    The rule is relative to the recording's own median, so a recording whose rate drifts slowly over
    its trials keeps them all; only a trial that is a small fraction of a typical one (e.g. the
    electrode or the stimulus failing for most of it) is dropped."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if not spikes or not spikes[0]:
        return []
    totals = np.array([sum(np.asarray(row[j]).size for row in spikes)
                       for j in range(len(spikes[0]))])
    median = float(np.median(totals))
    return [int(j) for j in np.flatnonzero(totals < fraction * median)] if median > 0 else []


def _kept_trials(spikes: list[list[np.ndarray]],
                 exclude: bool) -> tuple[list[list[np.ndarray]], list[int]]:
    """(spikes without the :func:`silent_trials`, their indices); the spikes unchanged when not
    ``exclude``."""
    excluded = silent_trials(spikes) if exclude else []
    if not excluded:
        return spikes, []
    return [[t for j, t in enumerate(row) if j not in excluded] for row in spikes], excluded


def tiling_period(spikes: list[list[np.ndarray]], lags_ms: tuple[int, int] = TILE_LAGS_MS) -> tuple[int, float]:
    """The most common exact difference (whole ms, within ``lags_ms``) between two spikes of one cell
    in one trial, pooled over cells and trials -> (period, its count / the next most common's)."""
    lo, hi = lags_ms
    counts = np.zeros(hi + 1, dtype=np.int64)
    for row in spikes:
        for t in row:
            t = np.round(np.asarray(t, dtype=np.float64)).astype(np.int64)
            d = (t[None, :] - t[:, None]).ravel()
            counts += np.bincount(d[(d >= lo) & (d <= hi)], minlength=hi + 1)
    period = int(np.argmax(counts))
    runner_up = np.partition(counts, -2)[-2]
    return period, float(counts[period] / max(runner_up, 1))


def tiled_mask(times: np.ndarray, period_ms: int) -> np.ndarray:
    """Which spikes of one cell in one trial have an identical spike exactly ``period_ms`` earlier or
    later (times rounded to whole ms, as the files store them)."""
    t = np.round(np.asarray(times, dtype=np.float64)).astype(np.int64)
    return np.isin(t + period_ms, t) | np.isin(t - period_ms, t)


def tiled_blocks(spikes: list[list[np.ndarray]], period_ms: int | None = None, bin_ms: float = TILE_BIN_MS,
                 min_spikes: int = TILE_MIN_SPIKES, fraction: float = TILE_FRACTION,
                 trial_ms: float | None = None) -> dict:
    """The tiled block of each trial (rule of :data:`TILE_FRACTION`) -> {"period_ms", "period_ratio",
    "blocks": [(start_ms, end_ms) or None per trial], "tiled_share_inside", "tiled_share_outside" (the
    share of spikes with an exact partner inside and outside the trials' blocks), "bin_starts_ms",
    "share_by_bin" (that share per bin, pooled over trials)}. ``spikes``:
    ``[cell][trial]`` spike times; ``period_ms`` None: :func:`tiling_period`."""
    trial_ms = TRIAL_MS if trial_ms is None else float(trial_ms)
    ratio = float("nan")
    if period_ms is None:
        period_ms, ratio = tiling_period(spikes)
    edges = np.arange(0.0, trial_ms + bin_ms, bin_ms)
    blocks, inside, outside = [], [0, 0], [0, 0]
    pooled = np.zeros((2, len(edges) - 1))
    for j in range(len(spikes[0]) if spikes else 0):
        times = [np.asarray(row[j], dtype=np.float64) for row in spikes]
        tiled = [tiled_mask(t, period_ms) for t in times]
        allt, rep = np.concatenate(times), np.concatenate(tiled)
        n_all = np.histogram(allt, edges)[0]
        n_rep = np.histogram(allt[rep], edges)[0]
        pooled += (n_rep, n_all)
        state = np.where(n_all < min_spikes, 0, np.where(n_rep > fraction * n_all, 1, -1))
        best, start = None, None
        for i, st in enumerate(state):
            if st == 1:
                start = i if start is None else start
                if best is None or i - start > best[1] - best[0]:
                    best = (start, i)
            elif st == -1:
                start = None
        block = None if best is None else (float(edges[best[0]]), float(edges[best[1] + 1]))
        blocks.append(block)
        inb = np.zeros(allt.size, bool) if block is None else (allt >= block[0]) & (allt < block[1])
        inside[0] += int(rep[inb].sum()); inside[1] += int(inb.sum())
        outside[0] += int(rep[~inb].sum()); outside[1] += int((~inb).sum())
    return {"period_ms": int(period_ms), "period_ratio": ratio, "blocks": blocks,
            "tiled_share_inside": inside[0] / max(inside[1], 1),
            "tiled_share_outside": outside[0] / max(outside[1], 1),
            "bin_starts_ms": edges[:-1], "share_by_bin": pooled[0] / np.maximum(pooled[1], 1)}


def tiled_block(name: str, root: str | Path | None = None) -> dict:
    """A recording's tiled block: :func:`tiled_blocks` over all its trials (the silent trials too),
    with the stretch holding every trial's block, widened by one bin on each side (the bins round a
    block's edges inward, and a copy can sit a few ms out of phase at its end), clipped to the trial
    (``start_ms``, ``end_ms``; None when no trial has one) and how many trials the rule finds one in
    (a sparse trial can hold copies the 5-spike bins miss) -- what :data:`TILED_MS` pins."""
    spikes = read_spike_times(_root(root) / "NeuralData" / "Spikes" / f"{name}.mat")
    out = tiled_blocks(spikes)
    found = [b for b in out["blocks"] if b is not None]
    out.update(recording=name, n_trials=len(out["blocks"]), n_trials_with_block=len(found),
               start_ms=max(0.0, min(b[0] for b in found) - TILE_BIN_MS) if found else None,
               end_ms=min(TRIAL_MS, max(b[1] for b in found) + TILE_BIN_MS) if found else None)
    return out


def coincidence_shares(spikes: list[list[np.ndarray]], offsets_ms: Sequence[int],
                       width_ms: int = 0) -> np.ndarray:
    """(offsets, cells, cells) share of cell i's spike milliseconds at which cell j has a spike between
    ``offset - width_ms`` and ``offset + width_ms`` ms later in the same trial (spike times are whole ms;
    ``spikes`` as :func:`read_spike_times`). One sparse product per offset (trials laid end to end,
    apart by more than the largest offset)."""
    from scipy import sparse

    n = len(spikes)
    pad = max((abs(int(o)) for o in offsets_ms), default=0) + int(width_ms) + 1
    longest = max((t.max() for row in spikes for t in row if t.size), default=0.0)
    span = int(np.round(longest)) + 2 * pad
    rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for i, row in enumerate(spikes):
        for trial, t in enumerate(row):
            ms = np.unique(np.round(t).astype(np.int64))
            rows.append(np.full(ms.size, i))
            cols.append(ms + trial * span + pad)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    width = span * max((len(row) for row in spikes), default=1) + 2 * pad
    ones = np.ones(cols.size)
    a = sparse.csr_matrix((ones, (rows, cols)), shape=(n, width))
    totals = np.asarray(a.sum(axis=1)).ravel()
    out = np.zeros((len(offsets_ms), n, n))
    for k, off in enumerate(offsets_ms):
        shifts = range(int(off) - int(width_ms), int(off) + int(width_ms) + 1)
        b = sparse.csr_matrix((np.ones(cols.size * len(shifts)),
                               (np.tile(rows, len(shifts)), np.concatenate([cols - d for d in shifts]))),
                              shape=(n, width))
        b.data[:] = 1.0                                  # any spike of j in the window counts once
        hits = np.asarray((a @ b.T).todense())           # hits[i, j]: i at t, j within the window
        np.fill_diagonal(hits, 0.0)
        out[k] = np.divide(hits, totals[:, None], out=np.zeros_like(hits), where=totals[:, None] > 0)
    return out


def duplicate_units(name: str, root: str | Path | None = None) -> pd.DataFrame:
    """Pairs of units of recording ``name`` that carry the same spikes by the duplicate-unit rule
    (:data:`DUPLICATE_SHARE`), on the part of each trial outside its copied block (all trials, the silent
    ones too) -> one row per pair whose share reaches half the rule's threshold: ``cell_a``, ``cell_b``
    (``cell_a`` the sparser), their spike counts, ``exact_share`` (a spike of ``cell_b`` at the same ms),
    ``share`` (within :data:`DUPLICATE_WINDOW_MS`), ``control_share`` (the larger of the two windows
    centred :data:`DUPLICATE_CONTROL_MS` either way), ``rf_overlap`` (intersection over union of their RF
    masks: shown, not part of the rule) and ``duplicate`` (the rule)."""
    root = _root(root)
    spikes = read_spike_times(root / "NeuralData" / "Spikes" / f"{name}.mat")
    start, end = clean_window(name, (0.0, TRIAL_MS))
    spikes = [[t[(t >= start) & (t < end)] for t in row] for row in spikes]
    c = DUPLICATE_CONTROL_MS
    exact = coincidence_shares(spikes, [0])[0]
    near, before, after = coincidence_shares(spikes, [0, -c, c], width_ms=DUPLICATE_WINDOW_MS)
    contours = read_rf_contours(root / "NeuralData" / "ReceptiveFields" / f"{name}.mat")
    masks = contour_masks([_display_to_frame(x, ORIGINAL_SIDE) for x in contours], ORIGINAL_SIDE)[0] > 0
    counts = np.array([sum(t.size for t in row) for row in spikes])
    rows = []
    for a in range(len(spikes)):
        for b in range(a + 1, len(spikes)):
            lo, hi = (a, b) if counts[a] <= counts[b] else (b, a)
            share = float(near[lo, hi])
            if share < DUPLICATE_SHARE / 2:
                continue
            control = float(max(before[lo, hi], after[lo, hi]))
            union = (masks[lo] | masks[hi]).sum() if len(masks) > hi else 0
            rows.append({"recording": name, "cell_a": lo, "cell_b": hi, "spikes_a": int(counts[lo]),
                         "spikes_b": int(counts[hi]), "exact_share": float(exact[lo, hi]), "share": share,
                         "control_share": control,
                         "rf_overlap": float((masks[lo] & masks[hi]).sum() / union) if union else np.nan,
                         "duplicate": bool(share > DUPLICATE_SHARE and share >= DUPLICATE_RATIO * control)})
    return pd.DataFrame(rows, columns=["recording", "cell_a", "cell_b", "spikes_a", "spikes_b", "exact_share",
                                       "share", "control_share", "rf_overlap", "duplicate"])


def duplicate_cells(pairs: pd.DataFrame) -> list[int]:
    """The cells to leave out so that one unit of every duplicate pair of :func:`duplicate_units`
    remains: the sparser cell of each pair (a cell duplicated twice is dropped once)."""
    dup = pairs[pairs.duplicate]
    return sorted({int(c) for c in dup.cell_a})


def clean_window(name: str, window_ms: tuple[float, float]) -> tuple[float, float]:
    """The longest part of ``window_ms`` (trial ms) outside the recording's tiled block
    (:data:`TILED_MS`); the window itself when the recording has none or the block misses it."""
    start, end = window_ms
    if name not in TILED_MS:
        return start, end
    a, b = TILED_MS[name]
    if b <= start or a >= end:
        return start, end
    parts = [(start, min(a, end)), (max(b, start), end)]
    return max(parts, key=lambda p: p[1] - p[0])


def placed_stretch(name: str) -> tuple[tuple[float, float], tuple[float, float], float]:
    """The longest stretch of a recording's trial that one pinned timing places (the whole trial, or
    the stretch of :data:`STRETCHES` whose part outside the copied block is longest) -> (the stretch,
    its part outside the copied block (:func:`clean_window`), the movie onset that places it)."""
    if TIMING.get(name) is None:
        raise ValueError(f"{name}: no pinned timing (onken.TIMING)")
    stretches = STRETCHES.get(name, ((0.0, TRIAL_MS, TIMING[name]),))
    start, end, onset = max(stretches, key=lambda st: np.subtract(*clean_window(name, st[:2])[::-1]))
    return (start, end), clean_window(name, (start, end)), float(onset)


def trial_exclusions(root: str | Path | None = None, names=RECORDINGS,
                     fraction: float = SILENT_TRIAL_FRACTION) -> list[dict]:
    """Per movie recording: trials, median total spikes per trial, the smallest trial's fraction of
    it, and the trials :func:`silent_trials` excludes (with their totals) -- the data page's table
    of the rule."""
    root = _root(root)
    rows = []
    for name in names:
        spikes = read_spike_times(root / "NeuralData" / "Spikes" / f"{name}.mat")
        totals = np.array([sum(row[j].size for row in spikes) for j in range(len(spikes[0]))])
        median = float(np.median(totals))
        excluded = silent_trials(spikes, fraction)
        kept = np.setdiff1d(np.arange(len(totals)), excluded)
        rows.append({"recording": name, "n_trials": int(len(totals)),
                     "median_spikes_per_trial": median,
                     "min_fraction_of_median": float(totals.min() / median),
                     "min_kept_fraction_of_median": float(totals[kept].min() / median),
                     "max_fraction_of_median": float(totals.max() / median),
                     "excluded_trials": excluded,
                     "excluded_spikes": [int(totals[j]) for j in excluded],
                     "rule_fraction": fraction})
    return rows


def recording_timing(name: str) -> tuple[float, float, str]:
    """(frame period ms, movie onset ms, source) of a recording: the pinned :data:`TIMING` at :data:`FRAME_MS`,
    else the working reading (:data:`DEFAULT_FRAME_MS`, onset 0)."""
    onset = TIMING.get(name)
    if onset is None:
        return DEFAULT_FRAME_MS, 0.0, "working reading (10 ms, onset 0): no timing found by the data page's scan"
    return FRAME_MS, float(onset), f"data page's scan: {FRAME_MS} ms per frame, onset {onset:+.0f} ms"


def load_recording(name: str, root: str | Path | None = None, frame_ms: float | None = None,
                   onset_ms: float | None = None, drop_silent: bool = False,
                   exclude_silent_trials: bool = True,
                   window_ms: tuple[float, float] | None = None,
                   exclude_tiled: bool = True) -> RetinaRecording:
    """Load a movie recording (one of :data:`RECORDINGS`) with its movie, cut to the frames shown in a trial.

    The frame ``k`` of the movie is on screen from ``onset_ms + k * frame_ms`` ms after trial start (defaults:
    :func:`recording_timing`). The recording keeps the frames wholly inside the trial, or inside
    ``window_ms`` = (start, end) ms of it (``meta["first_frame"]`` is the first one's index in the movie), and
    counts spikes in one bin per kept frame; spikes outside those frames are dropped and counted.
    ``drop_silent`` removes cells without any spike (else kept and listed). ``exclude_silent_trials`` drops the
    trials of :func:`silent_trials` (listed in ``meta["excluded_trials"]``). ``exclude_tiled`` keeps only the
    longest part of the window outside the recording's tiled block (:data:`TILED_MS`: copied spikes, not
    responses; ``meta["tiled_ms"]``); it is on by default, so every model and score sees responses only.
    ``exclude_tiled=False`` loads the whole trial (the data page's timing scans and copied-block checks). A recording whose timing changes within
    the trial is loaded stretch by stretch with :func:`load_stretches`.
    """
    if name not in RECORDINGS:
        raise ValueError(f"unknown recording {name!r}; the movie recordings are {', '.join(RECORDINGS)}")
    root = _root(root)
    default_ms, default_onset, source = recording_timing(name)
    if frame_ms is not None or onset_ms is not None:
        source = "given by the caller"
    elif name in STRETCHES:
        source += (" -- holds for part of the trial only (onken.STRETCHES; load_stretches loads the"
                   " recording stretch by stretch)")
    frame_ms = float(default_ms if frame_ms is None else frame_ms)
    onset_ms = float(default_onset if onset_ms is None else onset_ms)
    if not frame_ms > 0:
        raise ValueError(f"frame_ms must be positive, got {frame_ms}")
    movie = MOVIE_OF[name]
    spikes, excluded_trials = _kept_trials(
        read_spike_times(root / "NeuralData" / "Spikes" / f"{name}.mat"), exclude_silent_trials)
    start_ms, end_ms = (0.0, TRIAL_MS) if window_ms is None else (float(window_ms[0]), float(window_ms[1]))
    if not 0.0 <= start_ms < end_ms <= TRIAL_MS:
        raise ValueError(f"window_ms must satisfy 0 <= start < end <= {TRIAL_MS:.0f}, got {window_ms}")
    if exclude_tiled:
        start_ms, end_ms = clean_window(name, (start_ms, end_ms))
    frames = load_frames(movie, root)
    first = max(0, int(np.ceil((start_ms - onset_ms) / frame_ms - 1e-9)))
    last = min(frames.shape[0], int(np.floor((end_ms - onset_ms) / frame_ms + 1e-9)))
    if last - first < 2:
        raise ValueError(f"{name}: onset {onset_ms} ms and {frame_ms} ms per frame leave {max(0, last - first)} "
                         f"frames inside {start_ms:.0f}-{end_ms:.0f} ms of the {TRIAL_MS:.0f} ms trial")
    frames = frames[first:last]
    shift = onset_ms + first * frame_ms
    counts, dropped = bin_spike_times([[t - shift for t in row] for row in spikes], frames.shape[0], frame_ms)
    n_spikes = int(sum(t.size for row in spikes for t in row))
    contours_display = read_rf_contours(root / "NeuralData" / "ReceptiveFields" / f"{name}.mat")
    if len(contours_display) != counts.shape[2]:
        raise DataFormatError(f"{name}: {len(contours_display)} receptive fields but {counts.shape[2]} cells "
                              "in the spike file")
    side = frames.shape[1]
    contours = [_display_to_frame(c, side) for c in contours_display]
    masks, clipped = contour_masks(contours, side)
    silent = [int(i) for i in np.flatnonzero(counts.sum(axis=(0, 1)) == 0)]
    kept = np.arange(counts.shape[2])
    if drop_silent and silent:
        kept = np.setdiff1d(kept, silent)
        counts, masks = counts[:, :, kept], masks[kept]
        contours = [contours[i] for i in kept]
    meta = {"source": f"Onken et al. 2016, Dryad doi:{DRYAD_DOI}", "root": str(root),
            "movie_by_readme": MOVIE_BY_README[name], "n_spikes": n_spikes, "frame_ms": frame_ms,
            "onset_ms": onset_ms, "first_frame": first, "timing": source,
            "window_ms": (start_ms, end_ms),
            "tiled_ms": TILED_MS.get(name), "tiled_excluded": bool(exclude_tiled),
            "n_spikes_outside_frames": dropped,
            "movie_ms": frames.shape[0] * frame_ms,
            "last_spike_ms": float(max((t.max() for row in spikes for t in row if t.size), default=0.0)),
            "silent_cells": silent, "cells_kept": kept.tolist(), "excluded_trials": excluded_trials,
            "trial_rule": (f"trials with fewer than {SILENT_TRIAL_FRACTION} x the median trial's "
                           "spikes (all cells) excluded" if exclude_silent_trials
                           else "all trials kept"),
            "rf_clipped_cells": clipped,
            "frame_side": side}
    return RetinaRecording(name=name, movie=movie, frame_ms=frame_ms, frames=frames, counts=counts,
                           rates=counts.mean(axis=0, dtype=np.float64).astype(np.float32), rf_masks=masks,
                           rf_contours=contours, meta=meta)


def load_stretches(name: str, root: str | Path | None = None, exclude_tiled: bool = True,
                   **kwargs) -> list[RetinaRecording]:
    """A recording as the stretches of its trial that one timing each places: one
    :func:`load_recording` per stretch of :data:`STRETCHES` (its onset, frames wholly inside the
    stretch and, with ``exclude_tiled``, outside the tiled block; ``meta["stretch"]`` = (start_ms,
    end_ms, onset_ms)), or the whole recording at :func:`recording_timing` when its timing holds along
    the trial. ``kwargs`` go to :func:`load_recording` (not ``frame_ms``, ``onset_ms`` or
    ``window_ms``: the stretches set them). Movie1Exp2's two stretches show movie frames 8-488 and
    572-1236 with the copied block left out; with ``exclude_tiled=False`` the second starts at frame 395
    and shows some frames of the first again: do not put one stretch in training and the other in a
    test set without checking."""
    fixed = {"frame_ms", "onset_ms", "window_ms"} & set(kwargs)
    if fixed:
        raise TypeError(f"load_stretches sets {', '.join(sorted(fixed))} itself")
    if name not in STRETCHES:
        return [load_recording(name, root, exclude_tiled=exclude_tiled, **kwargs)]
    out = []
    for start, end, onset in STRETCHES[name]:
        rec = load_recording(name, root, frame_ms=FRAME_MS, onset_ms=onset, window_ms=(start, end),
                             exclude_tiled=exclude_tiled, **kwargs)
        rec.meta.update(stretch=(start, end, onset),
                        timing=f"stretch {start / 1000:.1f}-{end / 1000:.1f} s of the trial at "
                               f"{FRAME_MS} ms per frame, onset {onset:+.0f} ms (onken.STRETCHES)")
        out.append(rec)
    return out


def rf_luminance(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(frames, cells) mean pixel value inside each cell's RF, z-scored per cell over the frames.

    ``frames``: (N, H, W); ``weights``: (cells, H, W) RF masks (bool) or area weights (float). A cell with no
    weight gets zeros.
    """
    frames = np.asarray(frames, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if frames.ndim != 3 or weights.ndim != 3 or frames.shape[1:] != weights.shape[1:]:
        raise ValueError(f"frames (N, H, W) and RF weights (cells, H, W) must share H, W; got {frames.shape}, "
                         f"{weights.shape}")
    w = weights.reshape(len(weights), -1)
    area = w.sum(1)
    lum = frames.reshape(len(frames), -1) @ w.T / np.where(area > 0, area, 1)
    sd = lum.std(0)
    lum = (lum - lum.mean(0)) / np.where(sd > 0, sd, 1.0)
    lum[:, area == 0] = 0.0
    return lum


def split_windows(n_frames: int, test_fraction: float = 0.2, gap: int = 0,
                  position: str = "end") -> tuple[slice, slice]:
    """Within-movie split into one contiguous training and one held-out test segment -> (train, test).

    The test segment is the last (``position="end"``) or first (``"start"``) ``test_fraction`` of the
    frames; ``gap`` frames between them are left out of both, so that a model with a causal temporal
    context of ``gap`` frames never sees test frames while training (and vice versa).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = int(round(n_frames * test_fraction))
    if gap < 0 or n_test < 1 or n_frames - n_test - gap < 1:
        raise ValueError(f"cannot split {n_frames} frames into test {n_test} + gap {gap} + a training part")
    if position == "end":
        return slice(0, n_frames - n_test - gap), slice(n_frames - n_test, n_frames)
    if position == "start":
        return slice(n_test + gap, n_frames), slice(0, n_test)
    raise ValueError(f"position must be 'end' or 'start', got {position!r}")


def verify_checksums(root: str | Path | None = None, registry: dict[str, str] | None = None) -> dict[str, bool]:
    """sha256 of each file in ``registry`` (relative path -> hex digest) under ``root``; raise on mismatch."""
    root = _root(root)
    registry = SHA256 if registry is None else registry
    if not registry:
        raise ChecksumError("no sha256 registry for the Onken 2016 files is pinned in this package")
    result = {}
    for rel, digest in registry.items():
        h = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        if h != digest:
            raise ChecksumError(f"{root / rel}: sha256 {h} != pinned {digest}")
        result[rel] = True
    return result


# --- evidence for the page ----------------------------------------------------------------------------

def population_rate(name: str, root: str | Path | None = None, bin_ms: float = 10.0,
                    duration_ms: float = 18000.0, exclude_silent_trials: bool = True) -> np.ndarray:
    """(bins, cells) trial-averaged spike counts of a recording over ``duration_ms`` (independent of
    frames), without the :func:`silent_trials` unless ``exclude_silent_trials`` is False."""
    path = _root(root) / "NeuralData" / "Spikes" / f"{name}.mat"
    spikes, _ = _kept_trials(read_spike_times(path), exclude_silent_trials)
    counts, _ = bin_spike_times(spikes, int(round(duration_ms / bin_ms)), bin_ms)
    return counts.mean(axis=0)


def frame_rate_evidence(root: str | Path | None = None) -> list[dict]:
    """Per recording: number of frames of each movie, last spike time, and the frame period it implies."""
    root = _root(root)
    rows = []
    for name in RECORDINGS:
        spikes = read_spike_times(root / "NeuralData" / "Spikes" / f"{name}.mat")
        last = np.array([t.max() for row in spikes for t in row if t.size])
        n_frames = len(_frame_files(root / "Stimuli" / f"Movie{MOVIE_OF[name]}"))
        rows.append({"recording": name, "movie": MOVIE_OF[name], "n_frames": n_frames,
                     "last_spike_ms": float(last.max()), "median_last_spike_ms": float(np.median(last)),
                     "implied_frame_ms_if_trial_is_movie": float(last.max() / n_frames)})
    return rows


def reliability_by_window(name: str, root: str | Path | None = None, bin_ms: float = 10.0,
                          window_ms: float = 1000.0, duration_ms: float = 18000.0, n_splits: int = 10,
                          seed: int = 0, exclude_silent_trials: bool = True) -> np.ndarray:
    """Mean over cells of the split-half r (uncorrected) in consecutive windows of ``window_ms``
    (without the
    :func:`silent_trials` unless ``exclude_silent_trials`` is False).

    A stimulus-locked response is repeatable across trials; after the movie ends (grey screen) it is
    not. So the time at which repeatability drops is evidence of the movie's duration, hence its frame
    period.
    """
    from alignlib.metrics.neural_prediction import split_half_reliability
    path = _root(root) / "NeuralData" / "Spikes" / f"{name}.mat"
    spikes, _ = _kept_trials(read_spike_times(path), exclude_silent_trials)
    counts, _ = bin_spike_times(spikes, int(round(duration_ms / bin_ms)), bin_ms)
    per = int(round(window_ms / bin_ms))
    out = []
    for w in range(counts.shape[1] // per):
        r = split_half_reliability(counts[:, w * per:(w + 1) * per], n_splits=n_splits, seed=seed,
                                   corrected=False)
        out.append(float(np.nanmean(r)) if np.isfinite(r).any() else np.nan)
    return np.array(out)


# --- the flashed natural images (same retinas): a check of the receptive-field geometry -----------------------

#: the natural-image recording of each experiment (same cells, same RF file as that experiment's movies)
NATURAL_IMAGE_RECORDINGS = {"Exp1": "NaturalImages1", "Exp2": "NaturalImages2"}


def load_natural_images(root: str | Path | None = None) -> np.ndarray:
    """The 60 flashed natural images as (60, side, side) float32 in [0, 1] (MATLAB column-major transposed)."""
    folder = _root(root) / "Stimuli" / "NaturalImages"
    files = sorted(folder.glob("image*.raw"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not files:
        raise FileNotFoundError(f"{folder}: no imageNNN.raw files (Dryad layout: Stimuli/NaturalImages/)")
    out = []
    for f in files:
        raw = np.fromfile(f, dtype=np.uint8)
        side = int(round(np.sqrt(raw.size)))
        if side * side != raw.size:
            raise DataFormatError(f"{f}: {raw.size} bytes is not a square uint8 image")
        out.append(raw.reshape(side, side).T)
    if len({a.shape for a in out}) != 1:
        raise DataFormatError(f"{folder}: images of different sizes")
    return np.stack(out).astype(np.float32) / 255.0


def natural_image_counts(name: str, root: str | Path | None = None,
                         window_ms: tuple[float, float] = (0.0, 300.0)) -> np.ndarray:
    """(images, cells) spike counts in ``window_ms`` after each flash onset, averaged over trials.

    ``Spikes`` of a natural-image file is a cell vector (one entry per image), each a (cells x trials) cell array.
    """
    path = _root(root) / "NeuralData" / "Spikes" / f"{name}.mat"
    per_image = np.ravel(_loadmat(path, "Spikes")["Spikes"])
    counts = []
    for k, entry in enumerate(per_image):
        if getattr(entry, "dtype", None) != object or entry.ndim != 2:
            raise DataFormatError(f"{path}: image {k}: expected a (cells x trials) cell array, got {type(entry)}")
        counts.append([[np.count_nonzero((np.ravel(t) >= window_ms[0]) & (np.ravel(t) < window_ms[1]))
                        for t in row] for row in entry])
    return np.asarray(counts, dtype=np.float64).mean(axis=2)


_ORIENTATIONS = {"as loaded": lambda a: a, "rows flipped": lambda a: a[::-1], "columns flipped": lambda a: a[:, ::-1],
                 "rotated 180": lambda a: a[::-1, ::-1], "transposed": lambda a: a.T,
                 "transposed, rows flipped": lambda a: a.T[::-1], "transposed, columns flipped": lambda a: a.T[:, ::-1],
                 "transposed, rotated 180": lambda a: a.T[::-1, ::-1]}


def rf_orientation_evidence(root: str | Path | None = None, n_shuffles: int = 50, seed: int = 0) -> list[dict]:
    """Which image orientation makes the luminance inside each RF predict the responses to flashed images?

    For each natural-image recording and each of the 8 orientations of the images relative to this loader's
    geometry (RF contours mapped by :func:`_display_to_frame`, "as loaded" = the loader's), the mean over cells of
    |r| between the mean luminance inside the cell's RF and its spike count (0-300 ms) across the 60 images.
    Control: the same statistic in the loader's geometry with the images shuffled across responses (mean and
    s.d. over ``n_shuffles`` permutations). The geometry the retina saw should stand far above the rest.
    """
    root = _root(root)
    images = load_natural_images(root)
    side = images.shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for exp, name in NATURAL_IMAGE_RECORDINGS.items():
        counts = natural_image_counts(name, root)
        contours = [_display_to_frame(c, side, original_side=side)
                    for c in read_rf_contours(root / "NeuralData" / "ReceptiveFields" / f"{name}.mat")]
        masks, _ = contour_masks(contours, side)
        responsive = counts.std(axis=0) > 0

        def mean_abs_r(imgs):
            lum = rf_luminance(imgs, masks)
            r = [abs(np.corrcoef(lum[:, c], counts[:, c])[0, 1]) for c in np.flatnonzero(responsive)]
            return float(np.nanmean(r))

        null = [mean_abs_r(images[rng.permutation(len(images))]) for _ in range(n_shuffles)]
        for label, fn in _ORIENTATIONS.items():
            rows.append({"recording": name, "experiment": exp, "orientation": label,
                         "mean_abs_r": mean_abs_r(np.stack([fn(a) for a in images])),
                         "shuffled_mean_abs_r": float(np.mean(null)), "shuffled_sd": float(np.std(null)),
                         "n_cells": int(responsive.sum()), "n_images": int(len(images))})
    return rows
