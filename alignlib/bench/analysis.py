"""Tables the benchmark pages show, computed from the suite's rows (CPU page runs and CLI CSVs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alignlib.bench.suite import TABLES

__all__ = ["load_cli_tables", "speedups", "target_rows", "limits_table", "label_of",
           "FACTORED_SPEEDUP_TARGET", "FACTORED_MEMORY_TARGET_MB"]

#: issue 21's targets for the factored tower on the 2-core CPU: speed-up over SDPA at N = 10,000,
#: d = 512, batch 32, and memory above the process baseline at batch 8 (MiB; "under 1 GB" read as the
#: issue reads the bench's MiB, 1,667 MiB = "1.67 GB")
FACTORED_SPEEDUP_TARGET = 10.0
FACTORED_MEMORY_TARGET_MB = 1000


def load_cli_tables(folder: str | Path, prefix: str) -> dict[str, pd.DataFrame]:
    """``<folder>/<prefix>_<table>.csv`` written by ``python -m alignlib.bench`` (missing ones left out)."""
    out = {}
    for t in TABLES:
        p = Path(folder) / f"{prefix}_{t}.csv"
        if p.is_file():
            out[t] = pd.read_csv(p)
    return out


def label_of(df: pd.DataFrame) -> str:
    """'<device name>, torch <v>, <date>, commit <sha>: `<command>`' from a table's provenance columns."""
    if df is None or df.empty or "device_name" not in df:
        return "not measured"
    r = df.iloc[0]
    return (f"{r.device_name}, torch {r.torch}, {str(r.date)[:10]}, commit {str(r.git_commit)[:10]}: "
            f"`{r.command}`")


def speedups(tower: pd.DataFrame, baseline: str = "sdpa") -> pd.DataFrame:
    """Per (amp, batch, N): each implementation's time and peak memory, and its speed-up over ``baseline``."""
    ok = tower[tower.status == "ok"].copy()
    if "amp" not in ok:
        ok["amp"] = False
    keys = ["amp", "batch", "n_neurons"]
    base = ok[ok.attention == baseline][keys + ["median_s", "peak_mb"]].rename(
        columns={"median_s": "base_s", "peak_mb": "base_mb"})
    m = ok.merge(base, on=keys, how="left")
    m["speedup_vs_" + baseline] = m.base_s / m.median_s
    m["memory_ratio_vs_" + baseline] = m.peak_mb / m.base_mb
    return m[keys + ["attention", "median_s", "peak_mb", "speedup_vs_" + baseline,
                     "memory_ratio_vs_" + baseline]].sort_values(keys + ["attention"]).reset_index(drop=True)


def _row(tower: pd.DataFrame, n: int, batch: int, attention: str, amp: bool = False) -> pd.Series | None:
    if tower is None or tower.empty:
        return None
    amp_col = tower["amp"].astype(bool) if "amp" in tower else False
    sel = tower[(tower.n_neurons == n) & (tower.batch == batch) & (tower.attention == attention)
                & (amp_col == amp) & (tower.status == "ok")]
    return None if sel.empty else sel.iloc[0]


