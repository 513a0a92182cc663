"""Linear references for DINA's Table 1: what a neuroscientist would fit first.

Image features (fixed, nothing learned from responses):

* ``pixels``: the stimulus block-averaged to ``pixel_grid`` (17 x 68 by default, 4 x 4 px blocks) and
  standardised as the towers' input (``(x - 128) / 64``);
* ``gabor``: a Gabor filter-bank energy model (a V1 complex-cell model): each image at half resolution
  is filtered by quadrature pairs of :func:`skimage.filters.gabor_kernel` (3 spatial frequencies x 8
  orientations), the energy ``|even + i odd|`` is averaged over a coarse 4 x 16 grid.

Mappings between features F and z-scored responses R, each fitted on the TRAINING split only, with
their regularisation chosen by cross-validation inside the training split:

* ``ridge`` (encoding): ``R_hat = F W``, :class:`sklearn.linear_model.RidgeCV` (efficient leave-one-out
  over a log grid of alphas). Shared space: the response space; image embedding ``R_hat``, neural
  embedding ``R``.
* ``rrr`` (reduced-rank ridge regression): the ridge fit projected onto the top ``rank`` right singular
  vectors ``V_r`` of the fitted training responses; shared space ``R V_r`` vs ``R_hat V_r``; ``rank``
  by k-fold CV (mean retrieval rank) on the training split.
* ``cca``: :class:`sklearn.cross_decomposition.CCA` between PCA-reduced features and responses (PCA
  fitted on training data; ``n_components`` by k-fold CV on the training split); shared space: the
  canonical variates.

Retrieval then uses the same protocol as the towers (:mod:`alignlib.metrics.retrieval`: cosine
similarity, top-k with expected ties).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from alignlib.metrics.retrieval import retrieval_ranks, similarity_matrix

__all__ = ["pixel_features", "gabor_features", "image_features", "LinearReference", "METHODS",
           "FEATURES", "GABOR_FREQUENCIES", "GABOR_DOWNSAMPLE", "gabor_tuning_overlap"]

METHODS = ("ridge", "rrr", "cca")
FEATURES = ("pixels", "gabor")
ALPHAS = tuple(np.logspace(-1, 6, 15))
#: the Gabor bank's centre frequencies, cycles/pixel of the image downsampled by GABOR_DOWNSAMPLE
GABOR_FREQUENCIES = (0.05, 0.1, 0.2)
GABOR_DOWNSAMPLE = 2


def pixel_features(images: np.ndarray, grid: Sequence[int] = (17, 68)) -> np.ndarray:
    """(n, gh*gw) block means of (n, 68, 270) 0..255 images on a ``grid``, scaled as ``(x - 128) / 64``."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)
    x = F.adaptive_avg_pool2d((x - 128.0) / 64.0, tuple(grid))
    return x.flatten(1).numpy().astype(np.float64)


def gabor_features(images: np.ndarray, frequencies: Sequence[float] = GABOR_FREQUENCIES,
                   n_orientations: int = 8,
                   grid: Sequence[int] = (4, 16), batch: int = 128) -> np.ndarray:
    """Gabor energy features (n, len(frequencies) * n_orientations * gh * gw).

    Frequencies are in cycles per pixel of the half-resolution image (34 x 135; 1 px = 2 deg), i.e.
    0.025-0.1 cycles/deg, the range of mouse V1 (Niell & Stryker 2008)."""
    import torch
    import torch.nn.functional as F
    from scipy.signal import fftconvolve
    from skimage.filters import gabor_kernel

    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)
    x = F.avg_pool2d((x - 128.0) / 64.0, GABOR_DOWNSAMPLE).squeeze(1).numpy()    # (n, 34, 135)
    kernels = [gabor_kernel(f, theta=np.pi * o / n_orientations) for f in frequencies for o in range(n_orientations)]
    feats = []
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        per = []
        for k in kernels:
            resp = fftconvolve(xb, k[None], mode="same", axes=(1, 2))
            energy = torch.as_tensor(np.abs(resp), dtype=torch.float32).unsqueeze(1)
            per.append(F.adaptive_avg_pool2d(energy, tuple(grid)).flatten(1))
        feats.append(torch.cat(per, 1).numpy())
    return np.concatenate(feats).astype(np.float64)


def image_features(images: np.ndarray, kind: str) -> np.ndarray:
    if kind == "pixels":
        return pixel_features(images)
    if kind == "gabor":
        return gabor_features(images)
    raise ValueError(f"unknown features {kind!r}; choose from {', '.join(FEATURES)}")


