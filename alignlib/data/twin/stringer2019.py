"""A ground-truth digital twin of the Stringer et al. (2019) natimg2800 recordings.

``generate_twin`` writes synthetic mice in exactly the file format of the real recordings
(see ``alignlib.data.stringer``; session files ``natimg2800[_white|_8D]_<mouse>_<date>.mat``
with a MATLAB struct ``stim`` holding ``resp``, ``spont``, ``istim``, plus ``med``, ``stat``,
``db``; image files with ``imgs`` of shape 68 x 270 x n, uint8, gray 128), together with a
ground-truth file per session that holds every neuron's receptive-field parameters and its
noise-free mean response to every image.

The model, per neuron ``n`` and presentation ``t`` of image ``s``:

    z_n(s)   = <G_n, (I_s - 128) / 128>                      Gabor filter, unit norm, zero mean
    d_n(s)   = [z_n]_+^p  (simple)   or  (z_even^2 + z_odd^2)^(p/2)  (complex, energy model)
    mu_n(s)  = gain_n * d_n(s) / scale_n
    scale_n  = sd_ref(d_n)^(1-beta) * sd_own(d_n)^beta       std over reference natural images and
                                                             over the mouse's own image set;
                                                             beta = contrast_adaptation (gain
                                                             adaptation to the stimulus ensemble,
                                                             Ohzawa, Sclar & Freeman 1982)
    r_tn     = [ mu_n(s) * g_tn + (B h_t)_n + noise_sd_n * eps_tn ]_+
    spont_tn = [ (B h_t)_n + noise_sd_n * eps_tn ]_+

``g_tn = exp(a_n . u_t - |a_n|^2/2)`` are low-dimensional multiplicative gain fluctuations
(mean 1), ``h_t`` low-dimensional AR(1) shared fluctuations with the SAME loadings ``B`` during
stimuli and spontaneous activity (so subtracting the spontaneous PCs, as Stringer et al. do,
removes them) and ``eps`` independent trial noise. ``mu`` is stored as the ground truth
(``mean_response``); rectification makes the expected trial response a monotone function of it.

Tuning follows mouse V1 (Niell & Stryker 2008, J Neurosci): Gaussian envelope sigma 3-10 deg,
preferred spatial frequency 0.02-0.1 cycles/deg (wavelength 10-50 deg), uniform orientations, a
mix of simple and complex cells. Receptive-field centres follow a retinotopic map of the imaged
patch of cortex: each mouse covers a region of the 68 x 270 deg field (1 px = 1 deg; by default
the left and centre screens, azimuth 0-180, the part the authors' own receptive-field fits use)
and the cell positions ``med`` map onto it.

Stimulus sets (Stringer et al. 2019, Nature): natural images (crops of the photographs bundled
with scikit-image), spectrally whitened versions of them, and per-mouse "8D" images, the
projection onto the top 8 principal components of the image pixels in the mouse's
receptive-field region, gray outside.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.fft
import scipy.io
import scipy.linalg
from scipy.signal import lfilter

from alignlib.repro import file_sha256, provenance, write_json

__all__ = [
    "TwinConfig", "TwinMouse", "TwinManifest", "generate_twin", "load_manifest",
    "load_groundtruth", "receptive_field_map", "model_response", "natural_images",
    "whiten_images", "low_dimensional_images", "SOURCE_IMAGES",
]

HEIGHT, WIDTH, GRAY = 68, 270, 128
MANIFEST_NAME = "twin_manifest.json"
#: bump when a code change alters what a given config and seed generate, so stale twins are rebuilt
GENERATOR_VERSION = 1
# scikit-image photographs that ship inside the package (no download needed).
SOURCE_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "rocket", "stereo_motorcycle", "grass",
                 "gravel", "brick", "moon", "clock", "coins", "cell", "immunohistochemistry")
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by alignlib.data.twin"
_STIMSETS = {"M": "natimg2800", "W": "natimg2800_white", "D": "natimg2800_8D"}
_PARAM_KEYS = ("x", "y", "sigma", "wavelength", "orientation", "phase", "is_complex")


@dataclass
class TwinConfig:
    """Everything that defines a twin; the same config and seed give byte-identical files."""

    n_images: int = 2800
    n_neurons: int = 10000
    n_spont_timepoints: int = 3000
    n_natural_mice: int = 4
    n_whitened_mice: int = 2
    n_8d_mice: int = 2
    seed: int = 0
    # stimuli
    image_contrast: tuple[float, float] = (0.25, 0.45)   # RMS contrast (pixel std / 128) of images
    crop_scale: tuple[float, float] = (0.35, 1.0)        # crop width / widest 68:270 crop of a source
    n_8d_components: int = 8
    # retinotopy: each mouse's receptive fields cover a region of the 68 x 270 deg field
    rf_azimuth_span: float = 180.0         # deg of azimuth covered by the imaged patch of cortex
    rf_elevation_span: float = 68.0        # deg of elevation
    rf_scatter: float = 5.0                # deg, local scatter of RF centres around the map
    rf_azimuth_range: tuple[float, float] = (0.0, 180.0)  # where regions lie (left + centre screens)
    fov_um: float = 1000.0                 # imaged field of view, for ``med``
    n_planes: int = 10
    # tuning (Niell & Stryker 2008)
    sigma_range: tuple[float, float] = (3.0, 10.0)          # deg, log-uniform envelope sd
    wavelength_range: tuple[float, float] = (10.0, 50.0)    # deg, log-uniform: 0.02-0.1 cycles/deg
    complex_fraction: float = 0.5
    output_exponent: float = 1.0           # p: 1 = half-rectified linear / energy amplitude
    rf_truncate: float = 4.0               # envelope is zero beyond rf_truncate * sigma
    n_reference_images: int = 500          # natural images that set each neuron's scale_n
    contrast_adaptation: float = 0.5       # 0: scale_n from natural images only; 1: from the
                                           # mouse's own stimulus set (full gain adaptation)
    # variability
    gain_median: float = 0.4               # signal sd in units of the trial-noise sd (log-normal)
    gain_log_sd: float = 0.8
    noise_sd: float = 1.0
    noise_sd_log_sd: float = 0.25
    n_shared_dims: int = 16                # shared additive fluctuations (spont and stim)
    shared_sd: float = 1.0                 # their total sd per neuron
    shared_ar: float = 0.8                 # AR(1) coefficient per time step
    n_gain_dims: int = 2                   # shared multiplicative gain fluctuations
    gain_fluctuation_sd: float = 0.3
    rectify: bool = True
    # presentation design
    triple_repeat_fraction: float = 0.1    # images shown 3 times (the rest twice)
    gray_fraction: float = 0.03            # gray-screen presentations per image

    def __post_init__(self) -> None:
        problems = []
        if self.n_images < 2 or self.n_neurons < 1 or self.n_spont_timepoints < 2:
            problems.append("need n_images >= 2, n_neurons >= 1, n_spont_timepoints >= 2")
        if min(self.n_natural_mice, self.n_whitened_mice, self.n_8d_mice) < 0:
            problems.append("mouse counts must be >= 0")
        for name in ("image_contrast", "crop_scale", "rf_azimuth_range", "sigma_range", "wavelength_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f"{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")
        for name in ("complex_fraction", "triple_repeat_fraction", "gray_fraction", "contrast_adaptation"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must lie in [0, 1]")
        if not 0 <= self.shared_ar < 1:
            problems.append("shared_ar must lie in [0, 1)")
        if self.n_8d_components < 1 or self.n_reference_images < 2 or self.output_exponent <= 0:
            problems.append("need n_8d_components >= 1, n_reference_images >= 2, output_exponent > 0")
        if problems:
            raise ValueError("invalid TwinConfig: " + "; ".join(problems))

    @classmethod
    def quick(cls, **overrides: Any) -> "TwinConfig":
        """Small twin for laptops and CI: 1000 images, 600 neurons, 600 spontaneous frames."""
        return cls(**{"n_images": 1000, "n_neurons": 600, "n_spont_timepoints": 600,
                      "n_reference_images": 300, **overrides})

    @classmethod
    def paper(cls, **overrides: Any) -> "TwinConfig":
        """The size of the real recordings: 2800 images, 10,000 neurons."""
        return cls(**overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TwinConfig":
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})


@dataclass
class TwinMouse:
    label: str            # M1..M4 natural, W1..W2 whitened, D1..D2 8D
    stimset: str          # natimg2800 | natimg2800_white | natimg2800_8D
    mouse: str
    date: str
    session_file: str
    images_file: str
    groundtruth_file: str
    rf_region: list[int]  # [row0, row1, col0, col1), half-open, in image pixels


@dataclass
class TwinManifest:
    out_dir: Path
    config: dict[str, Any]
    seed: int
    mice: list[TwinMouse]
    sha256: dict[str, str]
    source_images: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def mouse(self, label: str) -> TwinMouse:
        for m in self.mice:
            if m.label == label:
                return m
        raise KeyError(f"no twin mouse {label!r}; have {[m.label for m in self.mice]}")

    def session_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).session_file

    def images_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).images_file

    def groundtruth_path(self, label: str) -> Path:
        return self.out_dir / self.mouse(label).groundtruth_file


# ----------------------------------------------------------------------------- stimuli

def _load_sources(names: Sequence[str]) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale float images of the bundled scikit-image photographs that load offline."""
    import skimage.data
    from skimage.color import rgb2gray

    images, used = [], []
    for name in names:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # not bundled in this scikit-image version (would need a download)
            continue
        if isinstance(img, tuple):            # stereo_motorcycle -> (left, right, disparity)
            img = img[0]
        img = np.asarray(img)
        if img.ndim == 3:
            img = rgb2gray(img[..., :3])
        img = img.astype(np.float64)          # scale is irrelevant: crops are renormalised
        if min(img.shape) >= HEIGHT:
            images.append(img)
            used.append(name)
    if not images:
        raise RuntimeError("none of the scikit-image sample photographs could be loaded")
    return images, used


