"""Cross-modal retrieval metrics (DINA §4: identify the stimulus from the neural response).

Convention: ``similarity[i, j]`` scores neural query i against candidate image j and the
true image of query i is candidate i (so the matrix has at least as many columns as rows;
extra columns are distractors). The rank of the true item is ``1 + #{j : s_ij > s_ii}``
(ties are resolved in favour of the true item), and top-k accuracy is the fraction of
queries with rank <= k. Chance level for n candidates is k / n.

All functions accept NumPy arrays or torch tensors and return NumPy values.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

__all__ = ["similarity_matrix", "retrieval_ranks", "topk_accuracy", "chance_topk"]


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def similarity_matrix(z_neu, z_img) -> np.ndarray:
    """Cosine similarities (n_neu, n_img) between neural queries and candidate images.

    Rows are flattened and L2-normalised here (zero rows stay zero), in float64.
    """
    a = _to_numpy(z_neu).astype(np.float64)
    b = _to_numpy(z_img).astype(np.float64)
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _check_similarity(similarity) -> np.ndarray:
    s = _to_numpy(similarity)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < s.shape[0]:
        raise ValueError(f"similarity must be (n_queries, n_candidates) with n_candidates >= n_queries, "
                         f"got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("similarity contains NaN")
    return s


def retrieval_ranks(similarity) -> np.ndarray:
    """1-based rank of the true candidate (column i) for each query row i: 1 + #(strictly greater)."""
    s = _check_similarity(similarity)
    n = s.shape[0]
    true = s[np.arange(n), np.arange(n)]
    return 1 + (s > true[:, None]).sum(axis=1)


def topk_accuracy(similarity, ks: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose true candidate ranks within the top k, for each k in ``ks``."""
    ranks = retrieval_ranks(similarity)
    out = {}
    for k in ks:
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        out[int(k)] = float(np.mean(ranks <= int(k)))
    return out


def chance_topk(n_candidates: int, k: int) -> float:
    """Expected top-k accuracy of a random ranking over ``n_candidates``: min(k, n) / n."""
    if n_candidates < 1 or k < 1:
        raise ValueError("n_candidates and k must be >= 1")
    return min(int(k), int(n_candidates)) / int(n_candidates)
