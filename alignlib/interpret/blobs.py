"""Informative regions ("blobs") of occlusion RF maps (Wang et al. 2026 App. A.2, eq. 16; Fig. 5d-f).

A blob is a connected component (8-connectivity, :func:`skimage.measure.label`) of the pixels whose
normalised RF map exceeds tau = 0.6; its size is its area in image pixels
(:func:`skimage.measure.regionprops`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import label, regionprops

__all__ = ["find_blobs", "blob_table"]


def find_blobs(rf_map: np.ndarray, threshold: float = 0.6) -> np.ndarray:
    """Label image (int, 0 = background) of the blobs of one normalised (H, W) RF map (eq. 16: R-hat > tau)."""
    rf_map = np.asarray(rf_map)
    if rf_map.ndim != 2:
        raise ValueError(f"expected one (H, W) map, got shape {rf_map.shape}")
    return label(rf_map > threshold, connectivity=2)


def blob_table(rf_maps: np.ndarray, threshold: float = 0.6, **columns) -> pd.DataFrame:
    """One row per blob of each map in (n, H, W): ``image``, ``blob`` (label), ``area`` (px), centroid,
    bounding box. Maps without any blob get no row (use :func:`blobs_per_image` for counts).
    Extra keyword arguments become constant columns (e.g. ``mouse="M1"``)."""
    rows = []
    for i, m in enumerate(np.asarray(rf_maps)):
        for r in regionprops(find_blobs(m, threshold)):
            rows.append({"image": i, "blob": r.label, "area": int(r.area), "centroid_row": r.centroid[0],
                         "centroid_col": r.centroid[1], "bbox": tuple(int(v) for v in r.bbox)})
    df = pd.DataFrame(rows, columns=["image", "blob", "area", "centroid_row", "centroid_col", "bbox"])
    for k, v in columns.items():
        df[k] = v
    return df


def blobs_per_image(table: pd.DataFrame, n_images: int) -> np.ndarray:
    """Number of blobs of each of ``n_images`` maps (zeros included) from a :func:`blob_table`."""
    return np.bincount(table["image"].to_numpy(dtype=int), minlength=n_images)[:n_images]


__all__.append("blobs_per_image")