def natural_images(n_images: int, rng: np.random.Generator, contrast: tuple[float, float] = (0.25, 0.45),
                   crop_scale: tuple[float, float] = (0.35, 1.0),
                   sources: Sequence[str] = SOURCE_IMAGES) -> tuple[np.ndarray, list[str]]:
    """(n_images, 68, 270) uint8 crops of photographs at random positions, scales and flips.

    Each crop is resized (anti-aliased) to 68 x 270, set to mean 128 and an RMS contrast drawn
    uniformly from ``contrast`` (std / 128), then clipped to 0..255. Returns the images and the
    names of the source photographs used.
    """
    from skimage.transform import resize

    srcs, used = _load_sources(sources)
    out = np.empty((n_images, HEIGHT, WIDTH), dtype=np.uint8)
    which = rng.integers(len(srcs), size=n_images)
    for i, j in enumerate(which):
        src = srcs[j]
        h, w = src.shape
        max_w = min(w, h * WIDTH / HEIGHT)
        cw = max_w * rng.uniform(*crop_scale)
        ch = cw * HEIGHT / WIDTH
        r0 = rng.uniform(0, h - ch)
        c0 = rng.uniform(0, w - cw)
        crop = src[int(r0):int(r0 + ch), int(c0):int(c0 + cw)]
        img = resize(crop, (HEIGHT, WIDTH), anti_aliasing=True, order=1, mode="reflect")
        if rng.random() < 0.5:
            img = img[:, ::-1]
        if rng.random() < 0.25:
            img = img[::-1, :]
        sd = img.std()
        img = (img - img.mean()) / (sd if sd > 0 else 1.0) * (rng.uniform(*contrast) * GRAY)
        out[i] = np.clip(np.rint(img + GRAY), 0, 255)
    return out, used


