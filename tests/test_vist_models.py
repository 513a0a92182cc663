"""Vi-ST models, prior and training workflow: shapes, causality, AdaLN-Zero identity at init, a training step,
the CPU depthwise-convolution backward, the prior feature cache, and the schedule."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from alignlib.models import prior as P
from alignlib.models import vist as V

N_CELLS, C_IN, T = 5, 6, 20


def tiny_vist(**kw) -> V.ViST:
    torch.manual_seed(0)
    cfg = V.VistConfig(in_channels=C_IN, n_cells=N_CELLS, width=4, c3tcn_layers=2, dropout=0.0, **kw)
    return V.ViST(cfg, rf_masks=np.random.default_rng(0).random((N_CELLS, 16, 16)))


def test_block_shapes():
    x = torch.randn(2, C_IN, T, 16, 16)
    c3 = V.C3TCN(C_IN, 4, N_CELLS, n_layers=3, dropout=0.0)
    h = c3(x)
    assert h.shape == (2, N_CELLS, T, 16, 16)
    ada = V.AdaLNZero3d(N_CELLS, V.rf_condition(np.ones((N_CELLS, 16, 16))))
    assert ada(h).shape == h.shape
    side = 16
    for kernels in V.CMST_KERNELS:
        h = V.CMSTBlock(N_CELLS, kernels, dropout=0.0)(h)
        side -= 2
        assert h.shape == (2, N_CELLS, T, side, side)
    assert side == 8


@pytest.mark.parametrize("ablate", [{}, {"use_c3tcn": False}, {"use_adaln": False}, {"use_cmst": False}])
def test_model_shapes_with_and_without_each_module(ablate):
    model = tiny_vist(**ablate)
    out = model(torch.randn(3, C_IN, T, 16, 16))
    assert out.shape == (3, T, N_CELLS)
    assert (model.readout.in_features == 8 * 8 * N_CELLS) == ablate.get("use_cmst", True)


def test_mstcn_head_shape_and_bad_input():
    head = V.MSTCNHead(V.MstcnConfig(in_channels=C_IN, n_cells=N_CELLS, reduce=2, width=8, n_stages=2, n_layers=3))
    assert head(torch.randn(2, C_IN, T, 16, 16)).shape == (2, T, N_CELLS)
    with pytest.raises(ValueError):
        tiny_vist()(torch.randn(2, C_IN + 1, T, 16, 16))


@pytest.mark.parametrize("name", ["vist", "mstcn"])
def test_causal(name):
    """The prediction at t does not change when inputs after t change."""
    if name == "vist":
        model = tiny_vist()
    else:
        torch.manual_seed(0)
        model = V.MSTCNHead(V.MstcnConfig(in_channels=C_IN, n_cells=N_CELLS, reduce=2, width=8, n_layers=3))
    model.eval()
    x = torch.randn(1, C_IN, T, 16, 16)
    y = x.clone()
    t = 11
    y[:, :, t + 1:] = torch.randn_like(y[:, :, t + 1:])
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-5)
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-5)


def test_adaln_zero_is_identity_at_init_and_not_after_a_change():
    cond = V.rf_condition(np.random.default_rng(1).random((N_CELLS, 16, 16)), "per_cell")
    ada = V.AdaLNZero3d(N_CELLS, cond)
    x = torch.randn(2, N_CELLS, 4, 16, 16)
    assert torch.equal(ada(x), x)
    with torch.no_grad():
        ada.modulation.bias.fill_(0.5)
    assert not torch.allclose(ada(x), x)


def test_rf_condition_modes():
    masks = np.zeros((3, 16, 16))
    masks[0, 0, 0] = masks[1, 5, 5] = 1
    s = V.rf_condition(masks, "sum")
    assert torch.equal(s[0], s[2]) and s[0].sum() == 2
    assert V.rf_condition(masks, "per_cell")[2].sum() == 0
    with pytest.raises(ValueError):
        V.rf_condition(masks, "mean")


@pytest.mark.parametrize("dilation", [1, 2])
def test_depthwise_backward_matches_pytorch(dilation):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 7, 7, requires_grad=True)
    w = torch.randn(3, 1, 3, 3, 3, requires_grad=True)
    ref = F.conv3d(x, w, groups=3, dilation=(dilation, 1, 1))
    go = torch.randn_like(ref)
    gx, gw = torch.autograd.grad(ref, (x, w), go)
    out = V._DepthwiseConv3d.apply(x, w, dilation)
    fx, fw = torch.autograd.grad(out, (x, w), go)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(fx, gx, atol=1e-4) and torch.allclose(fw, gw, atol=1e-4)


def test_one_training_step_reduces_the_loss():
    from alignlib.losses.softdtw import vist_loss

    model = tiny_vist()
    x = torch.randn(2, C_IN, 24, 16, 16)
    y = torch.rand(2, 24, N_CELLS)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    before = vist_loss(model(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():   # train mode (batch statistics), dropout 0: the same function as the step's
        assert float(vist_loss(model(x), y)) < float(before)


def test_prior_features_cache_round_trip(tmp_path, monkeypatch):
    frames = np.random.default_rng(0).random((3, 30, 30)).astype(np.float32)
    spec = P.PriorSpec("random-dinov2", layer=1, config="tiny")
    feats = P.prior_features(frames, spec, root=tmp_path)
    assert feats.shape == (3, 16, 16, P.RANDOM_CONFIGS["tiny"]["hidden_size"])
    path = P.cache_path(frames, spec, tmp_path)
    assert path.exists() and "RANDOMLY INITIALISED" in path.with_suffix(".json").read_text()
    monkeypatch.setattr(P, "extract_features", lambda *a, **k: pytest.fail("cache not used"))
    again = P.prior_features(frames, spec, root=tmp_path)
    assert np.allclose(again, feats, atol=1e-2)
    assert P.cache_path(frames, P.PriorSpec("random-dinov2", layer=0, config="tiny"), tmp_path) != path
    assert P.cache_path(frames + 0.001, spec, tmp_path) != path


def test_prior_layers_and_labels():
    frames = np.random.default_rng(0).random((2, 20, 20)).astype(np.float32)
    l0 = P.extract_features(frames, P.PriorSpec(layer=0, config="tiny"))
    l2 = P.extract_features(frames, P.PriorSpec(layer=2, config="tiny"))
    assert l0.shape == l2.shape and not np.allclose(l0, l2)
    with pytest.raises(ValueError, match="layers 0..2"):
        P.extract_features(frames, P.PriorSpec(layer=3, config="tiny"))
    lum = P.extract_features(frames, P.PriorSpec("luminance"))
    assert lum.shape == (2, 16, 16, 1) and np.isclose(lum.mean(), frames.mean(), atol=0.02)
    assert "RANDOMLY INITIALISED" in P.PriorSpec().label
    with pytest.raises(ValueError, match="needs `weights`"):
        P.PriorSpec("dinov2")
    with pytest.raises(ValueError):
        P.preprocess_frames(frames * 2)


def test_schedule_warms_up_then_decays_to_min_lr():
    from alignlib.experiments.vist.workflow import lr_at

    lrs = [lr_at(s, 100, 10, 1e-3, 1e-4) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)
    assert math.isclose(lr_at(55, 100, 10, 1e-3, 1e-4), 5.5e-4, rel_tol=1e-6)


def test_binning():
    from alignlib.experiments.vist.workflow import bin_counts, bin_frames

    counts = np.arange(2 * 7 * 3).reshape(2, 7, 3)
    b = bin_counts(counts, 3)
    assert b.shape == (2, 2, 3) and b[0, 0, 0] == counts[0, :3, 0].sum()
    f = bin_frames(np.arange(7 * 4, dtype=float).reshape(7, 2, 2), 3)
    assert f.shape == (2, 2, 2) and f[1, 0, 0] == np.mean([12, 16, 20])


def _synthetic_movie(n_bins=120, n_cells=4, seed=0):
    from alignlib.experiments.vist.workflow import MovieData

    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n_bins, 16, 16, 3)).astype(np.float32)
    drive = np.maximum(feats[:, 4:8, 4:8, 0].mean(axis=(1, 2)), 0)
    counts = rng.poisson(np.repeat(drive[None, :, None], n_cells, 2) + 0.1, (10, n_bins, n_cells)).astype(np.float32)
    return MovieData("Synthetic", "ExpX", 1, 30.0, rng.random((n_bins, 20, 20)).astype(np.float32), feats,
                     counts.mean(0), counts, rng.random((n_cells, 16, 16)).astype(np.float32), P.PriorSpec("luminance"))


def test_run_is_trained_once_then_loaded(tmp_path, monkeypatch):
    from alignlib.experiments.vist import settings as S
    from alignlib.experiments.vist import workflow as W

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    movie = _synthetic_movie()
    cfg = S.resolve("smoke")
    spec = W.run_spec(movie, cfg, "vist", seed=0, segment="train")
    preds, trained, directory = W.get_run(spec, movie, {movie.name: movie}, device="cpu")
    assert trained and preds[movie.name].shape == (movie.n_bins, movie.n_cells)
    assert (directory / "run.json").exists() and (directory / "model.pt").exists()
    again, trained2, _ = W.get_run(spec, movie, {movie.name: movie}, device="cpu")
    assert not trained2 and np.array_equal(again[movie.name], preds[movie.name])
    assert W.run_spec(movie, {**cfg, "loss": "rmse"}, "vist").key != spec.key
    assert "top2" in W.run_spec(movie, cfg, "vist", cells=[0, 1]).variant
    # leaving the copied block out is another run; off, it keeps the hash runs had before the switch
    assert cfg["exclude_tiled"]
    off = W.run_spec(movie, {**cfg, "exclude_tiled": False}, "vist")
    assert off.key != spec.key and "tiled" not in off.config["data"]


def test_scores_and_summary_on_constructed_predictions():
    from alignlib.experiments.vist import workflow as W

    movie = _synthetic_movie(n_bins=200)
    bins = slice(0, 200)
    perfect = W.score_cells(movie.rates, movie, bins)
    assert np.allclose(perfect.cc, 1) and (perfect.ceiling <= 1).all()
    shifted = W.circular_shift_control(movie.rates, movie, bins)
    assert abs(shifted.cc.mean()) < 0.3
    per_cell = pd.concat([perfect.assign(model="a", seed=0), shifted.assign(model="b", seed=0)])
    table = W.summarise(per_cell, ["model"]).set_index("model")
    assert table.loc["a", "mean_cc"] == pytest.approx(1) and table.loc["b", "mean_abs_cc"] >= table.loc["b", "mean_cc"]
    assert table.loc["b", "ci_low"] <= table.loc["b", "mean_cc"] <= table.loc["b", "ci_high"]


def test_planted_movie_is_driven_by_the_rf_luminance_and_keeps_everything_else():
    from alignlib.experiments.vist import workflow as W
    from alignlib.metrics.neural_prediction import pearson_cc

    movie = _synthetic_movie(n_bins=300)
    rng = np.random.default_rng(3)
    # smooth frames so that a 30 ms bin with a 400 ms kernel sees a learnable signal
    frames = np.cumsum(rng.standard_normal((300, 20, 20)), axis=0).astype(np.float32)
    movie = type(movie)(**{**movie.__dict__, "frames": frames})
    a, b = W.planted_movie(movie, seed=0), W.planted_movie(movie, seed=0)
    assert a.name == "Synthetic-planted0-ownrates" and a.counts.shape == (30, 300, movie.n_cells)
    np.testing.assert_array_equal(a.rates, b.rates)                       # deterministic
    assert a.features is movie.features and a.rf_grid is movie.rf_grid and a.frames is movie.frames
    np.testing.assert_allclose(a.rates, a.counts.mean(0), rtol=1e-6)
    # each planted cell fires at about the mean rate of the recorded cell it replaces
    np.testing.assert_allclose(a.rates.mean(0), movie.rates.mean(0), rtol=0.25)
    # the planted responses follow each cell's RF luminance (a linear readout of lagged luminance predicts them) ...
    from skimage.transform import resize

    w = np.stack([resize(g, (20, 20), order=0, anti_aliasing=False) for g in movie.rf_grid]).reshape(movie.n_cells, -1)
    lum = frames.reshape(300, -1) @ w.T
    lagged = np.stack([np.roll(lum, k, axis=0) for k in range(14)], 2)[20:]
    cc = [np.corrcoef(lagged[:, c] @ np.linalg.lstsq(lagged[:, c], a.rates[20:, c], rcond=None)[0], a.rates[20:, c])[0, 1]
          for c in range(movie.n_cells)]
    assert np.mean(cc) > 0.5
    # ... and another seed plants other cells
    assert np.nanmean(pearson_cc(W.planted_movie(movie, seed=1).rates, a.rates)) < 0.9


def test_validation_split_keeps_a_gap_and_refuses_impossible_fractions():
    from alignlib.experiments.vist.workflow import validation_split

    fit_bins, val_bins = validation_split(slice(0, 100), 0.2, gap=5)
    assert (fit_bins.start, fit_bins.stop, val_bins.start, val_bins.stop) == (0, 75, 80, 100)
    with pytest.raises(ValueError, match="validation fraction"):
        validation_split(slice(0, 10), 0.95, gap=5)
    with pytest.raises(ValueError, match="validation fraction"):
        validation_split(slice(0, 10), 0.0, gap=0)


def test_converged_run_selects_on_validation_cc_and_records_its_convergence(tmp_path, monkeypatch):
    import json

    from alignlib.experiments.vist import settings as S
    from alignlib.experiments.vist import workflow as W
    from alignlib.training.store import run_convergence

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    movie = _synthetic_movie(n_bins=160)
    cfg = S.resolve("smoke", epochs=4, patience=2)
    spec = W.run_spec(movie, cfg, "vist", seed=0, segment="train")
    assert spec.config["fit"]["select"] == "val_cc" and "swa_epochs" not in spec.config["train"]
    preds, trained, directory = W.get_run(spec, movie, {movie.name: movie}, device="cpu")
    assert trained and preds[movie.name].shape == (movie.n_bins, movie.n_cells)
    info = json.loads((directory / "run.json").read_text())
    hist = pd.read_csv(directory / "history.csv")
    assert info["selected"] == "val_cc" and len(hist) == info["epochs_run"] <= 4
    sel = info["selections"]["val_cc"]["epoch"]
    assert hist.val_cc.max() == pytest.approx(hist.set_index("epoch").val_cc[sel])
    # converged exactly when the patience ran out before the cap (the store's rule)
    assert info["converged"] == (info["epochs_run"] - sel >= 2) == run_convergence(directory)["converged"]
    assert not (directory / "fit" / "fit_state.pt").exists()       # no optimiser state kept once complete
    fit_bins, val_bins = (slice(*info["fit_bins"]), slice(*info["val_bins"]))
    test_bins = W.segments(movie.n_bins, cfg)[1]
    assert fit_bins.stop <= val_bins.start and val_bins.stop <= test_bins.start   # no test bin seen


def test_paper_schedule_has_no_convergence_rule(tmp_path, monkeypatch):
    from alignlib.experiments.vist import settings as S
    from alignlib.experiments.vist import workflow as W

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    movie = _synthetic_movie()
    cfg = {**S.resolve("smoke"), "patience": None}      # resolve() ignores None overrides
    spec = W.run_spec(movie, cfg, "vist", seed=0, segment="train")
    assert "fit" not in spec.config and "swa_epochs" in spec.config["train"]
    _, _, directory = W.get_run(spec, movie, {movie.name: movie}, device="cpu")
    assert W.run_convergence_of(directory)["converged"] is None        # unknown: the ledger gives no verdict


def test_openretina_run_through_the_chapter_workflow(tmp_path, monkeypatch):
    from dataclasses import replace

    from alignlib.experiments.vist import settings as S
    from alignlib.experiments.vist import workflow as W
    from alignlib.models import openretina_baseline

    if not openretina_baseline.available():
        pytest.skip("openretina not installed (make installs it)")
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    movie = _synthetic_movie(n_bins=160)
    masks = np.zeros((movie.n_cells, 150, 150), bool)    # RFs spread over 60 pixels: a 30 x 30 crop at factor 3
    for c in range(movie.n_cells):
        masks[c, 40 + 18 * c:48 + 18 * c, 60:68] = True
    movie = replace(movie, frames=np.random.default_rng(1).random((movie.n_bins, 150, 150)).astype(np.float32),
                    rf_masks=masks)
    cfg = S.resolve("smoke", openretina_lags=5)
    spec = W.run_spec(movie, cfg, "openretina", seed=0, segment="train")
    assert "prior" not in spec.config["data"] and spec.config["train"]["lr"] == 0.01
    assert spec.variant.startswith("openretina-Synthetic")
    preds, trained, directory = W.get_run(spec, movie, {movie.name: movie}, device="cpu")
    assert trained and preds[movie.name].shape == (movie.n_bins, movie.n_cells)
    assert np.isfinite(preds[movie.name]).all() and (preds[movie.name] >= 0).all()   # softplus rates
    with pytest.raises(ValueError, match="RF masks"):
        W.get_run(W.run_spec(replace(movie, rf_masks=None), {**cfg, "openretina_lags": 3}, "openretina"),
                  replace(movie, rf_masks=None), {movie.name: movie}, device="cpu")


def test_paired_model_difference_is_paired_by_cell_and_averages_seeds():
    from alignlib.experiments.vist import workflow as W

    rng = np.random.default_rng(0)
    base = rng.normal(0.2, 0.3, 40)                   # cells differ a lot; the paired difference does not
    rows = [pd.DataFrame({"cell": np.arange(40), "cc": base + 0.05 + 0.01 * s, "model": "a", "seed": s,
                          "protocol": "Mov2->Mov2"}) for s in range(3)]
    rows.append(pd.DataFrame({"cell": np.arange(40), "cc": base, "model": "b", "seed": 0, "protocol": "Mov2->Mov2"}))
    d = W.paired_model_difference(pd.concat(rows), "a", "b", protocol="Mov2->Mov2")
    assert d["difference"] == pytest.approx(0.06) and d["ci_low"] == pytest.approx(0.06)
    assert (d["n_cells"], d["n_seeds_a"], d["n_seeds_b"]) == (40, 3, 1)
    with pytest.raises(ValueError, match="no scores"):
        W.paired_model_difference(pd.concat(rows), "a", "c")
