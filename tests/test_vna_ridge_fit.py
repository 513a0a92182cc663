"""Issue 18 section 6: a ridge fit at the top of its penalty grid is "no fit", not a measurement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from alignlib.experiments.vna import workflow as wf


def _pairs(n: int, side: int, n_neurons: int, signal: bool, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    images = 128 + 30 * torch.randn(n, side, side, generator=g)
    if signal:
        responses = images.flatten(1)[:, :n_neurons] / 30 + 0.1 * torch.randn(
            n, n_neurons, generator=g
        )
    else:
        responses = torch.randn(n, n_neurons, generator=g)  # nothing to predict from the images
    return {"images": images, "responses": responses}


def test_no_signal_ridge_is_marked_no_fit_and_shown_as_no_fit():
    pset = wf.prepare_set(
        "noise",
        _pairs(60, 8, 10, False)["images"].numpy(),
        _pairs(60, 8, 10, False)["responses"].numpy(),
        8,
    )
    split = {"train": np.arange(0, 40), "val": np.arange(40, 48), "test": np.arange(48, 60)}
    rows, _, _ = wf.evaluate_split(
        pset, split, ["ridge"], [0], {}, protocol="toy", n_permutations=0
    )
    per_query = pd.DataFrame(rows)
    assert (per_query.ridge_alpha == wf.RIDGE_ALPHAS.max()).all()
    assert per_query.fit.str.startswith(wf.NO_FIT).all()
    table = wf.summarize(per_query, n_resamples=100)
    assert (table.fit == wf.NO_FIT).all()
    assert table.auc.notna().all(), "the numbers stay in the CSV"
    table["label"] = "ridge"
    shown = wf.auc_cells(table)
    assert (shown == wf.NO_FIT).all().all()


def test_status_rules():
    pred = np.random.default_rng(0).standard_normal((12, 5))
    assert wf.ridge_fit_status(10.0, pred) == "ok"
    assert "top of the grid" in wf.ridge_fit_status(float(wf.RIDGE_ALPHAS.max()), pred)
    assert "constant" in wf.ridge_fit_status(10.0, np.ones((12, 5)) * 0.3)


def test_a_fitting_ridge_stays_a_measurement():
    d = _pairs(80, 6, 8, True)
    train = {k: v[:60] for k, v in d.items()}
    test = {k: v[60:] for k, v in d.items()}
    s, info = wf.ridge_scores(train, test, return_info=True)
    assert (
        info["fit"] == "ok" and info["ridge_alpha"] < wf.RIDGE_ALPHAS.max() and s.shape == (20, 20)
    )
    per_query = pd.DataFrame(
        wf.query_rows(
            s, np.arange(20), dataset="d", protocol="p", fold=0, method="ridge", seed=0, **info
        )
    )
    table = wf.summarize(per_query, n_resamples=100).assign(label="ridge")
    assert (table.fit == "ok").all() and not (wf.auc_cells(table) == wf.NO_FIT).any().any()


def test_partly_failed_rows_say_so():
    base = dict(
        dataset="d",
        protocol="p",
        method="ridge",
        seed=0,
        task="encoding",
        n_candidates=4,
        auc=0.6,
        top1=0.3,
        top5=1.0,
    )
    rows = [
        dict(base, fold=f, item=i, fit=("ok" if f else "no fit: constant predictions"), task=t)
        for f in (0, 1)
        for i in range(4)
        for t in ("encoding", "decoding")
    ]
    table = wf.summarize(pd.DataFrame(rows), n_resamples=50)
    assert (table.fit == "no fit in 1 of 2 fits").all()
