"""Execute notebooks with papermill: jupytext source -> executed .ipynb, written atomically, with a
manifest beside it; pages that are up to date (see :mod:`alignlib.runner.cache`) are skipped.

A notebook that raises leaves the last good executed copy (and its manifest) in place; the partial
execution is kept under ``<executed_dir>/_failed/`` for inspection, and :class:`NotebookFailed` names the
step, notebook and cell (the cell's index in that executed copy: a cell that opens with imports is split
in two before execution, see :mod:`alignlib.runner.present`). The executed folder is ``$ALIGNLIB_EXECUTED_DIR``, default ``<repo>/book/executed``.

Safe to run twice at once: every page is executed and published under its lock
(``<executed_dir>/.locks/<page>.lock``); a command that finds a page locked says so, waits, and does not
run it again when the other command published it with the same key. Pages, ``_failed/`` copies and
manifests are written to uniquely named temporary files beside their target and renamed into place, and
every path built from a page name must stay inside its folder (:func:`alignlib.paths.inside`).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from alignlib.paths import REPO_ROOT, data_dir, inside, locked, temporary_beside
from alignlib.training.store import RUNS_LOG_ENV
from alignlib.runner import cache, present
from alignlib.runner.pipeline import Pipeline, PlannedRun, load_pipeline, validate_runs

EXECUTED_DIR = REPO_ROOT / "book" / "executed"
ROLE_NOTE = {"upstream": " (needed by the targets)", "downstream": " (needs the targets)"}


def default_executed_dir() -> Path:
    """Where executed notebooks go: ``$ALIGNLIB_EXECUTED_DIR``, default ``<repo>/book/executed``."""
    from alignlib import dryrun

    value = os.environ.get("ALIGNLIB_EXECUTED_DIR")
    return dryrun.check_folder(Path(value).expanduser().resolve() if value else EXECUTED_DIR,
                               "executed pages")


class NotebookFailed(RuntimeError):
    """A notebook raised while executing (``step``: the page's output name, when known)."""

    def __init__(self, notebook: str, cell_index: int | None, exec_count: int | None, error: str,
                 partial: Path | None, step: str | None = None):
        self.notebook, self.cell_index, self.exec_count, self.partial = notebook, cell_index, exec_count, partial
        self.error, self.step = error, step
        where = f"cell {cell_index}" + (f" (In [{exec_count}])" if exec_count else "") if cell_index is not None else "an unknown cell"
        kept = f"; partial output kept at {partial}" if partial else ""
        prefix = f"step {step}: " if step else ""
        super().__init__(f"{prefix}notebook {notebook} failed in {where}: {error}{kept}")

    def __reduce__(self):  # travels back from a Dask worker intact
        return type(self), (self.notebook, self.cell_index, self.exec_count, self.error, self.partial, self.step)


@dataclass(frozen=True)
class PageStatus:
    """What :func:`run_pipeline` did with one page."""
    output: str
    path: Path
    executed: bool
    reason: str  # why it ran or did not


@contextlib.contextmanager
def patched_environ(env: dict[str, str] | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kernel_manager_class(env: dict[str, str]):
    """A Jupyter kernel manager whose kernel starts with ``env`` on top of this process's environment
    (per execution, so concurrent executions in one process do not share ``os.environ`` edits)."""
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class EnvKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw):
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            return await super()._async_pre_start_kernel(**kw)

    return EnvKernelManager


def teach_papermill_union_annotations() -> None:
    """Make papermill's Python parameter parser read PEP 604 annotations (``epochs: int | None = None``).

    papermill 2.x finds a notebook's parameters with a regular expression whose annotation part allows
    no ``|`` (nteract/papermill#695, #806), so it skipped every ``X | None`` parameter and warned
    "Passed unknown parameter" for each one passed, although it injects it. This registers, for
    ``python``, its translator with that one character class widened (as nteract/papermill#894 does)."""
    from papermill.translators import PythonTranslator, papermill_translators

    if getattr(papermill_translators.find_translator("python3", "python"), "reads_unions", False):
        return
    narrow = r"[\w_\[\],\s]*"
    pattern = PythonTranslator.PARAMETER_PATTERN.pattern
    if narrow not in pattern:  # a papermill that changed its parser: leave it as it is
        return

    class UnionAwarePythonTranslator(PythonTranslator):
        reads_unions = True
        PARAMETER_PATTERN = re.compile(pattern.replace(narrow, r"[\w_\[\],\s|.]*"))

    papermill_translators.register("python", UnionAwarePythonTranslator)


def _run_papermill(src: Path, out: Path, parameters: dict[str, Any], cwd: Path,
                   env: dict[str, str] | None = None) -> None:
    import papermill

    teach_papermill_union_annotations()
    papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                               cwd=str(cwd), progress_bar=False, log_output=False,
                               kernel_manager_class=kernel_manager_class(env or {}))


