"""What an executed page depends on, as a cache key, and the manifest written beside it.

The key of a page is the SHA-256 of its components: the notebook source, its resolved parameters, the
``alignlib`` package source, the keys of the pages it needs (as recorded in their manifests), the
SHA-256 of the content of each of its declared input files and the ``ALIGNLIB_*`` folders. A page whose
manifest holds the same key, and whose executed notebook exists, is up to date.

Inputs are identified by what they contain, not by size and time: a file edited in place with its size
and modification time kept still changes the key. Each command reads every input once (a file's digest
is reused within one process only while its size, times and inode are unchanged; the status-change time,
which no user can set back, moves with every write).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from alignlib.paths import temporary_beside
from alignlib.repro import file_sha256 as content_sha256
from alignlib.runner.pipeline import PlannedRun

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGE_SUFFIXES = (".py", ".yml", ".yaml", ".json")
KEY_ENV = ("ALIGNLIB_DATA_DIR", "ALIGNLIB_WORK_DIR", "ALIGNLIB_RUNS_DIR", "ALIGNLIB_RESULTS_DIR",
           "ALIGNLIB_STORE_DIR", "ALIGNLIB_DRY_RUN")     # a dry-run page never passes for a real one
MANIFEST_SUFFIX = ".manifest.json"
NOT_EXECUTED = "not executed yet"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_hash(package_dir: str | Path = PACKAGE_DIR) -> str:
    """Hash of every .py/.yml/.yaml/.json file under the package (relative path and content)."""
    root = Path(package_dir)
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                   if p.suffix in PACKAGE_SUFFIXES and "__pycache__" not in p.parts and p.is_file())
    h = hashlib.sha256()
    for rel, path in files:
        h.update(f"{rel}\0{_sha256(path.read_bytes())}\n".encode())
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}
_DIGESTS_GUARD = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of the file's content, read once per process while its size, mtime, ctime and inode stay
    the same (an in-place edit moves the ctime, even when ``touch -r`` restores the mtime)."""
    st = os.stat(path)
    stamp = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    with _DIGESTS_GUARD:
        known = _DIGESTS.get(stamp)
    if known is None:
        known = content_sha256(path)
        with _DIGESTS_GUARD:
            _DIGESTS[stamp] = known
    return known


def input_fingerprints(patterns: tuple[str, ...] | list[str], data_dir: str | Path) -> dict[str, Any]:
    """``{pattern: {relative path: sha256 of its content}}`` for files matching each pattern under
    ``data_dir`` (folders count by their files); ``"missing"`` for a pattern that matches no file."""
    root = Path(data_dir)
    found: dict[str, Any] = {}
    for pattern in patterns:
        files: dict[str, str] = {}
        for rel in glob.glob(pattern, root_dir=root, recursive=True):
            path = root / rel
            for f in ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())):
                files[f.relative_to(root).as_posix()] = file_sha256(f)
        found[pattern] = dict(sorted(files.items())) or "missing"
    return found


def key_components(run: PlannedRun, upstream_keys: dict[str, str | None], package: str,
                   data_dir: str | Path, environ: dict[str, str] | os._Environ = os.environ) -> dict[str, Any]:
    """Everything the page's key is made of (JSON-serialisable)."""
    return {
        "notebook": run.notebook,
        "output": run.output,
        "source": _sha256(run.source.read_bytes()),
        "parameters": run.parameters,
        "package": package,
        "upstream": dict(sorted(upstream_keys.items())),
        "inputs": input_fingerprints(run.inputs, data_dir),
        "env": {k: environ.get(k) for k in KEY_ENV},
        "store": _store_state(environ),
    }


def _store_state(environ) -> str:
    """The run store's state (:func:`alignlib.training.store.state_digest`) under ``environ``'s settings."""
    from alignlib.training import store

    off = str(environ.get("ALIGNLIB_STORE", "on")).strip().lower() in ("off", "0", "false", "no")
    return "off" if off else store.state_digest()


def cache_key(components: dict[str, Any]) -> str:
    return _sha256(json.dumps(components, sort_keys=True, default=str).encode())


def manifest_path(executed_dir: str | Path, output: str) -> Path:
    return Path(executed_dir) / f"{output}{MANIFEST_SUFFIX}"


def read_manifest(executed_dir: str | Path, output: str) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(executed_dir, output).read_text())
    except (OSError, ValueError):
        return None


def recorded_key(executed_dir: str | Path, output: str) -> str | None:
    """The key in the page's manifest, if the page and its manifest exist."""
    manifest = read_manifest(executed_dir, output)
    if manifest is None or not (Path(executed_dir) / f"{output}.ipynb").exists():
        return None
    return manifest.get("key")


def stale_reasons(executed_dir: str | Path, output: str, components: dict[str, Any]) -> list[str]:
    """Why the page must run: [] when it is up to date, else e.g. ``["parameters", "upstream"]``."""
    manifest = read_manifest(executed_dir, output)
    if not (Path(executed_dir) / f"{output}.ipynb").exists():
        return [NOT_EXECUTED]
    if manifest is None:
        return ["no manifest"]
    if manifest.get("key") == cache_key(components):
        return []
    old = manifest.get("components", {})
    return [name for name in components if json.dumps(old.get(name), sort_keys=True, default=str)
            != json.dumps(components[name], sort_keys=True, default=str)] or ["key"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Package versions and the machine, for the manifest."""
    from alignlib.repro import code_version

    return {
        "versions": {"python": platform.python_version(), "alignlib": code_version(),
                     **{d: _version(d) for d in ("torch", "numpy", "papermill", "jupytext")}},
        "machine": {"node": platform.node(), "machine": platform.machine(), "cpu_count": os.cpu_count()},
    }


def write_manifest(executed_dir: str | Path, output: str, manifest: dict[str, Any]) -> Path:
    """Write the manifest atomically (to a uniquely named file beside it, then rename)."""
    path = manifest_path(executed_dir, output)
    tmp = temporary_beside(path)
    try:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
