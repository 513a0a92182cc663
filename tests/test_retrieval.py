"""Retrieval metrics against brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlib.metrics.retrieval import chance_topk, retrieval_ranks, similarity_matrix, topk_accuracy


def _brute_ranks(s):
    n_q, n_c = len(s), len(s[0])
    ranks = []
    for i in range(n_q):
        greater = 0
        for j in range(n_c):
            if s[i][j] > s[i][i]:
                greater += 1
        ranks.append(1 + greater)
    return ranks


@pytest.mark.parametrize("shape", [(20, 20), (12, 30)])
def test_ranks_and_topk_match_brute_force(shape):
    rng = np.random.default_rng(0)
    for s in (rng.standard_normal(shape), rng.integers(0, 4, shape).astype(float)):  # the second has ties
        ranks = _brute_ranks(s.tolist())
        np.testing.assert_array_equal(retrieval_ranks(s), ranks)
        ks = (1, 3, 5, 10)
        acc = topk_accuracy(s, ks)
        for k in ks:
            assert acc[k] == pytest.approx(sum(r <= k for r in ranks) / shape[0])
        # torch input gives the same numbers
        assert topk_accuracy(torch.from_numpy(s), ks) == acc


def test_ties_count_in_favour_of_true_item():
    s = np.zeros((3, 3))
    np.testing.assert_array_equal(retrieval_ranks(s), [1, 1, 1])


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
