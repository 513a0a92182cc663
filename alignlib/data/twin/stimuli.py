"""Stimulus sets of the twin (Stringer et al. 2019): natural images, their whitened versions, 8D images.

Images are (n, 68, 270) uint8, gray 128, 1 px = 1 deg (the Stringer screen, three 90-deg screens).
The natural set is either

* ``"mixed"`` (default): crops of photographs that installed packages ship, spread so that crops of
  one photograph overlap little (:func:`~alignlib.data.twin.photos.distinct_crops`), mixed with
  dead-leaves images and 1/f textures with edges (:mod:`~alignlib.data.twin.generative`) in the
  fractions ``TwinConfig.stimulus_fractions`` (in the order of :data:`MIX_KINDS`); or
* ``"photo-crops"`` (legacy, ``GENERATOR_VERSION`` 1): overlapping random crops of 14 scikit-image
  photographs (:func:`~alignlib.data.twin.photos.photo_crops`), kept to reproduce old runs.

Whitened and 8D sets are derived from the natural set.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.fft
import scipy.linalg

from alignlib.data.twin._screen import GRAY, HEIGHT, WIDTH
from alignlib.data.twin.generative import dead_leaves, textures_with_edges
from alignlib.data.twin.photos import PHOTO_SOURCES, SOURCE_IMAGES, distinct_crops, photo_crops

__all__ = ["HEIGHT", "WIDTH", "GRAY", "SOURCE_IMAGES", "PHOTO_SOURCES", "STIMULUS_SETS", "MIX_KINDS",
           "natural_images", "mixed_images", "natural_stimuli", "stimulus_kind", "whiten_images",
           "average_amplitude_spectrum",
           "low_dimensional_images"]

#: the natural-image generators (``TwinConfig.stimuli``)
STIMULUS_SETS = ("mixed", "photo-crops")
#: the kinds of image in the mixed set, in the order of ``TwinConfig.stimulus_fractions``
MIX_KINDS = ("photo", "dead-leaves", "textures")


def natural_images(n_images: int, rng: np.random.Generator, contrast: tuple[float, float] = (0.25, 0.45),
                   crop_scale: tuple[float, float] = (0.35, 1.0),
                   sources: Sequence[str] = SOURCE_IMAGES) -> tuple[np.ndarray, list[str]]:
    """The legacy natural set (``"photo-crops"``) and the photographs that loaded.

    See :func:`~alignlib.data.twin.photos.photo_crops`.
    """
    return photo_crops(n_images, rng, contrast, crop_scale, sources)[:2]


def stimulus_kind(source: str) -> str:
    """``photo``, ``dead-leaves`` or ``textures`` for an entry of a mixed set's per-image sources."""
    kind = source.split(":", 1)[0]
    return kind if kind in MIX_KINDS[1:] else "photo"


def mixed_images(n_images: int, rng: np.random.Generator, fractions: Sequence[float] = (0.3, 0.4, 0.3),
                 contrast: tuple[float, float] = (0.25, 0.45), crop_scale: tuple[float, float] = (0.35, 1.0),
                 max_crop_overlap: float = 0.2, max_crop_rotation: float = 20.0,
                 sources: Sequence[str] = PHOTO_SOURCES) -> tuple[np.ndarray, list[str]]:
    """(n, 68, 270) uint8: photograph crops, dead leaves and 1/f textures in ``fractions`` (:data:`MIX_KINDS`).

    Counts are rounded by largest remainder and the kinds shuffled over the image indices. Returns
    the images and each image's source: the photograph's name, or ``dead-leaves:<k>`` /
    ``textures:<k>`` (every generated image is its own source).
    """
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (len(MIX_KINDS),) or (frac < 0).any() or not np.isclose(frac.sum(), 1.0):
        raise ValueError(f"fractions must be {len(MIX_KINDS)} non-negative numbers summing to 1 "
                         f"({', '.join(MIX_KINDS)}), got {tuple(fractions)}")
    counts = np.floor(n_images * frac).astype(int)
    counts[np.argsort(-(n_images * frac - counts), kind="stable")[: n_images - counts.sum()]] += 1
    kind_of = rng.permutation(np.repeat(np.arange(len(MIX_KINDS)), counts))
    photo_rng, leaves_rng, texture_rng = (np.random.default_rng(s) for s in rng.integers(0, 2 ** 63, size=3))
    out = np.empty((n_images, HEIGHT, WIDTH), dtype=np.uint8)
    src = np.empty(n_images, dtype=object)
    at = [np.flatnonzero(kind_of == k) for k in range(len(MIX_KINDS))]
    if counts[0]:
        out[at[0]], names, _ = distinct_crops(counts[0], photo_rng, contrast, crop_scale, max_crop_rotation,
                                              max_crop_overlap, sources)
        src[at[0]] = names
    if counts[1]:
        out[at[1]] = dead_leaves(counts[1], leaves_rng, contrast=contrast)
        src[at[1]] = [f"dead-leaves:{k}" for k in range(counts[1])]
    if counts[2]:
        out[at[2]] = textures_with_edges(counts[2], texture_rng, contrast=contrast)
        src[at[2]] = [f"textures:{k}" for k in range(counts[2])]
    return out, [str(s) for s in src]


