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

from alignlib.experiments.dina.workflow import item_hits
from alignlib.metrics.uncertainty import paired_difference_ci

__all__ = ["paired_rows", "relation_measurements"]


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
        per_mouse = {}
        for mouse in runs_a:
            ha, ia = item_hits(runs_a[mouse], k)
            hb, ib = item_hits(runs_b[mouse], k)
            if not np.array_equal(ia, ib):
                raise ValueError(f"{mouse}: the two models were tested on other images: not paired")
            per_mouse[mouse] = (scale * ha, scale * hb)
            conv = all(r.converged is True for r in [*runs_a[mouse], *runs_b[mouse]])
            d, lo, hi = paired_difference_ci(scale * ha, scale * hb, seed=seed)
            rows.append({"mouse": mouse, "k": int(k), "difference": d, "ci_low": lo, "ci_high": hi,
                         "n_items": len(ha), "n_seeds_a": len(runs_a[mouse]), "n_seeds_b": len(runs_b[mouse]),
                         "converged": conv})
        d, lo, hi = paired_difference_ci([v[0] for v in per_mouse.values()], [v[1] for v in per_mouse.values()],
                                         seed=seed)
        rows.append({"mouse": "mean", "k": int(k), "difference": d, "ci_low": lo, "ci_high": hi,
                     "n_items": sum(len(v[0]) for v in per_mouse.values()),
                     "n_seeds_a": min(len(r) for r in runs_a.values()),
                     "n_seeds_b": min(len(r) for r in runs_b.values()),
                     "converged": all(r["converged"] for r in rows if r["k"] == k and r["mouse"] != "mean")})
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
                               note="" if judged else "the twin's mice are not the paper's mice"))
    return out
