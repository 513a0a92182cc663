"""Command line: ``alignlib run|book|list|toc|store``.

    alignlib list [--profile quick]                 the pipeline, each page's state and parameters
    alignlib run [TARGET ...] [--profile quick] [-p name=value ...] [--force] [--upstream] [PARALLEL]
                                                    execute the out-of-date notebooks (all, or the named ones)
    alignlib book [--profile quick] [--no-run] [--force] [PARALLEL]
                                                    regenerate _toc.yml, run the pipeline, build the HTML book
    alignlib toc [--check]                          write (or check) _toc.yml from pipeline.yml
    alignlib store list|verify|add|regenerate       the run store shipped with the book (book/store/)

``--dry-run`` (run, book) executes the pages at the profile's shapes with every training capped to
a step and every evaluation to a few items (:mod:`alignlib.dryrun`), in folders of its own under
``_build/dryrun/`` (``$ALIGNLIB_DRY_RUN_DIR``): executed pages, runs, results and its HTML book
(``_build/dryrun/_build/html``); the run store is off, and nothing it makes reaches
``book/executed/``, ``runs/``, ``results/``, the store or the claims ledger. Before it starts it
says what it caps, where it writes, and how much memory the profile's training steps need (a Table 1 row
that cannot fit this machine is left out, with its need and why).

``--retrain`` (run, book) ignores the run store: every training run that this machine's ``runs/`` does not
hold is trained again. ``alignlib store regenerate [--profile quick] [--workers N]`` is that book build
followed by ``alignlib store add --from-pages --replace``: it regenerates the whole store.

TARGET is a notebook (``dina/train``) or one of its outputs (``dina/train_M2``). Values given with
``-p`` are read as YAML (``-p epochs=30`` is an int, ``-p mice=[M1,M2]`` a list) and checked against
the notebook's ``parameters`` cell: unknown names and wrong types are refused before anything runs.
A page runs only when out of date (its source, parameters, the alignlib source, the pages it needs or
its input data changed); ``--force`` re-executes the targets. With targets, pages they need that were
never executed run first (``--upstream``: also those out of date), and pages that need them run again.

PARALLEL: ``--workers N`` runs independent pages side by side on a Dask LocalCluster of N single-threaded
worker processes, each page's kernel limited to cores/N threads (``--threads K`` to choose);
``--scheduler tcp://host:8786`` uses a running Dask cluster instead (e.g. dask-jobqueue on SLURM).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from alignlib.paths import REPO_ROOT, OutsideFolder, data_dir
from alignlib.runner import cache
from alignlib.runner.book import BookBuildFailed, build_book
from alignlib.runner.execute import NotebookFailed, default_executed_dir, run_pipeline
from alignlib.runner.params import ParameterError, parse_override, read_parameters
from alignlib.runner.pipeline import load_pipeline
from alignlib.runner.toc import toc_differences, write_toc


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alignlib", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "execute the out-of-date notebooks with papermill"),
                        ("book", "regenerate _toc.yml, execute the pipeline and build the HTML book"),
                        ("list", "show the pipeline, each page's state and its parameters"),
                        ("toc", "write _toc.yml from pipeline.yml"),
                        ("store", "the run store: list | verify | add | regenerate (alignlib store -h)")):
        p = sub.add_parser(name, help=help_)
        if name == "store":          # handled by _store before parsing; listed here for --help
            continue
        if name == "toc":
            p.add_argument("--check", action="store_true", help="only report how _toc.yml differs (exit 1)")
            continue
        p.add_argument("--profile", default="quick", help="quick (default), paper or smoke")
        if name == "run":
            p.add_argument("targets", nargs="*", help="notebooks or outputs to run (default: all)")
            p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                           help="override a notebook parameter of the targets (repeatable)")
            p.add_argument("--upstream", action="store_true",
                           help="also re-execute out-of-date pages the targets need (default: only missing ones)")
        if name in ("run", "book"):
            p.add_argument("--force", action="store_true", help="re-execute the targeted pages even if up to date")
            p.add_argument("--retrain", action="store_true",
                           help="ignore the run store (book/store/): train every run runs/ does not hold")
            p.add_argument("--dry-run", action="store_true",
                           help="every page at the profile's shapes, training capped to a step, "
                                "evaluations to a few items, in _build/dryrun/ "
                                "($ALIGNLIB_DRY_RUN_DIR); see alignlib.dryrun")
            p.add_argument("--workers", type=_positive, default=1, metavar="N",
                           help="run independent pages in parallel on a Dask LocalCluster of N worker "
                                "processes (default 1: serially, in this process)")
            p.add_argument("--scheduler", metavar="ADDRESS",
                           help="run the pages on the running Dask cluster at ADDRESS (tcp://host:8786)")
            p.add_argument("--threads", type=_positive, default=None, metavar="K",
                           help="BLAS/OpenMP/torch threads per page kernel (default with --workers: cores/N; "
                                "an OMP_NUM_THREADS already set wins)")
        if name == "book":
            p.add_argument("--no-run", action="store_true", help="only build from already-executed notebooks")
    return ap


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _list(profile: str) -> None:
    pipeline = load_pipeline()
    folder, package = default_executed_dir(), cache.package_hash()
    for run in pipeline.plan(profile):
        upstream = {name: cache.recorded_key(folder, name) for name in run.needs}
        reasons = cache.stale_reasons(folder, run.output, cache.key_components(run, upstream, package, data_dir()))
        state = "up to date" if not reasons else reasons[0] if reasons == [cache.NOT_EXECUTED] \
            else "out of date: " + ", ".join(reasons)
        print(f"{run.output}  ({run.notebook}; {state})")
        for name, p in read_parameters(run.source).items():
            print(f"    {name}: {p.type_name} = {run.parameters.get(name, p.default)!r}")


def _store(argv: list[str]) -> int:
    """``alignlib store ...``: the store's own commands, and ``regenerate`` (retrain the book, then store)."""
    from alignlib.training import store

    if argv[:1] != ["regenerate"]:
        return store.main(argv)
    ap = argparse.ArgumentParser(prog="alignlib store regenerate",
                                 description="retrain every run of the book ignoring the store, then store them")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--workers", type=_positive, default=1, metavar="N")
    ap.add_argument("--threads", type=_positive, default=None, metavar="K")
    args = ap.parse_args(argv[1:])
    t0 = time.perf_counter()
    code = main(["book", "--profile", args.profile, "--retrain", "--workers", str(args.workers)]
                + (["--threads", str(args.threads)] if args.threads else []))
    if code:
        return code
    code = store.main(["add", "--from-pages", "--replace"])
    print(f"[alignlib] store regenerated in {(time.perf_counter() - t0) / 60:.1f} min")
    return code


