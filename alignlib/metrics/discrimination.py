"""Discriminative encoding and decoding (VNA §3.2, §4.3): per-query ROC AUC of the true match against
the distractors, averaged over queries.

Convention (as in :mod:`alignlib.metrics.retrieval`): ``scores[i, j]`` scores query i against candidate j,
higher = better match, and the true candidate of query i is column i; the other columns are distractors.
With ``S[i, j]`` = score of image i against response j (every model's ``score_matrix``):

* discriminative **encoding** (image query, candidate responses) reads the rows of ``S``;
* discriminative **decoding** (response query, candidate images) reads the rows of ``S.T``.

Per query, :func:`sklearn.metrics.roc_auc_score` with one positive (the true match) and n - 1 negatives
equals the fraction of distractors scored below the true match, ties counting one half — so a collapsed
model (all scores equal) scores exactly 0.5.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from alignlib.arrays import as_numpy
from alignlib.metrics.retrieval import topk_hits

__all__ = ["query_aucs", "rank_aucs", "mean_roc_curve", "discrimination_scores", "pairing_null", "TASKS"]

TASKS = ("encoding", "decoding")


def _check(scores) -> np.ndarray:
    s = as_numpy(scores).astype(np.float64)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < max(2, s.shape[0]):
        raise ValueError(f"scores must be (n_queries, n_candidates) with n_candidates >= max(2, n_queries), "
                         f"got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return s


def _labels(n_queries: int, n_candidates: int) -> np.ndarray:
    y = np.zeros((n_queries, n_candidates), dtype=int)
    y[np.arange(n_queries), np.arange(n_queries)] = 1
    return y


def query_aucs(scores) -> np.ndarray:
    """ROC AUC of each query (true match = column i positive, every other column negative), scikit-learn."""
    s = _check(scores)
    y = _labels(*s.shape)
    return np.array([roc_auc_score(y[i], s[i]) for i in range(s.shape[0])])


def rank_aucs(scores) -> np.ndarray:
    """The same per-query AUC as :func:`query_aucs`, vectorised (fraction of distractors scored below the
    true match, ties one half); for permutation nulls, where thousands of queries are scored."""
    s = _check(scores)
    n = s.shape[0]
    true = s[np.arange(n), np.arange(n)][:, None]
    below = (s < true).sum(axis=1)
    ties = (s == true).sum(axis=1) - 1
    return (below + 0.5 * ties) / (s.shape[1] - 1)


def mean_roc_curve(scores, grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vertically averaged ROC curve over queries (each query's TPR interpolated on a common FPR ``grid``).

    Its area equals the mean of :func:`query_aucs` up to the grid's resolution. Returns ``(fpr, tpr)``.
    """
    s = _check(scores)
    y = _labels(*s.shape)
    fpr_grid = np.linspace(0.0, 1.0, 201) if grid is None else np.asarray(grid, dtype=float)
    tprs = []
    for i in range(s.shape[0]):
        fpr, tpr, _ = roc_curve(y[i], s[i])
        tprs.append(np.interp(fpr_grid, fpr, tpr))
    tpr = np.mean(tprs, axis=0)
    tpr[0] = 0.0 if fpr_grid[0] == 0 else tpr[0]
    return fpr_grid, tpr


def discrimination_scores(image_by_response, ks: Iterable[int] = (1, 5)) -> dict[str, dict[str, np.ndarray]]:
    """Per-query AUC and top-k hits for both tasks from one (n_images x n_responses) score matrix.

    Returns ``{"encoding": {"auc": (n,), "top1": (n,), ...}, "decoding": {...}}`` (per-query values; take
    the mean for the table). Top-k uses expected tie-breaking (:func:`alignlib.metrics.retrieval.topk_hits`).
    """
    s = _check(image_by_response)
    if s.shape[0] != s.shape[1]:
        raise ValueError(f"the score matrix must pair n images with their n responses, got shape {s.shape}")
    out = {}
    for task, m in (("encoding", s), ("decoding", s.T)):
        out[task] = {"auc": query_aucs(m), **{f"top{k}": topk_hits(m, k) for k in ks}}
    return out


def pairing_null(score_matrices, n_permutations: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Pairing-permutation null of the per-item AUC sums: shuffle which response goes with which image.

    ``score_matrices``: square (n images x n responses) matrices of the SAME test pairs (e.g. one per training
    seed). Permutation b reorders the columns of every matrix by one common permutation (the pairing is
    shared by the seeds), then each item's encoding and decoding AUC (:func:`rank_aucs`) is averaged over the
    matrices. Returns ``{"encoding", "decoding", "average"}``, each ``(n_permutations,)``: the SUM over items
    of the seed-averaged item AUC (divide by the number of items for the mean; sums add up over folds).
    """
    mats = [_check(m) for m in score_matrices]
    if not mats or any(m.shape != mats[0].shape or m.shape[0] != m.shape[1] for m in mats):
        raise ValueError("pairing_null needs one or more square score matrices of the same shape")
    rng = np.random.default_rng(seed)
    n = mats[0].shape[0]
    out = {t: np.empty(n_permutations) for t in TASKS}
    for b in range(n_permutations):
        perm = rng.permutation(n)
        enc = np.mean([rank_aucs(m[:, perm]) for m in mats], axis=0)
        dec = np.mean([rank_aucs(m[:, perm].T) for m in mats], axis=0)
        out["encoding"][b], out["decoding"][b] = enc.sum(), dec.sum()
    out["average"] = (out["encoding"] + out["decoding"]) / 2
    return out
