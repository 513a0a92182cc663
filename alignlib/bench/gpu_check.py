"""The GPU check (issue 21 §3): what the paper profile costs on a GPU, in at most ~8 minutes.

Three parts, each through the code the book runs, each written as a CSV whose rows carry their
provenance (device, torch, CUDA and cuDNN versions, date, git commit, threads, the exact command),
plus ``gpu_check_summary.md``:

1. ``gpu_check_dina.csv``: the paper-profile DINA training
   (:mod:`alignlib.experiments.dina.settings`, ``resolve("paper", epochs=E)``, default E = 2) of one
   mouse through :func:`alignlib.experiments.dina.workflow.train_mouse`, on a ground-truth twin
   mouse of the paper's size (2,800 images x 10,000 neurons; only mouse M1 is generated, and M1 is
   the same whatever the other mice). Time per epoch (training + validation, from the run's
   history), peak memory, and the projected time of a whole run from the profile's epoch cap and
   patience, assuming that every epoch costs what the last measured one cost.
2. ``gpu_check_vist.csv``: paper-width Vi-ST (:mod:`alignlib.experiments.vist.settings`) trained
   through :func:`alignlib.experiments.vist.workflow.train_run` twice, for 2 and 4 epochs of
   ``--vist-batches`` batches; the time per step is the difference over the extra steps (start-up,
   warm-up, SWA and the BatchNorm refresh cancel out). Input: the Onken et al. Exp2 movie-1
   recording with the profile's prior when ``$ALIGNLIB_DATA_DIR/onken2016`` exists, else synthetic
   prior features and rates of its shape (the table and the summary say which).
3. ``gpu_check_probe.csv`` and ``gpu_check_tower.csv``: the machine's matmul and bandwidth probe and
   the neural tower's forward+backward table, SDPA vs factored
   (:func:`alignlib.bench.suite.run_suite`).

Parts run in that order; once ``--budget-s`` seconds have passed, the parts not started yet are
skipped (their rows say so), so that a lent machine's time is not overrun.

On a lent GPU machine (the device tool: its ``python3`` has torch, numpy, scipy, pandas,
scikit-image and transformers; no package index is reachable, so nothing is installed and the
package is imported from the working tree; the copy sent there has no usable ``.git``, so name the
commit), one bash line, with timeout_s 600::

 ALIGNLIB_CODE_VERSION=<commit> PYTHONPATH=. python3 -m alignlib.bench.gpu_check --out $OUT/measured

(``<commit>``: ``git rev-parse HEAD`` here, plus ``+dirty`` if the tree has changes.) Then copy the
files that come back under ``measured/`` into ``book/bench/measured/<tag>/`` (the tag is printed:
the device's name, e.g. ``nvidia-h100-80gb-hbm3``). On your own GPU machine,
``.venv/bin/python -m alignlib.bench.gpu_check`` writes there directly. ``--scale small`` runs the
same code at reduced sizes on the CPU in well under a minute (the tests do).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

__all__ = ["SCALES", "SYNTHETIC_MOVIE", "PARTS", "machine_tag", "provenance", "dina_check",
           "vist_check", "tower_check", "main"]

#: sizes per scale: ``paper`` (a GPU) and ``small`` (the same code on a CPU, for the tests)
SCALES: dict[str, dict[str, Any]] = {
    "paper": {
        "dina_profile": "paper", "twin": {},      # TwinConfig.paper: 2,800 images x 10,000 neurons
        "vist_profile": "paper", "vist_batches": 8, "vist_overrides": {},
        "tower": {"sizes": [1000, 2500, 5000, 10000], "batches": [8, 32, 128],
                  "impls": ["sdpa", "factored"]}},
    "small": {
        "dina_profile": "smoke",
        "twin": {"n_images": 80, "n_neurons": 100, "n_spont_timepoints": 150,
                 "n_reference_images": 80},
        "vist_profile": "smoke", "vist_batches": 1, "vist_overrides": {"window": 8},
        "tower": {"sizes": [250, 500], "batches": [8], "impls": ["sdpa", "factored"],
                  "repeats": 1, "warmup": 0}},
}
#: the synthetic Vi-ST input's shape when the recordings are absent: the Exp2 movie-1 recording as
#: this book loads it (1,237 frames on screen, 49 cells; read from the Onken et al. files)
SYNTHETIC_MOVIE = {"frames": 1237, "cells": 49}
PARTS = ("dina", "vist", "tower")


def machine_tag(device: str) -> str:
    """A folder name for this machine: its device's name in lower case, words joined by '-'."""
    from alignlib.bench.cases import device_name

    name = device_name(device)
    if torch.device(device).type == "cpu":
        name = "cpu-" + re.sub(r"\(.*?\)", "", name)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def provenance(device: str, command: str) -> dict[str, Any]:
    """The bench's provenance columns plus the CUDA and cuDNN versions torch was built with."""
    from alignlib.bench.suite import provenance_columns

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {**provenance_columns(device, command), "cuda": torch.version.cuda or "none",
            "cudnn": cudnn}


