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


def test_unpaired_difference_ci_covers_the_difference_and_needs_groups():
    from alignlib.metrics.uncertainty import unpaired_difference_ci

    rng = np.random.default_rng(0)
    nat = [rng.binomial(1, 0.4, 100).astype(float) for _ in range(2)]
    ctl = [rng.binomial(1, 0.1, 100).astype(float) for _ in range(2)]
    d, lo, hi = unpaired_difference_ci(nat, ctl)
    assert d == pytest.approx(np.mean([g.mean() for g in nat]) - np.mean([g.mean() for g in ctl]))
    assert 0 < lo <= d <= hi                                  # 0.4 vs 0.1 with 200 items a side: clearly apart
    d0, lo0, hi0 = unpaired_difference_ci(nat, nat)
    assert d0 == 0 and lo0 < 0 < hi0                           # the same groups: an interval around zero
    assert unpaired_difference_ci([np.ones(5)], [np.ones(7)]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        unpaired_difference_ci([], ctl)


def test_stimulus_rows_natural_vs_collapsed_controls_and_verdicts():
    from alignlib.claims import verdict
    from alignlib.claims.ledger import paper_direction, published_value
    from alignlib.experiments.dina.relations import stimulus_measurements, stimulus_rows

    rng = np.random.default_rng(2)
    n = 40
    z = rng.normal(size=(n, 8))
    good = lambda: [fake_run(z + 0.1 * rng.normal(size=z.shape), z, np.arange(n))]      # noqa: E731
    sets = {"natural": {m: good() for m in ("M1", "M2")},
            "whitened": {m: [fake_run(np.ones((n, 8)), z, np.arange(n))] for m in ("W1", "W2")},
            "8D": {m: good() for m in ("D1", "D2")}}
    rows = stimulus_rows(sets, ks=(1, 5, 40))
    # natural - whitened and 8D - whitened; natural - 8D is not a claim of the paper; k = 40 of 40: left out
    assert set(zip(rows.a, rows.b)) == {("natural", "whitened"), ("8D", "whitened")}
    assert set(rows.k) == {1, 5} and rows.converged.all()
    assert (rows.ci_low > 50).all()                         # near-perfect retrieval vs chance, in points
    meas = stimulus_measurements(rows, "toy", "dina/interpret_stimuli")
    assert {m.claim for m in meas} == {f"dina.relative.stimulus_control.{a}-vs-whitened.{k}"
                                       for a in ("natural", "8D") for k in (1, 5)}
    for m in meas:
        assert "unpaired" in m.our_data and m.rule == "paired_difference"
        assert verdict(m.rule, published_value(m.claim), m, paper_direction(m.claim)) == "holds"
    # one control run that did not converge: no verdict
    sets["whitened"]["W2"] = [fake_run(np.ones((n, 8)), z, np.arange(n), converged=False)]
    m = stimulus_measurements(stimulus_rows(sets, ks=(1,)), "toy", "p")[0]
    assert verdict(m.rule, published_value(m.claim), m, paper_direction(m.claim)) == "no verdict: not converged"


def test_unpaired_difference_ci_counts_the_spread_between_mice():
    """Two mice per side that disagree widely: the hierarchical interval is wider than one that only
    resamples items within the mice would be."""
    from alignlib.metrics.uncertainty import unpaired_difference_ci

    rng = np.random.default_rng(3)
    a = [rng.binomial(1, p, 200).astype(float) for p in (0.1, 0.7)]
    b = [rng.binomial(1, p, 200).astype(float) for p in (0.3, 0.4)]
    d, lo, hi = unpaired_difference_ci(a, b)
    assert lo < d < hi and hi - lo > 0.3                      # the mice's spread (0.1 vs 0.7) dominates


def test_conjunction_holds_only_when_every_part_holds():
    """The ledger's `conjunction` rule (dina.ordering): the page registers the smallest margin over the pairs
    and k; one inconclusive pair makes the whole ordering inconclusive, one reversed pair reverses it."""
    from alignlib.claims import verdict
    from alignlib.experiments.dina.relations import conjunction_measurement as ordering_measurement

    rng = np.random.default_rng(2)
    n = 40
    z = rng.normal(size=(n, 8))
    good = [fake_run(z + 0.1 * rng.normal(size=z.shape), z, np.arange(n)) for _ in range(2)]
    bad = [fake_run(rng.normal(size=z.shape), z, np.arange(n)) for _ in range(2)]
    mice = ("M1", "M2")
    vs_bad = paired_rows({m: good for m in mice}, {m: bad for m in mice}, ks=(1, 5))
    vs_same = paired_rows({m: good for m in mice}, {m: good for m in mice}, ks=(1, 5))
    vs_better = paired_rows({m: bad for m in mice}, {m: good for m in mice}, ks=(1, 5))
    judge = lambda pairs: verdict("conjunction", math.nan,
                                  ordering_measurement(pairs, "dina.ordering", "t", "p"), ">")
    assert judge({"A - B": vs_bad, "A - C": vs_bad}) == "holds"
    assert judge({"A - B": vs_bad, "A - C": vs_same}) == "inconclusive"       # a tie is no ordering
    assert judge({"A - B": vs_bad, "A - C": vs_better}) == "reversed"
    m = ordering_measurement({"A - B": vs_bad, "A - C": vs_same}, "dina.ordering", "t", "p")
    assert m.value == 0 and "A - C" in m.note
    per_mouse = ordering_measurement({"A - B": vs_bad}, "dina.ordering", "t", "p", per_mouse=True)
    assert "M1" in per_mouse.our_data and per_mouse.converged
    with pytest.raises(ValueError, match="side"):             # the smallest part only answers ">"
        verdict("conjunction", math.nan, m, "<")


def test_map_organisation_counts_image_dependent_structure_only():
    """A model whose maps are one smooth pattern plus noise (the pattern ignores the image) scores as
    noise; a model whose smooth maps change with the image scores high; collapsed maps score 0."""
    from scipy.ndimage import gaussian_filter

    from alignlib.experiments.dina.relations import map_organisation_rows

    rng = np.random.default_rng(3)
    n, shape = 30, (16, 64)
    smooth = gaussian_filter(rng.normal(size=(n, *shape)), (0, 2, 2)).reshape(n, -1)
    fixed = np.tile(gaussian_filter(rng.normal(size=shape), 3).ravel(), (n, 1))
    noisy = 10 * fixed + rng.normal(size=(n, shape[0] * shape[1]))
    run = lambda z: fake_run(z, z, np.arange(n))
    rows = map_organisation_rows({"M1": [run(smooth)], "M2": [run(smooth)]},
                                 {"M1": [run(noisy)], "M2": [run(noisy)]})
    mean = rows[rows.mouse == "mean"].set_index("part")
    assert (mean.ci_low > 0.5).all() and (mean.b.abs() < 0.1).all()
    collapsed = map_organisation_rows({"M1": [run(np.ones((n, 1024)))]}, {"M1": [run(np.ones((n, 1024)))]})
    assert (collapsed.difference == 0).all() and (collapsed.a == 0).all()
    with pytest.raises(ValueError, match="other images"):
        map_organisation_rows({"M1": [run(smooth)]}, {"M1": [fake_run(smooth, smooth, np.arange(n) + 1)]})


def test_matched_margin_and_neighbour_correlation_score_collapsed_models_at_zero():
    from scipy.ndimage import gaussian_filter

    from alignlib.interpret.spectra import neighbour_correlation
    from alignlib.metrics.retrieval import matched_margin

    assert np.allclose(matched_margin(np.ones((5, 5))), 0)                # collapsed: no matched advantage
    assert np.allclose(matched_margin(np.eye(5)), 1)
    with pytest.raises(ValueError):
        matched_margin(np.ones((1, 1)))
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(20, 16, 64))
    assert abs(neighbour_correlation(noise).mean()) < 0.05                # noise-like maps: about 0
    assert neighbour_correlation(gaussian_filter(noise, (0, 2, 2))).min() > 0.8   # smooth maps: near 1
    assert np.array_equal(neighbour_correlation(np.full((3, 16, 64), 7.0)), np.zeros(3))   # constant: 0
    with pytest.raises(ValueError, match="shape"):
        neighbour_correlation(np.ones((16, 64)))


