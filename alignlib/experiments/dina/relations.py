"""The DINA chapter's relative claims (A beats B) measured as paired differences, for the claims ledger's
``paired_difference`` rule (:mod:`alignlib.claims.ledger`).

Pairing: every model of a mouse is tested on the same held-out images (the split depends only on the split
seed). Each image's top-k hit (expected over ties) is averaged over the seeds of a model; the difference
of two models is taken image by image; its 95 % interval is a percentile bootstrap over the images, within
each mouse for the mean over mice (:func:`alignlib.metrics.uncertainty.paired_difference_ci`).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from alignlib.experiments.dina.workflow import item_hits, seed_hits
from alignlib.metrics.uncertainty import (paired_difference_ci, seed_resampled_difference_ci,
                                         unpaired_difference_ci)

__all__ = ["paired_rows", "relation_measurements", "conjunction_measurement", "map_organisation_rows", "stimulus_rows",
           "stimulus_measurements", "STIMULUS_COMPARISONS"]


def _mouse_and_mean_rows(scores: Mapping[str, tuple[np.ndarray, np.ndarray]], runs_a: Mapping[str, Sequence],
                        runs_b: Mapping[str, Sequence], label: Mapping[str, object], seed: int,
                        seed_scores: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[dict]:
    """Rows of paired differences A - B from per-item scores ``{mouse: (a, b)}``: one per mouse (bootstrap
    over its items) and the mean over mice (bootstrap within mice), each carrying ``label``, the numbers
    of items and seeds, and whether every run behind it converged. With ``seed_scores`` (``{mouse: (a, b)}``,
    each (seeds, items)) the rows also carry ``seeds_ci_low``/``seeds_ci_high``, an interval that resamples
    each model's seeds too (:func:`alignlib.metrics.uncertainty.seed_resampled_difference_ci`)."""
    rows = []
    def seeds_ci(mice: list[str]) -> dict[str, float]:
        if seed_scores is None:
            return {}
        _, lo_s, hi_s = seed_resampled_difference_ci([seed_scores[m][0] for m in mice],
                                                     [seed_scores[m][1] for m in mice], seed=seed)
        return {"seeds_ci_low": lo_s, "seeds_ci_high": hi_s}

    for mouse, (a, b) in scores.items():
        d, lo, hi = paired_difference_ci(a, b, seed=seed)
        rows.append({**label, "mouse": mouse, "difference": d, "ci_low": lo, "ci_high": hi, **seeds_ci([mouse]),
                     "n_items": len(a),
                     "n_seeds_a": len(runs_a[mouse]), "n_seeds_b": len(runs_b[mouse]),
                     "converged": all(r.converged is True for r in [*runs_a[mouse], *runs_b[mouse]])})
    d, lo, hi = paired_difference_ci([v[0] for v in scores.values()], [v[1] for v in scores.values()], seed=seed)
    rows.append({**label, "mouse": "mean", "difference": d, "ci_low": lo, "ci_high": hi,
                 **seeds_ci(list(scores)), "n_items": sum(len(v[0]) for v in scores.values()),
                 "n_seeds_a": min(len(runs_a[m]) for m in scores), "n_seeds_b": min(len(runs_b[m]) for m in scores),
                 "converged": all(r["converged"] for r in rows)})
    return rows


def paired_rows(runs_a: Mapping[str, Sequence], runs_b: Mapping[str, Sequence], ks: Iterable[int] = (1, 5, 10),
                scale: float = 100.0, seed: int = 0) -> pd.DataFrame:
    """Paired differences A - B of top-k accuracy (``scale``: 100 for percentage points), per mouse and
    for the mean over mice: columns mouse, k, difference, ci_low, ci_high, n_items, n_seeds_a, n_seeds_b,
    converged (every run behind the row converged, :func:`alignlib.training.store.convergence`).

    ``runs_a``/``runs_b``: mouse -> that model's runs (one per seed), the same mice in both.
    """
    if set(runs_a) != set(runs_b):
        raise ValueError(f"models compared on different mice: {sorted(runs_a)} vs {sorted(runs_b)}")
    rows = []
    for k in ks:
        per_mouse, per_seed = {}, {}
        for mouse in runs_a:
            ha, ia = seed_hits(runs_a[mouse], k)
            hb, ib = seed_hits(runs_b[mouse], k)
            if not np.array_equal(ia, ib):
                raise ValueError(f"{mouse}: the two models were tested on other images: not paired")
            per_seed[mouse] = (scale * ha, scale * hb)
            per_mouse[mouse] = (scale * ha.mean(axis=0), scale * hb.mean(axis=0))
        rows += _mouse_and_mean_rows(per_mouse, runs_a, runs_b, {"k": int(k)}, seed, per_seed)
    return pd.DataFrame(rows)


