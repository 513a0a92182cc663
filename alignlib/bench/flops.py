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

__all__ = ["count_flops", "tower_flops", "factored_elementwise", "factored_memory_model",
           "matmul_probe", "bandwidth_probe", "FACTORED_PASSES", "FACTORED_KERNEL_SWEEPS"]

#: passes over the (B, rows, N) chunk per element in the torch path of FactoredAttendAggregate (the
#: path CUDA runs; reads + writes of one float each, counted from its code, logsumexp as 2 passes; the
#: backward includes the softmax recomputed from the saved log-sum-exp)
FACTORED_PASSES = {"forward": 16, "backward": 37}
#: sweeps over each (b, i) row of N elements in the fused C kernel (alignlib.models.factored_kernel):
#: forward a max sweep and an exp sweep, backward one sweep; rows stay in cache, nothing B x N x N
#: is written to memory
FACTORED_KERNEL_SWEEPS = {"forward": 2, "backward": 1}
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


def factored_elementwise(n_neurons: int, batch: int, n_heads: int = 1, dtype_bytes: int = 4,
                         path: str = "torch") -> dict[str, float]:
    """Element-wise work of the factored tower's per-sample part (forward + backward).

    ``ops``: arithmetic operations; ``elements``: B x N x N x heads; ``bytes``: for ``path="torch"``
    the bytes moved through the chunk temporaries (:data:`FACTORED_PASSES`; on CPU they are sized to
    stay in cache, on a GPU they stream through memory), for ``path="kernel"`` the bytes of the G and
    H rows the fused kernel reads once per block (forward: 2 matrices, backward: 2 read + 2 written):
    its B x N x N work stays in cache.
    """
    if path not in ("torch", "kernel"):
        raise ValueError(f"path must be 'torch' or 'kernel', got {path!r}")
    elements = float(batch) * n_neurons * n_neurons * n_heads
    ops = FACTORED_OPS["forward"] + FACTORED_OPS["backward"]
    if path == "torch":
        moved = elements * (FACTORED_PASSES["forward"] + FACTORED_PASSES["backward"]) * dtype_bytes
    else:
        moved = 6.0 * n_neurons * n_neurons * n_heads * dtype_bytes
    return {"elements": elements, "ops": elements * ops, "bytes": moved}


def factored_memory_model(n_neurons: int, batch: int, d_model: int = 512, n_heads: int = 1,
                          device: str = "cuda", dtype_bytes: int = 4, threads: int = 1,
                          kernel: bool | None = None) -> dict[str, float]:
    """Bytes the factored attention + aggregation holds at its peak (one head's backward), beyond
    the tower's parameters, their gradients and the MLP, from the code of
    :class:`alignlib.models.neural_tower.FactoredAttendAggregate`.

    Terms: the per-head factors a, c, hq, v and their gradients (8 N d_h); the G, H, dG, dH row
    blocks (4 rows x N, rows from ``FACTORED_BLOCK_ELEMENTS``); the per-sample tensors r, u, lse,
    the incoming gradient, dr and r * scale (6 B N); and either the C kernel's per-thread dr parts
    (threads x B x N) or the torch path's chunk temporaries (about 4 chunks of
    ``FACTORED_CHUNK_ELEMENTS``, each at most B x rows x N). ``nxn_stored_before`` is what the
    previous implementation held instead of the blocks: G, H, dG, dH whole (4 N^2).
    """
    from alignlib.models.neural_tower import FACTORED_BLOCK_ELEMENTS, FACTORED_CHUNK_ELEMENTS, _rows_for

    dev = torch.device(device)
    n, dh = int(n_neurons), d_model // n_heads
    kernel = dev.type == "cpu" if kernel is None else kernel
    rows = _rows_for(FACTORED_BLOCK_ELEMENTS, n, n, dev)
    chunk_rows = _rows_for(FACTORED_CHUNK_ELEMENTS, batch * n, rows, dev)
    terms = {"factors_and_grads": 8.0 * n * dh, "blocks": 4.0 * rows * n,
             "per_sample": 6.0 * batch * n,
             "temporaries": float(threads * batch * n) if kernel else 4.0 * batch * chunk_rows * n}
    out = {k: v * dtype_bytes for k, v in terms.items()}
    out["total"] = sum(out.values())
    out["block_rows"] = rows
    out["nxn_stored_before"] = 4.0 * n * n * dtype_bytes
    return out


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
