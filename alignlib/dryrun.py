"""The dry run: every page of a profile executed at its shapes, with every training capped to a
step or two and every evaluation to a few items (``alignlib book --profile paper --dry-run``).

It answers one question before a long run starts on a GPU: does every page run, at the profile's
shapes (images, neurons, widths, batch sizes, occlusion grids, window lengths), without a shape or
memory error hours in? Its numbers mean nothing, and they never mix with a real run's:

* the runner sets ``ALIGNLIB_DRY_RUN=1`` (:data:`ENV`) for itself and every page's kernel, and puts
  the executed pages, training runs and result tables in their own folders under :func:`root`
  (``$ALIGNLIB_DRY_RUN_DIR``, default ``<repo>/_build/dryrun``), with the run store switched off
  (``ALIGNLIB_STORE=off``: every run is trained, none is read from the store);
* one switch caps the work, never the shapes (:data:`CAPS` says it in words): the training loop
  (:func:`alignlib.training.fit`) stops each epoch after :data:`TRAIN_STEPS` batches; each
  chapter's settings resolver (:func:`alignlib.experiments.profiles.resolve_settings`) applies
  the chapter's documented dry-run caps (epochs, patience, seeds, folds, ...); DINA's split keeps
  :data:`EVAL_ITEMS` validation and test images
  (:func:`alignlib.experiments.dina.settings.dina_split`); occlusion maps push one batch of
  occluded copies (:func:`alignlib.interpret.occlusion.perturbations`); and each step of
  ``pipeline.yml`` may cap its page's own loops (bootstrap resamples, permutations, occluded
  images) under ``params: dry_run:``;
* every page's banner says "dry run" (:func:`alignlib.report.provenance_markdown`) and its
  *Reproduce* command ``--dry-run``; measurements a page registers are marked ``dry_run`` and the
  claims ledger ignores them outside a dry run (:mod:`alignlib.claims.ledger`); a run made in a
  dry run is refused by the run store (:func:`alignlib.training.store.add_run`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

__all__ = ["check_folder", "ENV", "ROOT_ENV", "TRAIN_STEPS", "EVAL_ITEMS", "CAPS", "MEASURED_NAME", "active",
           "root", "folders", "eval_items", "first", "at_most", "banner_text", "peak_rss_gb",
           "page_seconds", "write_measurement", "read_measurement", "GOAL_MINUTES", "summary"]

#: set to 1 by ``alignlib run|book --dry-run`` for the runner and every page's kernel
ENV = "ALIGNLIB_DRY_RUN"
#: where a dry run writes (executed pages, runs, results, its HTML book)
ROOT_ENV = "ALIGNLIB_DRY_RUN_DIR"
#: training batches per epoch in a dry run (at the profile's batch size)
TRAIN_STEPS = 1
#: items of each held-out evaluation set (DINA's validation and test images) in a dry run
EVAL_ITEMS = 16

#: what a dry run caps, in words (the banner says it; the code is where each cap lives)
CAPS = (f"each training stops after {TRAIN_STEPS} batch per epoch and 1-2 epochs, evaluations use "
        f"{EVAL_ITEMS} held-out items, one training seed, and the pages' own loops (bootstrap "
        "resamples, permutations, occluded images, folds) are cut to a few")


def active() -> bool:
    """Whether this process runs in a dry run (``$ALIGNLIB_DRY_RUN`` is 1 / true / yes / on)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def root() -> Path:
    """The dry run's folder: ``$ALIGNLIB_DRY_RUN_DIR``, default ``<repo>/_build/dryrun``. Refused
    (:class:`alignlib.paths.OutsideFolder`) when it is the repository, a folder above it, or inside
    the book's real outputs (``runs/``, ``results/``, ``book/``): its pages, runs and results would
    land among the real ones."""
    from alignlib.paths import REPO_ROOT, OutsideFolder

    value = os.environ.get(ROOT_ENV)
    path = Path(value).expanduser().resolve() if value else REPO_ROOT / "_build" / "dryrun"
    real = [REPO_ROOT / name for name in ("runs", "results", "book")]
    if (path == REPO_ROOT or path in REPO_ROOT.parents
            or any(path == r or r in path.parents for r in real)):
        raise OutsideFolder(f"${ROOT_ENV}={value}: a dry run needs a folder of its own, not the "
                            f"repository, a folder above it or one of {', '.join(r.name + '/' for r in real)}")
    return path


def check_folder(path: Path, what: str) -> Path:
    """``path`` unchanged, unless this is a dry run and it lies outside the dry run's folder: then
    :class:`alignlib.paths.OutsideFolder` (``$ALIGNLIB_DRY_RUN`` set by hand, without the command's
    folders, would write capped pages, runs or results among the real ones)."""
    if active():
        from alignlib.paths import OutsideFolder

        base = root()
        if path != base and base not in path.parents:
            raise OutsideFolder(f"a dry run ({ENV}=1) would write its {what} to {path}, outside "
                                f"its folder {base}: start it with --dry-run (alignlib run|book), "
                                "which points every folder there")
    return path


def folders(base: str | Path | None = None) -> dict[str, str]:
    """The environment a dry run runs under: the switch, the store off, and its own folders for
    executed pages (``<root>/book/executed``, where its HTML build reads them), training runs and
    result tables."""
    base = Path(base) if base is not None else root()
    return {ENV: "1", "ALIGNLIB_STORE": "off",
            "ALIGNLIB_EXECUTED_DIR": str(base / "book" / "executed"),
            "ALIGNLIB_RUNS_DIR": str(base / "runs"), "ALIGNLIB_RESULTS_DIR": str(base / "results")}