def execute_notebook(run: PlannedRun, executed_dir: str | Path | None = None, *, cwd: str | Path = REPO_ROOT,
                     env: dict[str, str] | None = None, log: Callable[[str], None] = print,
                     manifest: dict[str, Any] | None = None) -> Path:
    """Convert ``run.source`` with jupytext, execute it with papermill (its kernel gets ``env`` on top of
    this process's environment), add the page's presentation (collapsed setup cells, "Reproduce this page"
    with the result files it registered; :mod:`alignlib.runner.present`), and atomically publish it.

    The old manifest is removed before the new notebook is published, and ``manifest`` (if given) is
    written after it, with the start time, duration and the files the page wrote: a manifest never
    describes another notebook.
    """
    import jupytext
    import nbformat
    import papermill

    executed_dir = Path(executed_dir) if executed_dir is not None else default_executed_dir()
    final = inside(executed_dir, f"{run.output}.ipynb")   # refused before anything is written
    inside(executed_dir / "_failed", f"{run.output}.ipynb")
    final.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(run.source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    present.split_leading_setup(nb)
    with tempfile.TemporaryDirectory(prefix="alignlib-run-") as tmp:
        src = Path(tmp) / "input.ipynb"
        out = Path(tmp) / "output.ipynb"
        outputs_log, runs_log = Path(tmp) / "outputs.log", Path(tmp) / "runs.log"
        nbformat.write(nb, src)
        kernel_env = {**(env or {}), present.OUTPUTS_LOG_ENV: str(outputs_log), RUNS_LOG_ENV: str(runs_log),
                      "ALIGNLIB_COMMAND": present.reproduce_command(run.notebook, run.parameters)}
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        log(f"[alignlib] running {run.notebook} -> {final} with {run.parameters}")
        try:
            _run_papermill(src, out, run.parameters, Path(cwd), kernel_env)
        except papermill.PapermillExecutionError as err:
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), err.cell_index, err.exec_count, f"{err.ename}: {err.evalue}",
                                 partial, run.output) from None
        except Exception as err:  # kernel died, timeout, ...
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), None, None, f"{type(err).__name__}: {err}", partial,
                                 run.output) from None
        duration = time.perf_counter() - t0
        written = present.read_outputs_log(outputs_log)
        runs_read = present.read_outputs_log(runs_log)
        results_root = (env or {}).get("ALIGNLIB_RESULTS_DIR") or os.environ.get("ALIGNLIB_RESULTS_DIR") \
            or REPO_ROOT / "results"
        executed = nbformat.read(out, as_version=4)
        present.finish_page(executed, run.notebook, run.output, run.parameters, written, results_root,
                            runs_read)
        nbformat.write(executed, out)
        cache.manifest_path(executed_dir, run.output).unlink(missing_ok=True)
        _publish(out, final)
        if manifest is not None:
            cache.write_manifest(executed_dir, run.output, {**manifest, "started": started,
                                                            "duration_s": round(duration, 3), "wrote": written,
                                                            "runs_read": runs_read})
        log(f"[alignlib] {run.output} done in {duration:.1f} s")
    return final


def _publish(src: Path, final: Path) -> None:
    """Copy to a uniquely named file next to ``final``, then rename: readers never see a half-written
    notebook, and two commands never share a temporary file."""
    tmp = temporary_beside(final)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, final)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _keep_partial(out: Path, executed_dir: Path, name: str) -> Path | None:
    if not out.exists():
        return None
    dest = inside(executed_dir / "_failed", f"{name}.ipynb")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _publish(out, dest)
    return dest


def page_lock(executed_dir: str | Path, output: str, log: Callable[[str], None] | None = None):
    """The lock of one executed page (``<executed_dir>/.locks/<output>.lock``), held while it runs and is
    published: see :func:`alignlib.paths.locked`."""
    return locked(inside(Path(executed_dir) / ".locks", f"{output}.lock"), f"the page {output}", log)


def execute_locked(run: PlannedRun, executed_dir: Path, manifest: dict[str, Any], *, again: bool = False,
                   log: Callable[[str], None] = print, **kwargs: Any) -> bool:
    """:func:`execute_notebook` under the page's lock. When the lock was held by another command that
    published this page with the key ``manifest`` describes, the page is not run again (unless
    ``again``: ``--force``); return whether it ran."""
    with page_lock(executed_dir, run.output, log):
        if not again and cache.recorded_key(executed_dir, run.output) == manifest["key"]:
            log(f"[alignlib] {run.output}: published meanwhile by another command with the same key, not run again")
            return False
        execute_notebook(run, executed_dir, log=log, manifest=manifest, **kwargs)
        return True


