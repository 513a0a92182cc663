"""Photographs that installed packages ship (no download), and crops of them for the twin's stimuli.

* scikit-image ``skimage.data``: the 14 photographs of the legacy twin (:data:`SOURCE_IMAGES`);
* scikit-learn ``load_sample_image``: ``china``, ``flower``;
* matplotlib sample data: ``grace_hopper`` and a shaded relief of the ``jacksboro_fault_dem``
  terrain model (``matplotlib.colors.LightSource``).

Any that fail to load offline are skipped; which ones were used is recorded by the caller.
"""
from __future__ import annotations

import importlib
import warnings
from typing import Sequence

import numpy as np

from alignlib.data.twin._screen import HEIGHT, WIDTH, to_uint8

__all__ = ["SOURCE_IMAGES", "PHOTO_SOURCES", "load_photographs", "photo_crops", "distinct_crops", "smooth_fraction"]

#: scikit-image photographs of the legacy twin (``stimuli="photo-crops"``)
SOURCE_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "rocket", "stereo_motorcycle", "grass",
                 "gravel", "brick", "moon", "clock", "coins", "cell", "immunohistochemistry")
#: every photograph the mixed stimulus set may crop
PHOTO_SOURCES = SOURCE_IMAGES + ("sklearn:china", "sklearn:flower", "matplotlib:grace_hopper",
                                 "matplotlib:jacksboro_relief")


