"""The benchmark helpers: timing, FLOP counts, the official-structure stand-in, the suite's tables."""
from __future__ import annotations

import math

import pytest
import torch

from alignlib.bench import count_flops, factored_elementwise, time_call, tower_flops
from alignlib.bench.official import OfficialStyleNeuralTower
from alignlib.bench.suite import naive_attention_bytes, run_suite
from alignlib.bench.timing import run_isolated
from alignlib.models.neural_tower import NeuralTower


def test_time_call_returns_positive_times_with_warmup_and_repeats():
    calls = []
    t = time_call(lambda: calls.append(sum(range(1000))), warmup=2, repeats=3)
    assert len(calls) == 5 and len(t["times"]) == 3
    assert all(x > 0 for x in t["times"]) and 0 < t["min_s"] <= t["median_s"]
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)


def test_flop_counter_exact_on_known_matmul():
    a, b = torch.randn(17, 33), torch.randn(33, 5)
    assert count_flops(lambda: a @ b) == 2 * 17 * 33 * 5
    x = torch.randn(3, 8, requires_grad=True)
    lin = torch.nn.Linear(8, 4, bias=False)
    # forward 2*3*8*4; backward: grad of input and of weight, each the same size
    assert count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * 3 * 8 * 4


def test_tower_flops_scale_and_factored_is_cheaper():
    sdpa = tower_flops(400, 4, "sdpa", d_model=32, mlp_hidden=16)
    naive = tower_flops(400, 4, "naive", d_model=32, mlp_hidden=16)
    fact = tower_flops(400, 4, "factored", d_model=32, mlp_hidden=16)
    assert sdpa == naive                      # same matmuls, one fused
    # attention matmuls: forward 2 x 2 B N^2 d, backward twice that
    assert sdpa >= 12 * 4 * 400 ** 2 * 32
    assert fact < sdpa / 2                    # G, H once per batch instead of per sample
    e = factored_elementwise(400, 4)
    assert e["elements"] == 4 * 400 ** 2 and e["bytes"] > e["elements"]


def test_straightforward_attention_equals_sdpa_numerically():
    torch.manual_seed(0)
    tower = NeuralTower(64, d_model=32, n_heads=1, mlp_hidden=16, map_size=(2, 4))
    r = torch.randn(3, 64)
    ref = tower(r)
    ref.sum().backward()
    g_ref = tower.q_proj.weight.grad.clone()
    tower.zero_grad()
    tower.attention = "naive"
    out = tower(r)
    out.sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tower.q_proj.weight.grad, g_ref, rtol=1e-4, atol=1e-6)


def test_official_stand_in_has_the_official_structure():
    model = OfficialStyleNeuralTower(7, d_model=8)
    assert len(model.embed) == len(model.unembed) == 7
    assert model.embed[0].in_features == 1 and model.unembed[0].out_features == 1
    out = model(torch.randn(3, 7))
    assert out.shape == (3, 1, 16, 64)
    assert out.amin().item() >= 0 and out.amax().item() <= 1   # per-sample min-max


def test_naive_memory_estimate():
    assert naive_attention_bytes(10_000, 8) == 3 * 8 * 10_000 ** 2 * 4


def test_run_isolated_reports_peak_memory_and_errors():
    row = run_isolated("tower_step", dict(n_neurons=50, batch=2, d_model=16, attention="factored", repeats=1),
                       threads=1, timeout=120)
    assert row["status"] == "ok" and row["median_s"] > 0 and row["peak_mb"] >= 0 and row["baseline_mb"] > 0
    bad = run_isolated("tower_step", dict(n_neurons=50, batch=2, attention="flash"), threads=1, timeout=120)
    assert bad["status"].startswith("error") and "attention must be one of" in bad["status"]


def test_suite_writes_tables_with_provenance_and_skips_oversized(tmp_path):
    cfg = dict(sizes=[40], batches=[2], impls=["sdpa", "naive"], d_model=16, amps=[False], repeats=1,
               memory_limit_gb=1e-9)
    frames = run_suite(tmp_path, "cpu", cfg, tables=["tower"], threads=1, timeout=120)
    df = frames["tower"]
    assert (tmp_path / "cpu_tower.csv").is_file()
    assert {"device_name", "torch", "date", "git_commit", "threads", "command"} <= set(df.columns)
    naive = df[df.attention == "naive"].iloc[0]
    assert naive.status.startswith("skipped") and math.isnan(naive.median_s)
    assert df[df.attention == "sdpa"].iloc[0].status == "ok"
