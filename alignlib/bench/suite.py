"""The benchmark runs behind ``results/bench/<prefix>_*.csv`` (``python -m alignlib.bench``).

On CPU each measurement runs in a fresh subprocess (peak RSS is a per-process high-water mark); on
CUDA all run in this process with ``torch.cuda.reset_peak_memory_stats`` between them (CUDA start-up
per subprocess would cost more than the measurements). Sizes whose straightforward attention would
need more memory than ``memory_limit_gb`` are skipped and the row says so.
"""
from __future__ import annotations

import datetime as _dt
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import torch

from alignlib.bench import cases
from alignlib.bench.timing import run_isolated

__all__ = ["default_config", "run_suite", "provenance_columns", "naive_attention_bytes", "TABLES"]

#: the tables one suite run writes: <prefix>_<name>.csv
TABLES = ("probe", "tower", "official", "image", "dina")


def naive_attention_bytes(n_neurons: int, batch: int, n_heads: int = 1, dtype_bytes: int = 4) -> float:
    """Memory the straightforward attention keeps for backward: logits' softmax and its gradient,
    each B x heads x N x N (a lower bound: the matmul's output is a third)."""
    return 3.0 * batch * n_heads * n_neurons ** 2 * dtype_bytes


def provenance_columns(device: str, command: str | None = None) -> dict[str, Any]:
    """Columns every row carries: device name, torch version, date, git commit, threads, command."""
    from alignlib.repro import code_version

    import os

    # a copy sent to another machine may carry a stale or no .git: the caller can name the commit
    commit = os.environ.get("ALIGNLIB_CODE_VERSION") or code_version()
    return {"device_name": cases.device_name(device), "torch": torch.__version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit, "threads": torch.get_num_threads(),
            "command": command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}


def default_config(device: str = "cpu", quick: bool = False) -> dict[str, Any]:
    """Default sizes: the issue's (N = 1,000 ... 10,000) for the CLI; small ones for ``quick`` pages."""
    cuda = torch.device(device).type == "cuda"
    if quick:
        return dict(sizes=[250, 500, 1000], batches=[8], impls=["sdpa", "naive", "factored"], d_model=512,
                    official_sizes=[250, 500], official_batch=8, image_widths=["quick"], image_batch=32,
                    dina=[("quick", 600, 128)], amps=[False], repeats=2, memory_limit_gb=4.0)
    return dict(sizes=[1000, 2500, 5000, 10000], batches=[8, 32], impls=["sdpa", "naive", "factored"], d_model=512,
                official_sizes=[2500], official_batch=8, image_widths=["quick", "paper"], image_batch=128 if cuda else 32,
                dina=[("quick", 600, 128), ("paper", 10000, 128 if cuda else 32)],
                amps=[False, True] if cuda else [False], repeats=3 if cuda else 2,
                memory_limit_gb=(0.6 * torch.cuda.get_device_properties(0).total_memory / 2 ** 30) if cuda else 8.0)


