"""Head reshaping shared by the attention layers of every tower (computation itself: torch SDPA)."""
from __future__ import annotations

import torch

__all__ = ["split_heads", "merge_heads"]


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, heads, L, C // heads), contiguous in the last dimension.

    SDPA's fused CPU/GPU kernels need a unit stride in the head dimension; otherwise PyTorch
    falls back to the slower math kernel."""
    b, n, c = t.shape
    return t.reshape(b, n, heads, c // heads).transpose(1, 2).contiguous()


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, c) -> (B, L, heads * c)."""
    b, h, n, c = t.shape
    return t.transpose(1, 2).reshape(b, n, h * c)
