"""Build the HTML book with Jupyter Book 1 from already-executed notebooks (``execute_notebooks: off``).

Warnings are errors (``-W -n --keep-going``). The build is skipped when nothing it reads changed
since the last successful one (a stamp in ``_build/`` holds the hash of ``_toc.yml``, ``_config.yml``
and every file under ``book/``). MathJax is served from the ``jupyter-server-mathjax`` package,
copied into the built site's ``_static/mathjax`` after the build (not through ``html_static_path``:
Jupyter Book would then add every MathJax script to every page), so that math renders with no internet.
``results/`` is copied to ``_build/html/results/`` after every build, so the result files each page links
in its "Reproduce this page" cell download from the site; library warnings printed in executed pages
are reported (:func:`alignlib.runner.present.leaked_warnings`). Two builds at once take turns: the
build holds the lock ``_build/.alignlib-book.lock``, and the second then finds the book unchanged.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

from alignlib.paths import REPO_ROOT, locked, results_dir
from alignlib.runner.cache import MANIFEST_SUFFIX
from alignlib.runner.present import leaked_warnings
from alignlib.runner.toc import toc_pages

STAMP = Path("_build") / ".alignlib-book-stamp"
BOOK_LOCK = Path("_build") / ".alignlib-book.lock"


class BookBuildFailed(RuntimeError):
    """Jupyter Book reported an error or a warning."""


def toc_files(root: str | Path = REPO_ROOT) -> list[str]:
    """Every file named in ``_toc.yml`` (relative to ``root``, without suffix)."""
    return [page for page, _, _ in toc_pages(yaml.safe_load((Path(root) / "_toc.yml").read_text()))]


def missing_pages(root: str | Path = REPO_ROOT) -> list[str]:
    root = Path(root)
    return [f for f in toc_files(root)
            if not any((root / f"{f}{ext}").exists() for ext in (".md", ".ipynb", ".rst"))]


def install_offline_mathjax(html_dir: str | Path) -> Path:
    """Copy MathJax 2 from the jupyter-server-mathjax package to ``<html_dir>/_static/mathjax``
    (where ``mathjax_path`` in ``_config.yml`` points)."""
    import jupyter_server_mathjax

    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dest = Path(html_dir) / "_static" / "mathjax"
    if not (dest / "MathJax.js").exists():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def copy_results(html_dir: str | Path, results: str | Path | None = None) -> Path:
    """Copy the result tables (``results/``, or ``results``) into ``<html_dir>/results`` for download."""
    dest = Path(html_dir) / "results"
    src = Path(results) if results is not None else results_dir()
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest


def report_leaked_warnings(root: str | Path, log=print) -> list:
    """Log every library warning printed in the executed pages under ``<root>/book/executed``."""
    leaks = leaked_warnings(Path(root) / "book" / "executed")
    for leak in leaks:
        log(f"[alignlib] WARNING leaked into page {leak.page}, cell {leak.cell}: {leak.text}")
    return leaks


def book_inputs_hash(root: str | Path = REPO_ROOT) -> str:
    """Hash of what the HTML build reads: ``_toc.yml``, ``_config.yml``, ``book/**`` (not manifests or
    failed runs), and the Jupyter Book version."""
    root = Path(root)
    files = [root / "_toc.yml", root / "_config.yml"] + [
        p for p in (root / "book").rglob("*")
        if p.is_file() and "_failed" not in p.parts and ".locks" not in p.parts
        and not p.name.endswith((MANIFEST_SUFFIX, ".partial"))]
    h = hashlib.sha256(f"jupyter-book {metadata.version('jupyter-book')}\n".encode())
    for path in sorted(files):
        data = path.read_bytes() if path.exists() else b""
        h.update(f"{path.relative_to(root).as_posix()}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def build_book(root: str | Path = REPO_ROOT, log=print, force: bool = False, results: str | Path | None = None) -> Path:
    """Run ``jupyter-book build`` on ``root`` (unless unchanged since the last build and not ``force``),
    copy ``results`` (default: ``results_dir()``) into the site; return the HTML folder. Raises
    :class:`BookBuildFailed`."""
    root = Path(root)
    with locked(root / BOOK_LOCK, f"the HTML book {root / '_build' / 'html'}", log):
        return _build_book(root, log, force, results)


def _build_book(root: Path, log, force: bool, results: str | Path | None) -> Path:
    missing = missing_pages(root)
    if missing:
        raise BookBuildFailed(
            "these pages of _toc.yml have no executed notebook or source yet: " + ", ".join(missing)
            + " (run `alignlib run --profile quick` first, or `alignlib book`, which runs the pipeline)")
    html = root / "_build" / "html"
    stamp, inputs = root / STAMP, book_inputs_hash(root)
    if (not force and stamp.exists() and stamp.read_text().strip() == inputs and (html / "index.html").exists()
            and (html / "_static" / "mathjax" / "MathJax.js").exists()):
        log(f"[alignlib] book unchanged since the last build, not rebuilt: {html / 'index.html'}")
        copy_results(html, results)
        return html
    stamp.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root), "--warningiserror", "--nitpick", "--keep-going"]
    log("[alignlib] " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BookBuildFailed(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    install_offline_mathjax(html)
    copy_results(html, results)
    report_leaked_warnings(root, log)
    stamp.write_text(inputs + "\n")
    log(f"[alignlib] book written to {html / 'index.html'}")
    return html
