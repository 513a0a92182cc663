"""Eigenspectra of population responses: cross-validated PCA and power-law fits.

Stringer, Pachitariu, Steinmetz, Carandini & Harris (2019), "High-dimensional geometry of
population responses in visual cortex", Nature 571:361-365. The stimulus-related variance
along the k-th principal dimension of mouse V1 responses to natural images decays as a
power law, lambda_k ~ k^-alpha with alpha ~ 1.04.
"""
from __future__ import annotations

import numpy as np

from alignlib.metrics.reliability import check_repeats

__all__ = ["cvpca_spectrum", "powerlaw_exponent", "pca_variance_spectrum", "top_share_difference",
           "neighbour_correlation"]


def cvpca_spectrum(rep1: np.ndarray, rep2: np.ndarray, n_components: int | None = None) -> np.ndarray:
    """Cross-validated PCA eigenspectrum (Stringer et al. 2019, Nature, Methods "cvPCA").

    ``rep1`` and ``rep2`` are (n_images, n_neurons) responses to the same images in two repeats.
    Each is mean-centred over images; the principal directions ``v_k`` (right singular vectors)
    come from repeat 1 only; both repeats are projected onto them and

        lambda_k = (1 / n_images) * sum_i (X1 v_k)_i (X2 v_k)_i .

    Trial noise is independent between repeats, so its contribution averages out: ``lambda_k``
    is an unbiased estimate of the stimulus-related variance along ``v_k`` (it can be negative
    where there is none). Returns ``n_components`` values (default: all, min(n_images, n_neurons)).
    """
    rep1, rep2 = check_repeats(rep1, rep2)
    x1 = rep1 - rep1.mean(axis=0)
    x2 = rep2 - rep2.mean(axis=0)
    _, _, vt = np.linalg.svd(x1, full_matrices=False)
    if n_components is not None:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        vt = vt[:n_components]
    p1, p2 = x1 @ vt.T, x2 @ vt.T
    return (p1 * p2).sum(axis=0) / x1.shape[0]


def powerlaw_exponent(spectrum: np.ndarray, fit_range: tuple[int, int] = (11, 500),
                      weighted: bool = False) -> tuple[float, float]:
    """Fit ``log lambda_k = -alpha log k + b`` over ranks ``fit_range``; return ``(alpha, b)``.

    Ranks are 1-based and inclusive (Stringer et al. 2019 fit ranks 11 to 500); the upper end is
    clipped to the length of ``spectrum`` and only positive values are used. Ordinary least
    squares by default; ``weighted=True`` weights each rank by 1/k as the authors' public code
    (``get_powerlaw``) does, which evens out the density of points along log k.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64).ravel()
    lo, hi = int(fit_range[0]), int(fit_range[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"fit_range must be (lo, hi) with 1 <= lo <= hi, got {fit_range}")
    ranks = np.arange(lo, min(hi, spectrum.size) + 1)
    values = spectrum[ranks - 1]
    keep = np.isfinite(values) & (values > 0)
    ranks, values = ranks[keep], values[keep]
    if ranks.size < 3:
        raise ValueError(f"only {ranks.size} positive spectrum values in ranks {lo}..{hi} "
                         f"(spectrum length {spectrum.size}); need at least 3 to fit a power law")
    design = np.column_stack([-np.log(ranks), np.ones(ranks.size)])
    w = np.sqrt(1.0 / ranks) if weighted else np.ones(ranks.size)
    (alpha, intercept), *_ = np.linalg.lstsq(design * w[:, None], np.log(values) * w, rcond=None)
    return float(alpha), float(intercept)


def pca_variance_spectrum(x: np.ndarray, n_components: int | None = None) -> np.ndarray:
    """Fraction of variance along each principal component of the rows of ``x`` (n_items, ...), descending
    (DINA Fig. 4b: images, image-tower maps and neural-tower maps of the test set, each flattened). Sums to 1
    over all components; ``n_components`` keeps the leading ones."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if x.shape[0] < 2:
        raise ValueError("need at least two items for a variance spectrum")
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    frac = s / s.sum() if s.sum() > 0 else s
    return frac[:n_components] if n_components else frac


