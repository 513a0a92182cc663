"""Symmetric InfoNCE against the formula written out with loops."""
from __future__ import annotations

import math

import pytest
import torch

from alignlib.losses.info_nce import info_nce


def _loop_info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    a = [row / row.norm() for row in a.flatten(1)]
    b = [row / row.norm() for row in b.flatten(1)]
    n = len(a)
    s = [[float(a[i] @ b[j]) / tau for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        row_lse = math.log(sum(math.exp(s[i][j]) for j in range(n)))   # image i vs all neural
        col_lse = math.log(sum(math.exp(s[j][i]) for j in range(n)))   # neural i vs all images
        total += (row_lse - s[i][i]) + (col_lse - s[i][i])
    return total / (2 * n)


@pytest.mark.parametrize("tau", [1.0, 0.1, 0.05])
def test_info_nce_matches_loop(tau):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 9, generator=g, dtype=torch.float64)
    b = torch.randn(6, 9, generator=g, dtype=torch.float64)
    assert float(info_nce(a, b, tau)) == pytest.approx(_loop_info_nce(a, b, tau), rel=1e-10)


def test_info_nce_on_maps_and_symmetry():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 4, 8, generator=g, dtype=torch.float64)
    b = torch.randn(5, 4, 8, generator=g, dtype=torch.float64)
    loss = info_nce(a, b, 0.01)
    assert float(loss) == pytest.approx(_loop_info_nce(a, b, 0.01), rel=1e-9)
    torch.testing.assert_close(loss, info_nce(b, a, 0.01))
    # already-normalised inputs give the same value without re-normalising
    an, bn = torch.nn.functional.normalize(a.flatten(1), dim=1), torch.nn.functional.normalize(b.flatten(1), dim=1)
    torch.testing.assert_close(info_nce(an, bn, 0.01, normalize=False), loss)


def test_info_nce_reference_values():
    # identical embeddings for every item: uniform softmax, loss = log B
    z = torch.ones(7, 3)
    assert float(info_nce(z, z, 0.01)) == pytest.approx(math.log(7), rel=1e-6)
    # orthonormal matched pairs at low temperature: loss ~ 0
    e = torch.eye(4)
    assert float(info_nce(e, e, 0.01)) < 1e-6


def test_info_nce_gradients_and_validation():
    a = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(4, 5, requires_grad=True)
    info_nce(a, b).backward()
    assert a.grad is not None and b.grad is not None
    with pytest.raises(ValueError):
        info_nce(torch.randn(4, 5), torch.randn(4, 6))
    with pytest.raises(ValueError):
        info_nce(torch.randn(1, 5), torch.randn(1, 5))
    with pytest.raises(ValueError):
        info_nce(torch.randn(4, 5), torch.randn(4, 5), temperature=0.0)
    with pytest.raises(ValueError):
        info_nce(torch.randn(4), torch.randn(4))
