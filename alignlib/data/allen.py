"""Allen Brain Observatory natural scenes, 118 images x 212 VISp cells, as prepared in the public repository
psailamul/Allen_Brain_Observatory (folder ``Allen_data_170513``; experiment container 511510667, Cux2-CreERT2,
VISp 275 um, session three_session_B). Allen Institute terms of use apply; cite the Allen Brain Observatory.

Files (NumPy ``.npy``, float64), under ``$ALIGNLIB_DATA_DIR/allen_ns118/``:

* ``all_input_scenes_118_961.npy`` — the 118 scenes in stimulus-template order, each 31 x 31 (row-major,
  flattened to 961), 0..255 (the preparation resized each template with ``scipy.misc.imresize``, which also
  rescales every image to the full 0..255 range);
* ``Allen_{train,test}_input.npy`` (100 / 18 x 961) and ``Allen_{train,test}_output.npy`` (100 / 18 x 212):
  that repository's split of the same scenes with the mean dF/F (%, over 50 repeats) of the cells. The split
  is ``np.random.seed(31); np.random.permutation(118)``, first 100 train.

:func:`load_allen_ns118` checks each file against its pinned sha256 (:data:`SHA256`, raising
:class:`~alignlib.data.errors.ChecksumError` on a mismatch), re-derives that permutation, checks that every
train/test input equals the scene the permutation names (raising :class:`SplitMismatch` otherwise) and
returns images and responses in scene order, so any other split (k-fold) can be drawn from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlib.data.errors import ChecksumError, DataFormatError
from alignlib.paths import data_dir
from alignlib.repro import file_sha256

__all__ = ["AllenNS118", "SplitMismatch", "load_allen_ns118", "stated_split", "kfold_splits", "FILES", "SIDE",
           "N_SCENES", "SPLIT_SEED", "N_TRAIN", "N_REPEATS", "SHA256", "verify_checksums"]

FOLDER = "allen_ns118"
FILES = {"scenes": "all_input_scenes_118_961.npy", "train_input": "Allen_train_input.npy",
         "train_output": "Allen_train_output.npy", "test_input": "Allen_test_input.npy",
         "test_output": "Allen_test_output.npy"}
SIDE = 31
N_SCENES = 118
SPLIT_SEED = 31
N_TRAIN = 100
N_REPEATS = 50   # presentations per scene averaged in the prepared responses (Allen natural-scenes protocol)

#: sha256 of the five files this package reads, pinned from the copy this book is built with (the files of
#: psailamul/Allen_Brain_Observatory, Allen_data_170513, unmodified). :func:`verify_checksums` raises on a
#: mismatch; :func:`load_allen_ns118` calls it.
SHA256: dict[str, str] = {
    "all_input_scenes_118_961.npy": "0d40bbf7490200a0f833c8ca942773c60e72959c32a9810baeae73972ac73ea2",
    "Allen_train_input.npy": "1e688234d71453e655dd8d3b1122c149986fd56a79c8bb86d36d1224443a72e4",
    "Allen_train_output.npy": "d51c2606fc7df9f4caa747fdb10f9da7ef46786009167a5a66a3ca4290aeabc8",
    "Allen_test_input.npy": "737078f8c73a67eba504b62a11657a3bb85a838af71a47f85acb35b319b2215e",
    "Allen_test_output.npy": "4a761c48fc020acac16f993199d82c6243bcbde846878ea6fd488832bae5cb33",
}


class SplitMismatch(DataFormatError):
    """The train/test inputs are not the scenes the stated permutation names."""


@dataclass
class AllenNS118:
    """The 118 scenes and the cells' mean responses, both in scene (stimulus-template) order."""

    images: np.ndarray          # (118, 31, 31) float32, 0..255
    responses: np.ndarray       # (118, n_cells) float32, mean dF/F (%) over repeats
    split: dict[str, np.ndarray]  # the stated split: scene indices of "train" (100) and "test" (18)
    folder: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_scenes(self) -> int:
        return self.images.shape[0]

    @property
    def n_cells(self) -> int:
        return self.responses.shape[1]


def stated_split(n_scenes: int = N_SCENES, seed: int = SPLIT_SEED, n_train: int = N_TRAIN) -> dict[str, np.ndarray]:
    """The preparation's split: ``np.random.seed(seed); p = np.random.permutation(n)``; train ``p[:n_train]``.

    Order is kept (row k of ``Allen_train_*`` is scene ``train[k]``)."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        p = np.random.permutation(n_scenes)
    finally:
        np.random.set_state(state)
    return {"train": p[:n_train].astype(np.int64), "test": p[n_train:].astype(np.int64)}


def kfold_splits(n_scenes: int = N_SCENES, k: int = 5, seed: int = 0, val_fraction: float = 0.1
                 ) -> list[dict[str, np.ndarray]]:
    """``k`` folds over all scenes (scikit-learn ``KFold``, shuffled): each scene is tested once; a
    validation set (``val_fraction`` of the training scenes, at least 2) is carved from each fold's training part."""
    from sklearn.model_selection import KFold

    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    rng = np.random.default_rng(seed)
    folds = []
    for train, test in KFold(k, shuffle=True, random_state=seed).split(np.arange(n_scenes)):
        train = rng.permutation(train)
        n_val = max(2, int(round(val_fraction * len(train))))
        folds.append({"train": np.sort(train[n_val:]), "val": np.sort(train[:n_val]), "test": np.sort(test)})
    return folds


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found: the Allen natural-scenes files come from the public repository "
                             f"psailamul/Allen_Brain_Observatory (folder Allen_data_170513); put them in "
                             f"$ALIGNLIB_DATA_DIR/{FOLDER}/")