def test_nested_bootstrap_counts_shared_items_and_replicate_spread():
    """nested_bootstrap_ci: the mean is the grand mean; an item effect shared by every group (the same
    test images seen by every mouse) and a spread between replicates (tower seeds) both widen the interval
    beyond what independent within-group resampling of replicate-averaged items gives; NaN is refused."""
    from alignlib.metrics.uncertainty import nested_bootstrap_ci, paired_difference_ci

    rng = np.random.default_rng(0)
    n_g, n_r, n_i = 4, 3, 100
    item = rng.normal(0, 1.0, n_i)                       # shared by every group and replicate
    rep = rng.normal(0, 0.5, (n_g, n_r, 1))              # each tower seed's own offset
    v = -0.2 + item[None, None, :] + rep + rng.normal(0, 0.2, (n_g, n_r, n_i))
    mean, lo, hi = nested_bootstrap_ci(v, seed=1)
    assert mean == pytest.approx(v.mean()) and lo < mean < hi
    flat_mean, flat_lo, flat_hi = paired_difference_ci(list(v.mean(axis=1)), [np.zeros(n_i)] * n_g)
    assert flat_mean == pytest.approx(mean)
    assert (hi - lo) > 1.5 * (flat_hi - flat_lo)         # the flat interval treats mice as independent
    # no spread at all: a point interval; NaN refused; wrong shape refused
    assert nested_bootstrap_ci(np.full((2, 2, 5), 0.3))[1:] == pytest.approx((0.3, 0.3))
    with pytest.raises(ValueError, match="NaN"):
        nested_bootstrap_ci(np.full((2, 2, 5), np.nan))
    with pytest.raises(ValueError, match="groups, replicates, items"):
        nested_bootstrap_ci(np.zeros((2, 5)))


def test_seed_resampled_difference_widens_with_seed_spread_and_is_zero_for_a_model_against_itself():
    """seed_resampled_difference_ci: the point estimate is the difference of the seed-and-item means;
    a model against itself gives exactly 0 with a point interval only when its seeds agree, and a
    between-seed spread widens the interval beyond the seed-averaged item bootstrap's."""
    from alignlib.metrics.uncertainty import seed_resampled_difference_ci

    rng = np.random.default_rng(0)
    items = rng.normal(0, 1, 200)
    same = [np.tile(items, (3, 1))]
    assert seed_resampled_difference_ci(same, same) == (0.0, 0.0, 0.0)
    a = [items + np.array([[-1.0], [0.0], [1.0]]) + 0.5]          # three seeds far apart
    b = [np.tile(items, (3, 1))]
    d, lo, hi = seed_resampled_difference_ci(a, b, seed=1)
    assert d == pytest.approx(0.5) and lo < 0.5 < hi
    d0, lo0, hi0 = paired_difference_ci(a[0].mean(axis=0), b[0].mean(axis=0))
    assert d0 == pytest.approx(d) and (hi - lo) > 3 * (hi0 - lo0)
    with pytest.raises(ValueError, match="same items"):
        seed_resampled_difference_ci([np.zeros((2, 5))], [np.zeros((2, 4))])
