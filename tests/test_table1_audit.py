"""Issue 18 section 6 on Table 1: one interval rule for the mean over mice (and seeds), and the overlap
of the Gabor-energy reference with the twin's own tuning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alignlib.data.twin import TwinConfig
from alignlib.experiments.dina.linear import gabor_tuning_overlap
from alignlib.experiments.dina.table1 import HITS, LONG_COLUMNS, linear_rows, summarise
from alignlib.metrics.retrieval import retrieval_rows
from alignlib.metrics.uncertainty import bootstrap_ci_mean_of_means


def _similarity(n: int, signal: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) + signal * np.eye(n)


def _rows(mouse: str, seed: int, sim: np.ndarray) -> pd.DataFrame:
    rows = retrieval_rows(
        sim,
        ks=(1,),
        seed=seed,
        keep_hits=True,
        group="g",
        mouse=mouse,
        model="m",
        variant="v",
        selection="s",
        seed_=seed,
        epoch=1,
        run="r",
        n_train=10,
        n_neurons=5,
    )
    return (
        pd.DataFrame(rows).rename(columns={"seed_": "seed"}).reindex(columns=LONG_COLUMNS + [HITS])
    )


def test_one_seed_several_mice_is_the_bootstrap_of_the_mean_not_the_mean_of_bounds():
    """The D1/D2 case: one mouse near 50 %, one near chance. The interval of their mean is narrower than
    the average of their own intervals (errors of independent mice partly cancel)."""
    df = pd.concat(
        [_rows("D1", 0, _similarity(100, 2.5, 1)), _rows("D2", 0, _similarity(100, 0.5, 2))],
        ignore_index=True,
    )
    row = summarise(df).iloc[0]
    expected = bootstrap_ci_mean_of_means([h for h in df[HITS]], seed=0)
    assert (row.ci_low, row.ci_high) == pytest.approx(expected)
    assert row.accuracy == pytest.approx(df.accuracy.mean())
    mean_of_bounds = df.ci_high.mean() - df.ci_low.mean()
    assert row.ci_high - row.ci_low < 0.85 * mean_of_bounds, "not the average of the mice's bounds"
    assert row.n_mice == 2 and row.n_seeds == 1 and "mean of means" in row.ci


def test_several_seeds_average_each_test_image_over_seeds_first():
    sims = {
        (m, s): _similarity(80, 1.5 + 0.5 * k, 10 * k + s)
        for k, m in enumerate(["M1", "M2"])
        for s in (0, 1, 2)
    }
    df = pd.concat([_rows(m, s, sim) for (m, s), sim in sims.items()], ignore_index=True)
    row = summarise(df).iloc[0]
    per_mouse = [np.mean([h for h in df[df.mouse == m][HITS]], axis=0) for m in ("M1", "M2")]
    assert (row.ci_low, row.ci_high) == pytest.approx(bootstrap_ci_mean_of_means(per_mouse, seed=0))
    assert row.accuracy == pytest.approx(np.mean([h.mean() for h in per_mouse]))
    assert row.n_seeds == 3 and "averaged over 3 seeds" in row.ci


def test_summarise_refuses_rows_without_paired_hits():
    df = pd.concat(
        [_rows("M1", 0, _similarity(50, 1.0, 0)), _rows("M1", 1, _similarity(40, 1.0, 1))],
        ignore_index=True,
    )
    with pytest.raises(ValueError, match="different lengths"):
        summarise(df)
    with pytest.raises(ValueError, match="per-query hits"):
        summarise(df[LONG_COLUMNS])


def test_linear_rows_carry_the_hits_summarise_needs(tiny_mouse):
    rows, _ = linear_rows(tiny_mouse, ["ridge"], ["pixels"], ks=(1, 5))
    assert all(len(h) == n for h, n in zip(rows[HITS], rows.n_test))
    np.testing.assert_allclose([np.mean(h) for h in rows[HITS]], rows.accuracy)
    table = summarise(rows)
    assert list(table.k) == [1, 5] and (table.ci_low <= table.accuracy).all()


def test_gabor_bank_overlaps_the_twins_tuning_range():
    cfg = TwinConfig.quick()
    o = gabor_tuning_overlap(cfg)
    assert o["bank_cpd"] == pytest.approx((0.025, 0.1))  # 0.05-0.2 cycles/px at 2 deg/px
    assert o["twin_cpd"] == pytest.approx((1 / 50, 1 / 10))  # wavelengths 10-50 deg
    assert o["overlap_cpd"] == pytest.approx((0.025, 0.1))
    # log-uniform preferred frequencies: the share of the twin's cells whose preference lies in the bank
    assert o["twin_cells_in_bank_range"] == pytest.approx(np.log(4) / np.log(5))
    assert o["energy_model_fraction"] == cfg.complex_fraction == 0.5
    moved = gabor_tuning_overlap(
        TwinConfig.quick(wavelength_range=(100.0, 200.0), complex_fraction=0.2)
    )
    assert moved["twin_cells_in_bank_range"] == 0 and moved["overlap_cpd"] is None
    assert moved["energy_model_fraction"] == 0.2
