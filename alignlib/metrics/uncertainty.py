"""Confidence intervals for the book's tables (percentile bootstrap via scipy.stats.bootstrap)."""
from __future__ import annotations

import numpy as np
from scipy import stats


def bootstrap_ci(values, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of ``values`` (e.g. per-query retrieval hits).

    Degenerate samples (all values equal) return (value, value).
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci_mean_of_means(samples, confidence: float = 0.95, n_resamples: int = 2000,
                               seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean over groups of each group's mean (e.g. Table 1's mean over
    mice), resampling within each group independently (scipy.stats.bootstrap with several samples)."""
    groups = [np.asarray(s, dtype=float).ravel() for s in samples]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("every group needs at least one value")
    if all(np.all(g == g[0]) for g in groups):
        v = float(np.mean([g[0] for g in groups]))
        return v, v
    res = stats.bootstrap(groups, lambda *gs, axis=-1: np.mean([g.mean(axis=axis) for g in gs], axis=0),
                          confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                          vectorized=True, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_difference_ci(a, b, confidence: float = 0.95, n_resamples: int = 2000,
                         seed: int = 0) -> tuple[float, float, float]:
    """Mean paired difference ``a - b`` and its percentile-bootstrap CI, resampling the paired items.

    ``a`` and ``b`` hold one score per item (e.g. per test image, already averaged over seeds), the same
    items in the same order; or a list of such arrays, one per group (e.g. per mouse): then the difference
    is the mean over groups of each group's mean difference, resampled within groups
    (:func:`bootstrap_ci_mean_of_means`). Returns ``(difference, ci_low, ci_high)``.
    """
    grouped = isinstance(a, (list, tuple)) and len(a) and np.ndim(a[0]) >= 1
    pairs = list(zip(a, b)) if grouped else [(a, b)]
    diffs = []
    for x, y in pairs:
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"paired scores need the same items: {x.shape} vs {y.shape}")
        diffs.append(x - y)
    mean = float(np.mean([d.mean() for d in diffs]))
    lo, hi = (bootstrap_ci_mean_of_means(diffs, confidence, n_resamples, seed) if grouped
              else bootstrap_ci(diffs[0], confidence, n_resamples, seed))
    return mean, lo, hi


def unpaired_difference_ci(a, b, confidence: float = 0.95, n_resamples: int = 2000,
                           seed: int = 0) -> tuple[float, float, float]:
    """Difference of two means of group means, ``mean_g(a_g) - mean_h(b_h)``, and its hierarchical
    percentile-bootstrap CI, for groups that are NOT the same on both sides (e.g. natural-image mice against
    whitened-image mice: other mice, other neurons). Each resample draws the groups of each side with
    replacement, then the items within every drawn group, so the interval covers both the variation
    between groups (mice) and the sampling of items (test images) within them.

    ``a`` and ``b`` are lists of groups (one array of per-item scores per mouse). Returns
    ``(difference, ci_low, ci_high)``."""
    ga = [np.asarray(s, dtype=float).ravel() for s in a]
    gb = [np.asarray(s, dtype=float).ravel() for s in b]
    if not ga or not gb or any(g.size == 0 for g in ga + gb):
        raise ValueError("both sides need at least one group, and every group at least one value")
    diff = float(np.mean([g.mean() for g in ga]) - np.mean([g.mean() for g in gb]))
    if all(np.all(g == g[0]) for g in ga + gb) and len({float(g[0]) for g in ga}) == 1 \
            and len({float(g[0]) for g in gb}) == 1:
        return diff, diff, diff
    rng = np.random.default_rng(seed)

    def side(groups) -> np.ndarray:
        """(n_resamples,) mean over resampled groups of their resampled item means."""
        picks = rng.integers(0, len(groups), size=(n_resamples, len(groups)))
        item_means = np.stack([g[rng.integers(0, g.size, size=(n_resamples, g.size))].mean(axis=1)
                               for g in groups], axis=1)              # (n_resamples, n_groups)
        return np.take_along_axis(item_means, picks, axis=1).mean(axis=1)

    boot = side(ga) - side(gb)
    tail = (1 - confidence) / 2
    return diff, float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def nested_bootstrap_ci(values, confidence: float = 0.95, n_resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of a score measured on every (group, replicate, item), e.g. a
    paired difference per (mouse, tower seed, test image) when every mouse saw the same test images.

    ``values`` has shape (groups, replicates, items). The statistic is the mean over groups of the mean
    over replicates of the mean over items. Each resample draws the items with replacement *once* for
    every group and replicate (the items are shared: two mice's scores on one image are not independent)
    and the replicates with replacement within each group (so seed-to-seed spread enters the interval);
    the groups are kept (the interval is conditional on them). NaN is refused. Scipy's bootstrap has
    no nested resampling, hence this. Returns ``(mean, ci_low, ci_high)``.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 3 or 0 in v.shape:
        raise ValueError(f"values must be (groups, replicates, items) with none empty, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values hold NaN or inf: drop or impute them first, saying how")
    n_groups, n_reps, n_items = v.shape
    rng = np.random.default_rng(seed)
    stats_ = np.empty(n_resamples)
    for start in range(0, n_resamples, 250):                 # chunks keep memory at 250 x the data
        b = min(250, n_resamples - start)
        items = rng.integers(0, n_items, size=(b, n_items))
        reps = rng.integers(0, n_reps, size=(b, n_groups, n_reps))
        item_means = v[:, :, items].mean(axis=-1)          # (groups, replicates, b)
        item_means = np.moveaxis(item_means, -1, 0)        # (b, groups, replicates)
        chosen = np.take_along_axis(item_means, reps, axis=2)
        stats_[start:start + b] = chosen.mean(axis=(1, 2))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats_, [alpha, 1 - alpha])
    return float(v.mean()), float(lo), float(hi)


def seed_resampled_difference_ci(a, b, confidence: float = 0.95, n_resamples: int = 2000,
                                 seed: int = 0) -> tuple[float, float, float]:
    """Mean difference ``a - b`` of two models scored per (seed, item) in each group, and a percentile-
    bootstrap CI that carries the spread between training seeds as well as between items.

    ``a`` and ``b``: one array per group (e.g. per mouse), each (seeds, items): a model's score of every
    test item under every one of its seeds (the two models may have other numbers of seeds, never other
    items). The statistic is the mean over groups of (mean over a's seeds and items minus the same of b).
    Each resample draws each group's items with replacement (one draw for both models: the pairing by
    item is kept) and each model's seeds with replacement within each group, independently (a seed of one model is not
    paired with a seed of the other). Groups are kept. With few seeds (3) the percentile bootstrap of
    their spread is rough and, if anything, narrow. Returns ``(difference, ci_low, ci_high)``."""
    A = [np.asarray(x, dtype=float) for x in a]
    B = [np.asarray(x, dtype=float) for x in b]
    if not A or len(A) != len(B):
        raise ValueError("a and b need one (seeds, items) array per group, the same groups")
    for x, y in zip(A, B):
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or 0 in x.shape or 0 in y.shape:
            raise ValueError(f"each group needs (seeds, items) arrays with the same items: {x.shape} vs {y.shape}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("scores hold NaN or inf")
    rng = np.random.default_rng(seed)
    stats_ = np.empty(n_resamples)
    for r in range(n_resamples):
        diffs = []
        for x, y in zip(A, B):
            items = rng.integers(0, x.shape[1], x.shape[1])
            sx = rng.integers(0, x.shape[0], x.shape[0])
            sy = rng.integers(0, y.shape[0], y.shape[0])
            diffs.append(x[np.ix_(sx, items)].mean() - y[np.ix_(sy, items)].mean())
        stats_[r] = np.mean(diffs)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats_, [alpha, 1 - alpha])
    return float(np.mean([x.mean() - y.mean() for x, y in zip(A, B)])), float(lo), float(hi)

