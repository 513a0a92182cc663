"""Command line: ``alignlib run|book|list|toc|store``.

    alignlib list [--profile quick]                 the pipeline, each page's state and parameters
    alignlib run [TARGET ...] [--profile quick] [-p name=value ...] [--force] [--upstream] [PARALLEL]
                                                    execute the out-of-date notebooks (all, or the named ones)
    alignlib book [--profile quick] [--no-run] [--force] [PARALLEL]
                                                    regenerate _toc.yml, run the pipeline, build the HTML book
    alignlib toc [--check]                          write (or check) _toc.yml from pipeline.yml
    alignlib store list|verify|add|regenerate       the run store shipped with the book (book/store/)

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["store"]:
        return _store(argv[1:])
    args = _parser().parse_args(argv)
    if getattr(args, "retrain", False):
        import os

        os.environ["ALIGNLIB_STORE"] = "off"      # this process and every page's kernel
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
        if args.command == "run":
            overrides = dict(parse_override(p) for p in args.param)
            run_pipeline(args.profile, args.targets or None, overrides, force=args.force, upstream=args.upstream,
                         workers=args.workers, scheduler=args.scheduler, threads=args.threads)
            return 0
        if default_executed_dir() != REPO_ROOT / "book" / "executed":
            raise BookBuildFailed(f"the book is built from {REPO_ROOT / 'book' / 'executed'}, but "
                                  f"ALIGNLIB_EXECUTED_DIR points to {default_executed_dir()}; unset it to build")
        pipeline = load_pipeline()
        if write_toc(pipeline, REPO_ROOT):
            print("[alignlib] _toc.yml regenerated from pipeline.yml")
        if not args.no_run:
            run_pipeline(args.profile, force=args.force, pipeline=pipeline, workers=args.workers,
                         scheduler=args.scheduler, threads=args.threads)
        t1 = time.perf_counter()
        build_book(force=args.force)
        print(f"[alignlib] notebooks {t1 - t0:.1f} s, book build {time.perf_counter() - t1:.1f} s")
        return 0
    except (ParameterError, NotebookFailed, BookBuildFailed, OutsideFolder) as err:
        print(f"alignlib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
