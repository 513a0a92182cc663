"""Derived results: expensive arrays computed from a run (occlusion maps at the paper's settings cost
about 80 times the quick ones, the neuron-ablation curves) or from data files identified by content (the
Vi-ST timing scan), kept beside the runs under the run store's rules.

A derived result is identified by its *kind* (e.g. ``occlusion``), the kind's format version (bumped
when a code change alters what the same inputs give: a stale result is refused, not reused) and an
identity dict naming its inputs (the run's configuration hash, the analysis settings, the images, or
the SHA-256 of an untrained network's weights). It lives in

* ``runs/derived/<chapter>/<kind>-<hash>/`` where it was computed (this machine), then
* ``book/store/derived/<chapter>/<kind>-<hash>/`` once ``alignlib store add`` copies it in,

as ``arrays.npz`` (the arrays at their own precision: maps feed thresholds, where float16 rounding
would move results; non-finite values are refused) and ``derived.json``, written last (the completion
marker): kind, version, identity, the SHA-256 of ``arrays.npz``, who made it (commit, machine, device,
threads, torch, wall time, date, command). Reading checks the file's hash and the full identity, so a
truncated or edited file is an error naming it. A result made in a dry run (:mod:`alignlib.dryrun`) is
never stored nor read outside one. ``store verify`` checks every stored derived result the same way,
and that the run it names is in the store with the same checkpoint. Pages list the derived results
they read beside the runs they read.
"""
from __future__ import annotations

import importlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from alignlib.paths import built_in_place, inside, locked, runs_dir
from alignlib.repro import file_sha256, provenance, write_json

__all__ = ["DERIVED", "DERIVED_MARKER", "DERIVED_VERSIONS", "DerivedError", "cached", "derived_key",
           "check_derived", "add_derived", "verify_derived", "is_derived", "made_by_of", "array_sha256",
           "frame_arrays", "arrays_frame", "run_source"]

DERIVED = "derived"                 # the folder under runs/ and under the store
DERIVED_MARKER = "derived.json"
ARRAYS = "arrays.npz"
#: kind -> "module:constant" holding the kind's current format version
DERIVED_VERSIONS: dict[str, str] = {
    "occlusion": "alignlib.interpret.occlusion:MAPS_VERSION",
    "ablation": "alignlib.interpret.ablation:CURVES_VERSION",
    "timing_scan": "alignlib.experiments.vist.timing:SCAN_VERSION",
    "explained_share": "alignlib.experiments.vist.explain:SHARE_VERSION",
    "stimulus_checks": "alignlib.experiments.vist.explain:PLACEMENT_VERSION",
}


class DerivedError(RuntimeError):
    """A derived result that must not be read: missing or edited file, stale version, wrong identity."""


def current_version(kind: str) -> Any:
    if kind not in DERIVED_VERSIONS:
        raise DerivedError(f"unknown derived kind {kind!r}; known: {', '.join(DERIVED_VERSIONS)}")
    module, name = DERIVED_VERSIONS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def derived_key(kind: str, identity: Mapping[str, Any]) -> str:
    """The hash naming a derived result: kind, its current version and the identity of its inputs."""
    from alignlib.training.runs import config_hash

    return config_hash({"kind": kind, "version": current_version(kind), "identity": dict(identity)})


def array_sha256(array: Any) -> str:
    """SHA-256 of an array's dtype, shape and bytes: how a derived result names an input by content."""
    import hashlib

    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def run_source(run: str | Path | None) -> dict[str, str] | None:
    """How a derived result names the run it was computed from (``identity["run"]``): its chapter,
    folder name and checkpoint's SHA-256, which ``store verify`` compares with the stored run's. None
    for a result from no run (an untrained tower)."""
    from alignlib.repro import file_sha256

    if run is None:
        return None
    run = Path(run)
    return {"chapter": run.parent.name, "name": run.name, "checkpoint_sha256": file_sha256(run / "checkpoint.pt")}


