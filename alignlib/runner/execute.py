"""Execute notebooks with papermill: jupytext source -> executed .ipynb, written atomically.

A notebook that raises leaves the last good executed copy in place; the partial execution is kept
under ``<executed_dir>/_failed/`` for inspection, and :class:`NotebookFailed` names the notebook and cell.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import jupytext
import nbformat
import papermill

from alignlib.paths import REPO_ROOT
from alignlib.runner.pipeline import PlannedRun, load_pipeline

EXECUTED_DIR = REPO_ROOT / "book" / "executed"


class NotebookFailed(RuntimeError):
    """A notebook raised while executing."""

    def __init__(self, notebook: str, cell_index: int | None, exec_count: int | None, error: str,
                 partial: Path | None):
        self.notebook, self.cell_index, self.exec_count, self.partial = notebook, cell_index, exec_count, partial
        where = f"cell {cell_index}" + (f" (In [{exec_count}])" if exec_count else "") if cell_index is not None else "an unknown cell"
        kept = f"; partial output kept at {partial}" if partial else ""
        super().__init__(f"notebook {notebook} failed in {where}: {error}{kept}")


def execute_notebook(run: PlannedRun, executed_dir: str | Path = EXECUTED_DIR, *, cwd: str | Path = REPO_ROOT,
                     env: dict[str, str] | None = None, log: Callable[[str], None] = print) -> Path:
    """Convert ``run.source`` with jupytext, execute it with papermill, and atomically publish the result."""
    executed_dir = Path(executed_dir)
    final = executed_dir / f"{run.output}.ipynb"
    final.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(run.source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    with tempfile.TemporaryDirectory(prefix="alignlib-run-") as tmp:
        src = Path(tmp) / "input.ipynb"
        out = Path(tmp) / "output.ipynb"
        nbformat.write(nb, src)
        saved_env = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        t0 = time.perf_counter()
        log(f"[alignlib] running {run.notebook} -> {final} with {run.parameters}")
        try:
            papermill.execute_notebook(str(src), str(out), parameters=run.parameters, kernel_name="python3",
                                       cwd=str(cwd), progress_bar=False, log_output=False)
        except papermill.PapermillExecutionError as err:
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), err.cell_index, err.exec_count, f"{err.ename}: {err.evalue}", partial) from None
        except Exception as err:  # kernel died, timeout, ...
            partial = _keep_partial(out, executed_dir, run.output)
            raise NotebookFailed(str(run.source), None, None, f"{type(err).__name__}: {err}", partial) from None
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        _publish(out, final)
        log(f"[alignlib] {run.output} done in {time.perf_counter() - t0:.1f} s")
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
                 executed_dir: str | Path = EXECUTED_DIR, env: dict[str, str] | None = None,
                 log: Callable[[str], None] = print) -> list[Path]:
    """Plan (validating every parameter first), then execute each run in order; stop at the first failure."""
    runs = load_pipeline().plan(profile, targets, overrides)
    return [execute_notebook(run, executed_dir, env=env, log=log) for run in runs]
