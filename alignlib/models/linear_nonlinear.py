"""Classical linear-nonlinear (LN) model of retinal responses to movies: the chapter's non-deep reference.

Linear stage: one spatio-temporal filter per cell, fitted by ridge regression on the movie downsampled
to ``grid`` x ``grid`` pixels and summarised over ``n_lags`` past time bins of ``lag_width`` frames each
(mean of the frames in each bin; bin 0 holds the current frame and the ``lag_width - 1`` before it).
The ridge penalty is chosen by contiguous-block K-fold cross-validation on the training frames only
(never on the test segment). Static nonlinearity: per cell, a monotone (isotonic) map from the linear
output to the rate, fitted afterwards on the training frames — the standard two-step LN fit
(Chichilnisky 2001) with a non-parametric, monotone increasing nonlinearity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.transform import downscale_local_mean, resize
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

__all__ = ["LinearNonlinear", "RFLuminanceLN", "lagged_design", "downsample_frames"]


def downsample_frames(frames: np.ndarray, grid: int) -> np.ndarray:
    """(T, H, W) -> (T, grid, grid) float32, area-averaged: block means (skimage ``downscale_local_mean``)
    when the side is a multiple of ``grid`` (exact and fast), else an anti-aliased resize."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (T, H, W), got shape {frames.shape}")
    h, w = frames.shape[1:]
    if h % grid == 0 and w % grid == 0:
        return downscale_local_mean(frames, (1, h // grid, w // grid)).astype(np.float32)
    return resize(frames, (frames.shape[0], grid, grid), anti_aliasing=True, preserve_range=True).astype(np.float32)


def lagged_design(pixels: np.ndarray, n_lags: int, lag_width: int) -> np.ndarray:
    """(T, P) centred pixels -> (T, n_lags * P): bin k = mean of frames t - k*w - w + 1 .. t - k*w (causal).

    Frames before the start count as 0 (the training mean, once centred).
    """
    t, p = pixels.shape
    csum = np.concatenate([np.zeros((1, p), pixels.dtype), np.cumsum(pixels, axis=0, dtype=np.float64)], axis=0)
    out = np.empty((t, n_lags * p), dtype=np.float32)
    idx = np.arange(t)
    for k in range(n_lags):
        hi = np.clip(idx - k * lag_width + 1, 0, t)         # exclusive end (frame t - k*w included)
        lo = np.clip(idx - (k + 1) * lag_width + 1, 0, t)
        out[:, k * p:(k + 1) * p] = (csum[hi] - csum[lo]) / lag_width
    return out


@dataclass
class LinearNonlinear:
    """LN model: ``fit(frames, rates)`` then ``predict(frames)`` -> (T, cells) rates.

    ``frames`` (T, H, W) in [0, 1]; ``rates`` (T, cells) trial-averaged counts per frame bin.
    """

    grid: int = 15
    n_lags: int = 10
    lag_width: int = 4
    alphas: tuple = tuple(np.logspace(0, 6, 7))
    n_folds: int = 5
    nonlinearity: str = "isotonic"   # or "none" (the linear stage alone, rectified at 0)
    alpha_: float = field(default=np.nan, init=False)
    cv_scores_: dict = field(default_factory=dict, init=False)

    def _features(self, frames: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
        if pixels is None:
            pixels = downsample_frames(frames, self.grid).reshape(len(frames), -1)
        return lagged_design((pixels - self.pixel_mean_) / self.pixel_std_, self.n_lags, self.lag_width)

    def fit(self, frames: np.ndarray, rates: np.ndarray) -> "LinearNonlinear":
        rates = np.asarray(rates, dtype=np.float64)
        if rates.ndim != 2 or rates.shape[0] != len(frames):
            raise ValueError(f"rates must be (T, cells) with T = {len(frames)} frames, got {rates.shape}")
        if self.nonlinearity not in ("isotonic", "none"):
            raise ValueError(f"nonlinearity must be 'isotonic' or 'none', got {self.nonlinearity!r}")
        pixels = downsample_frames(frames, self.grid).reshape(len(frames), -1)
        self.pixel_mean_, self.pixel_std_ = float(pixels.mean()), float(pixels.std() + 1e-8)
        x = self._features(frames, pixels)
        # ridge penalty by contiguous-block CV (no shuffling: neighbouring frames are correlated)
        folds = list(KFold(self.n_folds, shuffle=False).split(x))
        for alpha in self.alphas:
            scores = []
            for tr, va in folds:
                pred = Ridge(alpha=alpha).fit(x[tr], rates[tr]).predict(x[va]).reshape(len(va), -1)
                scores.append(np.nanmean([_corr(pred[:, k], rates[va, k]) for k in range(rates.shape[1])]))
            self.cv_scores_[float(alpha)] = float(np.mean(scores))
        self.alpha_ = max(self.cv_scores_, key=self.cv_scores_.get)
        self.ridge_ = Ridge(alpha=self.alpha_).fit(x, rates)
        linear = self.ridge_.predict(x).reshape(len(frames), -1)
        self.nonlinearities_ = []
        if self.nonlinearity == "isotonic":
            for k in range(rates.shape[1]):
                iso = IsotonicRegression(increasing=True, out_of_bounds="clip")  # least squares: corr >= 0
                self.nonlinearities_.append(iso.fit(linear[:, k], rates[:, k]))
        return self

    @property
    def filters_(self) -> np.ndarray:
        """(cells, n_lags, grid, grid) linear filters (on standardised pixels)."""
        return self.ridge_.coef_.reshape(-1, self.n_lags, self.grid, self.grid)

    def predict_linear(self, frames: np.ndarray) -> np.ndarray:
        """(T, cells) output of the linear stage."""
        return self.ridge_.predict(self._features(frames)).reshape(len(frames), -1)

    def predict(self, frames: np.ndarray) -> np.ndarray:
        linear = self.predict_linear(frames)
        if self.nonlinearity == "none":
            return np.maximum(linear, 0.0)
        return np.stack([f.predict(linear[:, k]) for k, f in enumerate(self.nonlinearities_)], axis=1)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class RFLuminanceLN:
    """LN model on each cell's own receptive field: the mean luminance inside the cell's RF (and, with
    ``surround``, in a ring around it) over ``n_lags`` past frames, one ridge filter per cell, then a
    monotone (isotonic) nonlinearity -- the same two-step fit as :class:`LinearNonlinear`, with a
    few dozen parameters per cell instead of a filter over the whole frame.

    ``fit(lum, rates)`` then ``predict(lum)``: ``lum`` (T, cells) or, with a surround, (T, cells, 2)
    luminance per frame (:func:`alignlib.data.onken.rf_luminance`), ``rates`` (T, cells). The ridge
    penalty of each cell is chosen by contiguous-block K-fold CV on the training frames (sklearn
    ``RidgeCV``, no shuffling: neighbouring frames are correlated).
    """

    n_lags: int = 32
    lag_width: int = 1
    alphas: tuple = tuple(np.logspace(-1, 4, 11))
    n_folds: int = 5
    alpha_: np.ndarray = field(default=None, init=False)

    def _designs(self, lum: np.ndarray) -> np.ndarray:
        lum = np.asarray(lum, dtype=np.float32)
        if lum.ndim == 2:
            lum = lum[:, :, None]
        if lum.ndim != 3:
            raise ValueError(f"lum must be (T, cells) or (T, cells, parts), got shape {lum.shape}")
        t, cells, parts = lum.shape
        lagged = lagged_design(lum.reshape(t, cells * parts), self.n_lags, self.lag_width)
        # (T, lags, cells, parts) -> (cells, T, lags * parts)
        return lagged.reshape(t, self.n_lags, cells, parts).transpose(2, 0, 1, 3).reshape(cells, t, -1)

    def fit(self, lum: np.ndarray, rates: np.ndarray, rows=None) -> "RFLuminanceLN":
        """Fit on the frames ``rows`` (index array or slice; default all). The lagged design is built
        on the whole of ``lum``, so a training block's first frames see the frames before it."""
        from sklearn.linear_model import RidgeCV

        rates = np.asarray(rates, dtype=np.float64)
        designs = self._designs(lum)
        if rates.shape != designs.shape[:2][::-1]:
            raise ValueError(f"rates must be (T, cells) = {designs.shape[:2][::-1]}, got {rates.shape}")
        rows = np.arange(len(rates))[slice(None) if rows is None else rows]
        designs, rates = designs[:, rows], rates[rows]
        cv = KFold(self.n_folds, shuffle=False)
        self.ridges_, self.nonlinearities_ = [], []
        for c, x in enumerate(designs):
            ridge = RidgeCV(alphas=self.alphas, cv=cv).fit(x, rates[:, c])
            iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
            self.ridges_.append(ridge)
            self.nonlinearities_.append(iso.fit(ridge.predict(x), rates[:, c]))
        self.alpha_ = np.array([r.alpha_ for r in self.ridges_])
        return self

    def predict(self, lum: np.ndarray) -> np.ndarray:
        designs = self._designs(lum)
        return np.stack([nl.predict(r.predict(x)) for x, r, nl in
                         zip(designs, self.ridges_, self.nonlinearities_)], axis=1)