def eval_items(n: int) -> int:
    """``n`` held-out items, or at most :data:`EVAL_ITEMS` of them in a dry run."""
    return min(int(n), EVAL_ITEMS) if active() else int(n)


def first(k: int = 1):
    """A cap keeping the first ``k`` values of a list (seeds, mice, experiments)."""
    def cap(values: Sequence[Any]) -> list[Any]:
        return list(values)[:k]
    return cap


def at_most(k: int):
    """A cap lowering a number to at most ``k`` (epochs, patience, folds)."""
    def cap(value: int) -> int:
        return min(value, k)
    return cap


def banner_text() -> str:
    """The banner line of a dry-run page."""
    return ("**DRY RUN** — this page ran at its profile's shapes with the work capped (" + CAPS
            + "): it shows that the page runs, not what it finds; its numbers mean nothing.")


#: the file a dry-run book writes its cost to (``<root>/<name>``); copied to ``book/bench/measured/``
#: it is shown on the benchmark page "Training cost"
MEASURED_NAME = "cpu_dryrun.csv"


def peak_rss_gb() -> float:
    """The largest resident set (GB) of this process and of every child it has waited for (the
    pages' kernels and the HTML build): the peak memory of the largest single process."""
    import resource

    kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return kib * 1024 / 1e9


def page_seconds(base: str | Path | None = None, since: str | None = None):
    """Seconds each page of a dry run took (from the manifests of ``<root>/book/executed``), as a
    DataFrame (page, seconds), in execution order; with ``since`` (an ISO UTC time as the
    manifests write it), only the pages executed from then on (not those an earlier command ran)."""
    import json

    import pandas as pd

    executed = Path(base if base is not None else root()) / "book" / "executed"
    rows = []
    for path in executed.rglob("*.manifest.json"):
        m = json.loads(path.read_text())
        if since is not None and str(m.get("started", "")) < since:
            continue
        rows.append({"page": m.get("output"), "started": m.get("started"),
                     "seconds": float(m.get("duration_s", float("nan")))})
    df = pd.DataFrame(rows, columns=["page", "started", "seconds"])
    return df.sort_values("started", kind="stable").drop(columns="started").reset_index(drop=True)


def write_measurement(profile: str, wall_s: float, peak_gb: float, book_s: float,
                      base: str | Path | None = None, command: str | None = None,
                      since: str | None = None) -> Path:
    """Write what a dry-run book cost on this machine to ``<root>/cpu_dryrun.csv``: one row per
    page this command executed (seconds; ``since``: its start, see :func:`page_seconds`), a
    ``book build`` row and a ``total`` row (wall seconds and peak memory), each with its provenance
    (machine, threads, torch, commit, date, command). A total over pages an earlier command
    executed would understate the cost: read the ``page`` rows' count beside it."""
    import sys
    import time

    import pandas as pd
    import torch

    from alignlib.repro import code_version
    from alignlib.training.store import machine_description

    base = Path(base if base is not None else root())
    pages = page_seconds(base, since).assign(kind="page", peak_rss_gb=float("nan"))
    extra = pd.DataFrame([{"page": "book build", "seconds": book_s, "kind": "build",
                           "peak_rss_gb": float("nan")},
                          {"page": "total", "seconds": wall_s, "kind": "total",
                           "peak_rss_gb": peak_gb}])
    df = pd.concat([pages, extra], ignore_index=True).assign(
        profile=profile, machine=machine_description(), threads=torch.get_num_threads(),
        torch=torch.__version__, commit=code_version(),
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=command or " ".join(["alignlib", *sys.argv[1:]]))
    path = base / MEASURED_NAME
    df.to_csv(path, index=False)
    return path


def read_measurement(folder: str | Path):
    """A dry run's cost as written by :func:`write_measurement` from ``folder`` (None if absent)."""
    import pandas as pd

    path = Path(folder) / MEASURED_NAME
    return pd.read_csv(path) if path.exists() else None


#: the dry run's goal on the book's 2-core, 24 GB machine (issue 21): finish in under this many minutes
GOAL_MINUTES = 45


def summary(measured) -> dict[str, Any]:
    """The headline of a dry run's cost (a :func:`read_measurement` table): total minutes, peak
    memory (GB, largest process), pages, HTML build minutes, the slowest page, and whether the
    :data:`GOAL_MINUTES` goal was met; with the machine, threads, commit and date it ran on."""
    import pandas as pd

    pages = measured[measured.kind == "page"]
    total = measured[measured.kind == "total"].iloc[0]
    build = measured[measured.kind == "build"]
    slowest = (pages.loc[pages.seconds.idxmax()] if len(pages)
               else pd.Series({"page": "none executed", "seconds": float("nan")}))
    minutes = float(total.seconds) / 60
    return {"minutes": minutes, "peak_gb": float(total.peak_rss_gb), "n_pages": len(pages),
            "build_minutes": float(build.seconds.iloc[0]) / 60 if len(build) else float("nan"),
            "slowest_page": str(slowest.page), "slowest_minutes": float(slowest.seconds) / 60,
            "goal_met": minutes < GOAL_MINUTES, "machine": str(total.machine),
            "threads": int(total.threads), "commit": str(total.commit), "date": str(total.date),
            "command": str(total.command)}