def frame_arrays(frame: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """A table's columns as arrays (``prefix`` + column name) for a derived result; strings as unicode
    arrays (no pickled objects)."""
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        out[f"{prefix}{col}"] = values.astype(str) if values.dtype == object else values
    return out


def arrays_frame(arrays: Mapping[str, np.ndarray], prefix: str = "") -> Any:
    """The table :func:`frame_arrays` stored under ``prefix`` (columns in their stored order)."""
    import pandas as pd

    return pd.DataFrame({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


def is_derived(directory: str | Path) -> bool:
    return (Path(directory) / DERIVED_MARKER).exists()


def _check_chapter(chapter: str) -> None:
    if not chapter or not all(c.isalnum() or c in "-_" for c in chapter):
        raise ValueError(f"a chapter name uses letters, digits, '-' and '_', got {chapter!r}")


def _roots() -> list[Path]:
    from alignlib.training.store import store_dir, store_enabled

    return [runs_dir() / DERIVED] + ([store_dir() / DERIVED] if store_enabled() else [])


def check_derived(directory: str | Path) -> dict[str, Any]:
    """The ``derived.json`` of a complete derived result after checking it: the arrays' SHA-256, the
    kind's current version, and that the folder's name is the hash of its identity. Raises
    :class:`DerivedError` naming the file or the mismatch."""
    d = Path(directory)
    marker = d / DERIVED_MARKER
    if not marker.exists():
        raise DerivedError(f"{d}: not a complete derived result ({DERIVED_MARKER} missing)")
    try:
        meta = json.loads(marker.read_text())
    except json.JSONDecodeError as e:
        raise DerivedError(f"{marker}: unreadable ({e})") from e
    path = d / ARRAYS
    if not path.exists():
        raise DerivedError(f"derived result {d.name}: file {path} is missing")
    if file_sha256(path) != meta.get("sha256"):
        raise DerivedError(f"derived result {d.name}: file {path} does not match its recorded SHA-256 "
                           "(truncated or edited); restore it (git checkout) or delete the folder to recompute")
    if meta.get("version") != current_version(meta["kind"]):
        raise DerivedError(f"derived result {d.name} was made by {meta['kind']} version {meta.get('version')}; "
                           f"this code makes version {current_version(meta['kind'])}: it is not reused")
    if d.name != f"{meta['kind']}-{derived_key(meta['kind'], meta['identity'])}":
        raise DerivedError(f"derived result {d.name}: its identity does not hash to its folder's name")
    from alignlib import dryrun

    if meta.get("made_by", {}).get("dry_run") and not dryrun.active():
        raise DerivedError(f"derived result {d.name} was made in a dry run (its work capped to a step): "
                           "it is not read outside one")
    return meta


def made_by_of(directory: str | Path) -> dict[str, Any]:
    """Who made the derived result in ``directory`` and what it cost (its ``derived.json``'s ``made_by``:
    commit, machine, threads, wall seconds, date, command)."""
    return dict(json.loads((Path(directory) / DERIVED_MARKER).read_text())["made_by"])


def _load(d: Path) -> dict[str, np.ndarray]:
    with np.load(d / ARRAYS) as z:
        return {k: z[k] for k in z.files}


def cached(chapter: str, kind: str, identity: Mapping[str, Any],
           compute: Callable[[], Mapping[str, np.ndarray]],
           nan_allowed: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], Path]:
    """The derived result of ``kind`` for ``identity``: read from ``runs/derived`` or the store when
    there (checked, see :func:`check_derived`), else ``compute()``d and written to ``runs/derived``.
    Returns the arrays (as stored) and the folder they live in. Non-finite values are refused, except
    NaN in the arrays named in ``nan_allowed`` (where NaN means "undefined", e.g. a curve's point
    where no cell has a value).
    The folder is reported to the runner as read, like a run. Two processes computing the same
    result: the second waits for the first, then reads its file."""
    from alignlib.training.store import record_run_read

    _check_chapter(chapter)
    identity = json.loads(json.dumps(dict(identity)))        # as derived.json will hold it
    key = derived_key(kind, identity)
    name = f"{kind}-{key}"
    for root in _roots():
        d = inside(root, chapter, name)
        if (d / DERIVED_MARKER).exists():
            meta = check_derived(d)
            if meta["identity"] != identity:
                raise DerivedError(f"derived result {d}: its recorded identity differs from the one asked "
                                   "for although their hashes agree (edited derived.json?)")
            record_run_read(d)
            return _load(d), d
    dest = inside(runs_dir() / DERIVED, chapter, name)
    with locked(dest.parent / f".{name}.lock", f"the derived result {dest}", print):
        if not (dest / DERIVED_MARKER).exists():
            _write(dest, kind, identity, compute, nan_allowed)
    record_run_read(dest)
    return _load(dest), dest


def _write(dest: Path, kind: str, identity: Mapping[str, Any],
           compute: Callable[[], Mapping[str, np.ndarray]], nan_allowed: tuple[str, ...] = ()) -> None:
    import torch

    from alignlib.training.store import made_by

    t0 = time.perf_counter()
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    wall = time.perf_counter() - t0
    bad = [k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating)
           and not np.isfinite(np.nan_to_num(v, posinf=np.inf, neginf=-np.inf) if k in nan_allowed else v).all()]
    if bad:
        raise DerivedError(f"{kind} result for {dest.name}: non-finite values in {', '.join(bad)}; not written")
    with built_in_place(dest) as tmp:
        np.savez_compressed(tmp / ARRAYS, **arrays)
        prov = provenance()
        write_json(tmp / DERIVED_MARKER, {
            "kind": kind, "version": current_version(kind), "identity": dict(identity),
            "sha256": file_sha256(tmp / ARRAYS),
            "made_by": {**made_by(), "commit": prov.get("code_version"), "wall_seconds": wall,
                        "threads": torch.get_num_threads(), "torch": prov.get("torch"),
                        "device": "cuda" if prov.get("cuda") else "cpu"}})


def add_derived(src: str | Path, root: str | Path | None = None, replace: bool = False) -> Path:
    """Copy the complete derived result in ``src`` into the store (``<store>/derived/<chapter>/<name>``,
    checked first; built in a temporary folder and renamed into place). An existing one is kept unless
    ``replace``."""
    from alignlib.training.store import store_dir

    from alignlib import dryrun

    src = Path(src)
    if dryrun.active() or dryrun.root().resolve() in src.resolve().parents:
        raise DerivedError(f"{src}: a dry run's results are capped to a step; the run store keeps none")
    meta = check_derived(src)
    if meta.get("made_by", {}).get("dry_run"):
        raise DerivedError(f"{src}: made in a dry run; the run store keeps nothing of a dry run")
    dest = inside(Path(root or store_dir()) / DERIVED, src.parent.name, src.name)
    with locked(dest.parent / f".{src.name}.lock", f"the stored derived result {dest}", print):
        if dest.exists() and not replace:
            return dest
        with built_in_place(dest) as tmp:
            shutil.copy2(src / ARRAYS, tmp / ARRAYS)
            shutil.copy2(src / DERIVED_MARKER, tmp / DERIVED_MARKER)
    return dest


def verify_derived(root: str | Path) -> tuple[int, list[str]]:
    """Check every derived result under ``<root>/derived``: :func:`check_derived`, and that a run it
    names (identity ``run``: ``{"chapter", "name", "checkpoint_sha256"}``) is in the store under ``root``
    with that checkpoint (its ``store.json``'s recorded SHA-256). Half-written folders are reported.
    Returns (number checked, problems)."""
    base = Path(root) / DERIVED
    problems, checked = [], 0
    for d in sorted(p for p in base.glob("*/*") if p.is_dir()):
        if not (d / DERIVED_MARKER).exists():
            problems.append(f"{d}: no {DERIVED_MARKER} (a half-written derived result; remove it)")
            continue
        checked += 1
        try:
            meta = check_derived(d)
            run = meta["identity"].get("run")
            stored = Path(root) / run["chapter"] / run["name"] if run else None
            if run and not (stored / "store.json").exists():
                problems.append(f"derived result {d.name}: the run it was computed from, "
                                f"{run['chapter']}/{run['name']}, is not in the store")
            elif run and "checkpoint_sha256" in run:
                files = json.loads((stored / "store.json").read_text()).get("files", {})
                if files.get("checkpoint.pt") != run["checkpoint_sha256"]:
                    problems.append(f"derived result {d.name}: the stored run {run['name']}'s checkpoint is not "
                                    "the one it was computed from (retrained?): compute it again")
        except (DerivedError, OSError, ValueError, KeyError) as e:
            problems.append(str(e))
    return checked, problems