def gabor_tuning_overlap(twin: Any, groundtruth: Mapping[str, np.ndarray] | None = None
                         ) -> dict[str, Any]:
    """How close the ``gabor`` reference is to the twin's own neurons, from the code's constants.

    ``twin``: a :class:`~alignlib.data.twin.TwinConfig` (or its dict). Returns, in cycles/deg, the
    bank's centre-frequency range (``bank_cpd``: :data:`GABOR_FREQUENCIES` at
    :data:`GABOR_DOWNSAMPLE` x the screen's deg/px), the twin's preferred-frequency range
    (``twin_cpd``: 1 / ``wavelength_range``), their intersection (``overlap_cpd``, None if none),
    the share of the twin's cells whose preferred frequency lies in the bank's range
    (``twin_cells_in_bank_range``; wavelengths are log-uniform) and the share of energy-model
    (complex) cells (``energy_model_fraction`` = ``complex_fraction``). With ``groundtruth`` (a
    twin mouse's ground-truth file, :func:`alignlib.data.twin.load_groundtruth`) the last two are
    also counted over that mouse's sampled cells (``..._sampled``)."""
    from alignlib.data.twin._screen import DEG_PER_PIXEL

    cfg = twin if isinstance(twin, Mapping) else twin.__dict__
    deg_per_px = GABOR_DOWNSAMPLE * DEG_PER_PIXEL
    bank = (min(GABOR_FREQUENCIES) / deg_per_px, max(GABOR_FREQUENCIES) / deg_per_px)
    w_lo, w_hi = (float(v) * DEG_PER_PIXEL for v in cfg["wavelength_range"])
    tuning = (1.0 / w_hi, 1.0 / w_lo)
    lo, hi = max(bank[0], tuning[0]), min(bank[1], tuning[1])
    overlap = (lo, hi) if lo <= hi else None
    if tuning[1] > tuning[0]:
        share = max(0.0, np.log(hi / lo)) / np.log(tuning[1] / tuning[0]) if overlap else 0.0
    else:
        share = float(bank[0] <= tuning[0] <= bank[1])
    out = {"bank_cpd": bank, "twin_cpd": tuning, "overlap_cpd": overlap,
           "twin_cells_in_bank_range": float(share),
           "energy_model_fraction": float(cfg["complex_fraction"])}
    if groundtruth is not None:
        f = 1.0 / (np.asarray(groundtruth["wavelength"], dtype=float) * DEG_PER_PIXEL)
        out["twin_cells_in_bank_range_sampled"] = float(np.mean((f >= bank[0]) & (f <= bank[1])))
        out["energy_model_fraction_sampled"] = float(np.mean(groundtruth["is_complex"]))
    return out