def natural_stimuli(config: Any, rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[str]]:
    """The natural set a :class:`~alignlib.data.twin.TwinConfig` asks for.

    Returns the images, each image's source (:func:`mixed_images`) and the photographs that loaded.
    """
    if config.stimuli == "photo-crops":
        images, used, per_image = photo_crops(config.n_images, rng, config.image_contrast, config.crop_scale)
        return images, per_image, used
    if config.stimuli == "mixed":
        images, per_image = mixed_images(config.n_images, rng, config.stimulus_fractions, config.image_contrast,
                                         config.crop_scale, config.max_crop_overlap, config.max_crop_rotation)
        return images, per_image, [p for p in PHOTO_SOURCES if p in set(per_image)]
    raise ValueError(f"stimuli must be one of {STIMULUS_SETS}, got {config.stimuli!r}")


def average_amplitude_spectrum(images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Mean over ``images`` of each image's Fourier amplitude |F_i(f)| (mean-subtracted images), as
    ``rfft2`` shape (68, 136): the spectrum that spectral whitening divides by."""
    total = np.zeros((images.shape[1], images.shape[2] // 2 + 1))
    for start in range(0, images.shape[0], batch):          # batches bound the memory
        x = images[start:start + batch].astype(np.float64)
        total += np.abs(scipy.fft.rfft2(x - x.mean(axis=(1, 2), keepdims=True))).sum(axis=0)
    return total / images.shape[0]


def whiten_images(images: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Spectrally whitened copies of (n, 68, 270) uint8 images (Stringer et al. 2019).

    One filter for the whole set: each image's Fourier transform is divided by the **average**
    amplitude spectrum of the ``reference`` images (default: ``images``, the natural set),
    ``W_i(f) = F_i(f) / mean_j |F_j(f)|``. The set's mean spectrum becomes flat; each image keeps
    its phase and its own deviations from the average spectrum ("whitened (partially)" in the
    authors' figures; their data README: "whitened with a degree of 1"). Each image's mean is
    removed first (the DC term stays 0); each whitened image is then scaled so that, clipped to
    0..255, it has its natural image's RMS contrast around 128 (the twin's convention; the authors
    do not say).
    """
    ref = images if reference is None else reference
    amp = average_amplitude_spectrum(ref)
    inv = np.where(amp > 1e-8 * amp.max(), 1.0 / np.maximum(amp, 1e-300), 0.0)
    out = np.empty_like(images, dtype=np.uint8)
    for start in range(0, images.shape[0], 256):             # batches bound the memory
        x = images[start:start + 256].astype(np.float64)
        x -= x.mean(axis=(1, 2), keepdims=True)
        w = scipy.fft.irfft2(scipy.fft.rfft2(x) * inv, s=x.shape[1:])
        target = x.std(axis=(1, 2), keepdims=True)
        w *= target / np.maximum(w.std(axis=(1, 2), keepdims=True), 1e-12)
        for _ in range(4):    # clipping lowers the contrast a little: match the CLIPPED image's RMS
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
