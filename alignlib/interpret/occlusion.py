"""Gaussian-occlusion receptive fields of the image tower (Wang et al. 2026, App. A.1, eqs. 10-15).

For each occlusion centre (x0, y0) on a grid of stride s = 2 the image is blended towards the mean
intensity of the window with an isotropic Gaussian G (sigma = 4 px, truncated to a (6 sigma + 1)^2
window, peak 1; eq. 10):

    I_occ = (1 - alpha G) I + alpha G mean_Omega(I)                                   (eq. 11)

with alpha = 1, Omega the truncated window (clipped to the image). The tower's map changes by

    Delta_cos  = 1 - cos(f(I), f(I_occ))                                              (eq. 12)
    Delta_ssim = 1 - SSIM(f(I), f(I_occ)),  3 x 3 window, mean over locations          (eq. 13)

and the changes are spread back over the image with the same Gaussians,
R = sum_k Delta_k G_k / (sum_k G_k + eps) (eq. 14), then min-max normalised (eq. 15).

Choices where the paper is silent (stated on the pages):

* repetitions: the paper averages N = 5 repetitions "with identical parameters"; an eval-mode tower
  is deterministic, so identical repetitions would be identical. Here repetition r shifts the whole
  grid by an offset (dy, dx) in {0..s-1}^2 (repetition 0: no shift; the others drawn WITHOUT
  replacement from the s^2 - 1 other offsets by a seeded generator, :func:`repetition_offsets`), so
  the repetitions sample distinct sub-stride positions the grid skips; their normalised maps are averaged.
* SSIM data range: the range (max - min) of the un-occluded map f(I).
* the window Omega and the Gaussian are clipped at the image border; pixel units are the tower's
  input units (standardised intensities), where the blend is the same as on 0..255 pixels.

A truncated isotropic Gaussian on a square window is separable (G = g_y g_x^T), which keeps the
accumulation (eq. 14) to two small matrix products. All occluded copies of an image are pushed through the tower in batches of ``batch_size`` (built batch by batch, so memory stays at one batch).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from alignlib.arrays import model_device
from alignlib.interpret.ssim import map_data_range, ssim_batch

__all__ = ["OcclusionConfig", "gaussian_profile", "gaussian_window", "grid_centres", "occluded_copies",
           "perturbations", "accumulate", "minmax", "occlusion_map", "occlusion_maps", "MAPS_VERSION",
           "stored_occlusion_maps", "tower_sha256", "repetition_offsets"]

#: bump when a code change alters the maps a given tower, images and config give (a derived result made
#: by another version is refused: :mod:`alignlib.training.derived`)
MAPS_VERSION = 2   # 2: repetition offsets drawn without replacement (1 could repeat the unshifted grid)


@dataclass(frozen=True)
class OcclusionConfig:
    """App. A.1 settings (defaults = the paper's)."""

    stride: int = 2
    sigma: float = 4.0
    alpha: float = 1.0
    repetitions: int = 5
    ssim_window: int = 3
    eps: float = 1e-8
    batch_size: int = 64
    seed: int = 0

    @property
    def half_width(self) -> int:
        """Half the window side: the window is 6 sigma + 1 pixels wide."""
        return int(round(3 * self.sigma))


def gaussian_profile(n: int, centres: np.ndarray, sigma: float, half_width: int) -> np.ndarray:
    """(len(centres), n) 1-D Gaussians exp(-(i - c)^2 / 2 sigma^2), zero beyond ``half_width`` of the centre."""
    i = np.arange(n)[None, :]
    d = i - np.asarray(centres)[:, None]
    return np.exp(-d ** 2 / (2 * sigma ** 2)) * (np.abs(d) <= half_width)


def gaussian_window(sigma: float = 4.0) -> np.ndarray:
    """The (6 sigma + 1)^2 peak-normalised Gaussian mask of eq. 10 (centre value 1)."""
    h = int(round(3 * sigma))
    g = gaussian_profile(2 * h + 1, np.array([h]), sigma, h)[0]
    return np.outer(g, g)


def grid_centres(shape: tuple[int, int], stride: int, offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Row and column centres of the occlusion grid (every ``stride`` pixels from ``offset``)."""
    return np.arange(offset[0], shape[0], stride), np.arange(offset[1], shape[1], stride)


def _window_means(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, h: int) -> np.ndarray:
    """(len(rows), len(cols)) mean of ``image`` over each clipped (2h+1)^2 window (integral image)."""
    H, W = image.shape
    s = np.zeros((H + 1, W + 1))
    s[1:, 1:] = np.cumsum(np.cumsum(image.astype(np.float64), 0), 1)
    r0, r1 = np.clip(rows - h, 0, H), np.clip(rows + h + 1, 0, H)
    c0, c1 = np.clip(cols - h, 0, W), np.clip(cols + h + 1, 0, W)
    total = s[r1][:, c1] - s[r0][:, c1] - s[r1][:, c0] + s[r0][:, c0]
    return total / ((r1 - r0)[:, None] * (c1 - c0)[None, :])


def occluded_copies(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, cfg: OcclusionConfig,
                    start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Occluded copies (eq. 11) of one (H, W) image for the centres ``start:stop`` of the grid ``rows x cols``
    (flattened row-major), as a (stop - start, H, W) float32 tensor."""
    H, W = image.shape
    h = cfg.half_width
    k = np.arange(start, len(rows) * len(cols) if stop is None else min(stop, len(rows) * len(cols)))
    a, b = k // len(cols), k % len(cols)
    gy = torch.as_tensor(gaussian_profile(H, rows[a], cfg.sigma, h), dtype=torch.float32)
    gx = torch.as_tensor(gaussian_profile(W, cols[b], cfg.sigma, h), dtype=torch.float32)
    means = torch.as_tensor(_window_means(image, rows, cols, h)[a, b], dtype=torch.float32)
    img = torch.as_tensor(image, dtype=torch.float32)
    G = gy[:, :, None] * gx[:, None, :]
    return img - cfg.alpha * G * (img - means[:, None, None])


@torch.no_grad()
def perturbations(tower: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, rows: np.ndarray,
                  cols: np.ndarray, cfg: OcclusionConfig) -> dict[str, np.ndarray]:
    """Delta_cos and Delta_ssim (eqs. 12-13) of every occluded copy (centres ``rows x cols``, row-major),
    the copies built and pushed through ``tower`` ``cfg.batch_size`` at a time. A dry run
    (:mod:`alignlib.dryrun`) pushes the first batch only (the others' Deltas are 0): the grid is the
    configured one, the work a few items."""
    from alignlib import dryrun

    dev = _device_of(tower)
    ref = tower(torch.as_tensor(image, device=dev)[None])[0].float()
    dr = map_data_range(ref[None])
    dcos, dssim = [], []
    n = len(rows) * len(cols)
    for start in range(0, n, cfg.batch_size):
        if dryrun.active() and start:
            zeros = torch.zeros(n - start, device=dev)
            dcos.append(zeros), dssim.append(zeros)
            break
        copies = occluded_copies(image, rows, cols, cfg, start, start + cfg.batch_size).to(dev)
        maps = tower(copies).float()
        dcos.append(1 - F.cosine_similarity(maps.flatten(1), ref.flatten()[None], dim=1))
        dssim.append(1 - ssim_batch(maps, ref, cfg.ssim_window, dr.expand(len(maps))))
    return {"cos": torch.cat(dcos).cpu().numpy(), "ssim": torch.cat(dssim).cpu().numpy()}


def accumulate(delta: np.ndarray, gy: np.ndarray, gx: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Eq. 14: sum_k Delta_k G_k / (sum_k G_k + eps), with ``delta`` (n_rows, n_cols) and separable G_k."""
    num = gy.T @ delta @ gx
    den = gy.T @ np.ones_like(delta) @ gx
    return num / (den + eps)


def minmax(r: np.ndarray) -> np.ndarray:
    """Eq. 15 (a constant map gives all zeros)."""
    lo, hi = float(r.min()), float(r.max())
    return (r - lo) / (hi - lo) if hi > lo else np.zeros_like(r)


def _device_of(tower) -> torch.device:
    return model_device(tower) if isinstance(tower, torch.nn.Module) else torch.device("cpu")


def repetition_offsets(stride: int, repetitions: int, seed: int = 0) -> list[tuple[int, int]]:
    """The grid offsets (dy, dx) of the repetitions: (0, 0) first, then the other ``stride**2 - 1``
    sub-stride offsets in a seeded random order without replacement (all of them before any repeats;
    with stride 1 there is only (0, 0), so every repetition is the same grid)."""
    others = [(dy, dx) for dy in range(stride) for dx in range(stride) if (dy, dx) != (0, 0)]
    rng = np.random.default_rng(seed)
    out = [(0, 0)]
    while len(out) < repetitions:
        if not others:
            out.append((0, 0))
            continue
        out += [others[i] for i in rng.permutation(len(others))][: repetitions - len(out)]
    return out[:repetitions]


def occlusion_map(tower: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray,
                  cfg: OcclusionConfig = OcclusionConfig(), return_raw: bool = False) -> dict[str, np.ndarray]:
    """Normalised RF maps R-hat (H, W) of one standardised image, for Delta_cos and Delta_ssim.

    ``tower`` maps (B, H, W) images to (B, h, w) maps (an eval-mode image tower). Averages
    ``cfg.repetitions`` grids shifted by seeded sub-stride offsets (see the module docstring).
    ``return_raw`` adds the un-normalised R and the per-centre Delta of the first repetition.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected one (H, W) image, got shape {image.shape}")
    if cfg.repetitions < 1 or cfg.stride < 1:
        raise ValueError("repetitions and stride must be >= 1")
    h = cfg.half_width
    out = {"cos": np.zeros(image.shape), "ssim": np.zeros(image.shape)}
    raw = {}
    for rep, offset in enumerate(repetition_offsets(cfg.stride, cfg.repetitions, cfg.seed)):
        rows, cols = grid_centres(image.shape, cfg.stride, offset)
        gy = gaussian_profile(image.shape[0], rows, cfg.sigma, h)
        gx = gaussian_profile(image.shape[1], cols, cfg.sigma, h)
        deltas = perturbations(tower, image, rows, cols, cfg)
        for key, d in deltas.items():
            r = accumulate(d.reshape(len(rows), len(cols)).astype(np.float64), gy, gx, cfg.eps)
            out[key] += minmax(r) / cfg.repetitions
            if rep == 0 and return_raw:
                raw[f"raw_{key}"], raw[f"delta_{key}"] = r, d.reshape(len(rows), len(cols))
    return {**out, **raw}


def occlusion_maps(tower: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray,
                   cfg: OcclusionConfig = OcclusionConfig(), progress: bool = False) -> dict[str, np.ndarray]:
    """:func:`occlusion_map` of each standardised image of (n, H, W): ``{"cos", "ssim"}`` each (n, H, W) float32."""
    from tqdm.auto import tqdm

    images = np.asarray(images, dtype=np.float32)
    res = {"cos": np.empty(images.shape, np.float32), "ssim": np.empty(images.shape, np.float32)}
    for i in tqdm(range(len(images)), desc="occlusion", disable=not progress):
        m = occlusion_map(tower, images[i], cfg)
        res["cos"][i], res["ssim"][i] = m["cos"], m["ssim"]
    return res


def tower_sha256(tower: torch.nn.Module) -> str:
    """SHA-256 of what identifies the tower an occlusion map explains, trained or not: its class, its
    module structure as printed (layers with their strides, kernel sizes and widths, which the weights
    alone do not fix), its mode (train/eval) and its parameters and buffers (names, shapes, values)."""
    import hashlib

    h = hashlib.sha256()
    h.update(f"{type(tower).__module__}.{type(tower).__qualname__}\n{tower!r}\ntraining={tower.training}".encode())
    for name, t in sorted(tower.state_dict().items()):
        a = t.detach().cpu().contiguous().numpy()
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def stored_occlusion_maps(tower: torch.nn.Module, images: np.ndarray, cfg: OcclusionConfig = OcclusionConfig(),
                          run: str | Path | None = None, chapter: str = "dina",
                          progress: bool = False) -> tuple[dict[str, np.ndarray], Path]:
    """:func:`occlusion_maps`, computed once and kept as a derived result (:mod:`alignlib.training.derived`):
    read from ``runs/derived`` or the run store when there, else computed and written. Identified by the
    tower (:func:`tower_sha256`), the images' bytes, every field of ``cfg`` and :data:`MAPS_VERSION`;
    ``run`` (the folder of the run the tower comes from; None for an untrained tower) is recorded with
    its checkpoint's SHA-256, which ``store verify`` compares with the stored run's. Returns (maps,
    folder)."""
    import hashlib
    from dataclasses import asdict

    from alignlib.training.derived import cached, run_source

    images = np.ascontiguousarray(images, dtype=np.float32)
    identity = {"tower_sha256": tower_sha256(tower),
                "images_sha256": hashlib.sha256(str(images.shape).encode() + images.tobytes()).hexdigest(),
                "n_images": int(len(images)), "config": asdict(cfg), "run": run_source(run)}
    return cached(chapter, "occlusion", identity, lambda: occlusion_maps(tower, images, cfg, progress=progress))
