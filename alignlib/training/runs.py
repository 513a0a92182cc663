"""Run identity: every training run is keyed by a readable variant name plus a short hash of its fully
resolved configuration (model, objective, fit settings, data identity, split), so a re-run with new
parameters lands beside the book's run, never over it.

A run directory ``runs/<chapter>/<variant>-<hash>/`` holds ``spec.json`` (the configuration the hash was
computed from) from the start, and ``run.json`` once the run is complete (the completion marker).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from alignlib.paths import runs_dir
from alignlib.repro import write_json

__all__ = ["RunSpec", "config_hash", "canonical_json", "load_spec", "is_complete", "check_comparable",
           "MixedConfigurations"]

HASH_LENGTH = 10


class MixedConfigurations(ValueError):
    """Runs that were to share one table row differ in more than the allowed keys."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; tuples become lists, NumPy scalars Python numbers (the form
    that is hashed). Sets are refused (no stable order); keys must be strings."""
    return json.dumps(_check_keys(obj), sort_keys=True, separators=(",", ":"), default=_default)


def _check_keys(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"run configuration keys must be strings, got {bad}")
        for v in obj.values():
            _check_keys(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_keys(v)
    return obj


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.floating):
        return float(repr(o.item()) if o.dtype == np.float64 else str(o))   # np.float32(1e-3) -> 0.001
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (np.ndarray, tuple)):
        return list(o.tolist() if isinstance(o, np.ndarray) else o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not part of a run configuration: {type(o).__name__}")


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class RunSpec:
    chapter: str
    variant: str                 # readable: e.g. "M1-quick" (letters, digits, - _ . only)
    config: Mapping[str, Any]    # fully resolved, JSON-able

    def __post_init__(self) -> None:
        bad = [c for c in self.variant if not (c.isalnum() or c in "-_.")]
        if not self.variant or bad:
            raise ValueError(f"variant names use letters, digits, '-', '_' and '.', got {self.variant!r}")
        object.__setattr__(self, "config", json.loads(canonical_json(self.config)))

    @property
    def key(self) -> str:
        return config_hash(self.config)

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.key}"

    def directory(self, root: str | Path | None = None) -> Path:
        return Path(root or runs_dir()) / self.chapter / self.name

    def find(self, root: str | Path | None = None) -> Path | None:
        """A completed run of this exact configuration, whatever its variant name (its own name first), or None.

        Identical configurations are one run: a control that equals the book's run loads it. ``runs/`` is
        searched first, then (``root`` not given) the run store (:func:`alignlib.training.store.find_stored`,
        which refuses a stored file that does not match its recorded hash)."""
        own = self.directory(root)
        if is_complete(own):
            return own
        for d in sorted((Path(root or runs_dir()) / self.chapter).glob(f"*-{self.key}")):
            if is_complete(d) and load_spec(d).config == self.config:
                return d
        if root is None:   # the run store shipped with the book (checked before it is read)
            from alignlib.training.store import find_stored

            return find_stored(self)
        return None

    def write(self, directory: str | Path) -> Path:
        """Write ``spec.json``; refuse if the directory already holds another configuration."""
        path = Path(directory) / "spec.json"
        if path.exists():
            old = load_spec(directory)
            if old.config != self.config:
                raise ValueError(f"{directory} holds a run of another configuration")
            return path
        return write_json(path, {"chapter": self.chapter, "variant": self.variant, "key": self.key,
                                 "config": self.config})


def load_spec(directory: str | Path) -> RunSpec:
    raw = json.loads((Path(directory) / "spec.json").read_text())
    spec = RunSpec(raw["chapter"], raw["variant"], raw["config"])
    if spec.key != raw["key"]:
        raise ValueError(f"{directory}/spec.json: stored key {raw['key']} does not match its configuration")
    return spec


def is_complete(directory: str | Path) -> bool:
    d = Path(directory)
    return (d / "spec.json").exists() and (d / "run.json").exists()


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_comparable(specs: Iterable[RunSpec], allowed: Iterable[str] = ("data", "model.n_neurons")) -> None:
    """Raise :class:`MixedConfigurations` unless the runs' configurations agree everywhere except under the
    keys ``allowed`` (dotted prefixes: the data identity and the number of recorded neurons differ between
    the mice of one row)."""
    specs = list(specs)
    allowed = tuple(allowed)

    def keep(key: str) -> bool:
        return not any(key == a or key.startswith(a + ".") for a in allowed)

    flat = [{k: v for k, v in _flatten(s.config).items() if keep(k)} for s in specs]
    for s, f in zip(specs[1:], flat[1:]):
        diff = sorted(k for k in set(f) | set(flat[0]) if f.get(k) != flat[0].get(k))
        if diff:
            raise MixedConfigurations(
                f"runs {specs[0].name} and {s.name} differ in {', '.join(diff[:6])}"
                f"{' ...' if len(diff) > 6 else ''}; they cannot share one row")


def run_lock(directory: str | Path, log=None):
    """A context manager that holds the lock of the run directory ``directory`` (``<variant>-<key>``)
    while one process trains or deletes the run there; another process wanting the same configuration
    says so and waits, then finds the finished run. The lock is the configuration's, not the folder's
    (the file ``.run-<key>.lock`` beside it, kept when the run is deleted): two processes asking for
    one configuration under different variant names (a page and a command line) train it once.
    Re-entrant within a thread (see :func:`alignlib.paths.locked`)."""
    from alignlib.paths import locked

    d = Path(directory)
    key = d.name.rsplit("-", 1)[-1]
    return locked(d.parent / f".run-{key}.lock", f"the training run {d} (configuration {key})", log)
