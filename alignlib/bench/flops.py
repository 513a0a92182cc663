"""FLOP counts and machine probes for the benchmark's "what limits speed" profile.

FLOPs of matmul-like ops (matmul, linear, SDPA forward and backward) are counted by torch's
:class:`torch.utils.flop_counter.FlopCounterMode`; :func:`tower_flops` runs the tower on the *meta*
device, so counting a 10,000-neuron step costs no arithmetic. Element-wise work (softmax, the
factored tower's per-sample passes) is not in those counts: :func:`factored_elementwise` counts it
from the code of :class:`alignlib.models.neural_tower.FactoredAttendAggregate`.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "tower_flops", "factored_elementwise", "matmul_probe", "bandwidth_probe",
           "FACTORED_PASSES"]

#: passes over the (B, rows, N) chunk per element in FactoredAttendAggregate (reads + writes of one
#: float each; counted from its code, softmax as 3 passes; the backward includes the recomputed softmax)
FACTORED_PASSES = {"forward": 13, "backward": 37}
#: arithmetic operations per (b, i, j) element (multiplies, adds, exp counted as one), same count
FACTORED_OPS = {"forward": 11, "backward": 25}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the matmul-like ops ``fn`` runs (forward and, if it calls it, backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def tower_flops(n_neurons: int, batch: int, attention: str = "sdpa", d_model: int = 512, n_heads: int = 1,
                mlp_hidden: int = 2048, backward: bool = True) -> int:
    """Matmul FLOPs of one neural-tower forward (+ backward) step, counted on the meta device."""
    from alignlib.models.neural_tower import NeuralTower

    with torch.device("meta"):
        tower = NeuralTower(n_neurons, d_model=d_model, n_heads=n_heads, mlp_hidden=mlp_hidden,
                            attention=attention)
        r = torch.randn(batch, n_neurons)
    tower.factored_chunk_rows = max(1, n_neurons // 4)    # the count does not depend on chunking

    def step():
        out = tower(r)
        if backward:
            out.sum().backward()

    return count_flops(step)


def factored_elementwise(n_neurons: int, batch: int, n_heads: int = 1, dtype_bytes: int = 4) -> dict[str, float]:
    """Element-wise work of the factored tower's per-sample part (forward + backward).

    ``ops``: arithmetic operations; ``bytes``: bytes moved through the chunk temporaries (they are
    sized to stay in cache on CPU, so most of these hit cache, not DRAM); ``elements``: B x N x N x heads.
    """
    elements = float(batch) * n_neurons * n_neurons * n_heads
    passes = FACTORED_PASSES["forward"] + FACTORED_PASSES["backward"]
    ops = FACTORED_OPS["forward"] + FACTORED_OPS["backward"]
    return {"elements": elements, "ops": elements * ops, "bytes": elements * passes * dtype_bytes}


def matmul_probe(n: int = 2048, repeats: int = 3, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """This machine's measured matmul throughput: best of ``repeats`` n x n @ n x n products, GFLOP/s."""
    from alignlib.bench.timing import time_call

    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    t = time_call(lambda: a @ b, warmup=1, repeats=repeats, device=device)
    return {"n": n, "seconds": t["min_s"], "gflops": 2.0 * n ** 3 / t["min_s"] / 1e9}


def bandwidth_probe(mib: int = 256, repeats: int = 3, device: str | torch.device = "cpu") -> dict[str, float]:
    """Measured memory bandwidth: best of ``repeats`` copies of a ``mib`` MiB float32 tensor, GB/s (read + write)."""
    from alignlib.bench.timing import time_call

    x = torch.ones(mib * (1 << 20) // 4, device=device)
    y = torch.empty_like(x)
    t = time_call(lambda: y.copy_(x), warmup=1, repeats=repeats, device=device)
    return {"mib": mib, "seconds": t["min_s"], "gbps": 2.0 * x.numel() * 4 / t["min_s"] / 1e9}
