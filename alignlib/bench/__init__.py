"""Benchmarks: speed and memory of the towers (the benchmark chapter; ``python -m alignlib.bench``).

* :mod:`.timing` — wall time with warm-up and repeats; peak memory of one measurement in a fresh
  subprocess (``ru_maxrss`` on CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
* :mod:`.flops` — FLOP counts (torch's ``FlopCounterMode``, on the meta device for large sizes),
  the factored tower's element-wise work, and probes of the machine's matmul and memory throughput.
* :mod:`.official` — a stand-in of the official DINA neural tower's structure (per-neuron linears
  looped in Python), or the official module itself from a local checkout.
* :mod:`.cases` — the measured cases; :mod:`.suite` — the runs behind the CSVs in ``results/bench``.
"""
from alignlib.bench.flops import count_flops, matmul_probe, bandwidth_probe, tower_flops, factored_elementwise
from alignlib.bench.timing import time_call, run_isolated

__all__ = ["count_flops", "matmul_probe", "bandwidth_probe", "tower_flops", "factored_elementwise",
           "time_call", "run_isolated"]
