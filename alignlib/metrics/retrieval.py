"""Cross-modal retrieval metrics (DINA §4: identify the stimulus from the neural response).

Convention: ``similarity[i, j]`` scores neural query i against candidate image j and the
true image of query i is candidate i (so the matrix has at least as many columns as rows;
extra columns are distractors). With ``g_i = #{j : s_ij > s_ii}`` candidates scoring higher and
``e_i = #{j != i : |s_ij - s_ii| <= 1e-12}`` tying with the true item, ties are counted by ``ties``:

* ``"expected"`` (default): the expected result of breaking ties at random — rank
  ``1 + g_i + e_i / 2`` and P(rank <= k) = clip((k - g_i) / (e_i + 1), 0, 1). A collapsed model (all
  similarities equal) scores exactly chance, k / n.
* ``"pessimistic"``: every tie ranks above the true item (rank ``1 + g_i + e_i``).
* ``"optimistic"``: the true item wins every tie (rank ``1 + g_i``). This was this book's first
  convention; it lets a collapsed model score 100 % and is kept only to show that.

Top-k accuracy is the mean over queries of P(rank <= k). Chance level for n candidates is k / n.

All functions accept NumPy arrays or torch tensors and return NumPy values.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from alignlib.arrays import as_numpy

__all__ = ["similarity_matrix", "retrieval_ranks", "mean_rank_z", "topk_hits", "topk_accuracy", "chance_topk",
           "TIES", "retrieval_rows", "representative_queries", "matched_margin"]

TIES = ("expected", "pessimistic", "optimistic")
#: similarities closer than this count as tied: a matrix product of identical rows can differ in the last
#: bits between columns (BLAS blocking), which must not turn a collapsed model's ties into a ranking
TIE_TOLERANCE = 1e-12


def similarity_matrix(z_neu, z_img) -> np.ndarray:
    """Cosine similarities (n_neu, n_img) between neural queries and candidate images.

    Rows are flattened and L2-normalised here (zero rows stay zero), in float64.
    """
    a = as_numpy(z_neu).astype(np.float64)
    b = as_numpy(z_img).astype(np.float64)
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _check_similarity(similarity) -> np.ndarray:
    s = as_numpy(similarity)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < s.shape[0]:
        raise ValueError(f"similarity must be (n_queries, n_candidates) with n_candidates >= n_queries, "
                         f"got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("similarity contains NaN")
    return s


def _greater_equal(similarity) -> tuple[np.ndarray, np.ndarray]:
    s = _check_similarity(similarity)
    n = s.shape[0]
    true = s[np.arange(n), np.arange(n)][:, None]
    greater = (s > true + TIE_TOLERANCE).sum(axis=1)
    ties = (np.abs(s - true) <= TIE_TOLERANCE).sum(axis=1) - 1
    return greater, ties


def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")


def retrieval_ranks(similarity, ties: str = "expected") -> np.ndarray:
    """1-based rank of the true candidate (column i) for each query row i (float for ``ties="expected"``)."""
    _check_ties(ties)
    g, e = _greater_equal(similarity)
    if ties == "expected":
        return 1.0 + g + e / 2.0
    return 1 + g + (e if ties == "pessimistic" else 0)


def mean_rank_z(similarity) -> float:
    """How far the mean rank of the true candidates lies below chance, in standard errors of a random
    ranking: ``((n + 1) / 2 - mean rank) / sqrt((n² - 1) / (12 n))`` for n queries over n candidates
    (a random ranking's rank is uniform on 1..n, variance (n² - 1) / 12; the n queries' ranks are taken
    as independent). About 0 for a collapsed or untrained model, large for one that retrieves."""
    ranks = retrieval_ranks(similarity)
    n = len(ranks)
    if n < 2:
        raise ValueError("mean_rank_z needs at least 2 queries")
    return float(((n + 1) / 2 - ranks.mean()) / np.sqrt((n * n - 1) / (12.0 * n)))


def topk_hits(similarity, k: int, ties: str = "expected") -> np.ndarray:
    """Per query, the probability that the true candidate ranks within the top ``k`` (0/1 without ties)."""
    _check_ties(ties)
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    g, e = _greater_equal(similarity)
    if ties == "expected":
        return np.clip((int(k) - g) / (e + 1.0), 0.0, 1.0)
    rank = 1 + g + (e if ties == "pessimistic" else 0)
    return (rank <= int(k)).astype(float)


def topk_accuracy(similarity, ks: Iterable[int] = (1, 5, 10), ties: str = "expected") -> dict[int, float]:
    """Mean over queries of P(true candidate within the top k), for each k in ``ks``."""
    return {int(k): float(np.mean(topk_hits(similarity, k, ties))) for k in ks}


def chance_topk(n_candidates: int, k: int) -> float:
    """Expected top-k accuracy of a random ranking over ``n_candidates``: min(k, n) / n."""
    if n_candidates < 1 or k < 1:
        raise ValueError("n_candidates and k must be >= 1")
    return min(int(k), int(n_candidates)) / int(n_candidates)


def retrieval_rows(similarity, ks: Iterable[int] = (1, 5, 10), n_resamples: int = 2000, seed: int = 0,
                   keep_hits: bool = False, **labels) -> list[dict]:
    """Long-format rows for a results table from a (queries x candidates) ``similarity`` matrix
    (:func:`similarity_matrix`): ``labels`` (e.g. mouse, model, variant, seed) plus k, accuracy, its 95 %
    percentile-bootstrap CI over queries, the number of candidates and chance. ``keep_hits``: also
    the per-query hits (:func:`topk_hits`, in query order) under ``hits``, for intervals pooled over
    rows."""
    from alignlib.metrics.uncertainty import bootstrap_ci

    sim = _check_similarity(similarity)
    rows = []
    for k in ks:
        hits = topk_hits(sim, k)
        lo, hi = bootstrap_ci(hits, n_resamples=n_resamples, seed=seed)
        rows.append({**labels, "k": int(k), "accuracy": float(hits.mean()), "ci_low": lo, "ci_high": hi,
                     "n_test": sim.shape[1], "chance": chance_topk(sim.shape[1], k),
                     **({"hits": hits} if keep_hits else {})})
    return rows


def representative_queries(similarity, n: int = 5, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Queries spread evenly over the rank distribution (best to worst), and each one's top-k candidates.

    Returns ``(query_index, topk_candidates)`` with shapes (n,) and (n, k).
    """
    s = _check_similarity(similarity)
    ranks = retrieval_ranks(s)
    order = np.argsort(ranks, kind="stable")
    picks = order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]
    topk = np.argsort(-s[picks], axis=1, kind="stable")[:, :k]
    return picks, topk


def matched_margin(similarity) -> np.ndarray:
    """Per query (row): its matched similarity minus the mean of its unmatched ones,
    ``S[i, i] - mean_{j != i} S[i, j]`` (DINA App. A, Fig. A.1: "corresponding image-neural pairs
    consistently achieve higher similarity than non-matching pairs"). A collapsed model (every row
    constant) scores 0 for every query."""
    s = _check_similarity(similarity)
    n = len(s)
    if n < 2:
        raise ValueError("matched_margin needs at least two test pairs")
    diag = np.diag(s)
    return diag - (s.sum(axis=1) - diag) / (n - 1)