class _Peak:
    """Peak memory of a block above its start: the CUDA allocator's (allocated, and reserved), or
    the process's resident-memory high-water mark on the CPU (as :mod:`alignlib.bench.timing`)."""

    def __init__(self, device: str):
        self.cuda = torch.device(device).type == "cuda"
        self.row: dict[str, Any] = {}

    def __enter__(self) -> "_Peak":
        from alignlib.bench.timing import current_rss_mb, peak_rss_mb, reset_peak_rss

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated() / 2 ** 20
        else:
            self.before = current_rss_mb() if reset_peak_rss() else peak_rss_mb()
        return self

    def __exit__(self, *exc: Any) -> None:
        from alignlib.bench.timing import peak_rss_mb

        if self.cuda:
            torch.cuda.synchronize()
            self.row = {"peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20 - self.before,
                        "peak_reserved_mb": torch.cuda.max_memory_reserved() / 2 ** 20,
                        "memory": "torch.cuda.max_memory_allocated above the start"}
        else:
            self.row = {"peak_mb": peak_rss_mb() - self.before, "baseline_mb": self.before,
                        "memory": "peak resident memory above the start (VmHWM)"}


def _twin_mouse(work: Path, twin: dict[str, Any]):
    """(recording, seconds): mouse M1 of a ground-truth twin of this size, generated alone."""
    from alignlib.data.stringer import load_session
    from alignlib.data.twin import TwinConfig, generate_twin
    from alignlib.experiments.dina.cast import MouseRecording

    t0 = time.perf_counter()
    cfg = TwinConfig.paper(n_natural_mice=1, n_whitened_mice=0, n_8d_mice=0, **twin)
    manifest = generate_twin(work / "twin", cfg, progress=False)
    seconds = time.perf_counter() - t0
    mouse = manifest.mouse("M1")
    session = load_session(manifest.session_path("M1"), manifest.images_path("M1"))
    dataset = (f"ground-truth twin, mouse M1 alone (seed {cfg.seed}: {cfg.n_images} images x "
               f"{cfg.n_neurons} neurons)")
    identity = {"twin": "gpu check, M1 alone", "twin_config": dict(sorted(twin.items())),
                "session_file": mouse.session_file, "images_file": mouse.images_file,
                "session_sha256": manifest.sha256[mouse.session_file],
                "images_sha256": manifest.sha256[mouse.images_file]}
    return MouseRecording("M1", "natural", "twin", session, dataset, dataset, identity), seconds


