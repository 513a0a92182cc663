"""Timing with warm-up and repeats, and peak memory of one measurement in a fresh process.

``tracemalloc`` does not see torch's CPU allocations, so peak memory on CPU is the process's
``ru_maxrss`` / ``VmHWM`` (high-water mark of resident memory) measured in a fresh subprocess per
measurement, minus the resident memory after ``import torch`` and the case's imports (the *baseline*;
the mark is reset there on Linux, so import-time transients do not count). On CUDA it is
``torch.cuda.max_memory_allocated`` after a reset.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import torch

__all__ = ["time_call", "run_isolated", "peak_rss_mb", "current_rss_mb", "reset_peak_rss", "synchronize"]


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for queued kernels (CUDA); a no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], warmup: int = 1, repeats: int = 3,
              device: str | torch.device = "cpu") -> dict[str, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (seconds, wall clock).

    Returns ``{"times": [...], "median_s", "min_s"}``; CUDA work is synchronised around each call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"times": times, "median_s": statistics.median(times), "min_s": min(times)}


def peak_rss_mb() -> float:
    """This process's peak resident memory, MiB: ``VmHWM`` (reset by :func:`reset_peak_rss`) where
    /proc is readable, else ``ru_maxrss`` (KiB on Linux), which cannot be reset."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"] / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """This process's resident memory now, MiB (NaN where /proc is unreadable)."""
    return _proc_status().get("VmRSS", float("nan")) / 1024.0


def reset_peak_rss() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = float(rest.split()[0])    # kB
    except OSError:
        pass
    return out


def run_isolated(case: str, params: dict[str, Any], timeout: float = 900.0,
                 threads: int | None = None) -> dict[str, Any]:
    """Run ``alignlib.bench.cases.<case>(**params)`` in a fresh Python process; return its row.

    The row holds the case's own fields plus ``peak_mb`` (peak memory of the measured work above the
    baseline, MiB), ``baseline_mb`` and ``status`` ("ok", "error: ...", "timeout after ...").
    ``threads`` sets OMP/MKL threads and ``torch.set_num_threads`` in the child.
    """
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(int(threads))
    cmd = [sys.executable, "-m", "alignlib.bench.worker", case, json.dumps(params)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": case, **params, "status": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"case": case, **params, "status": f"error: {tail[:300]}"}
    return json.loads(lines[-1])
