"""Child process of :func:`alignlib.bench.timing.run_isolated`: ``python -m alignlib.bench.worker CASE JSON``."""
from __future__ import annotations

import json
import os
import sys

import torch

from alignlib.bench import cases
from alignlib.bench.timing import current_rss_mb, peak_rss_mb, reset_peak_rss


def main(argv: list[str]) -> None:
    case, params = argv[0], json.loads(argv[1])
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    fn = getattr(cases, case, None)
    if fn is None or case.startswith("_"):
        raise SystemExit(f"unknown bench case {case!r}")
    import gc

    gc.collect()
    baseline = current_rss_mb() if reset_peak_rss() else peak_rss_mb()
    row = fn(**params)
    if row.get("device", "cpu") == "cpu":
        row["peak_mb"] = peak_rss_mb() - baseline
        row["baseline_mb"] = baseline
    row.setdefault("status", "ok")
    print(json.dumps({"case": case, **params, **row}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