def target_rows(source: str, tower: pd.DataFrame | None, official: pd.DataFrame | None,
                dina: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The issue's targets, each measured (value, target, met) where ``source``'s tables hold the size
    (rows without a value are left out unless ``detail`` says why, e.g. the baseline ran out of memory)."""
    rows = []

    def add(name, value, target, met, detail, why_missing=False):
        if value is None and not why_missing:
            return
        rows.append({"source": source, "target": name, "value": value, "required": target,
                     "met": (None if value is None or (isinstance(value, float) and np.isnan(value)) else bool(met)),
                     "detail": detail})

    r = _row(tower, 10_000, 8, "sdpa")
    add("neural tower N=10,000, batch 8: peak memory (MiB)", None if r is None else float(r.peak_mb), "<= 1024",
        r is not None and r.peak_mb <= 1024, "SDPA, forward+backward")
    f8 = _row(tower, 10_000, 8, "factored")
    add("factored N=10,000, d=512, batch 8: memory above the process baseline (MiB)",
        None if f8 is None else float(f8.peak_mb), f"< {FACTORED_MEMORY_TARGET_MB:,}",
        f8 is not None and f8.peak_mb < FACTORED_MEMORY_TARGET_MB,
        "peak minus baseline (torch loaded), forward+backward" + _path_of(f8))
    s, f = _row(tower, 10_000, 32, "sdpa"), _row(tower, 10_000, 32, "factored")
    ratio = None if s is None or f is None else float(s.median_s / f.median_s)
    add("factored vs SDPA, N=10,000, d=512, batch 32: speed-up", ratio, f">= {FACTORED_SPEEDUP_TARGET:g}",
        ratio is not None and ratio >= FACTORED_SPEEDUP_TARGET,
        "forward+backward, same process and inputs" + _path_of(f))
    mem = None if s is None or f is None else float(f.peak_mb / s.peak_mb)
    add("factored vs SDPA, N=10,000, batch 32: peak-memory ratio", mem, "<= 1", mem is not None and mem <= 1, "")
    if official is not None and not official.empty:
        for n in sorted(official.n_neurons.unique()):
            o = official[(official.case == "official_step") & (official.n_neurons == n) & (official.status == "ok")]
            what = ("official module" if not o.empty and "implementation" in o
                    and str(o.implementation.iloc[0]) == "official module" else "official structure (stand-in)")
            for impl in ("sdpa", "factored"):
                t = official[(official.case == "tower_step") & (official.n_neurons == n)
                             & (official.attention == impl) & (official.status == "ok")]
                v = None if o.empty or t.empty else float(o.median_s.iloc[0] / t.median_s.iloc[0])
                add(f"ours ({impl}) vs {what}, N={n:,}, batch {int(o.batch.iloc[0]) if not o.empty else '?'}: speed-up",
                    v, ">= 10", v is not None and v >= 10, "per forward+backward step")
    if dina is not None and not dina.empty:
        d = dina[dina.status == "ok"]
        for (width, n), g in d.groupby(["width", "n_neurons"]):
            for amp, gg in g.groupby(g["amp"].astype(bool) if "amp" in g else [False] * len(g)):
                t = gg.set_index("attention").median_s
                v = float(t["naive"] / t["sdpa"]) if {"naive", "sdpa"} <= set(t.index) else None
                failed = dina[(dina.width == width) & (dina.n_neurons == n) & (dina.attention == "naive")
                              & (dina.status != "ok")]
                failed = failed[failed["amp"].astype(bool) == amp] if "amp" in failed else failed
                detail = ("per training step" if v is not None or failed.empty else
                          "straightforward did not run: " + str(failed.status.iloc[0])[:120])
                add(f"DINA training, {width} width, N={n:,}{' bf16' if amp else ''}: SDPA vs straightforward",
                    v, ">= 1.5", v is not None and v >= 1.5, detail, why_missing=not failed.empty and "sdpa" in t.index)
    return rows


def _path_of(row: pd.Series | None) -> str:
    """", <path>" when the row says which factored path ran (C kernel or torch ops)."""
    if row is None or "factored_path" not in row or not isinstance(row.factored_path, str):
        return ""
    return f"; {row.factored_path}"


def limits_table(tower: pd.DataFrame, probe: pd.DataFrame) -> pd.DataFrame:
    """What limits speed: each step's matmul FLOPs against the measured matmul throughput, and the
    factored path's element-wise bytes against the measured memory bandwidth."""
    ok = tower[tower.status == "ok"].copy()
    gflops = float(probe.matmul_gflops_fp32.iloc[0])
    gbps = float(probe.bandwidth_gbps.iloc[0])
    ok["achieved_gflops"] = ok.matmul_flops / ok.median_s / 1e9
    ok["fraction_of_matmul_peak"] = ok.achieved_gflops / gflops
    ok["matmul_bound_s"] = ok.matmul_flops / (gflops * 1e9)
    if "elementwise_bytes" in ok:
        ok["bandwidth_bound_s"] = ok.elementwise_bytes.fillna(0) / (gbps * 1e9)
    else:
        ok["bandwidth_bound_s"] = 0.0
    cols = ["n_neurons", "batch", "attention", "median_s", "matmul_flops", "achieved_gflops",
            "fraction_of_matmul_peak", "matmul_bound_s", "bandwidth_bound_s"]
    if "amp" in ok:
        cols.insert(0, "amp")
    return ok[cols].reset_index(drop=True)


def projection(n_neurons: int, batch: int, gflops: float, gbps: float, d_model: int = 512) -> pd.DataFrame:
    """Lower-bound step times from FLOP and byte counts on a machine with ``gflops`` matmul throughput
    and ``gbps`` memory bandwidth: SDPA (matmul-bound) against the factored path (matmuls for G and H,
    plus its element-wise passes streamed from memory, i.e. no cache reuse assumed)."""
    from alignlib.bench.flops import factored_elementwise, tower_flops

    sdpa = tower_flops(n_neurons, batch, "sdpa", d_model)
    fact = tower_flops(n_neurons, batch, "factored", d_model)
    e = factored_elementwise(n_neurons, batch)
    t_sdpa = sdpa / (gflops * 1e9)
    t_fact = fact / (gflops * 1e9) + e["bytes"] / (gbps * 1e9)
    return pd.DataFrame([
        {"attention": "sdpa", "matmul_flops": sdpa, "elementwise_bytes": 0.0, "bound_s": t_sdpa},
        {"attention": "factored", "matmul_flops": fact, "elementwise_bytes": e["bytes"], "bound_s": t_fact},
    ]).assign(n_neurons=n_neurons, batch=batch, projected_speedup=t_sdpa / np.array([t_sdpa, t_fact]))