def whiten_images(images: np.ndarray) -> np.ndarray:
    """Spectrally whitened copies of (n, 68, 270) uint8 images (Stringer et al. 2019).

    Each image's Fourier transform is divided by its amplitude (phase kept, flat amplitude
    spectrum); the result is rescaled so that, after clipping to 0..255, it has about the
    original image's RMS contrast around 128.
    """
    out = np.empty_like(images, dtype=np.uint8)
    for start in range(0, images.shape[0], 256):          # batches bound the memory
        x = images[start:start + 256].astype(np.float64) - GRAY
        x -= x.mean(axis=(1, 2), keepdims=True)
        f = scipy.fft.rfft2(x)
        amp = np.abs(f)
        w = scipy.fft.irfft2(np.where(amp > 1e-8, f / np.maximum(amp, 1e-8), 0.0), s=x.shape[1:])
        target = x.std(axis=(1, 2), keepdims=True)
        w *= target / np.maximum(w.std(axis=(1, 2), keepdims=True), 1e-12)
        for _ in range(4):    # phase-only images are spiky: rescale so the CLIPPED image matches
            w *= target / np.maximum(np.clip(w, -GRAY, 255 - GRAY).std(axis=(1, 2), keepdims=True), 1e-12)
        out[start:start + 256] = np.clip(np.rint(w + GRAY), 0, 255)
    return out


