"""Does a paired image/response set carry stimulus information at all? Checks run BEFORE any deep model.

* :func:`coarse_features`: 4 x 4 block mean luminance and block s.d. (local contrast) of each image.
* :func:`rsa` / :func:`rsa_permutation_test`: Spearman correlation between the image-feature and the
  response dissimilarity matrices (representational similarity analysis), with a null from permuting the
  scene labels of the responses (Mantel-style); :func:`rsa` on responses shifted along the scene index
  tests an off-by-one preparation.
* :func:`linear_cv_aucs`: ridge encoding (pixels -> responses), ridge decoding (responses -> pixels) and CCA
  (principal components of both sides) in k-fold cross-validation, scored by discriminative AUC exactly as
  the deep models are (``shuffle_train`` refits with the training pairs shuffled: a null model).
* :func:`shared_structure_test`: the first eigenvalue of the cell-by-cell correlation matrix against a
  null with each cell's responses shuffled over scenes independently (is there reproducible population
  structure across scenes at all?).
* :func:`index_autocorrelation`: mean correlation between the population responses (or the images) of
  scenes k apart in the stimulus-template index; the Allen protocol presents scenes in random order, so
  genuine scene responses should not depend on the index distance.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.stats import spearmanr

from alignlib.metrics.discrimination import query_aucs

__all__ = ["coarse_features", "zscore", "rsa", "rsa_permutation_test", "linear_cv_aucs", "shared_structure_test",
           "index_autocorrelation", "storage_order_lag1", "N_CCA_PAIRS"]

N_CCA_PAIRS = 5   # canonical pairs of the linear CCA baseline (at most the number of principal components)


def zscore(x: np.ndarray) -> np.ndarray:
    """Column-wise z-score (constant columns become 0)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def coarse_features(images: np.ndarray, grid: int = 4) -> np.ndarray:
    """(n, H, W) -> (n, 2 * grid^2): block mean luminance and block s.d. on a grid x grid partition."""
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (n, H, W), got shape {imgs.shape}")
    n, h, w = imgs.shape
    rows = np.array_split(np.arange(h), grid)
    cols = np.array_split(np.arange(w), grid)
    mean = np.stack([imgs[:, r][:, :, c].mean(axis=(1, 2)) for r in rows for c in cols], axis=1)
    sd = np.stack([imgs[:, r][:, :, c].std(axis=(1, 2)) for r in rows for c in cols], axis=1)
    return np.concatenate([mean, sd], axis=1)


def _rdms(features: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pdist(zscore(features), "euclidean"), squareform(pdist(zscore(responses), "correlation"), checks=False)


def rsa(features: np.ndarray, responses: np.ndarray, shift: int = 0) -> float:
    """Spearman correlation of the two dissimilarity matrices; ``shift`` rolls the responses along the
    scene index first (response of scene k+shift paired with image k)."""
    r = np.roll(np.asarray(responses), -shift, axis=0) if shift else responses
    a, b = _rdms(features, r)
    return float(spearmanr(a, squareform(b, checks=False))[0])


def rsa_permutation_test(features: np.ndarray, responses: np.ndarray, n_permutations: int = 1000,
                         seed: int = 0) -> tuple[float, np.ndarray, float]:
    """Observed RSA, the null distribution (responses' scene labels permuted) and the one-sided p-value
    ``(1 + #null >= observed) / (1 + n_permutations)``."""
    a, b = _rdms(features, responses)
    observed = float(spearmanr(a, squareform(b, checks=False))[0])
    rng = np.random.default_rng(seed)
    n = b.shape[0]
    ra = np.argsort(np.argsort(a)).astype(np.float64)      # Spearman = Pearson of ranks: rank once
    ra = (ra - ra.mean()) / ra.std()
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        p = rng.permutation(n)
        rb = squareform(b[p][:, p], checks=False)
        rb = np.argsort(np.argsort(rb)).astype(np.float64)
        null[i] = np.mean(ra * (rb - rb.mean()) / rb.std())
    return observed, null, float((1 + np.sum(null >= observed)) / (1 + n_permutations))


def _folds(n: int, k: int, seed: int):
    from sklearn.model_selection import KFold

    return list(KFold(k, shuffle=True, random_state=seed).split(np.arange(n)))


def _ridge(x, y):
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-1, 9, 21)).fit(x, y)   # same grid as workflow.RIDGE_ALPHAS