def _zscore_fit(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = a.mean(0), a.std(0)
    return mu, np.where(sd > 1e-8, sd, 1.0)


def _kfold_mean_ranks(fit_fold, F: np.ndarray, R: np.ndarray, folds: int, seed: int) -> dict:
    """Mean normalised retrieval rank of each option, k-fold over the rows of (F, R).

    ``fit_fold(F_train, R_train, F_val, R_val) -> {option: (z_img, z_neu)}`` fits what the options
    share once per fold (the ridge fit and its SVD for every rank, the PCA for every CCA size) and
    embeds the held-out fold under each option."""
    from sklearn.model_selection import KFold

    ranks: dict = {}
    for tr, va in KFold(folds, shuffle=True, random_state=seed).split(F):
        for option, (zi, zn) in fit_fold(F[tr], R[tr], F[va], R[va]).items():
            ranks.setdefault(option, []).append(
                np.mean(retrieval_ranks(similarity_matrix(zn, zi))) / len(va))
    return {option: float(np.mean(r)) for option, r in ranks.items()}


@dataclass
class LinearReference:
    """A linear image <-> response mapping (``method`` in :data:`METHODS`) fitted on training pairs only.

    ``fit(F_train, R_train)`` chooses the regularisation by CV inside the training data;
    ``embed(F, R) -> (z_img, z_neu)`` maps held-out pairs into the shared space.
    """

    method: str = "ridge"
    alphas: Sequence[float] = ALPHAS
    ranks: Sequence[int] = (2, 5, 10, 20, 50)
    cca_components: Sequence[int] = (2, 5, 10, 20)
    pca_dims: int = 50
    folds: int = 3
    seed: int = 0
    chosen: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")

    # -- pieces ------------------------------------------------------------------------------
    def _ridge(self, F: np.ndarray, R: np.ndarray, alpha: float | None = None):
        from sklearn.linear_model import Ridge, RidgeCV

        model = Ridge(alpha=alpha) if alpha is not None else RidgeCV(alphas=list(self.alphas))
        return model.fit(F, R)

    def _rrr_fold(self, ranks: Sequence[int], alpha: float):
        """Per fold: one ridge fit and one SVD of its fitted responses; each rank keeps the top ``rank``
        right singular vectors ``V_r`` (shared space ``R V_r`` vs ``R_hat V_r``)."""
        def fit_fold(Ft, Rt, Fv, Rv):
            ridge = self._ridge(Ft, Rt, alpha)
            vt = np.linalg.svd(ridge.predict(Ft), full_matrices=False)[2]
            pred = ridge.predict(Fv)
            return {r: (pred @ vt[:r].T, Rv @ vt[:r].T) for r in ranks}
        return fit_fold

    def _cca_model(self, Ft: np.ndarray, Rt: np.ndarray, n: int, pcas=None):
        """PCA of each side (fitted on ``Ft``, ``Rt``) then :class:`~sklearn.cross_decomposition.CCA`
        with ``n`` components; returns ``embed(F, R) -> canonical variates``."""
        from sklearn.cross_decomposition import CCA
        from sklearn.decomposition import PCA

        if pcas is None:
            d = min(self.pca_dims, Ft.shape[1], Rt.shape[1], len(Ft) - 1)
            pcas = PCA(d, random_state=self.seed).fit(Ft), PCA(d, random_state=self.seed).fit(Rt)
        pf, pr = pcas
        cca = CCA(n_components=min(n, pf.n_components_), max_iter=1000).fit(pf.transform(Ft), pr.transform(Rt))
        return lambda F, R: cca.transform(pf.transform(F), pr.transform(R))

    def _cca_fold(self, sizes: Sequence[int]):
        """Per fold: the two PCAs once, then one CCA per number of components."""
        from sklearn.decomposition import PCA

        def fit_fold(Ft, Rt, Fv, Rv):
            d = min(self.pca_dims, Ft.shape[1], Rt.shape[1], len(Ft) - 1)
            pcas = PCA(d, random_state=self.seed).fit(Ft), PCA(d, random_state=self.seed).fit(Rt)
            return {n: self._cca_model(Ft, Rt, n, pcas)(Fv, Rv) for n in sizes}
        return fit_fold

    # -- API ---------------------------------------------------------------------------------
    def fit(self, F: np.ndarray, R: np.ndarray) -> "LinearReference":
        F, R = np.asarray(F, dtype=np.float64), np.asarray(R, dtype=np.float64)
        if F.ndim != 2 or R.ndim != 2 or len(F) != len(R):
            raise ValueError(f"need F (n, p) and R (n, N) with equal n, got {F.shape} and {R.shape}")
        self._fmu, self._fsd = _zscore_fit(F)
        self._rmu, self._rsd = _zscore_fit(R)
        Fz, Rz = (F - self._fmu) / self._fsd, (R - self._rmu) / self._rsd
        if self.method in ("ridge", "rrr"):
            ridge = self._ridge(Fz, Rz)
            self.chosen = {"alpha": float(ridge.alpha_)}
        if self.method == "ridge":
            self._ridge_model = ridge
        elif self.method == "rrr":
            ranks = [r for r in self.ranks if r <= min(Fz.shape[1], Rz.shape[1])] or [1]
            scores = _kfold_mean_ranks(self._rrr_fold(ranks, ridge.alpha_), Fz, Rz, self.folds, self.seed)
            rank = min(scores, key=scores.get)
            self.chosen.update(rank=int(rank), cv_scores={int(k): v for k, v in scores.items()})
            self._ridge_model = self._ridge(Fz, Rz, ridge.alpha_)
            self._v = np.linalg.svd(self._ridge_model.predict(Fz), full_matrices=False)[2][:rank].T
        else:
            comps = list(self.cca_components)
            scores = _kfold_mean_ranks(self._cca_fold(comps), Fz, Rz, self.folds, self.seed)
            n = min(scores, key=scores.get)
            self.chosen = {"n_components": int(n), "cv_scores": {int(k): v for k, v in scores.items()}}
            self._cca_embed = self._cca_model(Fz, Rz, n)
        return self

    def embed(self, F: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z_img, z_neu) of held-out pairs in the shared space (rows in the order given)."""
        Fz = (np.asarray(F, dtype=np.float64) - self._fmu) / self._fsd
        Rz = (np.asarray(R, dtype=np.float64) - self._rmu) / self._rsd
        if self.method == "ridge":
            return self._ridge_model.predict(Fz), Rz
        if self.method == "rrr":
            return self._ridge_model.predict(Fz) @ self._v, Rz @ self._v
        return self._cca_embed(Fz, Rz)

    @property
    def coef_(self) -> np.ndarray:
        """(N, p) ridge weights in standardised units (ridge and rrr)."""
        return self._ridge_model.coef_