def low_dimensional_images(images: np.ndarray, region: Sequence[int], n_components: int = 8) -> np.ndarray:
    """Stringer et al. (2019) "8D" images: projection onto the top principal components.

    The pixels inside ``region`` = [row0, row1, col0, col1) are reconstructed from their mean
    over images plus the top ``n_components`` principal components (computed over the images);
    everything outside the region is gray (128).
    """
    r0, r1, c0, c1 = (int(v) for v in region)
    n = images.shape[0]
    x = images[:, r0:r1, c0:c1].reshape(n, -1).astype(np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    k = min(n_components, *xc.shape)
    if n <= xc.shape[1]:      # top eigenvectors of the smaller Gram matrix; X V V^T = U U^T X
        u = scipy.linalg.eigh(xc @ xc.T, subset_by_index=[n - k, n - 1])[1]
        recon = u @ (u.T @ xc) + mean
    else:
        v = scipy.linalg.eigh(xc.T @ xc, subset_by_index=[xc.shape[1] - k, xc.shape[1] - 1])[1]
        recon = (xc @ v) @ v.T + mean
    out = np.full_like(images, GRAY)
    out[:, r0:r1, c0:c1] = np.clip(np.rint(recon), 0, 255).reshape(n, r1 - r0, c1 - c0)
    return out


# ----------------------------------------------------------------------------- neurons

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


def _sample_neurons(rng: np.random.Generator, cfg: TwinConfig) -> dict[str, np.ndarray]:
    """RF parameters, cortical positions and variability parameters of one mouse's neurons."""
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


def _rf_region(params: Mapping[str, np.ndarray], n_sd: float = 2.0) -> list[int]:
    """[row0, row1, col0, col1): the rectangle covering every RF centre +- n_sd * sigma."""
    x, y, s = (np.asarray(params[k], dtype=np.float64) for k in ("x", "y", "sigma"))
    r0 = int(np.clip(np.floor((y - n_sd * s).min()), 0, HEIGHT - 1))
    r1 = int(np.clip(np.ceil((y + n_sd * s).max()) + 1, r0 + 1, HEIGHT))
    c0 = int(np.clip(np.floor((x - n_sd * s).min()), 0, WIDTH - 1))
    c1 = int(np.clip(np.ceil((x + n_sd * s).max()) + 1, c0 + 1, WIDTH))
    return [r0, r1, c0, c1]


def _gabors(params: Mapping[str, np.ndarray], idx: np.ndarray, rows: np.ndarray, cols: np.ndarray,
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
    even = _gabors(params, idx, rows, cols, 0.0, trunc)[0]
    if not quadrature:
        return even
    return np.stack([even, _gabors(params, idx, rows, cols, np.pi / 2, trunc)[0]])


def _drive(params: Mapping[str, np.ndarray], images: np.ndarray, exponent: float, truncate: float,
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
        filt = np.concatenate([_gabors(params, idx, rows, cols, 0.0, truncate),
                               _gabors(params, cx, rows, cols, np.pi / 2, truncate)])
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
    sub = {k: np.asarray(params[k])[idx] for k in _PARAM_KEYS}
    exponent, truncate = float(np.asarray(params["output_exponent"])), float(np.asarray(params["rf_truncate"]))
    d = _drive(sub, images, exponent, truncate)
    scale = np.asarray(params["gain"])[idx] / np.asarray(params["drive_scale"])[idx]
    return (d * scale.astype(np.float32)).astype(np.float32)


# ----------------------------------------------------------------------------- trials

def _presentations(rng: np.random.Generator, cfg: TwinConfig) -> np.ndarray:
    """1-based image ids in presentation order: every image 2-3 times, gray = n_images + 1.

    At least one gray presentation is included: readers take the largest id as the gray screen.
    """
    n = cfg.n_images
    reps = np.full(n, 2)
    reps[rng.permutation(n)[: int(round(cfg.triple_repeat_fraction * n))]] = 3
    ids = np.concatenate([np.repeat(np.arange(1, n + 1), reps),
                          np.full(max(1, int(round(cfg.gray_fraction * n))), n + 1)])
    return rng.permutation(ids)


def _shared_fluctuations(rng: np.random.Generator, n_t: int, n_dims: int, ar: float) -> np.ndarray:
    """(n_t, n_dims) AR(1) processes with unit stationary variance."""
    e = rng.standard_normal((n_t, n_dims))
    e[1:] *= np.sqrt(1 - ar ** 2)            # h_0 ~ N(0, 1), h_t = ar h_{t-1} + sqrt(1-ar^2) e_t
    return lfilter([1.0], [1.0, -ar], e, axis=0)


def _trials(rng: np.random.Generator, cfg: TwinConfig, p: Mapping[str, np.ndarray], mu: np.ndarray,
            istim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responses to each presentation and spontaneous activity, both (time, neurons) float32."""
    n_neu = mu.shape[1]
    noise_sd = p["noise_sd"].astype(np.float32)
    loadings = p["shared_loadings"].astype(np.float32)

    def noisy(drive: np.ndarray, n_t: int) -> np.ndarray:
        h = _shared_fluctuations(rng, n_t, cfg.n_shared_dims, cfg.shared_ar).astype(np.float32)
        r = drive + h @ loadings.T
        r += rng.standard_normal((n_t, n_neu), dtype=np.float32) * noise_sd
        return np.maximum(r, 0.0, out=r) if cfg.rectify else r

    mu_gray = np.vstack([mu, np.zeros((1, n_neu), np.float32)])   # gray screen: no drive
    drive = mu_gray[istim - 1]
    if cfg.n_gain_dims:
        a = p["gain_loadings"].astype(np.float32)
        u = rng.standard_normal((len(istim), cfg.n_gain_dims), dtype=np.float32)
        drive *= np.exp(u @ a.T - 0.5 * (a ** 2).sum(axis=1))
    resp = noisy(drive, len(istim))
    spont = noisy(np.zeros((cfg.n_spont_timepoints, n_neu), np.float32), cfg.n_spont_timepoints)
    return resp, spont


# ----------------------------------------------------------------------------- files

def _savemat(path: Path, data: dict[str, Any]) -> None:
    """scipy.io.savemat with a fixed header text, so equal data give byte-identical files."""
    scipy.io.savemat(path, data, do_compression=False, oned_as="column")
    with open(path, "r+b") as f:
        f.write(_MAT_HEADER.ljust(116, b" "))


def _savez(path: Path, arrays: Mapping[str, Any]) -> None:
    """np.savez with fixed zip timestamps (byte-identical for equal arrays); np.load reads it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def _write_images(path: Path, images: np.ndarray) -> None:
    _savemat(path, {"imgs": np.ascontiguousarray(np.transpose(images, (1, 2, 0)))})


def _mice_plan(cfg: TwinConfig) -> list[tuple[str, str, str, str]]:
    """(label, stimset, mouse, date) for each twin mouse."""
    plan = []
    counts = {"M": cfg.n_natural_mice, "W": cfg.n_whitened_mice, "D": cfg.n_8d_mice}
    for prefix, count in counts.items():
        for j in range(count):
            k = len(plan)
            plan.append((f"{prefix}{j + 1}", _STIMSETS[prefix], f"TW{k + 1:03d}", f"2020-01-{10 + k % 19:02d}"))
    return plan


def generate_twin(out_dir: str | Path, config: TwinConfig | None = None, progress: bool = True,
                  reuse_existing: bool = True) -> TwinManifest:
    """Write the twin's image files, sessions, ground truth and ``twin_manifest.json``.

    With ``reuse_existing`` and a manifest in ``out_dir`` made from the same config whose files
    are all present, nothing is regenerated and that manifest is returned.
    """
    from tqdm import tqdm

    cfg = config or TwinConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if reuse_existing and (out / MANIFEST_NAME).exists():
        old = load_manifest(out)
        same_generator = json.loads((out / MANIFEST_NAME).read_text()).get("generator_version") == GENERATOR_VERSION
        if same_generator and old.config == json.loads(json.dumps(cfg.to_dict())) \
                and all((out / f).exists() for f in old.sha256):
            return old

    def stream(*key: int) -> np.random.Generator:   # one independent stream per image set / mouse
        return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=key))

    natural, used = natural_images(cfg.n_images, stream(0), cfg.image_contrast, cfg.crop_scale)
    _write_images(out / "images_natimg2800_all.mat", natural)
    white = None
    if cfg.n_whitened_mice:
        white = whiten_images(natural)
        _write_images(out / "images_natimg2800_white_all.mat", white)
    reference = natural[: min(cfg.n_reference_images, cfg.n_images)]

    mice: list[TwinMouse] = []
    plan = _mice_plan(cfg)
    for label, stimset, mouse, date in tqdm(plan, desc="twin mice", disable=not progress):
        rng = stream(1 + "MWD".index(label[0]), int(label[1:]))   # M2 is M2 whatever the counts
        p = _sample_neurons(rng, cfg)
        region = _rf_region(p)
        stem = f"{stimset}_{mouse}_{date}"
        if label.startswith("M"):
            images, images_file = natural, "images_natimg2800_all.mat"
        elif label.startswith("W"):
            images, images_file = white, "images_natimg2800_white_all.mat"
        else:
            images = low_dimensional_images(natural, region, cfg.n_8d_components)
            images_file = f"images_{stem}.mat"
            _write_images(out / images_file, images)
        drive = _drive(p, images, cfg.output_exponent, cfg.rf_truncate)
        ref = drive[: len(reference)] if images is natural else \
            _drive(p, reference, cfg.output_exponent, cfg.rf_truncate)
        ref_sd = ref.std(axis=0, dtype=np.float64)
        own_sd = drive.std(axis=0, dtype=np.float64)
        beta = cfg.contrast_adaptation
        scale = np.maximum(ref_sd, 1e-9) ** (1 - beta) * np.maximum(own_sd, 1e-9) ** beta
        mu = drive * (p["gain"] / scale).astype(np.float32)
        del drive
        istim = _presentations(rng, cfg)
        resp, spont = _trials(rng, cfg, p, mu, istim)

        stat = np.zeros((cfg.n_neurons, 1), dtype=[("npix", "O")])
        for i, v in enumerate(p["npix"]):
            stat[i, 0]["npix"] = v
        _savemat(out / f"{stem}.mat", {
            "stim": {"resp": resp, "spont": spont, "istim": istim.astype(np.float64)[:, None]},
            "med": p["med"], "stat": stat,
            "db": {"mouse_name": mouse, "date": date, "expts": np.array([[1.0]]), "twin_label": label},
        })
        gt_file = f"groundtruth_{stem}.npz"
        _savez(out / gt_file, {
            **{key: p[key] for key in _PARAM_KEYS},
            "cell_type": np.where(p["is_complex"], "complex", "simple"),
            "gain": p["gain"], "noise_sd": p["noise_sd"], "drive_scale": scale,
            "shared_loadings": p["shared_loadings"], "gain_loadings": p["gain_loadings"],
            "output_exponent": np.float64(cfg.output_exponent), "rf_truncate": np.float64(cfg.rf_truncate),
            "mean_response": mu, "rf_region": np.asarray(region), "label": np.str_(label),
            "stimset": np.str_(stimset), "images_file": np.str_(images_file),
        })
        mice.append(TwinMouse(label, stimset, mouse, date, f"{stem}.mat", images_file, gt_file, region))
        del resp, spont, mu

    files = sorted({f for m in mice for f in (m.session_file, m.images_file, m.groundtruth_file)}
                   | {"images_natimg2800_all.mat"})
    manifest = TwinManifest(out, json.loads(json.dumps(cfg.to_dict())), cfg.seed, mice,
                            {f: file_sha256(out / f) for f in files}, used,
                            provenance(generator="alignlib.data.twin.generate_twin"))
    write_json(out / MANIFEST_NAME, {**asdict(manifest), "out_dir": None, "generator_version": GENERATOR_VERSION})
    return manifest


def load_manifest(out_dir: str | Path) -> TwinManifest:
    """Read ``twin_manifest.json`` from a twin folder."""
    out = Path(out_dir)
    path = out / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"no twin manifest at {path}; run generate_twin({str(out)!r}, ...) first")
    d = json.loads(path.read_text())
    mice = [TwinMouse(**m) for m in d["mice"]]
    return TwinManifest(out, d["config"], d["seed"], mice, d["sha256"], d["source_images"],
                        d.get("provenance", {}))


def load_groundtruth(path: str | Path) -> dict[str, np.ndarray]:
    """A ground-truth file as a dict of arrays (scalars as 0-d arrays)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
