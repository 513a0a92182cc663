"""Where things live: raw data (read), generated data, runs and results (written).

``ALIGNLIB_DATA_DIR``  folder with raw recordings as their original sources lay them out
                       (``stringer2019/``, ``allen_ns118/``, ``onken2016/``); default ``<repo>/data``.
``ALIGNLIB_WORK_DIR``  folder for generated data (the twin, download caches); default ``<repo>/data/generated``.
``ALIGNLIB_RUNS_DIR``  training runs (configs, checkpoints, embeddings); default ``<repo>/runs``.
``ALIGNLIB_RESULTS_DIR`` tables the book quotes; default ``<repo>/results``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    return _env_path("ALIGNLIB_DATA_DIR", REPO_ROOT / "data")


def work_dir() -> Path:
    return _env_path("ALIGNLIB_WORK_DIR", REPO_ROOT / "data" / "generated")


def runs_dir() -> Path:
    return _env_path("ALIGNLIB_RUNS_DIR", REPO_ROOT / "runs")


def results_dir(chapter: str | None = None) -> Path:
    root = _env_path("ALIGNLIB_RESULTS_DIR", REPO_ROOT / "results")
    path = root / chapter if chapter else root
    path.mkdir(parents=True, exist_ok=True)
    return path