def verify_checksums(root: str | Path | None = None, registry: dict[str, str] | None = None) -> dict[str, bool]:
    """sha256 of each file in ``registry`` (file name -> hex digest; default :data:`SHA256`) under ``root``
    (default ``$ALIGNLIB_DATA_DIR/allen_ns118``); raise :class:`ChecksumError` on a mismatch."""
    folder = Path(root) if root is not None else data_dir() / FOLDER
    registry = SHA256 if registry is None else registry
    result = {}
    for name, digest in registry.items():
        path = folder / name
        if not path.exists():
            raise _missing(path)
        h = file_sha256(path)
        if h != digest:
            raise ChecksumError(f"{path}: sha256 {h} != pinned {digest}")
        result[name] = True
    return result


def _load(path: Path, shape_tail: tuple[int, ...] | None = None) -> np.ndarray:
    if not path.exists():
        raise _missing(path)
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataFormatError(f"{path}: not a plain .npy array ({e})") from e
    if a.ndim != 2 or (shape_tail is not None and a.shape[1:] != shape_tail) or not np.isfinite(a).all():
        want = "" if shape_tail is None else f" (n, {shape_tail[0]})"
        raise DataFormatError(f"{path}: expected a finite 2-d array{want}, got shape {a.shape}")
    return a


def load_allen_ns118(root: str | Path | None = None, verify: bool = True) -> AllenNS118:
    """Load the prepared Allen natural scenes and verify the stated seed-31 split against the images.

    Raises :class:`ChecksumError` when a file differs from its pinned sha256 (``verify=False`` skips that
    check, for files that are not the published ones, e.g. test fixtures), :class:`SplitMismatch` when a
    train/test input differs from the scene the permutation names, :class:`DataFormatError` on wrong
    shapes (naming the file and both shapes), :class:`FileNotFoundError` naming the missing file.
    """
    folder = Path(root) if root is not None else data_dir() / FOLDER
    if verify:
        verify_checksums(folder)
    scenes = _load(folder / FILES["scenes"], (SIDE * SIDE,))
    parts = {k: _load(folder / FILES[k]) for k in ("train_input", "train_output", "test_input", "test_output")}
    n = scenes.shape[0]
    n_train, n_test = parts["train_input"].shape[0], parts["test_input"].shape[0]
    shapes = ", ".join(f"{FILES[k]} {parts[k].shape}" for k in parts)
    if n_train + n_test != n:
        raise DataFormatError(f"{folder}: {n_train} train + {n_test} test rows do not cover the {n} scenes of "
                              f"{FILES['scenes']} {scenes.shape} ({shapes})")
    for name, rows in (("train", n_train), ("test", n_test)):
        out = parts[f"{name}_output"]
        if out.shape[0] != rows:
            raise DataFormatError(f"{folder / FILES[name + '_output']}: shape {out.shape} has {out.shape[0]} rows, "
                                  f"but {FILES[name + '_input']} {parts[name + '_input'].shape} has {rows} "
                                  f"(one row per scene); expected ({rows}, n_cells)")
    if parts["train_output"].shape[1] != parts["test_output"].shape[1]:
        train, test = parts["train_output"].shape, parts["test_output"].shape
        raise DataFormatError(f"{folder / FILES['test_output']}: shape {test} has {test[1]} cells, but "
                              f"{FILES['train_output']} has shape {train} ({train[1]} cells); both hold the "
                              f"same cells")
    split = stated_split(n, SPLIT_SEED, n_train)
    for name in ("train", "test"):
        x, idx = parts[f"{name}_input"], split[name]
        if x.shape[1] != SIDE * SIDE:
            raise DataFormatError(f"{folder / FILES[name + '_input']}: expected {SIDE * SIDE} pixels, got {x.shape[1]}")
        bad = np.flatnonzero(np.abs(x - scenes[idx]).max(axis=1) > 1e-9)
        if bad.size:
            raise SplitMismatch(f"{folder}: {bad.size} of {len(idx)} {name} inputs differ from the scenes that "
                                f"np.random.seed({SPLIT_SEED}); permutation({n}) names (first: row {bad[0]}, "
                                f"expected scene {idx[bad[0]]})")
    responses = np.empty((n, parts["train_output"].shape[1]), dtype=np.float64)
    responses[split["train"]] = parts["train_output"]
    responses[split["test"]] = parts["test_output"]
    images = scenes.reshape(n, SIDE, SIDE).astype(np.float32)
    return AllenNS118(images, responses.astype(np.float32), split, folder,
                      {"dataset": "Allen Brain Observatory natural scenes (container 511510667, VISp, "
                                  f"{responses.shape[1]} cells, mean dF/F over {N_REPEATS} repeats; prepared by "
                                  "psailamul/Allen_Brain_Observatory)",
                       "split_check": f"stated seed-{SPLIT_SEED} permutation matches all {n} inputs"})
