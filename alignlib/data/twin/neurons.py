"""Simulated V1 neurons with known receptive fields: Gabor (simple) and energy-model (complex) cells.

Per neuron ``n`` and image ``s`` (pixels, gray 128; 1 px = 1 deg):

    z_n(s)   = <G_n, (I_s - 128) / 128>                      Gabor filter, unit norm, zero mean
    d_n(s)   = [z_n]_+^p  (simple)   or  (z_even^2 + z_odd^2)^(p/2)  (complex, energy model)
    mu_n(s)  = gain_n * d_n(s) / scale_n

(``scale_n`` is set by the caller, e.g. :func:`alignlib.data.twin.generate_twin`.) Tuning follows
mouse V1 (Niell & Stryker 2008, J Neurosci): Gaussian envelope sigma 3-10 deg, preferred spatial
frequency 0.02-0.1 cycles/deg, uniform orientations, a mix of simple and complex cells. Receptive-field
centres follow a retinotopic map of the imaged patch of cortex, and the cell positions ``med`` map onto it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from alignlib.data.twin.stimuli import GRAY, HEIGHT, WIDTH

__all__ = ["PARAM_KEYS", "sample_neurons", "rf_region", "gabors", "receptive_field_map", "drive",
           "model_response"]

#: receptive-field parameters that define a neuron's filter
PARAM_KEYS = ("x", "y", "sigma", "wavelength", "orientation", "phase", "is_complex")


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float], n: int) -> np.ndarray:
    lo, hi = lo_hi
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))


def _reflect(v: np.ndarray, top: float) -> np.ndarray:
    """Fold values back into [0, top] at both edges."""
    v = np.abs(v) % (2 * top)
    return np.where(v > top, 2 * top - v, v)


def _centre_range(lo: float, hi: float, half: float) -> tuple[float, float]:
    """Where a region of half-width ``half`` can be centred inside [lo, hi] (the middle if nowhere)."""
    return (lo + half, hi - half) if lo + half <= hi - half else ((lo + hi) / 2, (lo + hi) / 2)


def sample_neurons(rng: np.random.Generator, cfg: Any) -> dict[str, np.ndarray]:
    """RF parameters, cortical positions and variability parameters of one mouse's neurons.

    ``cfg`` is a :class:`~alignlib.data.twin.TwinConfig` (or anything with its tuning, retinotopy
    and variability fields).
    """
    n = cfg.n_neurons
    # retinotopy: uniform positions in the field of view map linearly onto the visual field
    az_lo, az_hi = cfg.rf_azimuth_range
    half_az, half_el = cfg.rf_azimuth_span / 2, cfg.rf_elevation_span / 2
    centre_x = rng.uniform(*_centre_range(az_lo, az_hi, half_az))   # the mouse's region
    centre_y = rng.uniform(*_centre_range(0.0, HEIGHT - 1.0, half_el))
    cortex = rng.uniform(0.0, 1.0, size=(n, 2))                     # (across, along) the FOV
    x = centre_x + (cortex[:, 0] - 0.5) * cfg.rf_azimuth_span + cfg.rf_scatter * rng.standard_normal(n)
    y = centre_y + (0.5 - cortex[:, 1]) * cfg.rf_elevation_span + cfg.rf_scatter * rng.standard_normal(n)
    x, y = _reflect(x, WIDTH - 1.0), _reflect(y, HEIGHT - 1.0)     # scatter past an edge folds back
    plane = rng.integers(cfg.n_planes, size=n)
    p = {
        "x": x,
        "y": y,
        "sigma": _log_uniform(rng, cfg.sigma_range, n),
        "wavelength": _log_uniform(rng, cfg.wavelength_range, n),
        "orientation": rng.uniform(0.0, np.pi, n),
        "phase": rng.uniform(0.0, 2 * np.pi, n),
        "is_complex": rng.random(n) < cfg.complex_fraction,
        "gain": cfg.gain_median * np.exp(cfg.gain_log_sd * rng.standard_normal(n)),
        "noise_sd": cfg.noise_sd * np.exp(cfg.noise_sd_log_sd * rng.standard_normal(n)),
    }
    k = np.arange(1, cfg.n_shared_dims + 1)
    shared = rng.standard_normal((n, cfg.n_shared_dims)) / np.sqrt(k)       # variance ~ 1/k
    shared *= cfg.shared_sd / np.sqrt((1.0 / k).sum())
    p["shared_loadings"] = shared
    p["phase"][p["is_complex"]] = 0.0     # complex cells: the even/odd pair (0, 90 deg)
    gain_load = rng.standard_normal((n, cfg.n_gain_dims)) * cfg.gain_fluctuation_sd / np.sqrt(max(cfg.n_gain_dims, 1))
    if cfg.n_gain_dims:
        gain_load[:, 0] = np.abs(gain_load[:, 0])        # a global, same-sign gain ("arousal")
    p["gain_loadings"] = gain_load
    # med = [y, x, plane]: cortical position in um (elevation along y, azimuth along x)
    p["med"] = np.column_stack([cortex[:, 1] * cfg.fov_um, cortex[:, 0] * cfg.fov_um, plane]).astype(np.float64)
    p["npix"] = rng.integers(60, 160, size=n).astype(np.float64)
    return p


def rf_region(params: Mapping[str, np.ndarray], n_sd: float = 2.0) -> list[int]:
    """[row0, row1, col0, col1): the rectangle covering every RF centre +- n_sd * sigma."""
    x, y, s = (np.asarray(params[k], dtype=np.float64) for k in ("x", "y", "sigma"))
    r0 = int(np.clip(np.floor((y - n_sd * s).min()), 0, HEIGHT - 1))
    r1 = int(np.clip(np.ceil((y + n_sd * s).max()) + 1, r0 + 1, HEIGHT))
    c0 = int(np.clip(np.floor((x - n_sd * s).min()), 0, WIDTH - 1))
    c1 = int(np.clip(np.ceil((x + n_sd * s).max()) + 1, c0 + 1, WIDTH))
    return [r0, r1, c0, c1]


def gabors(params: Mapping[str, np.ndarray], idx: np.ndarray, rows: np.ndarray, cols: np.ndarray,
           phase_shift: float = 0.0, truncate: float = 4.0) -> np.ndarray:
    """(len(idx), len(rows), len(cols)) Gabor filters, zero-mean and unit-norm on the grid.

    ``orientation`` is the orientation of the bars (0 = horizontal bars, counter-clockwise in
    image row/column coordinates); ``phase`` the carrier phase at the centre (0 for complex
    cells, whose quadrature pair is the even/odd Gabor, phase 0 and 90 deg). The envelope is
    zero beyond ``truncate * sigma``; as long as the grid holds the whole in-image support, the
    filter does not depend on the grid.
    """
    g = {k: np.asarray(params[k], dtype=np.float64)[idx][:, None, None] for k in
         ("x", "y", "sigma", "wavelength", "orientation", "phase")}
    dx = cols[None, None, :] - g["x"]
    dy = rows[None, :, None] - g["y"]
    r2 = dx ** 2 + dy ** 2
    env = np.exp(-r2 / (2 * g["sigma"] ** 2)) * (r2 <= (truncate * g["sigma"]) ** 2)
    u = -dx * np.sin(g["orientation"]) + dy * np.cos(g["orientation"])
    filt = env * np.cos(2 * np.pi * u / g["wavelength"] + g["phase"] + phase_shift)
    filt -= env * (filt.sum(axis=(1, 2), keepdims=True) / env.sum(axis=(1, 2), keepdims=True))
    filt /= np.maximum(np.sqrt((filt ** 2).sum(axis=(1, 2), keepdims=True)), 1e-12)
    return filt


def receptive_field_map(params: Mapping[str, np.ndarray], i: int, quadrature: bool = False) -> np.ndarray:
    """The (68, 270) Gabor filter of neuron ``i`` (with its quadrature partner: (2, 68, 270)).

    ``params`` is a ground-truth file loaded with ``load_groundtruth`` (or any mapping with the
    keys x, y, sigma, wavelength, orientation, phase). A simple cell's linear filter is the first
    map; a complex cell sums the squares of both.
    """
    idx = np.array([int(i)])
    rows, cols = np.arange(HEIGHT, dtype=np.float64), np.arange(WIDTH, dtype=np.float64)
    trunc = float(np.asarray(params.get("rf_truncate", 4.0)))
    even = gabors(params, idx, rows, cols, 0.0, trunc)[0]
    if not quadrature:
        return even
    return np.stack([even, gabors(params, idx, rows, cols, np.pi / 2, trunc)[0]])


def drive(params: Mapping[str, np.ndarray], images: np.ndarray, exponent: float, truncate: float,
          chunk: int = 256) -> np.ndarray:
    """Unnormalised drive d_n(s), (n_images, n_neurons) float32, for (n, 68, 270) uint8/float images.

    Neurons are processed in chunks sorted by azimuth, each against only the image rectangle that
    holds the chunk's filters, so the cost scales with RF size rather than the 270-deg field.
    """
    x = (np.asarray(images, dtype=np.float32) - GRAY) / GRAY
    n_img, n_neu = x.shape[0], len(params["x"])
    xs, ys = np.asarray(params["x"], float), np.asarray(params["y"], float)
    reach = truncate * np.asarray(params["sigma"], float)
    is_complex = np.asarray(params["is_complex"], bool)
    out = np.empty((n_img, n_neu), dtype=np.float32)
    order = np.argsort(xs, kind="stable")
    for start in range(0, n_neu, chunk):
        idx = order[start:start + chunk]
        r0 = int(max(np.floor((ys[idx] - reach[idx]).min()), 0))
        r1 = int(min(np.ceil((ys[idx] + reach[idx]).max()) + 1, HEIGHT))
        c0 = int(max(np.floor((xs[idx] - reach[idx]).min()), 0))
        c1 = int(min(np.ceil((xs[idx] + reach[idx]).max()) + 1, WIDTH))
        rows, cols = np.arange(r0, r1, dtype=np.float64), np.arange(c0, c1, dtype=np.float64)
        cx = idx[is_complex[idx]]
        filt = np.concatenate([gabors(params, idx, rows, cols, 0.0, truncate),
                               gabors(params, cx, rows, cols, np.pi / 2, truncate)])
        z = np.ascontiguousarray(x[:, r0:r1, c0:c1]).reshape(n_img, -1) @ \
            filt.reshape(len(filt), -1).astype(np.float32).T
        even, odd = z[:, :len(idx)], z[:, len(idx):]
        d = np.maximum(even, 0.0)
        cpos = np.flatnonzero(is_complex[idx])
        d[:, cpos] = np.sqrt(even[:, cpos] ** 2 + odd ** 2)
        out[:, idx] = d if exponent == 1.0 else d ** exponent
    return out


def model_response(params: Mapping[str, np.ndarray], images: np.ndarray,
                   neurons: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Noise-free mean response mu_n(s) of the twin's neurons to ``images`` (n, 68, 270).

    ``params`` is a ground-truth file (``load_groundtruth``); ``images`` are in pixel units
    (uint8 or float, gray = 128). Returns (n_images, n_selected_neurons) float32; for the images
    of the session this reproduces the stored ``mean_response``.
    """
    idx = np.arange(len(params["x"])) if neurons is None else np.asarray(neurons, dtype=np.int64)
    sub = {k: np.asarray(params[k])[idx] for k in PARAM_KEYS}
    exponent, truncate = float(np.asarray(params["output_exponent"])), float(np.asarray(params["rf_truncate"]))
    d = drive(sub, images, exponent, truncate)
    scale = np.asarray(params["gain"])[idx] / np.asarray(params["drive_scale"])[idx]
    return (d * scale.astype(np.float32)).astype(np.float32)
