"""Execute notebooks with papermill: jupytext source -> executed .ipynb, written atomically, with a
manifest beside it; pages that are up to date (see :mod:`alignlib.runner.cache`) are skipped.

A notebook that raises leaves the last good executed copy (and its manifest) in place; the partial
execution is kept under ``<executed_dir>/_failed/`` for inspection, and :class:`NotebookFailed` names the
notebook and cell. The executed folder is ``$ALIGNLIB_EXECUTED_DIR``, default ``<repo>/book/executed``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from alignlib.paths import REPO_ROOT, data_dir
from alignlib.runner import cache
from alignlib.runner.pipeline import Pipeline, PlannedRun, load_pipeline, validate_runs

EXECUTED_DIR = REPO_ROOT / "book" / "executed"
ROLE_NOTE = {"upstream": " (needed by the targets)", "downstream": " (needs the targets)"}


def default_executed_dir() -> Path:
    """Where executed notebooks go: ``$ALIGNLIB_EXECUTED_DIR``, default ``<repo>/book/executed``."""
    value = os.environ.get("ALIGNLIB_EXECUTED_DIR")
    return Path(value).expanduser().resolve() if value else EXECUTED_DIR


class NotebookFailed(RuntimeError):
    """A notebook raised while executing."""

    def __init__(self, notebook: str, cell_index: int | None, exec_count: int | None, error: str,
                 partial: Path | None):
        self.notebook, self.cell_index, self.exec_count, self.partial = notebook, cell_index, exec_count, partial
        where = f"cell {cell_index}" + (f" (In [{exec_count}])" if exec_count else "") if cell_index is not None else "an unknown cell"
        kept = f"; partial output kept at {partial}" if partial else ""
        super().__init__(f"notebook {notebook} failed in {where}: {error}{kept}")


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


def _run_papermill(src: Path, out: Path, parameters: dict[str, Any], cwd: Path) -> None:
    import papermill

    papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                               cwd=str(cwd), progress_bar=False, log_output=False)


def execute_notebook(run: PlannedRun, executed_dir: str | Path | None = None, *, cwd: str | Path = REPO_ROOT,
                     env: dict[str, str] | None = None, log: Callable[[str], None] = print,
                     manifest: dict[str, Any] | None = None) -> Path:
    """Convert ``run.source`` with jupytext, execute it with papermill, and atomically publish the result.

    The old manifest is removed before the new notebook is published, and ``manifest`` (if given) is
    written after it, with the start time and duration added: a manifest never describes another notebook.
    """
    import jupytext
    import nbformat
    import papermill

    executed_dir = Path(executed_dir) if executed_dir is not None else default_executed_dir()
    final = executed_dir / f"{run.output}.ipynb"
    final.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(run.source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    with tempfile.TemporaryDirectory(prefix="alignlib-run-") as tmp, patched_environ(env):
        src = Path(tmp) / "input.ipynb"
        out = Path(tmp) / "output.ipynb"
        nbformat.write(nb, src)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        log(f"[alignlib] running {run.notebook} -> {final} with {run.parameters}")
        try:
            _run_papermill(src, out, run.parameters, Path(cwd))
        except papermill.PapermillExecutionError as err:
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), err.cell_index, err.exec_count, f"{err.ename}: {err.evalue}", partial) from None
        except Exception as err:  # kernel died, timeout, ...
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), None, None, f"{type(err).__name__}: {err}", partial) from None
        duration = time.perf_counter() - t0
        cache.manifest_path(executed_dir, run.output).unlink(missing_ok=True)
        _publish(out, final)
        if manifest is not None:
            cache.write_manifest(executed_dir, run.output,
                                 {**manifest, "started": started, "duration_s": round(duration, 3)})
        log(f"[alignlib] {run.output} done in {duration:.1f} s")
    return final


def _publish(src: Path, final: Path) -> None:
    """Copy next to ``final`` then rename: readers never see a half-written notebook."""
    tmp = final.with_suffix(".ipynb.partial")
    shutil.copyfile(src, tmp)
    os.replace(tmp, final)


def _keep_partial(out: Path, executed_dir: Path, name: str) -> Path | None:
    if not out.exists():
        return None
    dest = executed_dir / "_failed" / f"{name}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, dest)
    return dest


def run_pipeline(profile: str = "quick", targets: list[str] | None = None, overrides: dict[str, Any] | None = None,
                 executed_dir: str | Path | None = None, env: dict[str, str] | None = None,
                 log: Callable[[str], None] = print, *, force: bool = False, upstream: bool = False,
                 pipeline: Pipeline | None = None) -> list[PageStatus]:
    """Plan and validate every run first, then execute, in order, the pages that are out of date; stop at
    the first failure.

    Without ``targets`` every page runs when out of date. With targets: the targets run when out of date;
    the pages they need run first when never executed (also when out of date if ``upstream``), else they
    are used as they are; pages that need the targets run again when already executed and now out of date.
    ``force`` re-executes the targets even when up to date.
    """
    pipeline = pipeline or load_pipeline()
    scheduled = pipeline.schedule(profile, targets, overrides)
    folder = Path(executed_dir) if executed_dir is not None else default_executed_dir()
    validate_runs([r for r, role in scheduled if role == "downstream" and (folder / f"{r.output}.ipynb").exists()])
    statuses: list[PageStatus] = []
    not_yet: list[str] = []
    with patched_environ(env):
        package = cache.package_hash()
        for run, role in scheduled:
            upstream_keys = {name: cache.recorded_key(folder, name) for name in run.needs}
            components = cache.key_components(run, upstream_keys, package, data_dir())
            reasons = cache.stale_reasons(folder, run.output, components)
            page = folder / f"{run.output}.ipynb"
            if force and role == "target":
                reasons = reasons or ["--force"]
            if reasons and reasons != [cache.NOT_EXECUTED] and role == "upstream" and not upstream:
                log(f"[alignlib] using {run.output} as executed, though out of date ({', '.join(reasons)}); "
                    f"`--upstream` or `alignlib book` re-executes it")
                statuses.append(PageStatus(run.output, page, False, "out of date, used as executed"))
                continue
            if role == "downstream" and (reasons == [cache.NOT_EXECUTED] or set(run.needs) & set(not_yet)):
                not_yet.append(run.output)
                continue
            if not reasons:
                log(f"[alignlib] up to date, skipped: {run.output}")
                statuses.append(PageStatus(run.output, page, False, "up to date"))
                continue
            why = reasons[0] if reasons in ([cache.NOT_EXECUTED], ["--force"]) else "changed: " + ", ".join(reasons)
            log(f"[alignlib] {run.output}: {why}" + ROLE_NOTE.get(role, ""))
            manifest = {"output": run.output, "notebook": run.notebook, "status": "ok",
                        "key": cache.cache_key(components), "components": components, **cache.environment()}
            execute_notebook(run, folder, log=log, manifest=manifest)
            statuses.append(PageStatus(run.output, page, True, ", ".join(reasons)))
    if not_yet:
        log(f"[alignlib] not executed yet (they need the targets; `alignlib book` runs them): {', '.join(not_yet)}")
    return statuses
