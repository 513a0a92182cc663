"""Generative models of natural-image statistics: dead-leaves images and 1/f textures with edges.

* Dead leaves (Matheron 1968; Lee, Mumford & Huang 2001, Int J Comput Vis 41:35-59): opaque shapes
  (disks and ellipses) with independent random grey levels fall on the plane, each occluding those
  below it; radii follow a power law p(r) ~ r^-3, the scale-invariant case, which gives the 1/f^2
  power spectrum, the edge statistics and the occlusions of natural images. Optionally each leaf
  carries a linear shading and the image a faint 1/f texture.
* 1/f textures with edges: Gaussian random fields with a power-law amplitude spectrum 1/f^beta, cut
  into regions by the level sets of a smoother random field; each region has its own mean luminance,
  contrast and texture, so the image has curved occluding-like edges between textures.

All generators return (n, height, width) uint8 images with mean ~128 and an RMS contrast (std / 128)
drawn uniformly from ``contrast``, like the photograph crops.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter

from alignlib.data.twin._screen import HEIGHT, WIDTH, to_uint8

__all__ = ["powerlaw_radii", "dead_leaves", "power_law_noise", "textures_with_edges"]


def powerlaw_radii(rng: np.random.Generator, n: int, r_min: float, r_max: float,
                   exponent: float = 3.0) -> np.ndarray:
    """``n`` radii with density p(r) ~ r^-exponent on [r_min, r_max] (inverse-CDF sampling)."""
    if exponent == 1.0:
        return r_min * (r_max / r_min) ** rng.random(n)
    a = 1.0 - exponent
    return (r_min ** a + rng.random(n) * (r_max ** a - r_min ** a)) ** (1.0 / a)


def _leaves_on_screen(rng: np.random.Generator, n: int, shape: tuple[int, int], r_range, exponent):
    """Radii and centres of ``n`` leaves of a homogeneous Poisson process that touch the image.

    A leaf of radius r touches the image when its centre lies in the image dilated by r, so among
    touching leaves the radius density is p(r) * area(dilated image), sampled by rejection.
    """
    h, w = shape
    r_max = r_range[1]
    radii = np.empty(0)
    while radii.size < n:
        r = powerlaw_radii(rng, 2 * n + 64, *r_range, exponent)
        keep = rng.random(r.size) < (h + 2 * r) * (w + 2 * r) / ((h + 2 * r_max) * (w + 2 * r_max))
        radii = np.concatenate([radii, r[keep]])
    radii = radii[:n]
    cy = rng.uniform(-radii, h - 1 + radii)
    cx = rng.uniform(-radii, w - 1 + radii)
    return radii, cy, cx


def _rasterise(zbuf: np.ndarray, image: np.ndarray, index: np.ndarray, cy, cx, a, b, theta) -> None:
    """z-buffer: each pixel of ``zbuf[image]`` keeps the smallest ``index`` of the ellipses covering it.

    Ellipses (centre, semi-axes a >= b, orientation theta; 1-D arrays, one entry per ellipse) are
    grouped by the size of the window that holds them (exact up to 24 px, then multiples of 8) and
    each group is tested at once.
    """
    h, w = zbuf.shape[1:]
    ca, sa = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    reach = np.ceil(np.maximum(np.hypot(a * ca, b * sa), np.hypot(a * sa, b * ca))).astype(int)  # bounding box
    window = np.where(reach <= 24, reach, 8 * np.ceil(reach / 8).astype(int))
    # (x, y) is inside when A dx^2 + 2B dx dy + C dy^2 <= 1 (u = dx cos + dy sin along the major axis)
    c2, s2, cs = np.cos(theta) ** 2, np.sin(theta) ** 2, np.cos(theta) * np.sin(theta)
    qa, qb = 1.0 / a ** 2, 1.0 / b ** 2
    coef_a = (c2 * qa + s2 * qb).astype(np.float32)
    coef_c = (s2 * qa + c2 * qb).astype(np.float32)
    coef_b = (2 * cs * (qa - qb)).astype(np.float32)
    for half in np.unique(window):
        sel = np.flatnonzero(window == half)
        wh, ww = min(2 * half + 1, h), min(2 * half + 1, w)
        top = np.clip(np.floor(cy[sel]).astype(int) - half, 0, h - wh)
        left = np.clip(np.floor(cx[sel]).astype(int) - half, 0, w - ww)
        dy = (top[:, None] + np.arange(wh)[None, :] - cy[sel, None]).astype(np.float32)      # (k, wh)
        dx = (left[:, None] + np.arange(ww)[None, :] - cx[sel, None]).astype(np.float32)     # (k, ww)
        form = (coef_b[sel, None] * dy)[:, :, None] * dx[:, None, :]
        form += (coef_a[sel, None] * dx * dx)[:, None, :]
        form += (coef_c[sel, None] * dy * dy)[:, :, None]
        inside = form <= 1.0
        which, rr, cc = np.nonzero(inside)
        k = sel[which]
        flat = (image[k] * h + top[which] + rr) * w + left[which] + cc    # a flat index is much faster
        np.minimum.at(zbuf.reshape(-1), flat, index[k])


def power_law_noise(rng: np.random.Generator, n: int, shape: tuple[int, int] = (HEIGHT, WIDTH),
                    beta: float | np.ndarray = 1.0, chunk: int = 128) -> np.ndarray:
    """(n, h, w) float32 Gaussian fields with amplitude spectrum ~ 1/f^beta (per image), zero mean, unit sd."""
    h, w = shape
    f = np.hypot(scipy.fft.fftfreq(h)[:, None], scipy.fft.rfftfreq(w)[None, :])
    f[0, 0] = np.inf                                    # no DC component
    log_f = np.log(f).astype(np.float32)
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float32), (n,))
    out = np.empty((n, h, w), dtype=np.float32)
    for start in range(0, n, chunk):                    # chunks bound the memory
        b = beta[start:start + chunk, None, None]
        spec = scipy.fft.rfft2(rng.standard_normal((len(b), h, w), dtype=np.float32))
        x = scipy.fft.irfft2(spec * np.exp(-b * log_f[None]), s=shape)
        x -= x.mean(axis=(1, 2), keepdims=True)
        out[start:start + chunk] = x / np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-12)
    return out


def dead_leaves(n_images: int, rng: np.random.Generator, shape: tuple[int, int] = (HEIGHT, WIDTH),
                contrast: tuple[float, float] = (0.25, 0.45), radius_range: tuple[float, float] = (1.5, 150.0),
                exponent: float = 3.0, ellipse_fraction: float = 0.5, min_aspect: float = 0.25,
                shading: float = 0.15, texture: float = 0.04, blur: float = 0.5,
                coverage_per_batch: float = 4.0, chunk: int = 32) -> np.ndarray:
    """(n, h, w) uint8 dead-leaves images (Lee, Mumford & Huang 2001).

    Leaves, in order from the top: radius (semi-major axis) ~ r^-``exponent`` on ``radius_range``
    px; a fraction ``ellipse_fraction`` are ellipses with axis ratio uniform in [``min_aspect``, 1] and
    random orientation, the rest disks; grey level uniform in [0, 1] plus a linear shading across the
    leaf of amplitude up to ``shading``. Leaves are added in batches (each covering a pixel
    ``coverage_per_batch`` times on average; ``chunk`` images at once) until every pixel is covered.
    Then a 1/f texture of sd ``texture``, a Gaussian blur of ``blur`` px (optics), and normalisation
    to mean 128 and the image's RMS contrast.
    """
    h, w = shape
    # mean number of times one leaf covers a pixel, for the batch size
    r = powerlaw_radii(np.random.default_rng(0), 20000, *radius_range, exponent)
    per_leaf = np.pi * np.mean(r ** 2) / np.mean((h + 2 * r) * (w + 2 * r))
    batch = int(np.ceil(coverage_per_batch / per_leaf))
    out = np.empty((n_images, h, w), dtype=np.uint8)
    noise = power_law_noise(rng, n_images, shape, 1.0) if texture > 0 else None
    empty = np.iinfo(np.int64).max
    rows, cols = np.mgrid[0:h, 0:w]
    for start in range(0, n_images, chunk):                  # images of a chunk are drawn together
        m = min(chunk, n_images - start)
        zbuf = np.full((m, h, w), empty, dtype=np.int64)
        rounds, pending = [], np.arange(m)
        while pending.size:
            k = pending.size
            radii, cy, cx = _leaves_on_screen(rng, k * batch, shape, radius_range, exponent)
            aspect = np.where(rng.random(k * batch) < ellipse_fraction, rng.uniform(min_aspect, 1.0, k * batch), 1.0)
            theta = rng.uniform(0.0, np.pi, k * batch)
            leaf = np.stack([cy, cx, radii, rng.random(k * batch), rng.uniform(0.0, shading, k * batch),
                             rng.uniform(0.0, 2 * np.pi, k * batch)], axis=-1)
            params = np.zeros((m, batch, leaf.shape[1]))
            params[pending] = leaf.reshape(k, batch, -1)
            image = np.repeat(pending, batch)
            index = np.tile(batch * len(rounds) + np.arange(batch), k)
            keep = np.ones(k * batch, dtype=bool)
            if rounds:          # leaves below the first ones only matter where their box holds an uncovered pixel
                holes = np.zeros((m, h + 1, w + 1), dtype=np.int32)     # summed-area table of the holes
                holes[:, 1:, 1:] = (zbuf == empty).cumsum(axis=1).cumsum(axis=2)
                r0 = np.clip(np.floor(cy - radii).astype(int), 0, h)
                r1 = np.clip(np.ceil(cy + radii).astype(int) + 1, 0, h)
                c0 = np.clip(np.floor(cx - radii).astype(int), 0, w)
                c1 = np.clip(np.ceil(cx + radii).astype(int) + 1, 0, w)
                keep = (holes[image, r1, c1] - holes[image, r0, c1] - holes[image, r1, c0] + holes[image, r0, c0]) > 0
            rounds.append(params)
            _rasterise(zbuf, image[keep], index[keep], cy[keep], cx[keep], radii[keep], (radii * aspect)[keep],
                       theta[keep])
            pending = pending[(zbuf[pending] == empty).any(axis=(1, 2))]
        leaves = np.concatenate(rounds, axis=1)
        p = leaves[np.arange(m)[:, None, None], zbuf]               # per pixel: its leaf's parameters
        along = ((rows - p[..., 0]) * np.cos(p[..., 5]) + (cols - p[..., 1]) * np.sin(p[..., 5])) / p[..., 2]
        img = p[..., 3] + p[..., 4] * np.clip(along, -1.0, 1.0)
        if noise is not None:
            img += texture * noise[start:start + m]
        if blur > 0:
            img = gaussian_filter(img, (0, blur, blur), mode="reflect")
        for i in range(m):
            out[start + i] = to_uint8(img[i], rng.uniform(*contrast))
    return out


def textures_with_edges(n_images: int, rng: np.random.Generator, shape: tuple[int, int] = (HEIGHT, WIDTH),
                        contrast: tuple[float, float] = (0.25, 0.45), n_regions: tuple[int, int] = (2, 8),
                        beta_range: tuple[float, float] = (0.8, 1.2), boundary_beta: float = 1.5,
                        texture_contrast: tuple[float, float] = (0.1, 0.5), blur: float = 0.5) -> np.ndarray:
    """(n, h, w) uint8 images: 1/f textures in regions bounded by the level sets of a smooth random field.

    Per image: a boundary field (amplitude ~ 1/f^``boundary_beta``) is cut at random quantiles into
    ``n_regions`` (uniform integer range) regions; two independent texture fields with amplitude
    spectrum 1/f^beta (beta uniform in ``beta_range``) are mixed with a random angle per region, scaled
    by a region contrast (uniform in ``texture_contrast``) and added to a region mean (uniform in
    [0, 1]). Then a ``blur`` px Gaussian blur and normalisation to mean 128 and the image's contrast.
    """
    boundary = power_law_noise(rng, n_images, shape, boundary_beta)
    beta = rng.uniform(*beta_range, n_images)
    t1, t2 = power_law_noise(rng, n_images, shape, beta), power_law_noise(rng, n_images, shape, beta)
    out = np.empty((n_images,) + tuple(shape), dtype=np.uint8)
    for i in range(n_images):
        k = int(rng.integers(n_regions[0], n_regions[1] + 1))
        cuts = np.quantile(boundary[i], np.sort(rng.random(k - 1)))
        region = np.searchsorted(cuts, boundary[i])
        mean, tc, angle = rng.random(k), rng.uniform(*texture_contrast, k), rng.uniform(0, 2 * np.pi, k)
        img = mean[region] + tc[region] * (np.cos(angle)[region] * t1[i] + np.sin(angle)[region] * t2[i])
        if blur > 0:
            img = gaussian_filter(img, blur, mode="reflect")
        out[i] = to_uint8(img, rng.uniform(*contrast))
    return out