def dina_check(scale: str, device: str, work: Path, epochs: int = 2) -> dict[str, Any]:
    """Train DINA on one twin mouse for ``epochs`` epochs with the scale's profile: one row."""
    from alignlib.experiments.dina import settings as dina_settings
    from alignlib.experiments.dina.workflow import train_mouse

    size = SCALES[scale]
    profile = size["dina_profile"]
    recording, twin_s = _twin_mouse(work, size["twin"])
    settings = dina_settings.resolve(profile, epochs=epochs)
    with _Peak(device) as peak:
        run = train_mouse(recording, settings, device=device, force=True)
    epoch_s = [float(s) for s in run.history["seconds"]]
    cap = dina_settings.PROFILES[profile]["epochs"]
    patience = dina_settings.PROFILES[profile]["patience"]
    fewest, last = min(cap, patience + 1), epoch_s[-1]
    n_train = run.info["split_sizes"]["train"]
    return {
        "part": "dina", "profile": profile, "mouse": "M1", "n_images": recording.session.n_images,
        "n_neurons": run.info["n_neurons"], "n_train": n_train, "batch": settings["batch_size"],
        "steps_per_epoch": math.ceil(n_train / settings["batch_size"]),
        "width": settings["width"], "attention": "sdpa (the NeuralTower default)",
        "twin_seconds": twin_s, "epochs_run": run.info["epochs_run"],
        "epoch_s": ";".join(f"{s:.3f}" for s in epoch_s), "last_epoch_s": last,
        "train_seconds": run.info["train_seconds"], **peak.row,
        "epoch_cap": cap, "patience": patience,
        "projected_cap_h": cap * last / 3600, "projected_min_h": fewest * last / 3600,
        "projection": (f"every epoch costs the last measured one ({last:.2f} s); at most {cap} "
                       f"epochs (the cap), at least {fewest} (early stopping ends {patience} "
                       f"epochs after the selected one, which is not known before training)"),
        "status": "ok"}


def _vist_movie(settings: dict[str, Any], input_: str, seed: int = 0):
    """(MovieData, description): the Exp2 movie-1 recording with the profile's prior, or synthetic
    prior features and rates of its shape."""
    from alignlib.data import onken
    from alignlib.experiments.vist.workflow import MovieData, load_movie, prior_spec
    from alignlib.models.prior import GRID, RANDOM_CONFIGS
    from alignlib.paths import data_dir

    prior = prior_spec(settings)
    folder = data_dir() / "onken2016"
    if input_ == "auto" and folder.is_dir():
        return load_movie("Exp2", 1, settings, prior), f"Onken et al. Exp2 movie 1 ({folder})"
    rng = np.random.default_rng(seed)
    k = int(settings["frames_per_bin"])
    t, cells = SYNTHETIC_MOVIE["frames"] // k, SYNTHETIC_MOVIE["cells"]
    channels = RANDOM_CONFIGS[prior.config]["hidden_size"]
    features = rng.standard_normal((t, GRID, GRID, channels), dtype=np.float32)
    counts = rng.poisson(0.5, (4, t, cells)).astype(np.float32)
    rf_grid = np.zeros((cells, GRID, GRID), dtype=np.float32)
    for c, (r0, c0) in enumerate(rng.integers(0, GRID - 3, (cells, 2))):
        rf_grid[c, r0:r0 + 3, c0:c0 + 3] = 1.0
    movie = MovieData("synthetic-Exp2-movie1-shape", "Exp2", 1, onken.FRAME_MS * k,
                      np.zeros((t, 1, 1), dtype=np.float32), features, counts.mean(0), counts,
                      rf_grid, prior)
    return movie, (f"synthetic: random prior features {features.shape} and Poisson rates ({t} bins "
                   f"x {cells} cells), the shape of the Exp2 movie-1 recording (its files were not "
                   f"found)")