def _start_dry_run(profile: str, log=print) -> Path:
    """Switch this process (and so every page's kernel) to a dry run
    (:func:`alignlib.dryrun.folders`), and say, before anything runs, what it caps, where it writes
    and what its training steps need in memory. Returns the dry run's folder."""
    import os

    from alignlib import dryrun

    root = dryrun.root()
    os.environ.update(dryrun.folders(root))
    log(f"[alignlib] dry run of the {profile} profile: every page at the profile's shapes; "
        f"{dryrun.CAPS}")
    log(f"[alignlib] dry run writes to {root} (executed pages, runs, results, HTML book); the run "
        "store is off; nothing reaches book/executed/, runs/, results/, the store or the ledger")
    for line in _memory_preflight(profile):
        log(f"[alignlib] {line}")
    return root


def _memory_preflight(profile: str) -> list[str]:
    """What the profile's DINA training steps need in memory on this machine (estimates:
    :func:`alignlib.experiments.dina.settings.step_memory_gb`), and the Table 1 rows a dry run
    leaves out because they cannot fit."""
    from alignlib.experiments.dina import settings
    from alignlib.experiments.dina.cast import twin_config

    cfg = settings.resolve(profile)
    n_neurons = twin_config(cfg["twin_size"]).n_neurons
    gb, why = settings.step_memory_gb(cfg, n_neurons)
    total = settings.machine_memory_gb()
    short = "" if gb <= 0.9 * total else " — NOT ENOUGH: the training pages will run out of memory"
    lines = [f"memory: a DINA training step of this profile needs ~{gb:.1f} GB at batch "
             f"{cfg['batch_size']} and N = {n_neurons:,} ({why}); this machine has {total:.0f} GB"
             + short]
    for name, need in settings.table1_rows_too_big(profile):
        lines.append(f"left out of the dry run: Table 1 row {name!r} {need}")
    lines.append("memory: the VNA, Vi-ST and benchmark pages are not estimated before they run "
                 "(the dry run records the peak of the largest process)")
    return lines