def _fold_scores(x_tr, y_tr, x_te, y_te, method: str, n_components: int) -> np.ndarray:
    """(n_test images x n_test responses) scores of one fold."""
    from sklearn.cross_decomposition import CCA
    from sklearn.decomposition import PCA

    if method == "ridge_encoding":
        return -cdist(_ridge(x_tr, y_tr).predict(x_te), y_te)
    if method == "ridge_decoding":
        return -cdist(x_te, _ridge(y_tr, x_tr).predict(y_te))
    if method == "cca":
        k = min(n_components, x_tr.shape[0] - 1)
        px, py = PCA(k).fit(x_tr), PCA(k).fit(y_tr)
        cca = CCA(n_components=min(k, N_CCA_PAIRS), max_iter=2000).fit(px.transform(x_tr), py.transform(y_tr))
        u, v = cca.transform(px.transform(x_te), py.transform(y_te))
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return u @ v.T
    raise ValueError(f"unknown linear method {method!r}")


def linear_cv_aucs(pixels: np.ndarray, responses: np.ndarray, methods: Iterable[str] = ("ridge_encoding",
                   "ridge_decoding", "cca"), k: int = 5, seed: int = 0, n_components: int = 20,
                   shuffle_train: np.random.Generator | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per-item encoding and decoding AUC of linear models in k-fold CV (every item tested once).

    Inputs are z-scored with the training fold's statistics. ``shuffle_train`` (a Generator) permutes the
    pairing of the training pairs (a null model). Returns ``{method: {"encoding": (n,), "decoding": (n,)}}``.
    """
    x_all, y_all = np.asarray(pixels, np.float64).reshape(len(pixels), -1), np.asarray(responses, np.float64)
    out = {m: {"encoding": np.empty(len(x_all)), "decoding": np.empty(len(x_all))} for m in methods}
    for train, test in _folds(len(x_all), k, seed):
        mx, sx = x_all[train].mean(0), x_all[train].std(0) + 1e-9
        my, sy = y_all[train].mean(0), y_all[train].std(0) + 1e-9
        x_tr, x_te = (x_all[train] - mx) / sx, (x_all[test] - mx) / sx
        y_tr, y_te = (y_all[train] - my) / sy, (y_all[test] - my) / sy
        if shuffle_train is not None:
            y_tr = y_tr[shuffle_train.permutation(len(y_tr))]
        for m in methods:
            s = _fold_scores(x_tr, y_tr, x_te, y_te, m, n_components)
            out[m]["encoding"][test] = query_aucs(s)
            out[m]["decoding"][test] = query_aucs(s.T)
    return out


def shared_structure_test(responses: np.ndarray, n_permutations: int = 200, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the cells' correlation matrix (descending) and the null of the first eigenvalue with
    each cell's responses shuffled over scenes independently."""
    z = zscore(responses)
    ev = np.linalg.eigvalsh(np.corrcoef(z.T))[::-1]
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        s = np.stack([rng.permutation(c) for c in z.T], axis=1)
        null[i] = np.linalg.eigvalsh(np.corrcoef(s.T))[-1]
    return ev, null


def index_autocorrelation(values: np.ndarray, lags: Iterable[int] = range(1, 11), n_permutations: int = 200,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean Pearson correlation between the (z-scored) rows k apart in index order, for each lag k, and
    the null (rows in a random order) as an (n_permutations, n_lags) array."""
    z = zscore(np.asarray(values, dtype=np.float64).reshape(len(values), -1))
    lags = list(lags)

    def curve(x):
        c = np.corrcoef(x)
        return np.array([np.mean(np.diag(c, k)) for k in lags])

    rng = np.random.default_rng(seed)
    return curve(z), np.stack([curve(z[rng.permutation(len(z))]) for _ in range(n_permutations)])


def storage_order_lag1(rows: np.ndarray, scene_index: np.ndarray, n_permutations: int = 200, seed: int = 0
                       ) -> dict[str, float]:
    """Lag-1 correlation of adjacent rows of one stored file, in file order and after sorting the rows by the
    scene each one belongs to (``scene_index[k]`` = scene of row k), with the random-order null's s.d.

    If the rows were shuffled with the same permutation as the inputs, file order shows no neighbour
    correlation while scene order recovers the index structure. ``adjacent_scene_fraction``: share of the
    scene-ordered neighbour pairs that are consecutive scenes (a sparse file, e.g. a small test set, has few)."""
    rows = np.asarray(rows, dtype=np.float64)
    scene_index = np.asarray(scene_index)
    if len(rows) != len(scene_index) or len(rows) < 3:
        raise ValueError(f"need >= 3 rows, one scene index each; got {len(rows)} rows, {len(scene_index)} indices")
    file_ac, null = index_autocorrelation(rows, [1], n_permutations, seed)
    scene_ac, _ = index_autocorrelation(rows[np.argsort(scene_index, kind="stable")], [1], 1, seed)
    return {"n_rows": len(rows), "lag1_file_order": float(file_ac[0]), "lag1_scene_order": float(scene_ac[0]),
            "null_sd": float(null[:, 0].std()),
            "adjacent_scene_fraction": float(np.mean(np.diff(np.sort(scene_index)) == 1))}
