"""Shape-Texture Index of informative blobs (Wang et al. 2026 App. A.2-A.3, eqs. 17-21; Fig. 5g-h).

Inside a blob of the RF map: Sobel edge magnitude of the stimulus (:func:`skimage.filters.sobel`),
binarised, skeletonised (:func:`skimage.morphology.skeletonize`), split into segments; per segment
the orientation of the chord between its endpoints (eq. 17) and its tortuosity (eq. 19); per blob the
orientation coherence R (mean resultant length, eq. 18), the mean tortuosity T, the texture strength
Tex(T) = 1 - exp(-alpha (T - 1)) (eq. 20) and STI = R - Tex (eq. 21).

Choices where the paper is silent or literal reading breaks its own claims (stated on the pages):

* binarisation: Otsu's threshold (:func:`skimage.filters.threshold_otsu`) of the Sobel magnitudes
  inside the blob;
* segments: the skeleton with its junction pixels (more than two 8-neighbours) removed, each
  8-connected piece of at least ``min_pixels`` pixels; its endpoints are the two pixels farthest apart
  along the skeleton (geodesic, steps of 1 and sqrt 2); pieces without two endpoints (closed loops) are
  skipped;
* eq. 19's L is the path length along the segment (sum of 1 / sqrt 2 steps), so a straight segment
  has T = 1 exactly (with L = number of pixels it would be L / (L - 1) > 1);
* eq. 18 is applied to doubled angles (axial data): an edge has an orientation, not a direction, and
  the chord of eq. 17 points either way depending on which endpoint is called the start, so with
  single angles two parallel edges could give R = 0;
* alpha = 1 (the paper does not give it): T = 1.5 gives Tex = 0.39, T = 2 gives 0.63;
* a blob needs at least ``MIN_SEGMENTS`` = 2 segments for an STI: with one segment R = 1 by
  construction (one angle is perfectly "coherent"), which would push small blobs towards "shape". Such
  blobs get R and STI = NaN (their T and Tex are still reported) and are counted separately
  (``n_segments`` = 1); weighting R by segment length would not help, since one segment still gives 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import convolve
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from skimage.filters import sobel, threshold_otsu
from skimage.measure import label
from skimage.morphology import skeletonize

__all__ = ["MIN_SEGMENTS", "Segment", "skeleton_segments", "orientation_coherence", "texture_strength", "blob_sti", "sti_table"]

MIN_SEGMENTS = 2        # fewest segments for which the orientation coherence R (eq. 18) is defined
_EIGHT = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])


@dataclass
class Segment:
    start: tuple[int, int]        # (row, col) endpoints
    end: tuple[int, int]
    path_length: float            # along the skeleton
    n_pixels: int

    @property
    def chord(self) -> float:
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    @property
    def orientation(self) -> float:
        """Eq. 17, theta = arctan2(y_e - y_s, x_e - x_s), with y = row and x = column."""
        return float(np.arctan2(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    def tortuosity(self, eps: float = 1e-6) -> float:
        """Eq. 19 with L the path length."""
        return self.path_length / (self.chord + eps)


def _geodesic(pixels: np.ndarray) -> np.ndarray:
    """All-pairs path lengths along 8-connected ``pixels`` (k, 2)."""
    index = {tuple(p): i for i, p in enumerate(pixels)}
    rows, cols, w = [], [], []
    for i, (r, c) in enumerate(pixels):
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                j = index.get((r + dr, c + dc))
                if j is not None and j != i:
                    rows.append(i)
                    cols.append(j)
                    w.append(np.sqrt(2.0) if dr and dc else 1.0)
    g = coo_matrix((w, (rows, cols)), shape=(len(pixels), len(pixels))).tocsr()
    return shortest_path(g, directed=False)


def skeleton_segments(skeleton: np.ndarray, min_pixels: int = 3) -> list[Segment]:
    """Segments of a binary skeleton (junctions removed; see the module docstring)."""
    sk = np.asarray(skeleton, dtype=bool)
    neighbours = convolve(sk.astype(int), _EIGHT, mode="constant")
    pieces = label(sk & (neighbours <= 2), connectivity=2)
    out = []
    for k in range(1, pieces.max() + 1):
        px = np.argwhere(pieces == k)
        if len(px) < min_pixels:
            continue
        d = _geodesic(px)
        d[~np.isfinite(d)] = -1
        i, j = np.unravel_index(np.argmax(d), d.shape)
        local = convolve((pieces == k).astype(int), _EIGHT, mode="constant")[tuple(px.T)]
        if not (local <= 1).any():       # a closed loop: no endpoints
            continue
        out.append(Segment(tuple(int(v) for v in px[i]), tuple(int(v) for v in px[j]), float(d[i, j]), len(px)))
    return out


def orientation_coherence(theta: np.ndarray) -> float:
    """Eq. 18 on doubled angles: |mean exp(2 i theta)| in [0, 1] (NaN for no angles)."""
    theta = np.asarray(theta, dtype=np.float64)
    return float(np.abs(np.exp(2j * theta).mean())) if theta.size else float("nan")


def texture_strength(t: float, alpha: float = 1.0) -> float:
    """Eq. 20: Tex(T) = 1 - exp(-alpha (T - 1)); T below 1 (only by eq. 19's epsilon) counts as 1."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return float(1.0 - np.exp(-alpha * max(t - 1.0, 0.0)))


def blob_sti(image: np.ndarray, mask: np.ndarray, alpha: float = 1.0, min_pixels: int = 3,
             edges: np.ndarray | None = None) -> dict[str, float]:
    """R, T, Tex, STI, number of segments and skeleton length of one blob (``mask``) of ``image``.

    ``edges``: the image's Sobel magnitude, if already computed. R and STI are NaN when the blob has fewer
    than :data:`MIN_SEGMENTS` segments (T and Tex too when it has none).
    """
    mask = np.asarray(mask, dtype=bool)
    e = sobel(np.asarray(image, dtype=np.float64)) if edges is None else edges
    vals = e[mask]
    nan = {"R": np.nan, "T": np.nan, "Tex": np.nan, "STI": np.nan, "n_segments": 0, "edge_length": 0}
    if vals.size < 2 or np.ptp(vals) == 0:
        return nan
    binary = (e > threshold_otsu(vals)) & mask
    skel = skeletonize(binary)
    segs = skeleton_segments(skel, min_pixels)
    if not segs:
        return {**nan, "edge_length": int(skel.sum())}
    t = float(np.mean([s.tortuosity() for s in segs]))
    tex = texture_strength(t, alpha)
    if len(segs) < MIN_SEGMENTS:
        return {**nan, "T": t, "Tex": tex, "n_segments": len(segs), "edge_length": int(skel.sum())}
    r = orientation_coherence(np.array([s.orientation for s in segs]))
    return {"R": r, "T": t, "Tex": tex, "STI": r - tex, "n_segments": len(segs), "edge_length": int(skel.sum())}


def sti_table(images: np.ndarray, label_images: list[np.ndarray] | np.ndarray, alpha: float = 1.0,
              min_pixels: int = 3, **columns) -> pd.DataFrame:
    """One row per blob: ``image``, ``blob``, ``area`` and :func:`blob_sti`'s values, for blob label images
    (:func:`alignlib.interpret.blobs.find_blobs`) of each image. Extra keyword arguments become columns."""
    rows = []
    for i, (img, lab) in enumerate(zip(images, label_images)):
        if not np.any(lab):
            continue
        e = sobel(np.asarray(img, dtype=np.float64))
        for b in range(1, int(lab.max()) + 1):
            m = lab == b
            if m.any():
                rows.append({"image": i, "blob": b, "area": int(m.sum()),
                             **blob_sti(img, m, alpha, min_pixels, edges=e)})
    df = pd.DataFrame(rows, columns=["image", "blob", "area", "R", "T", "Tex", "STI", "n_segments", "edge_length"])
    for k, v in columns.items():
        df[k] = v
    return df