class _Planner:
    """Decides, page by page in schedule order, whether a page is skipped, left for later or executed.
    A page is decided only after every scheduled page it needs has finished (serially: the pages before
    it; in parallel: as they complete), so the upstream keys it reads are final."""

    def __init__(self, folder: Path, package: str, *, force: bool, upstream: bool, log: Callable[[str], None]):
        self.folder, self.package, self.force, self.upstream, self.log = folder, package, force, upstream, log
        self.not_yet: list[str] = []

    def decide(self, run: PlannedRun, role: str) -> tuple[str, Any]:
        """("skip", PageStatus), ("later", None) for a page needing targets that is not executed yet, or
        ("run", (manifest, reasons))."""
        upstream_keys = {name: cache.recorded_key(self.folder, name) for name in run.needs}
        components = cache.key_components(run, upstream_keys, self.package, data_dir())
        reasons = cache.stale_reasons(self.folder, run.output, components)
        page = self.folder / f"{run.output}.ipynb"
        if self.force and role == "target":
            reasons = reasons or ["--force"]
        if reasons and reasons != [cache.NOT_EXECUTED] and role == "upstream" and not self.upstream:
            self.log(f"[alignlib] using {run.output} as executed, though out of date ({', '.join(reasons)}); "
                     f"`--upstream` or `alignlib book` re-executes it")
            return "skip", PageStatus(run.output, page, False, "out of date, used as executed")
        if role == "downstream" and (reasons == [cache.NOT_EXECUTED] or set(run.needs) & set(self.not_yet)):
            self.not_yet.append(run.output)
            return "later", None
        if not reasons:
            self.log(f"[alignlib] up to date, skipped: {run.output}")
            return "skip", PageStatus(run.output, page, False, "up to date")
        why = reasons[0] if reasons in ([cache.NOT_EXECUTED], ["--force"]) else "changed: " + ", ".join(reasons)
        self.log(f"[alignlib] {run.output}: {why}" + ROLE_NOTE.get(role, ""))
        manifest = {"output": run.output, "notebook": run.notebook, "status": "ok",
                    "key": cache.cache_key(components), "components": components}
        return "run", (manifest, reasons)


def execute_step(run: PlannedRun, executed_dir: Path, manifest: dict[str, Any], env: dict[str, str] | None = None,
                 cwd: str | Path = REPO_ROOT, log: Callable[[str], None] | None = None,
                 again: bool = False) -> float | None:
    """Execute one planned page where it runs (here, or on a Dask worker) under its lock
    (:func:`execute_locked`), recording that machine's environment in the manifest; return the seconds
    it took, or None when another command published it meanwhile."""
    t0 = time.perf_counter()
    ran = execute_locked(run, executed_dir, {**manifest, **cache.environment()}, again=again,
                         cwd=cwd, env=env, log=log or (lambda *_: None))
    return time.perf_counter() - t0 if ran else None


def run_pipeline(profile: str = "quick", targets: list[str] | None = None, overrides: dict[str, Any] | None = None,
                 executed_dir: str | Path | None = None, env: dict[str, str] | None = None,
                 log: Callable[[str], None] = print, *, force: bool = False, upstream: bool = False,
                 pipeline: Pipeline | None = None, workers: int = 1, scheduler: str | None = None,
                 client: Any = None, threads: int | None = None) -> list[PageStatus]:
    """Plan and validate every run first, then execute the pages that are out of date.

    Without ``targets`` every page runs when out of date. With targets: the targets run when out of date;
    the pages they need run first when never executed (also when out of date if ``upstream``), else they
    are used as they are; pages that need the targets run again when already executed and now out of date.
    ``force`` re-executes the targets even when up to date.

    Serially (``workers=1``, the default), pages run in order and the first failure stops the run. With
    ``workers > 1`` (a Dask ``LocalCluster`` of that many single-threaded worker processes), ``scheduler``
    (the address of a running Dask scheduler) or ``client`` (a ``distributed.Client``), independent pages
    run in parallel: see :func:`alignlib.runner.parallel.run_parallel`. ``threads`` limits each page's
    kernel to that many BLAS/OpenMP/torch threads (default with ``workers``: the cores divided by ``workers``).
    """
    pipeline = pipeline or load_pipeline()
    scheduled = pipeline.schedule(profile, targets, overrides)
    folder = Path(executed_dir) if executed_dir is not None else default_executed_dir()
    validate_runs([r for r, role in scheduled if role == "downstream" and (folder / f"{r.output}.ipynb").exists()])
    statuses: list[PageStatus] = []
    with patched_environ(env):
        planner = _Planner(folder, cache.package_hash(), force=force, upstream=upstream, log=log)
        if workers > 1 or scheduler or client is not None:
            from alignlib.runner import parallel

            statuses = parallel.run_parallel(scheduled, planner, folder, log=log, workers=workers,
                                             scheduler=scheduler, client=client, threads=threads)
        else:
            for run, role in scheduled:
                kind, what = planner.decide(run, role)
                if kind == "skip":
                    statuses.append(what)
                elif kind == "run":
                    manifest, reasons = what
                    ran = execute_locked(run, folder, {**manifest, **cache.environment()}, log=log,
                                         again=reasons == ["--force"], env=thread_env(threads) or None)
                    statuses.append(PageStatus(run.output, folder / f"{run.output}.ipynb", ran,
                                               ", ".join(reasons) if ran else "published by another command"))
    if planner.not_yet:
        log(f"[alignlib] not executed yet (they need the targets; `alignlib book` runs them): {', '.join(planner.not_yet)}")
    return statuses


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_env(threads: int | None) -> dict[str, str]:
    """The environment that limits a kernel (numpy's BLAS, torch's intra-op pool) to ``threads`` threads;
    a variable already set in this process's environment is kept as the user set it."""
    if not threads:
        return {}
    return {var: os.environ.get(var, str(threads)) for var in THREAD_VARS}
