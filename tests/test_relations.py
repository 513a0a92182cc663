"""Relative claims as paired differences: the interval is over paired test items, a model compared with
itself differs by exactly zero, and runs tested on other images are refused."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from alignlib.experiments.dina.relations import paired_rows
from alignlib.metrics.uncertainty import paired_difference_ci


def fake_run(z_neu, z_img, index, converged=True, name="r"):
    return SimpleNamespace(name=name, converged=converged, info={"selected": "val_mean_rank"},
                           test_embeddings=lambda criterion=None: {
        "z_neu": z_neu, "z_img": z_img, "test_index": index})


def test_paired_difference_ci_single_and_grouped():
    a, b = np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0])
    d, lo, hi = paired_difference_ci(a, b)
    assert d == pytest.approx(0.5) and lo <= d <= hi
    assert paired_difference_ci(a, a) == (0.0, 0.0, 0.0)
    d2, lo2, hi2 = paired_difference_ci([a, a], [b, a])                   # mean over groups of group means
    assert d2 == pytest.approx(0.25) and lo2 <= d2 <= hi2
    with pytest.raises(ValueError, match="same items"):
        paired_difference_ci(a, b[:3])


def test_paired_rows_good_vs_collapsed_model():
    rng = np.random.default_rng(0)
    n = 40
    z = rng.normal(size=(n, 8))
    good = [fake_run(z + 0.1 * rng.normal(size=z.shape), z, np.arange(n)) for _ in range(3)]
    collapsed = [fake_run(np.ones((n, 8)), z, np.arange(n), converged=False) for _ in range(3)]
    rows = paired_rows({"M1": good, "M2": good}, {"M1": collapsed, "M2": collapsed}, ks=(1,))
    mean = rows.set_index("mouse").loc["mean"]
    assert mean.ci_low > 50                                  # percentage points: near-perfect vs chance (2.5 %)
    assert not mean.converged                               # a collapsed run that hit its cap: no verdict
    same = paired_rows({"M1": good}, {"M1": good}, ks=(5,)).set_index("mouse").loc["mean"]
    assert same.difference == 0 and same.ci_low == 0 and same.ci_high == 0
    with pytest.raises(ValueError, match="other images"):
        paired_rows({"M1": good}, {"M1": [fake_run(z, z, np.arange(n) + 1)]}, ks=(1,))


def test_relation_measurements_judge_the_mean_and_flag_unconverged_runs():
    from alignlib.claims import verdict
    from alignlib.claims.ledger import paper_direction
    from alignlib.experiments.dina.relations import relation_measurements

    rng = np.random.default_rng(1)
    n = 40
    z = rng.normal(size=(n, 8))
    good = [fake_run(z + 0.1 * rng.normal(size=z.shape), z, np.arange(n)) for _ in range(2)]
    bad = [fake_run(rng.normal(size=z.shape), z, np.arange(n)) for _ in range(2)]
    rows = paired_rows({"M1": good, "M2": good}, {"M1": bad, "M2": bad}, ks=(1, 5))
    ms = {m.claim: m for m in relation_measurements(rows, "dina.relative.table1.DINA-vs-VGG-16-MLP",
                                                     "twin", "dina/table1")}
    mean = ms["dina.relative.table1.DINA-vs-VGG-16-MLP.mean.1"]
    assert mean.rule == "paired_difference" and mean.converged
    assert verdict(mean.rule, math.nan, mean, paper_direction(mean.claim)) == "holds"
    assert ms["dina.relative.table1.DINA-vs-VGG-16-MLP.M1.1"].rule == "not_comparable"
    rows.loc[rows.mouse == "mean", "converged"] = False
    ms = {m.claim: m for m in relation_measurements(rows, "dina.relative.table1.DINA-vs-VGG-16-MLP",
                                                     "twin", "dina/table1")}
    m = ms["dina.relative.table1.DINA-vs-VGG-16-MLP.mean.1"]
    assert verdict(m.rule, math.nan, m, paper_direction(m.claim)) == "no verdict: not converged"