def vist_check(scale: str, device: str, input_: str = "auto",
               batches: int | None = None) -> dict[str, Any]:
    """Paper-width Vi-ST through ``train_run``, 2 and 4 epochs of ``batches`` batches: one row."""
    from alignlib.experiments.vist import settings as vist_settings
    from alignlib.experiments.vist.workflow import run_spec, train_run

    size = SCALES[scale]
    profile, batches = size["vist_profile"], batches or size["vist_batches"]
    full = vist_settings.resolve(profile, **size["vist_overrides"])
    movie, source = _vist_movie(full, input_)
    seconds, peaks = {}, {}
    for epochs in (2, 4):
        settings = vist_settings.resolve(profile, **size["vist_overrides"], epochs=epochs,
                                         batches_per_epoch=batches, warmup_epochs=1, swa_epochs=1)
        spec = run_spec(movie, settings, seed=0, variant=f"gpu-check-{epochs}epochs")
        with _Peak(device) as peak:
            directory = train_run(spec, movie, {}, device=device)
        seconds[epochs] = json.loads((directory / "run.json").read_text())["train_seconds"]
        peaks[epochs] = peak.row
    step_s = (seconds[4] - seconds[2]) / (2 * batches)
    steps = full["epochs"] * full["batches_per_epoch"]
    return {
        "part": "vist", "profile": profile, "input": source, "width": full["width"],
        "c3tcn_layers": full["c3tcn_layers"], "window": full["window"],
        "batch": full["batch_size"], "prior": movie.prior.label,
        "features_shape": "x".join(map(str, movie.features.shape)), "cells": movie.n_cells,
        "steps_timed": 2 * batches, "run_2_epochs_s": seconds[2], "run_4_epochs_s": seconds[4],
        "step_s": step_s, **peaks[4], "paper_steps": steps,
        "projected_run_min": steps * step_s / 60,
        "projection": (f"{full['epochs']} epochs x {full['batches_per_epoch']} batches = {steps} "
                       f"steps at the measured step time, per training run (start-up and "
                       f"evaluation not counted)"),
        "status": "ok"}


def tower_check(scale: str, device: str, out: Path | None, command: str) -> dict[str, pd.DataFrame]:
    """The probe and the SDPA vs factored tower table (:func:`alignlib.bench.suite.run_suite`)."""
    from alignlib.bench.suite import run_suite

    return run_suite(out, device, dict(SCALES[scale]["tower"]), prefix="gpu_check",
                     command=command, tables=("probe", "tower"), isolate=scale != "small")


def _summary(tag: str, prov: dict[str, Any], rows: dict[str, dict[str, Any]],
             towers: dict[str, pd.DataFrame], total_s: float) -> str:
    lines = [f"# GPU check on {prov['device_name']} ({tag})", "",
             f"torch {prov['torch']}, CUDA {prov['cuda']}, cuDNN {prov['cudnn']}, commit "
             f"{prov['git_commit']}, {prov['date']}; {total_s:.0f} s in all.", "",
             f"Command: `{prov['command']}`", ""]
    d, v = rows.get("dina", {}), rows.get("vist", {})
    if d.get("status") == "ok":
        lines += [f"**DINA** ({d['profile']} profile, {d['n_images']} images x {d['n_neurons']} "
                  f"neurons, batch {d['batch']}, {d['attention']}): twin mouse generated in "
                  f"{d['twin_seconds']:.0f} s; epochs {d['epoch_s']} s; peak {d['peak_mb']:.0f} "
                  f"MiB. Projected run: {d['projected_min_h']:.3g} h to {d['projected_cap_h']:.3g} "
                  f"h. Assumption: {d['projection']}.", ""]
    elif d:
        lines += [f"**DINA**: {d.get('status')}", ""]
    if v.get("status") == "ok":
        lines += [f"**Vi-ST** ({v['profile']} width {v['width']}, window {v['window']}, batch "
                  f"{v['batch']}): {v['step_s']:.3f} s per step over {v['steps_timed']} steps; "
                  f"peak {v['peak_mb']:.0f} MiB; projected {v['projected_run_min']:.3g} min per "
                  f"run "
                  f"({v['projection']}). Input: {v['input']}.", ""]
    elif v:
        lines += [f"**Vi-ST**: {v.get('status')}", ""]
    tower = towers.get("tower")
    if tower is not None and not tower.empty:
        cols = [c for c in ("n_neurons", "batch", "attention", "median_s", "peak_mb", "status")
                if c in tower]
        lines += ["**Neural tower** forward+backward (`gpu_check_tower.csv`):", "", "```",
                  tower[cols].to_string(index=False), "```", ""]
    elif "tower" in rows:
        lines += [f"**Neural tower**: {rows['tower'].get('status')}", ""]
    return "\n".join(lines)