def run_suite(out_dir: str | Path | None, device: str = "cpu", config: dict[str, Any] | None = None,
              prefix: str | None = None, command: str | None = None, threads: int | None = None,
              progress: Callable[[Iterable], Iterable] | None = None, official_checkout: str | None = None,
              tables: Sequence[str] = TABLES, timeout: float = 1800.0, isolate: bool = True) -> dict[str, pd.DataFrame]:
    """Run the benchmark; return its tables and, when ``out_dir`` is given, write ``<prefix>_<table>.csv``.

    ``isolate=False`` runs CPU measurements in this process (faster to start; no peak memory: NaN)."""
    cfg = {**default_config(device), **(config or {})}
    cuda = torch.device(device).type == "cuda"
    if threads is not None and not cuda:
        torch.set_num_threads(int(threads))
    prefix = prefix or ("cuda" if cuda else "cpu")
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown bench tables {sorted(unknown)}; known: {TABLES}")
    prov = provenance_columns(device, command)
    jobs: list[tuple[str, str, dict[str, Any]]] = []
    if "probe" in tables:
        jobs.append(("probe", "probe", {"device": device}))
    if "tower" in tables:
        for amp in cfg["amps"]:
            for b in cfg["batches"]:
                for n in cfg["sizes"]:
                    for impl in cfg["impls"]:
                        jobs.append(("tower", "tower_step", dict(n_neurons=n, batch=b, attention=impl, d_model=cfg["d_model"],
                                                                 device=device, amp=amp, repeats=cfg["repeats"])))
    if "official" in tables:
        for n in cfg["official_sizes"]:
            b = cfg["official_batch"]
            jobs.append(("official", "official_step", dict(n_neurons=n, batch=b, d_model=cfg["d_model"], device=device,
                                                           checkout=official_checkout)))
            for impl in ("sdpa", "factored"):
                jobs.append(("official", "tower_step", dict(n_neurons=n, batch=b, attention=impl, d_model=cfg["d_model"],
                                                            device=device, repeats=cfg["repeats"])))
    if "image" in tables:
        for amp in cfg["amps"]:
            for w in cfg["image_widths"]:
                jobs.append(("image", "image_step", dict(width=w, batch=cfg["image_batch"], stem_stride=4 if w == "quick" else 2,
                                                         device=device, amp=amp, repeats=cfg["repeats"])))
    if "dina" in tables:
        for amp in cfg["amps"]:
            for width, n, b in cfg["dina"]:
                for impl in ("sdpa", "naive", "factored"):
                    n_train = 810 if width == "quick" else 2268      # 81 % of the twin's 1,000 / 2,800 images
                    jobs.append(("dina", "dina_step", dict(width=width, n_neurons=n, batch=b, attention=impl,
                                                           stem_stride=4 if width == "quick" else 2,
                                                           residual=width == "quick", n_train=n_train,
                                                           device=device, amp=amp, repeats=cfg["repeats"])))
    if cfg.get("warmup") is not None:
        for _, case, params in jobs:
            if case != "probe":
                params["warmup"] = int(cfg["warmup"])
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in tables}
    it = progress(jobs) if progress else jobs
    for table, case, params in it:
        row = _skip_reason(case, params, cfg["memory_limit_gb"])
        if row is None:
            row = _run_one(case, params, cuda or not isolate, threads, timeout)
        row = {"case": case, **params, **row}
        row.pop("checkout", None)
        rows[table].append({**row, **{k: v for k, v in prov.items() if k not in row or k == "threads"}})
        if out_dir is not None:      # after every measurement, so a run cut short keeps what it measured
            _write(rows, out_dir, prefix)
    frames = {t: pd.DataFrame(r) for t, r in rows.items()}
    for df in frames.values():
        for col in ("median_s", "peak_mb", "status"):
            if col not in df and not df.empty:
                df[col] = "ok" if col == "status" else float("nan")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for t, df in frames.items():
            df.to_csv(out / f"{prefix}_{t}.csv", index=False)
    return frames


def _write(rows: dict[str, list[dict[str, Any]]], out_dir: str | Path, prefix: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for t, r in rows.items():
        if r:
            pd.DataFrame(r).to_csv(out / f"{prefix}_{t}.csv", index=False)


def _skip_reason(case: str, params: dict[str, Any], limit_gb: float) -> dict[str, Any] | None:
    """Why a measurement is not attempted (a status row), or None: the straightforward attention's
    N x N matrices above ``limit_gb``, or a CPU DINA step whose estimated peak
    (:func:`alignlib.experiments.dina.settings.dina_step_memory_gb`) exceeds 90 % of this machine's
    memory (attempted anyway, the operating system kills the measuring process)."""
    if params.get("attention") == "naive":
        need = naive_attention_bytes(params["n_neurons"], params["batch"], dtype_bytes=2 if params.get("amp") else 4)
        if need / 2 ** 30 > limit_gb:
            return {"status": f"skipped: the N x N attention would need >= {need / 2 ** 30:.1f} GiB "
                              f"(limit {limit_gb:.1f} GiB)", "median_s": math.nan}
    if case == "dina_step" and torch.device(params.get("device", "cpu")).type == "cpu":
        from alignlib.experiments.dina import settings as dina_settings

        image, neural = dina_settings.dina_step_memory_gb(
            params["width"], params["stem_stride"], params["batch"], params["n_neurons"],
            factored=params["attention"] == "factored")
        need, have = image + neural, 0.9 * dina_settings.machine_memory_gb()
        if need > have:
            return {"status": f"skipped: the step would need ~{need:.0f} GB (image tower {image:.1f} GB, "
                              f"{params['attention']} neural tower {neural:.1f} GB), more than 90 % of "
                              f"this machine's memory ({have:.0f} GB)", "median_s": math.nan}
    return None


def _run_one(case: str, params: dict[str, Any], in_process: bool, threads: int | None,
             timeout: float) -> dict[str, Any]:
    if not in_process:
        row = run_isolated(case, params, timeout=timeout, threads=threads)
        return {k: v for k, v in row.items() if k not in params and k != "case"}
    try:
        row = getattr(cases, case)(**params)
        row.setdefault("status", "ok")
    except (torch.cuda.OutOfMemoryError, MemoryError) as e:
        row = {"status": f"error: out of memory ({str(e).splitlines()[0][:120]})", "median_s": math.nan}
    except Exception as e:  # one failed case must not lose the others
        row = {"status": f"error: {type(e).__name__}: {str(e)[:200]}", "median_s": math.nan}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row
