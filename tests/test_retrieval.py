"""Retrieval metrics against brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlib.metrics.retrieval import (chance_topk, mean_rank_z, representative_queries, retrieval_ranks,
                                       retrieval_rows, similarity_matrix, topk_accuracy, topk_hits)


def _brute(s, k):
    """Rank and P(rank <= k) by enumerating every random tie order of the true item among its ties."""
    out = []
    for i in range(len(s)):
        greater = sum(v > s[i][i] for v in s[i])
        ties = sum(v == s[i][i] for j, v in enumerate(s[i]) if j != i)
        positions = [greater + 1 + t for t in range(ties + 1)]          # equally likely
        out.append((np.mean(positions), np.mean([p <= k for p in positions]), greater + 1, greater + ties + 1))
    return out


@pytest.mark.parametrize("shape", [(20, 20), (12, 30)])
def test_ranks_and_topk_match_brute_force(shape):
    rng = np.random.default_rng(0)
    for s in (rng.standard_normal(shape), rng.integers(0, 4, shape).astype(float)):  # the second has ties
        for k in (1, 3, 5, 10):
            ref = _brute(s.tolist(), k)
            np.testing.assert_allclose(retrieval_ranks(s), [r[0] for r in ref])
            np.testing.assert_allclose(topk_hits(s, k), [r[1] for r in ref])
            np.testing.assert_array_equal(retrieval_ranks(s, ties="optimistic"), [r[2] for r in ref])
            np.testing.assert_array_equal(retrieval_ranks(s, ties="pessimistic"), [r[3] for r in ref])
            assert topk_accuracy(s, (k,))[k] == pytest.approx(np.mean([r[1] for r in ref]))
        # torch input gives the same numbers
        assert topk_accuracy(torch.from_numpy(s)) == topk_accuracy(s)


@pytest.mark.parametrize("n", [10, 100])
def test_collapsed_embeddings_score_exactly_chance(n):
    """A model that maps every stimulus to the same embedding must not look good."""
    rng = np.random.default_rng(3)
    z_img = np.tile(rng.standard_normal(64), (n, 1))          # collapsed image tower
    z_neu = rng.standard_normal((n, 64))
    for zn, zi in ((z_neu, z_img), (z_img, z_img), (np.tile(z_neu[:1], (n, 1)), z_img)):
        sim = similarity_matrix(zn, zi)
        for k in (1, 5, 10):
            assert topk_accuracy(sim, (k,))[k] == pytest.approx(chance_topk(n, k))
            assert topk_accuracy(sim, (k,), ties="pessimistic")[k] <= chance_topk(n, k)
        np.testing.assert_allclose(retrieval_ranks(sim), (n + 1) / 2)
        rows = retrieval_rows(sim, ks=(1,), model="collapsed")
        assert rows[0]["accuracy"] == pytest.approx(1 / n) and rows[0]["chance"] == pytest.approx(1 / n)
    # the legacy convention would have called it perfect: that is why it is not the default
    assert topk_accuracy(similarity_matrix(z_img, z_img), (1,), ties="optimistic")[1] == 1.0
    with pytest.raises(ValueError):
        retrieval_ranks(np.zeros((3, 3)), ties="random")


def test_representative_queries_span_best_to_worst():
    s = np.eye(6) + 0.01 * np.arange(6)[None, :]
    s[5, 5] = -1  # query 5 ranks last
    q, topk = representative_queries(s, n=3, k=2)
    assert q[0] != 5 and q[-1] == 5 and topk.shape == (3, 2)


def test_similarity_matrix_is_cosine():
    rng = np.random.default_rng(1)
    zn, zi = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))
    s = similarity_matrix(zn, torch.from_numpy(zi))
    for i in range(4):
        for j in range(5):
            expected = zn[i] @ zi[j] / np.linalg.norm(zn[i]) / np.linalg.norm(zi[j])
            assert s[i, j] == pytest.approx(expected)
    # maps are flattened; identical embeddings retrieve perfectly
    z = rng.standard_normal((8, 2, 3))
    assert topk_accuracy(similarity_matrix(z, z), ks=(1,))[1] == 1.0


def test_chance_and_validation():
    assert chance_topk(280, 1) == pytest.approx(1 / 280)
    assert chance_topk(280, 10) == pytest.approx(10 / 280)
    assert chance_topk(5, 10) == 1.0
    rng = np.random.default_rng(2)
    # random similarities: top-k accuracy averages to about chance
    accs = [topk_accuracy(rng.standard_normal((50, 50)), ks=(5,))[5] for _ in range(200)]
    assert np.mean(accs) == pytest.approx(chance_topk(50, 5), abs=0.01)
    with pytest.raises(ValueError):
        retrieval_ranks(np.zeros((5, 3)))
    with pytest.raises(ValueError):
        topk_accuracy(np.zeros((3, 3)), ks=(0,))
    with pytest.raises(ValueError):
        similarity_matrix(np.zeros((2, 3)), np.zeros((2, 4)))


def test_mean_rank_z_is_zero_for_a_collapsed_model_and_standard_normal_for_random_ones():
    n = 100
    assert mean_rank_z(np.zeros((n, n))) == 0.0                 # every tie: expected rank (n + 1) / 2
    assert mean_rank_z(np.eye(n)) == pytest.approx((n - 1) / 2 / np.sqrt((n * n - 1) / (12 * n)))
    rng = np.random.default_rng(0)
    z = [mean_rank_z(rng.standard_normal((n, n))) for _ in range(400)]
    assert abs(np.mean(z)) < 0.2 and 0.8 < np.std(z) < 1.2      # the null it is scaled by
    with pytest.raises(ValueError):
        mean_rank_z(np.zeros((1, 1)))