def _sklearn(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image
    return load_sample_image(f"{name}.jpg")


def _matplotlib(name: str) -> np.ndarray:
    import matplotlib.cbook as cbook
    if name == "jacksboro_relief":           # a digital elevation model, shaded as a landscape photo
        from matplotlib.colors import LightSource
        with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as z:
            elevation = z["elevation"].astype(np.float64)   # metres, on a 3-arc-second (~90 m) grid
        return LightSource(azdeg=315, altdeg=45).hillshade(elevation, vert_exag=3, dx=90, dy=90)
    import matplotlib.image
    return matplotlib.image.imread(cbook.get_sample_data(f"{name}.jpg", asfileobj=False))


def _skimage(name: str) -> np.ndarray:
    """A ``skimage.data`` image, loaded without tqdm's "IProgress not found" warning.

    ``skimage.data`` (lazily, on first use) imports pooch, which imports ``tqdm.auto``; in a Jupyter
    kernel without ipywidgets that import warns into the page's output. No progress bar is drawn here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        return getattr(importlib.import_module("skimage.data"), name)()


def _load_one(name: str) -> np.ndarray:
    if name.startswith("sklearn:"):
        return _sklearn(name.split(":", 1)[1])
    if name.startswith("matplotlib:"):
        return _matplotlib(name.split(":", 1)[1])
    return _skimage(name)


def load_photographs(names: Sequence[str] = SOURCE_IMAGES) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale float64 images of the named photographs that load offline, and their names."""
    from skimage.color import rgb2gray

    images, used = [], []
    for name in names:
        try:
            img = _load_one(name)
        except Exception:  # not bundled in this package version (would need a download)
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
        raise RuntimeError("none of the sample photographs could be loaded")
    return images, used


def photo_crops(n_images: int, rng: np.random.Generator, contrast: tuple[float, float] = (0.25, 0.45),
                crop_scale: tuple[float, float] = (0.35, 1.0),
                sources: Sequence[str] = SOURCE_IMAGES) -> tuple[np.ndarray, list[str], list[str]]:
    """The legacy twin's images: (n, 68, 270) uint8 crops at random positions, scales and flips.

    Each crop is resized (anti-aliased) to 68 x 270, set to mean 128 and an RMS contrast drawn
    uniformly from ``contrast`` (std / 128), then clipped to 0..255. Crops of one photograph may
    overlap freely (near-duplicates; see :func:`distinct_crops`). Returns the images, the names of
    the photographs that loaded, and the photograph of each image.
    """
    from skimage.transform import resize

    srcs, used = load_photographs(sources)
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
        out[i] = to_uint8(img, rng.uniform(*contrast))
    return out, used, [used[j] for j in which]


def _render(src: np.ndarray, centre, scale: float, angle: float, flip_lr: bool, flip_ud: bool) -> np.ndarray:
    """Sample the rotated window of ``src`` onto the 68 x 270 grid, low-passed when shrinking."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    rows = (np.arange(HEIGHT) - (HEIGHT - 1) / 2) * scale
    cols = (np.arange(WIDTH) - (WIDTH - 1) / 2) * scale
    if flip_ud:
        rows = rows[::-1]
    if flip_lr:
        cols = cols[::-1]
    u, v = np.meshgrid(rows, cols, indexing="ij")
    r = centre[0] + u * np.cos(angle) + v * np.sin(angle)
    c = centre[1] - u * np.sin(angle) + v * np.cos(angle)
    sigma = max(0.0, (scale - 1) / 2)                    # as skimage.transform.resize's anti-aliasing
    if sigma > 0:                                        # filter only the window's neighbourhood
        m = int(np.ceil(4 * sigma)) + 2
        r0, r1 = max(int(r.min()) - m, 0), min(int(np.ceil(r.max())) + m + 1, src.shape[0])
        c0, c1 = max(int(c.min()) - m, 0), min(int(np.ceil(c.max())) + m + 1, src.shape[1])
        patch = gaussian_filter(src[r0:r1, c0:c1], sigma, mode="reflect")
        return map_coordinates(patch, [r - r0, c - c0], order=1, mode="reflect")
    return map_coordinates(src, [r, c], order=1, mode="reflect")


_GRID = 8.0   # px: overlaps are measured on this grid of the photograph


def _candidates(rng: np.random.Generator, n: int, h: int, w: int, max_w: float, crop_scale, max_rotation: float):
    """``n`` random windows (centre row, centre col, scale, angle, fits) in an h x w photograph.

    A window is 68*scale x 270*scale source pixels rotated by ``angle``; ``fits``: it lies inside.
    When none fits rotated, the widest unrotated window (which always fits) is offered instead.
    """
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    scale = max_w * rng.uniform(*crop_scale, n) / WIDTH
    half_r, half_c = HEIGHT * scale / 2, WIDTH * scale / 2
    ext_r = half_r * np.abs(np.cos(angle)) + half_c * np.abs(np.sin(angle))   # rotated box half-extents
    ext_c = half_r * np.abs(np.sin(angle)) + half_c * np.abs(np.cos(angle))
    fits = (2 * ext_r <= h - 1) & (2 * ext_c <= w - 1)
    if not fits.any():
        angle, scale = np.zeros(n), np.full(n, (min(w, h * WIDTH / HEIGHT) - 1) / WIDTH)
        ext_r, ext_c, fits = HEIGHT * scale / 2, WIDTH * scale / 2, np.ones(n, bool)
    cr = ext_r + rng.random(n) * np.maximum(h - 1 - 2 * ext_r, 0)
    cc = ext_c + rng.random(n) * np.maximum(w - 1 - 2 * ext_c, 0)
    return cr, cc, scale, angle, fits


def _footprints(grid, cr, cc, scale, angle, fits) -> np.ndarray:
    """(n, grid points) float32: 1 where a window covers a point of the photograph's grid."""
    dr, dc = grid[0][None] - cr[:, None], grid[1][None] - cc[:, None]
    u = dr * np.cos(angle)[:, None] - dc * np.sin(angle)[:, None]        # along the window's rows
    v = dr * np.sin(angle)[:, None] + dc * np.cos(angle)[:, None]        # along its columns
    return ((np.abs(u) <= HEIGHT * scale[:, None] / 2) & (np.abs(v) <= WIDTH * scale[:, None] / 2)).astype(np.float32)


def _smooth_basis() -> np.ndarray:
    """Orthonormal basis (pixels, 5) of the non-constant polynomials of degree <= 2 on the 68 x 270 grid."""
    r, c = np.meshgrid(np.linspace(-1, 1, HEIGHT), np.linspace(-1, 1, WIDTH), indexing="ij")
    design = np.column_stack([np.ones(r.size)] + [t.ravel() for t in (r, c, r * r, c * c, r * c)])
    return np.linalg.qr(design)[0][:, 1:]


def smooth_fraction(img: np.ndarray, basis: np.ndarray | None = None) -> float:
    """Fraction of an image's variance explained by a smooth surface (a quadratic in row and column)."""
    basis = _smooth_basis() if basis is None else basis
    y = np.asarray(img, dtype=np.float64).ravel()
    y = y - y.mean()
    total = float(y @ y)
    return float(np.sum((basis.T @ y) ** 2) / total) if total > 0 else 1.0


def distinct_crops(n_images: int, rng: np.random.Generator, contrast: tuple[float, float] = (0.25, 0.45),
                   crop_scale: tuple[float, float] = (0.35, 1.0), max_rotation: float = 20.0,
                   max_overlap: float = 0.2, sources: Sequence[str] = PHOTO_SOURCES,
                   max_smooth: float = 0.5, n_candidates: int = 32, n_redraws: int = 3,
                   ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(n, 68, 270) uint8 crops of photographs, spread so that crops of one photograph overlap little.

    Crops are spread over the photographs in proportion to their area. Each has a random width
    (``crop_scale`` of the widest 68:270 window), rotation (uniform within +-``max_rotation`` deg),
    position and flips. Random windows are drawn (in batches of 8, at most ``n_candidates``) until one
    covers at most ``max_overlap`` of any earlier crop of the same photograph and is covered by at
    most that fraction of one (measured on an 8-px grid); failing that, the least-overlapping window
    drawn is kept. With many crops per photograph the target cannot always be met (about 60 % of
    crops exceed 0.2 at 17 crops per photograph, 90 % at 47); rotation, scale and flips then keep
    overlapping crops apart in pixel space. A crop that is mostly a smooth luminance ramp (more than
    ``max_smooth`` of its variance explained by a quadratic surface: blank sky, a wall; after contrast
    normalisation all such crops look alike) is drawn again, up to ``n_redraws`` times (then the least
    smooth is kept). Returns the images, the photograph of each image, and each crop's largest
    overlap with an earlier crop of its photograph.
    """
    srcs, used = load_photographs(sources)
    area = np.array([s.size for s in srcs], dtype=np.float64)
    share = n_images * area / area.sum()
    quota = np.floor(share).astype(int)
    quota[np.argsort(-(share - quota), kind="stable")[: n_images - quota.sum()]] += 1
    which = rng.permutation(np.repeat(np.arange(len(srcs)), quota))
    grids = [tuple(g.ravel() for g in np.meshgrid(np.arange(0, s.shape[0], _GRID), np.arange(0, s.shape[1], _GRID),
                                                  indexing="ij")) for s in srcs]
    taken = [np.zeros((0, grids[j][0].size), dtype=np.float32) for j in range(len(srcs))]
    basis = _smooth_basis()
    out = np.empty((n_images, HEIGHT, WIDTH), dtype=np.uint8)
    overlap = np.zeros(n_images)
    for i, j in enumerate(which):
        src = srcs[j]
        h, w = src.shape
        max_w = min(w, h * WIDTH / HEIGHT)
        kept = None                                        # (smoothness, overlap, footprint, image)
        for _ in range(1 + n_redraws):
            best = (np.inf, None, None)
            for _ in range(n_candidates // 8):             # batches of 8 candidates until one is accepted
                cand = _candidates(rng, 8, h, w, max_w, crop_scale, max_rotation)
                fp = _footprints(grids[j], *cand)
                worst = np.where(cand[4], 0.0, np.inf)
                if len(taken[j]):
                    inter = fp @ taken[j].T                             # (candidates, earlier crops)
                    size_c, size_t = np.maximum(fp.sum(1), 1), np.maximum(taken[j].sum(1), 1)
                    worst = np.where(cand[4], np.maximum(inter / size_c[:, None], inter / size_t[None, :]).max(axis=1),
                                     np.inf)
                k = int(np.argmin(worst))
                if best[1] is None or worst[k] < best[0]:
                    best = (worst[k], tuple(c[k] for c in cand[:4]), fp[k])
                if best[0] <= max_overlap:
                    break
            (cr, cc, scale, angle) = best[1]
            img = _render(src, (cr, cc), scale, angle, rng.random() < 0.5, rng.random() < 0.25)
            smooth = smooth_fraction(img, basis)
            if kept is None or smooth < kept[0]:
                kept = (smooth, best[0], best[2], img)
            if smooth <= max_smooth:
                break
        _, overlap[i], fp, img = kept
        taken[j] = np.vstack([taken[j], fp])
        out[i] = to_uint8(img, rng.uniform(*contrast))
    return out, [used[j] for j in which], overlap