def _print(line: str) -> None:
    print(line, flush=True)     # seen at once in a remote command's output, also if it is cut short


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alignlib.bench.gpu_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="paper",
                   help="paper (default; a GPU) or small (the same code at reduced sizes, CPU)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    p.add_argument("--out", help="output folder (default book/bench/measured/<machine tag>)")
    p.add_argument("--work", help="folder for the twin, the runs and the prior cache "
                                  "(default: a temporary one)")
    p.add_argument("--epochs", type=int, default=2, help="DINA epochs (default 2)")
    p.add_argument("--vist-batches", type=int,
                   help="Vi-ST batches per epoch (default: 8 paper, 1 small)")
    p.add_argument("--vist-input", choices=["auto", "synthetic"], default="auto",
                   help="auto: the Onken recording when present, else synthetic input of its shape")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="which parts to run (default all)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="parts not started after this many seconds are skipped (default 420)")
    return p


def main(argv: list[str] | None = None, log: Callable[[str], None] = _print) -> int:
    """Run the check; 0 when every part ran, 1 when one failed or was skipped."""
    from alignlib.paths import REPO_ROOT
    from alignlib.repro import get_device

    args = _parser().parse_args(argv)
    t_start = time.perf_counter()
    device = str(get_device(args.device))
    command = "python -m alignlib.bench.gpu_check " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    tag = machine_tag(device) + ("-small" if args.scale == "small" else "")
    out = Path(args.out) if args.out else REPO_ROOT / "book" / "bench" / "measured" / tag
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(device, command)
    log(f"[gpu_check] {prov['device_name']} (tag {tag}), scale {args.scale}, writing {out}")
    if device == "cpu" and args.scale == "paper":
        log("[gpu_check] warning: the paper scale takes hours on a CPU; --scale small to try it")
    rows: dict[str, dict[str, Any]] = {}
    towers: dict[str, pd.DataFrame] = {}
    saved = {k: os.environ.get(k) for k in ("ALIGNLIB_WORK_DIR", "ALIGNLIB_RUNS_DIR")}
    with tempfile.TemporaryDirectory(prefix="alignlib-gpu-check-") as tmp:
        work = Path(args.work or tmp).resolve()
        os.environ["ALIGNLIB_WORK_DIR"] = str(work / "work")     # the prior cache
        os.environ["ALIGNLIB_RUNS_DIR"] = str(work / "runs")     # runs stay out of the run store
        try:
            for part in (p for p in PARTS if p in args.parts):
                elapsed = time.perf_counter() - t_start
                if elapsed > args.budget_s:
                    rows[part] = {"part": part, "status": f"skipped: {elapsed:.0f} s had passed "
                                                         f"(budget {args.budget_s:.0f} s)"}
                    log(f"[gpu_check] {part}: {rows[part]['status']}")
                    continue
                log(f"[gpu_check] [{elapsed:6.0f} s] {part} ...")
                t0 = time.perf_counter()
                try:
                    if part == "dina":
                        rows[part] = dina_check(args.scale, device, work, args.epochs)
                    elif part == "vist":
                        rows[part] = vist_check(args.scale, device, args.vist_input,
                                                args.vist_batches)
                    else:
                        towers = tower_check(args.scale, device, out, command)
                        rows[part] = {"part": part, "status": "ok"}
                except Exception as err:  # one failed part must not lose the others
                    rows[part] = {"part": part,
                                  "status": f"error: {type(err).__name__}: {str(err)[:300]}"}
                finally:
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                rows[part]["part_s"] = time.perf_counter() - t0
                log(f"[gpu_check] {part}: {rows[part]['status']} in {rows[part]['part_s']:.0f} s")
                if part != "tower":
                    pd.DataFrame([{**rows[part], **prov}]).to_csv(out / f"gpu_check_{part}.csv",
                                                                  index=False)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    summary = _summary(tag, prov, rows, towers, time.perf_counter() - t_start)
    (out / "gpu_check_summary.md").write_text(summary + "\n")
    log(summary)
    return 0 if all(r.get("status") == "ok" for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
