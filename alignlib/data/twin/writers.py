"""Deterministic writers for the twin's files in the Stringer layout (MAT v5 and NPZ).

Equal arrays give byte-identical files: the MAT header text and the zip timestamps are fixed.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.io

__all__ = ["savemat", "savez", "write_images", "MAT_HEADER"]

MAT_HEADER = b"MATLAB 5.0 MAT-file, written by alignlib.data.twin"


def savemat(path: Path, data: dict[str, Any]) -> None:
    """scipy.io.savemat (v5, uncompressed, 1-D as columns) with a fixed header text."""
    scipy.io.savemat(path, data, do_compression=False, oned_as="column")
    with open(path, "r+b") as f:
        f.write(MAT_HEADER.ljust(116, b" "))


def savez(path: Path, arrays: Mapping[str, Any]) -> None:
    """np.savez with fixed zip timestamps; np.load reads it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def write_images(path: Path, images: np.ndarray) -> None:
    """Write (n, 68, 270) uint8 images as the Stringer image file: ``imgs`` of shape (68, 270, n)."""
    savemat(path, {"imgs": np.ascontiguousarray(np.transpose(images, (1, 2, 0)))})
