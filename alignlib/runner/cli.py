"""Command line: ``alignlib run|book|list``.

    alignlib list [--profile quick]                 the pipeline and each notebook's parameters
    alignlib run [TARGET ...] [--profile quick] [-p name=value ...]
                                                    execute notebooks (all, or the named ones)
    alignlib book [--profile quick] [--no-run]      execute the pipeline, then build the HTML book

TARGET is a notebook (``dina/train``) or one of its outputs (``dina/train_M2``). Values given with
``-p`` are read as YAML (``-p epochs=30`` is an int, ``-p mice=[M1,M2]`` a list) and checked against
the notebook's ``parameters`` cell: unknown names and wrong types are refused before anything runs.
"""
from __future__ import annotations

import argparse
import sys
import time

from alignlib.runner.book import BookBuildFailed, build_book
from alignlib.runner.execute import NotebookFailed, run_pipeline
from alignlib.runner.params import ParameterError, parse_override, read_parameters
from alignlib.runner.pipeline import load_pipeline


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alignlib", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "execute notebooks with papermill"),
                        ("book", "execute the pipeline and build the HTML book"),
                        ("list", "show the pipeline and notebook parameters")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--profile", default="quick", help="quick (default), paper or smoke")
        if name == "run":
            p.add_argument("targets", nargs="*", help="notebooks or outputs to run (default: all)")
            p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                           help="override a notebook parameter (repeatable)")
        if name == "book":
            p.add_argument("--no-run", action="store_true", help="only build from already-executed notebooks")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            pipeline = load_pipeline()
            pipeline.check_profile(args.profile)
            for run in pipeline.plan(args.profile):
                print(f"{run.output}  ({run.notebook})")
                for name, p in read_parameters(run.source).items():
                    value = run.parameters.get(name, p.default)
                    print(f"    {name}: {p.type_name} = {value!r}")
            return 0
        t0 = time.perf_counter()
        if args.command == "run":
            overrides = dict(parse_override(p) for p in args.param)
            run_pipeline(args.profile, args.targets or None, overrides)
        else:
            if not args.no_run:
                run_pipeline(args.profile)
            t1 = time.perf_counter()
            build_book()
            print(f"[alignlib] notebooks {t1 - t0:.0f} s, book build {time.perf_counter() - t1:.0f} s")
        return 0
    except (ParameterError, NotebookFailed, BookBuildFailed) as err:
        print(f"alignlib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
