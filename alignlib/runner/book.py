"""Build the HTML book with Jupyter Book 1 from already-executed notebooks (``execute_notebooks: off``).

Warnings are errors (``-W -n --keep-going``). MathJax is served from the ``jupyter-server-mathjax``
package, copied into the built site's ``_static/mathjax`` after the build (not through
``html_static_path``: Jupyter Book would then add every MathJax script to every page), so that
math renders with no internet.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from alignlib.paths import REPO_ROOT


class BookBuildFailed(RuntimeError):
    """Jupyter Book reported an error or a warning."""


def toc_files(root: str | Path = REPO_ROOT) -> list[str]:
    """Every file named in ``_toc.yml`` (relative to ``root``, without suffix)."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            if "root" in node:
                found.append(node["root"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


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


def build_book(root: str | Path = REPO_ROOT, log=print) -> Path:
    """Run ``jupyter-book build`` on ``root``; return the HTML folder. Raises :class:`BookBuildFailed`."""
    root = Path(root)
    missing = missing_pages(root)
    if missing:
        raise BookBuildFailed(
            "these pages of _toc.yml have no executed notebook or source yet: " + ", ".join(missing)
            + " (run `alignlib run --profile quick` first, or `alignlib book`, which runs the pipeline)")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root), "--warningiserror", "--nitpick", "--keep-going"]
    log("[alignlib] " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BookBuildFailed(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    html = root / "_build" / "html"
    install_offline_mathjax(html)
    log(f"[alignlib] book written to {html / 'index.html'}")
    return html
