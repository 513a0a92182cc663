"""Statistics of stimulus sets: how close each test image is to the training images.

A decoder that memorises can look good on test images that nearly repeat a training image. For each
test image we take its highest Pearson correlation (over pixels) with any training image. With
``groups`` (one source label per image, e.g. the photograph a crop was cut from), pairs from the same
source are skipped: for crops of photographs this gives the reference "what distinct photographs
give" — the same statistic, the same training-set size, but only pairs of different photographs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["nearest_train_correlation", "near_duplicate_summary"]


def _standardise(x: np.ndarray) -> np.ndarray:
    """Rows of (n, pixels) float32, zero mean and unit norm (a constant image stays all zero)."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def nearest_train_correlation(images: np.ndarray, train_idx: Sequence[int], test_idx: Sequence[int],
                              groups: Sequence | None = None, chunk: int = 256,
                              return_index: bool = False):
    """For each test image, its highest pixel correlation with any training image.

    ``images`` is (n, ...) (any numeric dtype); ``train_idx`` / ``test_idx`` index it. With ``groups``
    (length n), training images of the test image's own group are left out. Computed in chunks of
    ``chunk`` test images (float32), so a 2800-image set needs no more than a few hundred MB.
    Returns (n_test,) float64 (NaN where no training image is eligible), and with ``return_index``
    also the index (into ``images``) of the best training image (-1 where none).
    """
    train_idx, test_idx = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
    train = _standardise(images[train_idx])
    g = None if groups is None else np.asarray(groups, dtype=object)
    best = np.full(len(test_idx), np.nan)
    where = np.full(len(test_idx), -1, dtype=np.int64)
    for start in range(0, len(test_idx), chunk):
        rows = test_idx[start:start + chunk]
        r = _standardise(images[rows]) @ train.T
        if g is not None:
            r[g[rows][:, None] == g[train_idx][None, :]] = -np.inf
        j = np.argmax(r, axis=1)
        top = r[np.arange(len(rows)), j]
        ok = np.isfinite(top)
        best[start:start + len(rows)] = np.where(ok, top, np.nan)
        where[start:start + len(rows)] = np.where(ok, train_idx[j], -1)
    return (best, where) if return_index else best


def near_duplicate_summary(r: np.ndarray, thresholds: Sequence[float] = (0.7, 0.9)) -> dict[str, float]:
    """Fractions of test images whose nearest training correlation exceeds each threshold, and quantiles."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    out = {f"frac_above_{t:g}": float(np.mean(r > t)) for t in thresholds}
    out.update({"median": float(np.median(r)), "p95": float(np.quantile(r, 0.95)), "max": float(r.max()),
                "n_test": int(r.size)})
    return out