def relation_measurements(rows: pd.DataFrame, claim: str, our_data: str, page: str,
                          per_mouse_comparable: bool = False):
    """Ledger measurements (:class:`alignlib.claims.Measurement`) from :func:`paired_rows`, for the relative
    claims ``<claim>.<mouse>.<k>`` of ``published.yml`` (e.g. ``dina.relative.table1.DINA-vs-VGG-16-MLP``).

    The mean over mice is judged by the ``paired_difference`` rule. A per-mouse claim is judged only when
    ``per_mouse_comparable`` (the real recordings: the twin's M1 is not the paper's M1); otherwise it is shown
    side by side. A row whose runs did not all converge carries ``converged=False`` (no verdict)."""
    from alignlib.claims import Measurement, published

    known = set(published(claim).id)
    out = []
    for r in rows.itertuples():
        cid = f"{claim}.{r.mouse}.{int(r.k)}"
        if cid not in known:          # the paper's own numbers tie there: no relative claim to judge
            continue
        judged = r.mouse == "mean" or per_mouse_comparable
        out.append(Measurement(cid, float(r.difference), float(r.ci_low), float(r.ci_high),
                               rule="paired_difference" if judged else "not_comparable",
                               our_data=f"{our_data}, paired over {int(r.n_items)} test images, "
                                        f"{int(r.n_seeds_a)}/{int(r.n_seeds_b)} seeds", page=page,
                               converged=bool(r.converged),
                               note="; ".join(filter(None, [
                                   "" if judged else "the twin's mice are not the paper's mice",
                                   _seeds_note(r)]))))
    return out


