"""``python -m alignlib.bench --out results/bench [--device cuda] [--sizes 1000 2500 ...]``."""
from __future__ import annotations

import argparse
import shlex
import sys
import time

from alignlib.bench.suite import TABLES, default_config, run_suite


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alignlib.bench", description=(
        "Benchmark the towers: neural tower forward+backward vs N (SDPA, straightforward, factored), the "
        "official structure, the image tower, DINA training steps, and the machine's matmul throughput. "
        "Writes <out>/<prefix>_<table>.csv with provenance columns."))
    parser.add_argument("--out", default="results/bench", help="output folder (default results/bench)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of neurons (default 1000 2500 5000 10000)")
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes of the tower sweep (default 8 32)")
    parser.add_argument("--impls", nargs="+", choices=["sdpa", "naive", "factored"], help="attention implementations")
    parser.add_argument("--repeats", type=int, help="timed steps per measurement (default 2 on CPU, 3 on CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 1; the official structure 0)")
    parser.add_argument("--official-sizes", type=int, nargs="+", help="N of the official-structure comparison (default 2500)")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), help="which tables to run")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--prefix", help="file prefix (default: the device type, cpu or cuda)")
    parser.add_argument("--official-checkout", help="local checkout of small-blingbling/DINA: time its module itself")
    parser.add_argument("--quick", action="store_true", help="small sizes (the book's quick profile)")
    args = parser.parse_args(argv)
    cfg = default_config(args.device, quick=args.quick)
    if args.sizes:
        cfg["sizes"] = args.sizes
    for key in ("batches", "impls", "repeats", "warmup", "official_sizes"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    command = "python -m alignlib.bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    t0 = time.perf_counter()

    def progress(jobs):
        for i, job in enumerate(jobs):
            print(f"[{time.perf_counter() - t0:7.1f} s] {i + 1}/{len(jobs)} {job[1]} {job[2]}", flush=True)
            yield job

    frames = run_suite(args.out, args.device, cfg, prefix=args.prefix, command=command, threads=args.threads,
                       progress=progress, official_checkout=args.official_checkout, tables=args.tables)
    for name, df in frames.items():
        cols = [c for c in ("case", "n_neurons", "batch", "attention", "amp", "width", "median_s", "peak_mb",
                            "status") if c in df.columns]
        print(f"\n== {name} ==\n{df[cols].to_string(index=False)}")
    print(f"\nwrote {args.out}/{args.prefix or args.device}_*.csv in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