def _dry_run_book_root(root: Path) -> Path:
    """The dry run's book source: ``_toc.yml``, ``_config.yml`` and ``book/`` (but its executed
    pages and the run store) copied into ``root``, whose ``book/executed/`` holds the dry run's
    pages."""
    import shutil

    for name in ("_toc.yml", "_config.yml"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "book", root / "book", dirs_exist_ok=True,
                    ignore=lambda d, names: [n for n in names if Path(d) == REPO_ROOT / "book"
                                             and n in ("executed", "store")])
    return root


def main(argv: list[str] | None = None) -> int:
    """The command line. ``--retrain`` and ``--dry-run`` set environment variables for this process
    and every page's kernel; they are restored when the command returns, so a caller in the same
    process (a test, a notebook) is not left in a dry run."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["store"]:
        return _store(argv[1:])
    saved = dict(os.environ)
    try:
        return _main(_parser().parse_args(argv))
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


def _main(args: argparse.Namespace) -> int:
    if getattr(args, "retrain", False):
        import os

        os.environ["ALIGNLIB_STORE"] = "off"      # this process and every page's kernel
    dry_root = _start_dry_run(args.profile) if getattr(args, "dry_run", False) else None
    try:
        if args.command == "list":
            _list(args.profile)
            return 0
        if args.command == "toc":
            pipeline = load_pipeline()
            if args.check:
                problems = toc_differences(pipeline, REPO_ROOT)
                print("\n".join(problems) or "_toc.yml matches pipeline.yml")
                return 1 if problems else 0
            print("[alignlib] _toc.yml " + ("written" if write_toc(pipeline, REPO_ROOT) else "already up to date"))
            return 0
        t0 = time.perf_counter()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")   # as manifests say it
        if args.command == "run":
            overrides = dict(parse_override(p) for p in args.param)
            run_pipeline(args.profile, args.targets or None, overrides, force=args.force, upstream=args.upstream,
                         workers=args.workers, scheduler=args.scheduler, threads=args.threads)
            return 0
        book_root = dry_root or REPO_ROOT
        if default_executed_dir() != book_root / "book" / "executed":
            raise BookBuildFailed(f"the book is built from {book_root / 'book' / 'executed'}, but "
                                  f"ALIGNLIB_EXECUTED_DIR points to {default_executed_dir()}; unset it to build")
        pipeline = load_pipeline()
        if write_toc(pipeline, REPO_ROOT):
            print("[alignlib] _toc.yml regenerated from pipeline.yml")
        if not args.no_run:
            run_pipeline(args.profile, force=args.force, pipeline=pipeline, workers=args.workers,
                         scheduler=args.scheduler, threads=args.threads)
        t1 = time.perf_counter()
        if dry_root is not None:
            build_book(_dry_run_book_root(dry_root), force=args.force, results=dry_root / "results")
        else:
            build_book(force=args.force)
        t2 = time.perf_counter()
        print(f"[alignlib] notebooks {t1 - t0:.1f} s, book build {t2 - t1:.1f} s")
        if dry_root is not None:
            from alignlib import dryrun

            peak = dryrun.peak_rss_gb()
            path = dryrun.write_measurement(args.profile, t2 - t0, peak, t2 - t1, dry_root,
                                            since=started)
            print(f"[alignlib] dry run: {t2 - t0:.0f} s, peak memory {peak:.1f} GB (largest "
                  f"process); written to {path} (copy it to book/bench/measured/ to show it on "
                  "the benchmark page)")
        return 0
    except (ParameterError, NotebookFailed, BookBuildFailed, OutsideFolder) as err:
        print(f"alignlib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
