"""The Stringer screen (68 x 270 deg, 1 px = 1 deg, gray 128) and the pixel normalisation of the stimuli."""
from __future__ import annotations

import numpy as np

from alignlib.data.stringer.loader import IMAGE_SHAPE

HEIGHT, WIDTH = IMAGE_SHAPE
GRAY = 128
#: degrees of visual angle per image pixel (270 px span the three 90-deg screens)
DEG_PER_PIXEL = 1.0


def to_uint8(img: np.ndarray, contrast: float) -> np.ndarray:
    """Set an image to mean 128 and RMS contrast ``contrast`` (std / 128), round and clip to 0..255."""
    sd = img.std()
    img = (img - img.mean()) / (sd if sd > 0 else 1.0) * (contrast * GRAY)
    return np.clip(np.rint(img + GRAY), 0, 255).astype(np.uint8)
