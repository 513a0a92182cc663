"""Soft-DTW in torch against tslearn (value and gradient), its hard-DTW limit, and the Vi-ST loss."""
import numpy as np
import pytest
import torch
from tslearn.metrics import SoftDTWLossPyTorch, dtw
from tslearn.metrics import soft_dtw as tslearn_soft_dtw

from alignlib.losses.softdtw import rolling_soft_dtw, soft_dtw, vist_loss


@pytest.mark.parametrize("gamma", [0.1, 1.0])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_tslearn_value_and_gradient(gamma, normalize):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(3, 7 if normalize else 9, 4, dtype=torch.float64, generator=g)
    ref = SoftDTWLossPyTorch(gamma=gamma, normalize=normalize)(x, y)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    ours = soft_dtw(x, y, gamma, normalize=normalize)
    (our_grad,) = torch.autograd.grad(ours.sum(), x)
    # tslearn's torch loss accumulates in float32: compare at float32 precision ...
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(our_grad, ref_grad, rtol=1e-3, atol=2e-3)
    # ... and the value exactly against tslearn's float64 numpy soft-DTW
    if not normalize:
        exact = [tslearn_soft_dtw(x[b].detach().numpy(), y[b].numpy(), gamma=gamma) for b in range(3)]
        np.testing.assert_allclose(ours.detach().numpy(), exact, rtol=1e-10)


def test_gradient_is_exact():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 2, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(2, 6, 2, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: soft_dtw(a, y, 0.5), (x,))


def test_small_gamma_approaches_dtw():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(1, 8, 3, dtype=torch.float64, generator=g), torch.randn(1, 10, 3, dtype=torch.float64, generator=g)
    hard = dtw(x[0].numpy(), y[0].numpy()) ** 2  # tslearn's dtw is the sqrt of the summed squared costs
    assert abs(soft_dtw(x, y, 1e-3).item() - hard) < 1e-2 * hard
    assert soft_dtw(x, y, 1.0).item() < hard  # soft-min lies below the min


def test_vist_loss_terms():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(2, 40, 5, generator=g)
    assert vist_loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-6)  # normalised soft-DTW: 0 at x = y
    neg = -torch.ones(2, 40, 5)
    expected = 0.1 * torch.sqrt(((neg - target) ** 2).mean()) + 0.5 * 1.0
    only_rmse_relu = vist_loss(neg, target, gamma_weight=0.0)
    assert only_rmse_relu.item() == pytest.approx(expected.item(), rel=1e-6)
    assert vist_loss(neg, target).item() > only_rmse_relu.item()
    pred = torch.randn(2, 40, 5, generator=g, requires_grad=True)
    vist_loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # windows: start 0, stride 3, ... < T - 6 -> 12 windows of 6 for T = 40
    assert rolling_soft_dtw(pred.detach(), target, 6).shape == ()
    with pytest.raises(ValueError):
        vist_loss(pred, target[:, :30])
