"""Train / validation / test splits of stimulus indices."""
from __future__ import annotations

from typing import Any

import numpy as np

from alignlib.arrays import as_numpy

__all__ = ["split_indices", "check_splits"]


def split_indices(n_items: int, test_fraction: float = 0.1, val_fraction: float = 0.1,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Random disjoint train/val/test index sets (sorted int64 arrays) covering ``range(n_items)``.

    ``test_fraction`` and ``val_fraction`` are fractions of ALL items; the test set is drawn
    first and the validation set is carved from the remainder. A positive fraction gives at
    least one item; the training set keeps at least two.
    """
    n = int(n_items)
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    n_test = max(1, int(round(test_fraction * n))) if test_fraction > 0 else 0
    n_val = max(1, int(round(val_fraction * n))) if val_fraction > 0 else 0
    if n - n_test - n_val < 2:
        raise ValueError(f"{n} items leave fewer than 2 for training (test {n_test}, val {n_val})")
    perm = np.random.default_rng(seed).permutation(n)
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    return {"train": np.sort(train).astype(np.int64), "val": np.sort(val).astype(np.int64),
            "test": np.sort(test).astype(np.int64)}


def check_splits(splits: dict[str, Any], n: int, required: tuple[str, ...] = ("train", "val")) -> dict[str, np.ndarray]:
    """Validate index splits of ``n`` items: in range, no repeats, pairwise disjoint, ``required`` present."""
    out = {}
    for k, v in splits.items():
        a = np.asarray(as_numpy(v), dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"split {k!r} has indices outside [0, {n})")
        if len(np.unique(a)) != a.size:
            raise ValueError(f"split {k!r} has repeated indices")
        out[k] = a
    for k in required:
        if k not in out or out[k].size < 2:
            raise ValueError(f"splits must contain a {k!r} entry with at least 2 items")
    keys = list(out)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if np.intersect1d(out[a], out[b]).size:
                raise ValueError(f"splits {a!r} and {b!r} overlap")
    return out
