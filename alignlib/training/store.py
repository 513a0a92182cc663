"""The run store: converged training runs kept in the repository in compact form, so the book reads them
instead of training again (the design sketch's "training and reading are two jobs").

A stored run lives in ``book/store/<chapter>/<variant>-<hash>/`` (``$ALIGNLIB_STORE_DIR`` to put the store
elsewhere), with the name and configuration hash of the run it was made from (:mod:`alignlib.training.runs`).
It holds what the pages read and nothing else:

* ``spec.json`` (the configuration the hash is computed from), ``run.json`` (the run record) and
  ``history.csv`` (every epoch's training and validation values);
* the held-out arrays of the kept selections (``test_<criterion>.npz`` for DINA: embeddings, and maps
  where the pages show them; ``predictions.npz`` for Vi-ST), floating arrays stored as float16 (the
  pages compute from the stored values; the metrics recorded below are computed from them too); the
  Table 1 switch rows' test embeddings in the coordinates of their joint span (:func:`span_coordinates`: an orthogonal change
  of basis, so every inner product, norm and cosine similarity is kept, in at most 2n instead of D
  dimensions for n test pairs);
* model weights (``checkpoint.pt`` / ``model.pt``) only for runs whose towers a page explains;
* ``store.json``, written last (the completion marker): the store format, the run's ``RUN_FORMAT``, the
  SHA-256 of every file above, who made the run (commit, machine, threads/device, wall time, date, the
  exact command), whether it converged (:func:`convergence`), and metrics recomputable from the stored
  arrays (``store verify`` recomputes them and compares exactly).

Expensive results computed from a run (occlusion maps at the paper's settings) may be kept beside the
runs, in ``derived/<chapter>/<kind>-<hash>/``, under the same rules (:mod:`alignlib.training.derived`).
No optimiser state, no per-epoch checkpoints. :func:`find_stored` is what :meth:`RunSpec.find
<alignlib.training.runs.RunSpec.find>` falls back to when ``runs/`` has no completed run of a
configuration; it checks every stored file's hash before a page reads it, so a truncated or edited stored
file is an error naming the file, never a silent wrong number. ``ALIGNLIB_STORE=off`` ignores the store
(every run is trained again: ``alignlib book --retrain``).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from alignlib.paths import REPO_ROOT, built_in_place, locked
from alignlib.repro import file_sha256, write_json

__all__ = ["STORE_FORMAT", "StoreError", "store_dir", "store_enabled", "find_stored", "check_stored",
           "add_run", "verify_store", "list_store", "convergence", "longest_stall", "record_run_read", "RUN_FORMATS",
           "recorded_metrics", "machine_description", "made_by", "origin", "state_digest", "RUNS_LOG_ENV",
           "span_coordinates", "compact_embeddings", "compact_stored", "prune_stored"]

STORE_FORMAT = 1
MARKER = "store.json"
#: the file, set by the runner for each page's kernel, where :func:`record_run_read` lists the runs it read
RUNS_LOG_ENV = "ALIGNLIB_RUNS_LOG"
#: the current RUN_FORMAT of each chapter whose runs the store may hold (a stored run made under another
#: format is refused); filled lazily from the chapters' workflow modules to avoid import cycles
RUN_FORMATS: dict[str, str] = {
    "dina": "alignlib.experiments.dina.workflow:RUN_FORMAT",
    "vist": "alignlib.experiments.vist.workflow:RUN_FORMAT",
    "vna": "alignlib.experiments.vna.workflow:RUN_FORMAT",
}
#: files a run directory may hold and the store keeps (when asked), by chapter
WEIGHT_FILES = ("checkpoint.pt", "model.pt")
ALWAYS = ("spec.json", "run.json", "history.csv")


class StoreError(RuntimeError):
    """A stored run that must not be read: a file missing, truncated or edited, or a stale format."""


def store_dir() -> Path:
    """``$ALIGNLIB_STORE_DIR``, default ``<repo>/book/store`` (shipped with the book)."""
    value = os.environ.get("ALIGNLIB_STORE_DIR")
    return Path(value).expanduser().resolve() if value else REPO_ROOT / "book" / "store"


def store_enabled() -> bool:
    """False when ``ALIGNLIB_STORE=off`` (retrain everything, ignoring the store)."""
    return os.environ.get("ALIGNLIB_STORE", "on").strip().lower() not in ("off", "0", "false", "no")


def current_run_format(chapter: str) -> Any:
    ref = RUN_FORMATS.get(chapter)
    if ref is None:
        return None
    if isinstance(ref, str):
        import importlib

        module, name = ref.split(":")
        ref = RUN_FORMATS[chapter] = getattr(importlib.import_module(module), name)
    return ref


def convergence(info: dict[str, Any], fit: dict[str, Any] | None) -> dict[str, Any]:
    """Did a run converge? From its run record (``run.json``) and its fit settings (the ``fit`` part of
    its configuration: ``epochs`` cap, ``patience``).

    Converged: the selection criterion's patience ran out before the epoch cap, i.e. the selected epoch
    is at least ``patience`` epochs before the last epoch run. A run that reached its cap within
    ``patience`` epochs of its best epoch was still improving (or might have been): not converged. A run
    without early stopping (patience None) or with a fixed schedule (no ``fit`` settings) is ``None``:
    unknown, and treated as not converged by the ledger.
    """
    fit = fit or {}
    patience, cap = fit.get("patience"), fit.get("epochs")
    selected = info.get("selected")
    sel = (info.get("selections") or {}).get(selected) if selected else None
    if patience is None or sel is None or "epochs_run" not in info:
        return {"converged": None, "reason": "no early-stopping rule recorded for this run"}
    run, best = int(info["epochs_run"]), int(sel["epoch"])
    if run - best >= int(patience):
        return {"converged": True, "reason": f"{selected} did not improve for {run - best} epochs after epoch "
                                             f"{best} (patience {patience}; cap {cap})"}
    return {"converged": False, "reason": f"stopped at the {cap}-epoch cap {run - best} epochs after its best "
                                          f"epoch {best} (patience {patience}): still improving"}


def longest_stall(values: Sequence[float], criterion: str, min_delta: float = 0.0) -> int:
    """The longest run of epochs without a new best of a selection ``criterion`` that later ended in a
    new best (the rule of the training loop: better by more than ``min_delta``), from a run's history
    (one value per epoch). The stall after the selected epoch, the one the patience rule stopped on,
    is not counted. A run whose longest stall comes close to its patience was nearly stopped there:
    a shorter patience would have kept an earlier epoch, and a run stopped by the rule might likewise
    have improved again after a longer stall."""
    from alignlib.training.config import CRITERIA

    sign = 1.0 if CRITERIA[criterion] == "min" else -1.0
    best, bad, longest = float("inf"), 0, 0
    for value in values:
        v = sign * float(value)
        if v < best - min_delta:
            longest, best, bad = max(longest, bad), v, 0
        else:
            bad += 1
    return longest


# --------------------------------------------------------------------------------------------- reading

def _spec_key(directory: Path) -> tuple[str, dict]:
    raw = json.loads((directory / "spec.json").read_text())
    return raw["key"], raw["config"]


def check_stored(directory: str | Path, *, deep: bool = True) -> dict[str, Any]:
    """The ``store.json`` of a stored run after checking it: every listed file present with its recorded
    SHA-256 (``deep``), the configuration hash, and the chapter's current ``RUN_FORMAT``. Raises
    :class:`StoreError` naming the file or the mismatch."""
    from alignlib.training.runs import config_hash

    d = Path(directory)
    marker = d / MARKER
    if not marker.exists():
        raise StoreError(f"{d}: not a complete stored run ({MARKER} missing)")
    try:
        meta = json.loads(marker.read_text())
    except json.JSONDecodeError as e:
        raise StoreError(f"{marker}: unreadable ({e})") from e
    if meta.get("store_format") != STORE_FORMAT:
        raise StoreError(f"{marker}: store format {meta.get('store_format')} (this code reads {STORE_FORMAT})")
    listed = set(meta.get("files", {}))
    missing = [n for n in ALWAYS if n not in listed]
    unlisted = sorted(p.name for p in d.iterdir() if p.name != MARKER and p.name not in listed)
    if missing or unlisted:
        raise StoreError(f"stored run {d.name}: {MARKER} does not list "
                         + ", ".join(missing + unlisted) + " (every file a page may read must be hashed)")
    for name, digest in meta["files"].items():
        path = d / name
        if not path.exists():
            raise StoreError(f"stored run {d.name}: file {path} is missing")
        if deep and file_sha256(path) != digest:
            raise StoreError(f"stored run {d.name}: file {path} does not match its recorded SHA-256 "
                             f"(truncated or edited); restore it (git checkout) or retrain the run")
    raw = json.loads((d / "spec.json").read_text())
    key, config = raw["key"], raw["config"]
    if config_hash(config) != key or d.name != f"{raw['variant']}-{key}" or d.parent.name != raw["chapter"]:
        raise StoreError(f"stored run {d.name}: spec.json's configuration, name or chapter does not match "
                         f"its folder {d.parent.name}/{d.name}")
    current = current_run_format(d.parent.name)
    if current is not None and config.get("format") != current:
        raise StoreError(f"stored run {d.name} was made under RUN_FORMAT {config.get('format')}; this code "
                         f"writes RUN_FORMAT {current}: retrain it (it is not reused)")
    return meta


def find_stored(spec) -> Path | None:
    """The stored run of ``spec``'s exact configuration (checked, see :func:`check_stored`), or None.
    None too when the store is switched off (``ALIGNLIB_STORE=off``)."""
    if not store_enabled():
        return None
    folder = store_dir() / spec.chapter
    if not folder.is_dir():
        return None
    for d in sorted(folder.glob(f"*-{spec.key}")):
        if not (d / MARKER).exists():
            continue
        check_stored(d)
        if _spec_key(d)[1] == spec.config:
            record_run_read(d)
            return d
    return None


def origin(directory: str | Path) -> str:
    """Where a run was read from, in words: "the run store" or "runs/" (this machine's runs)."""
    return "the run store" if Path(directory).resolve().is_relative_to(store_dir().resolve()) else "runs/"


def record_run_read(directory: str | Path) -> None:
    """Tell the runner that this page read the run in ``directory`` (named under the page's banner and in
    its "Reproduce this page" section). A no-op outside ``alignlib run``."""
    log = os.environ.get(RUNS_LOG_ENV)
    if log:
        with open(log, "a") as f:
            f.write(f"{Path(directory).resolve()}\n")


def state_digest() -> str:
    """One hash of the store's contents as pages see them (every stored run's ``store.json``, which lists
    its files' hashes), or ``"off"`` (``ALIGNLIB_STORE=off``): part of every page's cache key, so a page
    re-runs when the store it reads changes."""
    import hashlib

    if not store_enabled():
        return "off"
    h = hashlib.sha256()
    root = store_dir()
    from alignlib.training.derived import DERIVED, DERIVED_MARKER

    for marker in sorted([*root.glob(f"*/*/{MARKER}"), *root.glob(f"{DERIVED}/*/*/{DERIVED_MARKER}")]):
        h.update(marker.relative_to(root).as_posix().encode() + b"\0" + marker.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- writing

def span_coordinates(z_img: np.ndarray, z_neu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired embeddings (n_img, D) and (n_neu, D) in the coordinates of their joint span: both times
    the right singular vectors of the stacked pair (signs fixed by ``sklearn``'s ``svd_flip``), so
    (n_img + n_neu) columns. The basis is orthonormal and spans every row, so every inner product,
    norm and cosine similarity between and within the two sets is kept (up to float64 rounding);
    the coordinates themselves are a rotation of the originals and mean nothing one by one."""
    from sklearn.utils.extmath import svd_flip

    stacked = np.concatenate([z_img, z_neu]).astype(np.float64)
    u, s, vt = np.linalg.svd(stacked, full_matrices=False)
    u, vt = svd_flip(u, vt)
    coords = u * s
    return coords[:len(z_img)], coords[len(z_img):]


def compact_embeddings(arrays: dict[str, np.ndarray], span: bool = True) -> dict[str, np.ndarray]:
    """A test-embedding file's arrays as the store keeps them: every floating array rounded to float16, and
    (``span``) ``z_img``/``z_neu`` wider than their joint span (D > n_img + n_neu) moved into its coordinates
    (:func:`span_coordinates`) from their float16 values and rounded again. Idempotent on its output (its
    width is the span's), and the same whether the arrays come from runs/ or from a run stored before
    this compaction (float16 already): a page gives the same numbers from either."""
    out = {k: (v.astype(np.float16) if np.issubdtype(v.dtype, np.floating) else v) for k, v in arrays.items()}
    img, neu = out.get("z_img"), out.get("z_neu")
    if (span and img is not None and neu is not None and img.ndim == neu.ndim == 2
            and img.shape[1] == neu.shape[1] > img.shape[0] + neu.shape[0]):
        a, b = span_coordinates(img, neu)
        out["z_img"], out["z_neu"] = a.astype(np.float16), b.astype(np.float16)
    return out


def _float16_copy(src: Path, dst: Path, drop: Iterable[str] = (), span: bool = False) -> None:
    drop = set(drop)
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    np.savez_compressed(dst, **compact_embeddings(arrays, span=span))


def recorded_metrics(directory: str | Path) -> dict[str, Any]:
    """Metrics computed from a stored run's arrays (what ``store verify`` recomputes and compares exactly):
    for each ``test_<criterion>.npz`` holding embeddings, top-1/5/10 and mean rank of neural -> image
    retrieval (:mod:`alignlib.metrics.retrieval`, expected ties); for ``predictions.npz``, each array's
    shape, mean and standard deviation (float64)."""
    from alignlib.metrics.retrieval import retrieval_ranks, similarity_matrix, topk_accuracy

    d = Path(directory)
    out: dict[str, Any] = {}
    for path in sorted(d.glob("test_*.npz")):
        with np.load(path) as z:
            if "z_img" not in z.files:
                continue
            sim = similarity_matrix(z["z_neu"].astype(np.float32), z["z_img"].astype(np.float32))
        acc = topk_accuracy(sim, (1, 5, 10))
        out[path.stem] = {"top1": float(acc[1]), "top5": float(acc[5]), "top10": float(acc[10]),
                          "mean_rank": float(np.mean(retrieval_ranks(sim))), "n_test": int(sim.shape[0])}
    pred = d / "predictions.npz"
    if pred.exists():
        with np.load(pred) as z:
            out["predictions"] = {k: {"shape": list(z[k].shape), "mean": float(z[k].astype(np.float64).mean()),
                                      "std": float(z[k].astype(np.float64).std())} for k in z.files}
    return out


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} ({cpu}, {os.cpu_count()} cores)"


def made_by() -> dict[str, str]:
    """Who makes a run, for its run record: the exact command (``$ALIGNLIB_COMMAND``, which the runner sets
    to the page's ``alignlib run ...`` command, else this process's command line), the date and the machine."""
    from alignlib import dryrun

    # sys.orig_argv keeps "-m module" as typed (sys.argv[0] would be the module's file path)
    argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    return {"command": os.environ.get("ALIGNLIB_COMMAND") or " ".join([Path(argv[0]).name, *argv[1:]]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine_description": machine_description(),
            **({"dry_run": True} if dryrun.active() else {})}         # never stored (add_run)


def add_run(run_dir: str | Path, *, selections: Iterable[str] | None = None, maps: bool = False,
            weights: bool = False, command: str | None = None, root: str | Path | None = None,
            replace: bool = False, exact_predictions: bool = False, span: bool = False) -> Path:
    """Copy the completed run in ``run_dir`` into the store in compact form and return its stored folder.

    ``selections``: the criteria whose ``test_<criterion>.npz`` are kept (default: the run's selected one
    and ``val_loss``, which the results page reports beside it); ``maps``: keep the token maps of the
    selected criterion's file (the other selections keep embeddings only);
    ``weights``: keep the model weights; ``exact_predictions``: keep ``predictions.npz`` at its own precision
    (default float16, as the embeddings; VNA's score matrices need float32: rounding them ties near-constant
    scores and moves AUCs); ``span``: keep the test embeddings in their joint span's coordinates
    (:func:`compact_embeddings`; the chapter's reader must apply the same). ``command``: how the run was made, when the run record does not
    say (``run.json``'s ``command``). An existing stored run of the same name is kept unless ``replace``.
    The copy is built in a temporary folder beside its destination and renamed into place, ``store.json``
    written last: a kill leaves no half-stored run.
    """
    from alignlib.training.runs import is_complete, load_spec

    from alignlib import dryrun

    src = Path(run_dir)
    if not is_complete(src):
        raise StoreError(f"{src}: not a completed run (spec.json and run.json are both needed)")
    if (dryrun.active() or json.loads((src / "run.json").read_text()).get("dry_run")
            or dryrun.root().resolve() in src.resolve().parents):
        raise StoreError(f"{src}: a dry run's training is capped to a step (alignlib.dryrun); "
                         "the run store keeps no run of a dry run")
    spec = load_spec(src)
    from alignlib.paths import inside

    dest = inside(Path(root or store_dir()), spec.chapter, spec.name)
    # two `store add` of one run at once: the second waits, then keeps the first's copy
    with locked(dest.parent / f".{spec.name}.lock", f"the stored run {dest}", print):
        return _add_run_locked(src, spec, dest, selections, maps, weights, command, replace, exact_predictions,
                               span)


def _add_run_locked(src: Path, spec, dest: Path, selections: Iterable[str] | None, maps: bool,
                    weights: bool, command: str | None, replace: bool, exact_predictions: bool = False,
                    span: bool = False) -> Path:
    if dest.exists() and not replace:
        return dest
    info = json.loads((src / "run.json").read_text())
    with built_in_place(dest) as tmp:
        for name in ALWAYS:
            if (src / name).exists():
                shutil.copy2(src / name, tmp / name)
        keep = set(selections) if selections is not None else {info.get("selected"), "val_loss"}
        for path in sorted(src.glob("test_*.npz")):
            criterion = path.stem.removeprefix("test_")
            if criterion in keep:
                with_maps = maps and criterion == info.get("selected")
                _float16_copy(path, tmp / path.name, drop=() if with_maps else ("img_maps", "neu_maps"),
                              span=span)
        if (src / "predictions.npz").exists():
            if exact_predictions:
                shutil.copy2(src / "predictions.npz", tmp / "predictions.npz")
            else:
                _float16_copy(src / "predictions.npz", tmp / "predictions.npz")
        if weights:
            for name in WEIGHT_FILES:
                if (src / name).exists():
                    shutil.copy2(src / name, tmp / name)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir())}
        train_seconds = info.get("train_seconds")
        made = {
            "commit": (info.get("provenance") or {}).get("code_version") or info.get("code_version"),
            "machine": info.get("machine_description") or "unrecorded",
            "execution": info.get("execution") or {k: info.get(k) for k in ("device", "threads") if k in info},
            "wall_seconds": train_seconds,
            "date": info.get("date") or time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime((src / "run.json").stat().st_mtime)),
            "command": info.get("command") or command or "unrecorded",
        }
        conv = convergence(info, spec.config.get("fit"))
        write_json(tmp / MARKER, {
            "store_format": STORE_FORMAT, "run": spec.name, "chapter": spec.chapter,
            "run_format": spec.config.get("format"), "files": files, "made_by": made,
            "added": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": machine_description(),
                      "command": " ".join(sys.argv)},
            **conv, "metrics": recorded_metrics(tmp)})
    return dest


def compact_stored(directory: str | Path) -> bool:
    """Move a stored run's test embeddings into their joint span's coordinates (:func:`compact_embeddings`)
    if they are not yet: the folder is rebuilt beside itself and renamed into place, ``store.json``
    rewritten with the new files' hashes, the metrics recomputed from the new arrays, and the compaction
    recorded (``compacted``); who made the run is kept. Returns whether anything changed."""
    d = Path(directory)
    meta = check_stored(d)
    wide = []
    for path in sorted(d.glob("test_*.npz")):
        with np.load(path) as z:
            if "z_img" in z.files and "z_neu" in z.files and (
                    z["z_img"].shape[1] > z["z_img"].shape[0] + z["z_neu"].shape[0]):
                wide.append(path.name)
    if not wide:
        return False
    def write(path: Path, tmp: Path) -> None:
        if path.name in wide:
            with np.load(path) as z:
                np.savez_compressed(tmp / path.name, **compact_embeddings({k: z[k] for k in z.files}))
        else:
            shutil.copy2(path, tmp / path.name)

    _rebuild_stored(d, meta, write, "compacted", {
        "files": wide, "how": "test embeddings in their joint span's coordinates "
                              "(alignlib.training.store.compact_embeddings)"})
    return True


def _rebuild_stored(d: Path, meta: dict, write, what: str, record: dict) -> None:
    """Rebuild the stored run ``d`` beside itself and rename it into place (locked): ``write(path, tmp)``
    puts each of its files (or nothing, to drop it) into the new folder; ``store.json`` is rewritten with
    the new files' hashes and metrics recomputed from them, ``meta[what]`` records the change (``record``
    plus when, where and by which command); who made the run is kept."""
    with locked(d.parent / f".{d.name}.lock", f"the stored run {d}", print), built_in_place(d) as tmp:
        for path in sorted(d.iterdir()):
            if path.name != MARKER:
                write(path, tmp)
        meta["files"] = {p.name: file_sha256(p) for p in sorted(tmp.iterdir())}
        meta["metrics"] = recorded_metrics(tmp)
        meta[what] = {**record, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "by": machine_description(), "command": " ".join(sys.argv)}
        write_json(tmp / MARKER, meta)


def prune_stored(directory: str | Path) -> list[str]:
    """Drop the model weights of a stored run whose chapter's policy (:func:`policy_for`) no longer keeps them
    (a page stopped needing them): the folder is rebuilt beside itself without the weight files and renamed
    into place, ``store.json`` rewritten with the remaining files' hashes (its metrics recomputed, the same:
    weights enter none) and the pruning recorded (``pruned``); who made the run is kept. Returns the names of the
    files dropped (empty: nothing to do)."""
    d = Path(directory)
    meta = check_stored(d)
    if policy_for(d).get("weights"):
        return []
    drop = [name for name in WEIGHT_FILES if (d / name).exists()]
    if not drop:
        return []
    def write(path: Path, tmp: Path) -> None:
        if path.name not in drop:
            shutil.copy2(path, tmp / path.name)

    _rebuild_stored(d, meta, write, "pruned", {
        "files": drop, "why": "the chapter's store policy no longer keeps this run's weights"})
    return drop


# --------------------------------------------------------------------------------------------- listing

@dataclass
class VerifyResult:
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _stored_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/*/{MARKER}"))


def verify_store(root: str | Path | None = None) -> VerifyResult:
    """Check every stored run: it loads (files present, hashes, configuration hash, current RUN_FORMAT) and
    the metrics recorded for it recompute exactly from its stored arrays. Half-stored folders (no
    ``store.json``) are reported too."""
    from alignlib.training.derived import DERIVED, verify_derived

    root = Path(root or store_dir())
    problems, checked = [], 0
    for d in sorted(p for p in root.glob("*/*") if p.is_dir() and p.parent.name != DERIVED):
        if not (d / MARKER).exists():
            problems.append(f"{d}: no {MARKER} (a half-stored run; remove it)")
            continue
        checked += 1
        try:
            meta = check_stored(d)
            again = json.loads(json.dumps(recorded_metrics(d)))
            if again != meta.get("metrics"):
                problems.append(f"{d.name}: its recorded metrics do not recompute from its stored arrays "
                                f"(recorded {meta.get('metrics')}, now {again})")
        except (StoreError, OSError, ValueError, KeyError) as e:
            problems.append(str(e))
    n_derived, derived_problems = verify_derived(root)
    return VerifyResult(checked + n_derived, problems + derived_problems)


def list_store(root: str | Path | None = None):
    """One row per stored run: chapter, run, converged, epochs, size (MB), who made it and when."""
    import pandas as pd

    root = Path(root or store_dir())
    rows = []
    for d in _stored_dirs(root):
        meta = json.loads((d / MARKER).read_text())
        info = json.loads((d / "run.json").read_text())
        made = meta.get("made_by", {})
        rows.append({"chapter": d.parent.name, "run": d.name, "converged": run_convergence(d)["converged"],
                     "epochs_run": info.get("epochs_run"),
                     "size_mb": sum(p.stat().st_size for p in d.iterdir()) / 1e6,
                     "weights": any((d / w).exists() for w in WEIGHT_FILES),
                     "wall_s": made.get("wall_seconds"), "machine": made.get("machine"),
                     "date": made.get("date"), "commit": (made.get("commit") or "")[:12],
                     "command": made.get("command")})
    return pd.DataFrame(rows)


def training_cost_text(table) -> str:
    """What regenerating the store costs, from the wall time each stored run recorded (``list_store``'s
    ``wall_s``): hours per chapter and in all, the machines and threads they name. Runs that recorded no
    time are counted and named as such."""
    timed = table[table.wall_s.notna()]
    per = timed.groupby("chapter").wall_s.agg(["sum", "count"])
    parts = [f"{ch} {row['sum'] / 3600:.1f} h ({int(row['count'])} runs)" for ch, row in per.iterrows()]
    untimed = len(table) - len(timed)
    return (f"training time recorded by the stored runs: {', '.join(parts)}; in all "
            f"{timed.wall_s.sum() / 3600:.1f} h of run time (each run on the machine its record names: "
            f"{', '.join(sorted(timed.machine.dropna().unique()))}; `store list` shows each run's)"
            + (f"; {untimed} run(s) recorded no time" if untimed else ""))


# --------------------------------------------------------------------------------------------- command line

#: chapter -> "module:function" deciding what a stored run keeps: ``f(run_dir) -> {"maps": bool, "weights": bool}``
POLICIES: dict[str, str] = {
    "dina": "alignlib.experiments.dina.workflow:store_contents",
    "vist": "alignlib.experiments.vist.workflow:store_contents",
    "vna": "alignlib.experiments.vna.workflow:store_contents",
}


def policy_for(run_dir: str | Path) -> dict[str, bool]:
    """What the store keeps of a run (maps, weights), by its chapter's policy (:data:`POLICIES`)."""
    import importlib

    from alignlib.training.runs import load_spec

    ref = POLICIES.get(load_spec(run_dir).chapter)
    if ref is None:
        return {"maps": False, "weights": False}
    module, name = ref.split(":")
    return dict(getattr(importlib.import_module(module), name)(Path(run_dir)))


def runs_read_by_pages(executed_dir: str | Path, include_unconverged: bool = False) -> list[Path]:
    """Every run directory that an executed page's manifest lists as read (``runs_read``), in runs/ only
    (runs already in the store are not added again), and only converged ones unless
    ``include_unconverged`` (a run with no early-stopping rule counts as unconverged); then the derived
    results the pages read whose run is stored or offered here (runs first)."""
    from alignlib.paths import runs_dir
    from alignlib.training.derived import is_derived

    found: set[Path] = set()
    derived: set[Path] = set()
    root = runs_dir().resolve()
    for manifest in Path(executed_dir).rglob("*.manifest.json"):
        for entry in json.loads(manifest.read_text()).get("runs_read", []):
            path = Path(entry)
            if path.resolve().is_relative_to(root) and is_derived(path):
                derived.add(path)                # a derived result computed from a run (alignlib.training.derived)
            elif path.resolve().is_relative_to(root) and (path / "run.json").exists():
                if include_unconverged or run_convergence(path)["converged"] is True:
                    found.add(path)
    # a derived result goes in only with its run: already stored, or among the runs offered here
    offered = {(p.parent.name, p.name) for p in found}
    kept = []
    for path in sorted(derived):
        run = json.loads((path / "derived.json").read_text())["identity"].get("run")
        if (run is None or (run["chapter"], run["name"]) in offered
                or (store_dir() / run["chapter"] / run["name"] / MARKER).exists()):
            kept.append(path)
    return sorted(found) + kept                  # runs first, then what was derived from them


def run_convergence(directory: str | Path) -> dict[str, Any]:
    """:func:`convergence` of the run in ``directory``, from its run record and configuration (never from
    ``store.json``, which is not hashed)."""
    d = Path(directory)
    spec = json.loads((d / "spec.json").read_text())
    return convergence(json.loads((d / "run.json").read_text()), spec["config"].get("fit"))


def main(argv: list[str] | None = None) -> int:
    """``alignlib store list | verify | compact | prune | add RUN_DIR... [--from-pages] [--maps] [--weights]
    [--command C]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="alignlib store", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="stored runs: size, provenance, converged or not")
    sub.add_parser("verify", help="every stored run loads and its recorded metrics recompute exactly")
    sub.add_parser("prune", help="drop the weights of stored runs that their chapter's policy no longer keeps")
    sub.add_parser("compact", help="move the stored test embeddings of chapters that keep them in their "
                                   "joint span's coordinates (policy 'span') into them")
    add = sub.add_parser("add", help="compact completed runs from runs/ into the store")
    add.add_argument("runs", nargs="*", type=Path,
                     help="run directories (runs/<chapter>/<name>) or derived results (runs/derived/<chapter>/<name>)")
    add.add_argument("--from-pages", action="store_true",
                     help="every converged run and derived result in runs/ that an executed page read "
                          "(its manifest's runs_read)")
    add.add_argument("--include-unconverged", action="store_true",
                     help="with --from-pages: also runs that did not converge (stored marked as such)")
    add.add_argument("--maps", action="store_true", help="keep token maps (default: the chapter's policy)")
    add.add_argument("--weights", action="store_true", help="keep model weights (default: the chapter's policy)")
    add.add_argument("--replace", action="store_true", help="replace a stored run of the same name")
    add.add_argument("--command", help="how the runs were made, where their run records do not say")
    args = parser.parse_args(argv)
    from alignlib.training.derived import DERIVED, DERIVED_MARKER, add_derived, is_derived

    if args.action == "list":
        import pandas as pd

        table = list_store()
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
            print(table.drop(columns=["command"]).to_string(index=False) if len(table) else "the store is empty")
        if len(table):
            print(f"{len(table)} runs, {table.size_mb.sum():.1f} MB in {store_dir()}; "
                  f"not converged: {int((table.converged != True).sum())}")   # noqa: E712 (None counts)
            print(training_cost_text(table))
        derived = sorted(store_dir().glob(f"{DERIVED}/*/*/{DERIVED_MARKER}"))
        if derived:
            print(f"{len(derived)} derived result(s), "
                  f"{sum(f.stat().st_size for m in derived for f in m.parent.iterdir()) / 1e6:.1f} MB: "
                  + ", ".join(f"{m.parent.parent.name}/{m.parent.name}" for m in derived))
        return 0
    if args.action == "verify":
        result = verify_store()
        for problem in result.problems:
            print(f"FAILED: {problem}")
        print(f"{result.checked} stored runs checked in {store_dir()}: "
              + ("all verified" if result.ok else f"{len(result.problems)} problem(s)"))
        return 0 if result.ok else 1
    if args.action == "compact":
        changed = [d for d in _stored_dirs(store_dir()) if policy_for(d).get("span") and compact_stored(d)]
        print(f"{len(changed)} stored run(s) compacted in {store_dir()}")
        return 0
    if args.action == "prune":
        pruned = {d: prune_stored(d) for d in _stored_dirs(store_dir())}
        for d, files in pruned.items():
            if files:
                print(f"{d.parent.name}/{d.name}: dropped {', '.join(files)}")
        print(f"{sum(map(bool, pruned.values()))} stored run(s) pruned in {store_dir()}")
        return 0
    targets = list(args.runs)
    if args.from_pages:
        from alignlib.runner.execute import default_executed_dir

        targets += runs_read_by_pages(default_executed_dir(), args.include_unconverged)
    if not targets:
        parser.error("name run directories or pass --from-pages")
    from tqdm.auto import tqdm

    for run_dir in tqdm(targets, desc="storing runs"):
        if is_derived(run_dir):
            dest = add_derived(run_dir, replace=args.replace)
            print(f"{dest}: derived result stored")
            continue
        keep = policy_for(run_dir)
        dest = add_run(run_dir, selections=keep.get("selections"), maps=args.maps or keep["maps"],
                       weights=args.weights or keep["weights"], command=args.command, replace=args.replace,
                       exact_predictions=bool(keep.get("exact_predictions")), span=bool(keep.get("span")))
        meta = json.loads((dest / MARKER).read_text())
        print(f"{dest.relative_to(store_dir().parent) if dest.is_relative_to(store_dir().parent) else dest}: "
              f"{'converged' if meta['converged'] else 'NOT converged' if meta['converged'] is False else 'n/a'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
