"""The exact factored neural tower (attention="factored") against the direct computation."""
from __future__ import annotations

import pytest
import torch

from alignlib.models.neural_tower import FactoredAttendAggregate, NeuralTower


def _pair(dtype, residual, heads=1, n=37, d=16, seed=0):
    torch.manual_seed(seed)
    direct = NeuralTower(n, d_model=d, n_heads=heads, mlp_hidden=8, map_size=(2, 4), residual=residual).to(dtype)
    with torch.no_grad():   # non-zero biases everywhere, so every term of the identity is exercised
        for lin in (direct.q_proj, direct.k_proj, direct.v_proj, direct.out_proj):
            lin.bias.uniform_(-0.5, 0.5)
    fast = NeuralTower(n, d_model=d, n_heads=heads, mlp_hidden=8, map_size=(2, 4), residual=residual,
                       attention="factored").to(dtype)
    fast.load_state_dict(direct.state_dict())   # same parameters, same checkpoint
    fast.factored_chunk_rows = 5                 # several chunks, the last one ragged
    r = torch.randn(6, n, dtype=dtype)
    r[0, :3] = 0.0                               # silent neurons: no division by r anywhere
    return direct, fast, r


def _grads(model, r):
    model.zero_grad(set_to_none=True)
    r = r.clone().requires_grad_(True)
    out = model(r)
    (out * torch.linspace(-1, 1, out[0].numel(), dtype=out.dtype).reshape(out.shape[1:])).sum().backward()
    # W_k's bias only shifts logits by constants along j (softmax-invariant): no gradient in the
    # factored form, a rounding-level one in the direct form; both are compared as arrays
    return out.detach(), r.grad, {k: torch.zeros_like(p) if p.grad is None else p.grad
                                  for k, p in model.named_parameters()}


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_factored_equals_direct_float64_with_gradients(residual, heads, factored_path):
    direct, fast, r = _pair(torch.float64, residual, heads)
    u_direct = direct.aggregate(direct.attend(direct.tokens(r)))
    torch.testing.assert_close(fast.factored_aggregate(r), u_direct, rtol=0, atol=1e-12)
    out0, gr0, gp0 = _grads(direct, r)
    out1, gr1, gp1 = _grads(fast, r)
    torch.testing.assert_close(out1, out0, rtol=0, atol=1e-12)
    torch.testing.assert_close(gr1, gr0, rtol=1e-10, atol=1e-12)
    assert gp0.keys() == gp1.keys()
    for name in gp0:
        torch.testing.assert_close(gp1[name], gp0[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("residual", [False, True])
def test_factored_within_float32_tolerance(residual, factored_path):
    direct, fast, r = _pair(torch.float32, residual, n=200, d=32)
    out0, gr0, gp0 = _grads(direct, r)
    out1, gr1, gp1 = _grads(fast, r)
    torch.testing.assert_close(out1, out0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gr1, gr0, rtol=1e-3, atol=1e-5)
    for name in gp0:   # relative to the largest entry (k_proj.bias: ~1e-9 in float32 vs exactly 0)
        scale = max(gp0[name].abs().max().item(), 1e-3 * max(g.abs().max().item() for g in gp0.values()))
        assert (gp1[name] - gp0[name]).abs().max().item() / scale < 1e-3, name


@pytest.fixture(params=["kernel", "torch"])
def factored_path(request, monkeypatch):
    """Run a test through the compiled C kernel and through the torch path (CUDA's path)."""
    from alignlib.models import factored_kernel

    if request.param == "torch":
        monkeypatch.setenv(factored_kernel.KERNEL_ENV, "0")
    elif factored_kernel.load() is None:
        pytest.skip("no C compiler here: the kernel path is not built")
    return request.param


def test_factored_function_gradcheck(factored_path):
    from alignlib.models import factored_kernel

    torch.manual_seed(1)
    shapes = ((3, 9), (9, 4), (9, 4), (9,), (9, 4), (9, 4))
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    assert factored_kernel.available(args[0]) == (factored_path == "kernel")
    assert torch.autograd.gradcheck(lambda *x: FactoredAttendAggregate.apply(*x, 0.3, 4), args)


@pytest.mark.parametrize("residual", [False, True])
def test_kernel_and_torch_paths_agree_float32(residual, monkeypatch):
    from alignlib.models import factored_kernel

    if factored_kernel.load() is None:
        pytest.skip("no C compiler here: the kernel path is not built")
    _, fast, r = _pair(torch.float32, residual, heads=2, n=300, d=32)
    fast.factored_chunk_rows = 70
    out1, gr1, gp1 = _grads(fast, r)
    monkeypatch.setenv(factored_kernel.KERNEL_ENV, "0")
    out0, gr0, gp0 = _grads(fast, r)
    torch.testing.assert_close(out1, out0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gr1, gr0, rtol=1e-4, atol=1e-6)
    for name in gp0:
        scale = max(gp0[name].abs().max().item(), 1e-6)
        assert (gp1[name] - gp0[name]).abs().max().item() / scale < 1e-4, name


def test_factored_chunking_does_not_change_result(factored_path):
    _, fast, r = _pair(torch.float64, False)
    u5 = fast.factored_aggregate(r)
    fast.factored_chunk_rows = None              # one chunk sized by the element budget
    torch.testing.assert_close(fast.factored_aggregate(r), u5, rtol=0, atol=1e-13)


def test_factored_refuses_layernorm_token_bias_and_dropout():
    r = torch.randn(2, 10)
    with pytest.raises(ValueError, match="LayerNorm"):
        NeuralTower(10, d_model=8, mlp_hidden=4, residual_norm=True, attention="factored")(r)
    with pytest.raises(ValueError, match="rank-one"):
        NeuralTower(10, d_model=8, mlp_hidden=4, token_bias=True, attention="factored")(r)
    with pytest.raises(ValueError, match="dropout"):
        NeuralTower(10, d_model=8, mlp_hidden=4, dropout=0.1, attention="factored").train()(r)
    with pytest.raises(ValueError, match="attention must be one of"):
        NeuralTower(10, d_model=8, attention="flash")


def test_naive_attention_equals_sdpa():
    torch.manual_seed(0)
    tower = NeuralTower(30, d_model=16, n_heads=2, mlp_hidden=8, map_size=(2, 4)).double()
    r = torch.randn(4, 30, dtype=torch.float64)
    ref = tower(r)
    tower.attention = "naive"
    torch.testing.assert_close(tower(r), ref, rtol=0, atol=1e-12)


def test_default_is_sdpa_and_state_dict_unchanged():
    tower = NeuralTower(10, d_model=8, mlp_hidden=4)
    assert tower.attention == "sdpa"
    fast = NeuralTower(10, d_model=8, mlp_hidden=4, attention="factored")
    assert list(fast.state_dict()) == list(tower.state_dict())