def _seeds_note(r) -> str:
    """The seed-resampled interval of a :func:`paired_rows` row, for the ledger's note ('' if absent)."""
    lo, hi = getattr(r, "seeds_ci_low", np.nan), getattr(r, "seeds_ci_high", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    return (f"with the seeds resampled too: [{lo:+.1f}, {hi:+.1f}]"
            + (" (not on one side of zero)" if lo <= 0 <= hi else ""))


def conjunction_measurement(pairs: Mapping[str, pd.DataFrame], claim: str, our_data: str, page: str,
                            per_mouse: bool = False):
    """One ledger measurement for a claim made of several relative claims, judged by the ledger's
    ``conjunction`` rule: an ordering ("A beats B and C at every k", from :func:`paired_rows` of each pair,
    ``{"A - B": rows, ...}``) or a property of both towers (:func:`map_organisation_rows`, one frame per
    tower). Each frame has columns mouse, difference, ci_low, ci_high, converged and either ``k`` or
    ``part`` (what the row is). Registered: the smallest difference, the smallest lower bound and the
    smallest upper bound over every part, on the mean over mice (and on every mouse too with
    ``per_mouse``: the real recordings, whose mice are the paper's). So the claim holds iff every part's
    interval is above zero and is reversed iff some part's interval is below zero (the paper's side must be
    ">": a positive difference)."""
    from alignlib.claims import Measurement

    parts = pd.concat([(rows if per_mouse else rows[rows.mouse == "mean"]).assign(pair=name)
                       for name, rows in pairs.items()], ignore_index=True)
    if parts.empty:
        raise ValueError("no mean-over-mice rows to combine")
    if "part" in parts:               # the frames' keys name the parts already
        parts = parts.assign(what=parts["pair"])
    else:
        parts = parts.assign(what=parts["pair"] + " top-" + parts["k"].astype(int).astype(str))
    weakest = parts.loc[parts.difference.idxmin()]
    listed = ", ".join(f"{r.what}, {r.mouse}: {r.difference:+.3g} [{r.ci_low:+.3g}, {r.ci_high:+.3g}]"
                       for r in parts.itertuples())
    return Measurement(claim, float(weakest.difference), float(parts.ci_low.min()), float(parts.ci_high.min()),
                       rule="conjunction", our_data=f"{our_data}; parts: {listed}", page=page,
                       converged=bool(parts.converged.all()),
                       note=f"smallest part: {weakest.what}, {weakest.mouse}")


def map_organisation_rows(runs_a: Mapping[str, Sequence], runs_b: Mapping[str, Sequence],
                          map_shape: tuple[int, int] = (16, 64), seed: int = 0) -> pd.DataFrame:
    """Spatial organisation of two models' maps, A - B, per tower ("image", "neural"), per mouse and for
    the mean over mice: columns part (the tower), mouse, a, b (mean scores), difference, ci_low, ci_high,
    n_items, n_seeds_a, n_seeds_b, converged.

    A map's score is the :func:`~alignlib.interpret.spectra.neighbour_correlation` of its image-dependent
    part: the test embedding (the map flattened to unit length, so every seed of every model is scored the
    same way) reshaped to ``map_shape``, minus the model's mean map over the mouse's test images (a fixed
    smooth pattern that ignores the image must not count as organisation; a collapsed model scores 0).
    Each image's score is averaged over a model's seeds; the difference is paired image by image, with a
    bootstrap over images within each mouse for the mean over mice (:func:`paired_difference_ci`): an
    interval for these trained networks, not over seeds."""
    from alignlib.interpret.spectra import neighbour_correlation

    if set(runs_a) != set(runs_b):
        raise ValueError(f"models compared on different mice: {sorted(runs_a)} vs {sorted(runs_b)}")
    towers = (("image", "z_img"), ("neural", "z_neu"))
    per_tower: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {t: {} for t, _ in towers}
    for mouse in runs_a:
        scores: dict[str, list[np.ndarray]] = {t: [] for t, _ in towers}   # model A's, then B's
        index = None
        for runs in (runs_a[mouse], runs_b[mouse]):
            if not runs:
                raise ValueError(f"{mouse}: a model without runs")
            per_seed: dict[str, list[np.ndarray]] = {t: [] for t, _ in towers}
            for run in runs:
                emb = run.test_embeddings()            # read once, both towers scored from it
                if index is not None and not np.array_equal(index, emb["test_index"]):
                    raise ValueError(f"{mouse}: run {run.name} was tested on other images: not paired")
                index = emb["test_index"]
                for tower, key in towers:
                    maps = np.asarray(emb[key], dtype=np.float64).reshape(len(index), *map_shape)
                    per_seed[tower].append(neighbour_correlation(maps - maps.mean(axis=0, keepdims=True)))
            for tower, _ in towers:
                scores[tower].append(np.mean(per_seed[tower], axis=0))
        for tower, _ in towers:
            per_tower[tower][mouse] = tuple(scores[tower])
    rows = []
    for tower, per_mouse in per_tower.items():
        means = {m: (a.mean(), b.mean()) for m, (a, b) in per_mouse.items()}
        means["mean"] = tuple(np.mean([v[i] for v in means.values()]) for i in (0, 1))
        for row in _mouse_and_mean_rows(per_mouse, runs_a, runs_b, {"part": f"{tower} tower"}, seed):
            rows.append({**row, "a": float(means[row["mouse"]][0]), "b": float(means[row["mouse"]][1])})
    return pd.DataFrame(rows)


#: the stimulus-control comparisons the paper makes (§4.3): natural > whitened, and 8D > whitened (8D
#: retrieval "largely preserved"); "natural > 8D" is not a claim of the paper
STIMULUS_COMPARISONS = (("natural", "whitened"), ("8D", "whitened"))


def stimulus_rows(sets: Mapping[str, Mapping[str, Sequence]], ks: Iterable[int] = (1, 5, 10),
                  comparisons: Iterable[tuple[str, str]] = STIMULUS_COMPARISONS, scale: float = 100.0,
                  seed: int = 0) -> pd.DataFrame:
    """DINA on one stimulus set minus DINA on another (natural, whitened, 8D), top-k accuracy (``scale``: 100
    for percentage points): the mean over one set's mice minus the mean over the other's. The sets are shown
    to other mice, so nothing is paired; the interval is a hierarchical bootstrap, mice then test images
    (:func:`alignlib.metrics.uncertainty.unpaired_difference_ci`).

    ``sets``: set name -> (mouse -> runs, one per seed). A comparison whose sets are not both given, and a
    ``k`` not below the number of test images (every candidate is a hit: no information), are left out.
    Columns: a, b, k, difference, ci_low, ci_high, mice_a, mice_b, n_seeds, n_test, converged."""
    rows = []
    for a, b in comparisons:
        if a not in sets or b not in sets or not sets[a] or not sets[b]:
            continue
        runs = [r for s in (a, b) for rs in sets[s].values() for r in rs]
        conv = all(r.converged is True for r in runs)
        for k in ks:
            hits = {s: [scale * item_hits(rs, k)[0] for rs in sets[s].values()] for s in (a, b)}
            n_test = min(len(h) for s in hits.values() for h in s)
            if k >= n_test:
                continue
            d, lo, hi = unpaired_difference_ci(hits[a], hits[b], seed=seed)
            rows.append({"a": a, "b": b, "k": int(k), "difference": d, "ci_low": lo, "ci_high": hi,
                         "mice_a": ", ".join(sets[a]), "mice_b": ", ".join(sets[b]),
                         "n_seeds": min(len(rs) for s in (a, b) for rs in sets[s].values()),
                         "n_test": n_test, "converged": conv})
    return pd.DataFrame(rows, columns=["a", "b", "k", "difference", "ci_low", "ci_high", "mice_a", "mice_b",
                                       "n_seeds", "n_test", "converged"])


def stimulus_measurements(rows: pd.DataFrame, our_data: str, page: str):
    """Ledger measurements for ``dina.relative.stimulus_control.<a>-vs-<b>.<k>`` from :func:`stimulus_rows`,
    judged by the ``paired_difference`` rule (unpaired here, a hierarchical bootstrap: said in ``our_data``)."""
    from alignlib.claims import Measurement, published

    known = set(published("dina.relative.stimulus_control").id)
    out = []
    for r in rows.itertuples():
        cid = f"dina.relative.stimulus_control.{r.a}-vs-{r.b}.{int(r.k)}"
        if cid not in known:
            continue
        out.append(Measurement(cid, float(r.difference), float(r.ci_low), float(r.ci_high),
                               rule="paired_difference", page=page, converged=bool(r.converged),
                               our_data=f"{our_data}: {r.a} mice {r.mice_a} vs {r.b} mice {r.mice_b}, {int(r.n_test)} "
                                        f"test images each; unpaired (other mice), hierarchical bootstrap over "
                                        f"mice then test images, {int(r.n_seeds)} seed(s)"))
    return out