def _top_share(gram: np.ndarray, idx: np.ndarray, n_top: int) -> float:
    """Share of variance in the first ``n_top`` PCs of the items ``idx``, from their Gram matrix (the nonzero
    PCA eigenvalues are those of the doubly centred Gram matrix; equals :func:`pca_variance_spectrum`)."""
    g = gram[np.ix_(idx, idx)]
    g = g - g.mean(0) - g.mean(1)[:, None] + g.mean()
    ev = np.clip(np.linalg.eigvalsh(g)[::-1], 0, None)
    return float(ev[:n_top].sum() / ev.sum()) if ev.sum() > 0 else 0.0


def top_share_difference(a_sets, b_sets, n_top: int = 5, confidence: float = 0.95, n_resamples: int = 1000,
                         subsample: float = 0.5, seed: int = 0) -> tuple[float, float, float]:
    """Share of variance in the first ``n_top`` PCs of set A minus that of set B (DINA Fig. 4b: maps minus
    images of the same test items), averaged over groups (mice), with a subsampling interval over the items.

    A bootstrap with replacement biases a PCA spectrum (duplicated items lower its rank), so the interval is
    by subsampling without replacement (Politis & Romano 1994): ``m = subsample * n`` items per group, the
    same items for A and B; the spread of the subsample differences (centred on their mean: the share of
    fewer items is biased upwards), scaled by sqrt(m / n), is placed around the full-sample difference. ``a_sets``/``b_sets``: one array (n_items, ...) per group, A and B of a
    group holding the same items in the same order. Returns ``(difference, ci_low, ci_high)``."""
    grams = []
    for a, b in zip(a_sets, b_sets, strict=True):
        xa = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
        xb = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
        if len(xa) != len(xb) or len(xa) < 2 * n_top:
            raise ValueError(f"A and B need the same items, at least {2 * n_top}: {len(xa)} vs {len(xb)}")
        grams.append((xa @ xa.T, xb @ xb.T, len(xa)))

    def diff(indices) -> float:
        return float(np.mean([_top_share(ga, i, n_top) - _top_share(gb, i, n_top)
                              for (ga, gb, _), i in zip(grams, indices)]))

    point = diff([np.arange(n) for *_, n in grams])
    rng = np.random.default_rng(seed)
    sizes = [max(2 * n_top, int(round(subsample * n))) for *_, n in grams]
    sub = np.array([diff([rng.choice(n, m, replace=False) for (*_, n), m in zip(grams, sizes)])
                    for _ in range(n_resamples)])
    scale = np.sqrt(np.mean(sizes) / np.mean([n for *_, n in grams]))
    tail = (1 - confidence) / 2
    # the spread of the subsample differences, centred on their own mean: a share computed on fewer items is
    # biased (fewer items put more variance in the leading PCs), and only the spread is scaled back to n
    q_lo, q_hi = np.quantile(sub - sub.mean(), [tail, 1 - tail])
    return point, float(point - scale * q_hi), float(point - scale * q_lo)


def neighbour_correlation(maps: np.ndarray) -> np.ndarray:
    """Spatial organisation of each map: the Pearson correlation between every pixel and its right-hand
    and lower neighbours (lag-1 spatial autocorrelation, the two directions pooled), one value per map of
    ``maps`` (n, H, W). Independent noise scores about 0, a smooth map close to 1; a constant map (no
    structure at all, e.g. a collapsed tower) scores 0. Used for DINA §4.3's reading that VGG-16-MLP's
    maps "lack clear spatial organization and exhibit noise-like patterns" (App. Fig. A.2)."""
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] < 2 or m.shape[2] < 2:
        raise ValueError(f"need maps of shape (n, H, W) with H, W >= 2, got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or infinite values")
    n = len(m)
    a = np.concatenate([m[:, :, :-1].reshape(n, -1), m[:, :-1, :].reshape(n, -1)], axis=1)
    b = np.concatenate([m[:, :, 1:].reshape(n, -1), m[:, 1:, :].reshape(n, -1)], axis=1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / den
    return np.where(den > 1e-12 * max(1.0, float(np.abs(m).max(initial=0.0)) ** 2), r, 0.0)
