"""Pathway masking of the DS-Net image tower (Wang et al. 2026 §4.4, Fig. 5a).

Masking a pathway zeroes that stream's output in every dual-stream block where the local and global
streams merge (``MixBlock.masked_stream``; the co-attention exchange before the merge still runs).
"Mask local" keeps only the global pathway and vice versa. Similarity to the intact map: SSIM
(scikit-image's default 7 x 7 window, data range of the intact map), per stimulus.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from alignlib.arrays import model_device
from alignlib.interpret.ssim import ssim_batch
from alignlib.models.dsnet import MixBlock

__all__ = ["masked_pathway", "pathway_masking"]


@contextmanager
def masked_pathway(tower: torch.nn.Module, stream: str | None) -> Iterator[torch.nn.Module]:
    """Within the block, every :class:`MixBlock` of ``tower`` has ``stream`` ("local" | "global") zeroed."""
    if stream not in ("local", "global", None):
        raise ValueError(f"stream must be 'local', 'global' or None, got {stream!r}")
    blocks = [m for m in tower.modules() if isinstance(m, MixBlock)]
    if stream is not None and not blocks:
        raise ValueError("this tower has no dual-stream blocks to mask")
    old = [b.masked_stream for b in blocks]
    try:
        for b in blocks:
            b.masked_stream = stream
        yield tower
    finally:
        for b, o in zip(blocks, old):
            b.masked_stream = o


@torch.no_grad()
def pathway_masking(tower: torch.nn.Module, images: torch.Tensor | np.ndarray, win_size: int = 7,
                    batch_size: int = 256) -> pd.DataFrame:
    """One row per (stimulus, masked pathway): SSIM and cosine of the masked map to the intact map.

    ``images`` are standardised (n, H, W). ``kept`` names the pathway that remains.
    """
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=model_device(tower))
    tower.eval()

    def maps() -> torch.Tensor:
        return torch.cat([tower(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    full = maps()
    rows = []
    for stream, kept in (("local", "global"), ("global", "local")):
        with masked_pathway(tower, stream):
            m = maps()
        s = ssim_batch(m, full, win_size).cpu().numpy()
        c = torch.nn.functional.cosine_similarity(m.flatten(1), full.flatten(1), dim=1).cpu().numpy()
        rows += [{"stimulus": i, "masked": stream, "kept": kept, "ssim": float(s[i]), "cosine": float(c[i])}
                 for i in range(len(x))]
    return pd.DataFrame(rows)
