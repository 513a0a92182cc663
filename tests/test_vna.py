"""VNA chapter: encoder shapes, the contrastive loss against a direct formula, discriminative AUC against
scikit-learn (and chance for a collapsed model), the protocol on a tiny problem, and the signal checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from alignlib.losses.info_nce import info_nce
from alignlib.metrics.discrimination import discrimination_scores, mean_roc_curve, query_aucs, rank_aucs
from alignlib.models.vna import (DirectDecoding, DirectEncoding, SpikeEncoder, VisualEncoder, VNA, build_vna_model)


@pytest.mark.parametrize("side,flat", [(64, 1024), (32, 256)])
def test_visual_encoder_shapes(side, flat):
    enc = VisualEncoder(out_dim=24, side=side)
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in enc.features) == 5
    assert enc.flat_dim == flat                       # 1024 at 64 x 64: the paper's flattened vector
    assert enc(torch.randn(3, 68, 270)).shape == (3, 24)   # non-square input is resized to side x side
    with pytest.raises(ValueError, match="divisible"):
        VisualEncoder(8, side=48)


def test_spike_encoder_and_baselines_shapes():
    enc = SpikeEncoder(40, 16)
    assert [type(m).__name__ for m in enc.net] == ["Linear", "BatchNorm1d", "LeakyReLU", "Linear"]
    assert enc.net[0].out_features == 512 and enc(torch.randn(5, 40)).shape == (5, 16)
    with pytest.raises(ValueError, match="responses must be"):
        enc(torch.randn(5, 41))
    x, r = torch.randn(6, 1, 32, 32), torch.randn(6, 40)
    de, dd, vna = DirectEncoding(40, side=32), DirectDecoding(40, side=32), VNA(40, latent_dim=16, side=32)
    assert de(x).shape == (6, 40) and dd(r).shape == (6, 1, 32, 32)
    zi, zn = vna(x, r)
    assert zi.shape == zn.shape == (6, 16)
    assert torch.allclose(zi.norm(dim=1), torch.ones(6)) and torch.allclose(zn.norm(dim=1), torch.ones(6))
    for m in (de, dd, vna):
        m.eval()
        assert m.score_matrix(x, r).shape == (6, 6)
    with pytest.raises(ValueError, match="unknown VNA method"):
        build_vna_model("clip", 40)


def test_direct_scores_are_negative_distances():
    de = DirectEncoding(5, side=32).eval()
    x, r = torch.randn(4, 1, 32, 32), torch.randn(4, 5)
    with torch.no_grad():
        pred = de(x)
    s = de.score_matrix(x, r)
    assert torch.allclose(s[1, 2], -(pred[1] - r[2]).norm().double(), atol=1e-6)


def test_contrastive_loss_matches_direct_formula():
    """Eq. 1 (CLIP-style): mean of the two cross-entropies of cosine similarities / tau, written out."""
    g = torch.Generator().manual_seed(0)
    a, b, tau = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g), 0.07
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    s = (an @ bn.T).tolist()
    total = 0.0
    for i in range(5):
        row = [math.exp(s[i][j] / tau) for j in range(5)]
        col = [math.exp(s[j][i] / tau) for j in range(5)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    assert info_nce(a, b, tau).item() == pytest.approx(total / 10, rel=1e-5)


def test_query_auc_matches_sklearn_on_constructed_scores():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(7, 9))
    s[np.arange(7), np.arange(7)] += 1.0
    s[2, 5] = s[2, 2]                                   # one tie with the true match
    ours = query_aucs(s)
    for i in range(7):
        y = np.zeros(9)
        y[i] = 1
        assert ours[i] == pytest.approx(roc_auc_score(y, s[i]))
    np.testing.assert_allclose(rank_aucs(s), ours)
    perfect = np.eye(6) + 0.01 * rng.normal(size=(6, 6)) * (1 - np.eye(6))
    assert np.all(query_aucs(perfect) == 1.0)
    assert np.all(query_aucs(-perfect) == 0.0)


def test_collapsed_model_scores_chance():
    d = discrimination_scores(np.full((10, 10), 0.3))
    for task in ("encoding", "decoding"):
        assert d[task]["auc"].mean() == 0.5
        assert d[task]["top1"].mean() == pytest.approx(0.1)
        assert d[task]["top5"].mean() == pytest.approx(0.5)
    fpr, tpr = mean_roc_curve(np.full((10, 10), 0.3))
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.5, abs=1e-3)


def test_tasks_read_rows_and_columns():
    s = np.array([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    d = discrimination_scores(s)
    np.testing.assert_allclose(d["encoding"]["auc"], [1.0, 0.5, 0.5])    # rows: image queries
    np.testing.assert_allclose(d["decoding"]["auc"], [1.0, 0.0, 1.0])    # columns: response queries
    s[0, 1] = 9.0                                    # beats image 0's true response in its row only
    assert discrimination_scores(s)["encoding"]["auc"][0] == 0.5
    assert discrimination_scores(s)["decoding"]["auc"][0] == 1.0
    with pytest.raises(ValueError, match="pair n images"):
        discrimination_scores(np.zeros((3, 4)))


def test_mean_roc_area_equals_mean_auc():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(12, 12)) + 2 * np.eye(12)
    fpr, tpr = mean_roc_curve(s, np.linspace(0, 1, 2001))
    assert np.trapezoid(tpr, fpr) == pytest.approx(query_aucs(s).mean(), abs=5e-3)


def _toy(n=60, n_neurons=12, side=32, seed=0, n_factors=6):
    """Images are mixtures of a few fixed patterns; responses a linear map of the mixing weights plus
    noise: learnable by linear and deep models from a few dozen pairs."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, n_factors, generator=g)
    patterns = torch.randn(n_factors, side * side, generator=g)
    images = (128 + 30 * (z @ patterns) / n_factors ** 0.5 + 5 * torch.randn(n, side * side, generator=g))
    responses = z @ torch.randn(n_factors, n_neurons, generator=g) + 0.1 * torch.randn(n, n_neurons, generator=g)
    return images.clamp(0, 255).view(n, side, side).numpy(), responses.numpy()


def test_protocol_learns_a_learnable_toy_and_summarizes(tmp_path, monkeypatch):
    from alignlib.experiments.vna import settings, workflow as wf

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))

    images, responses = _toy()
    pset = wf.prepare_set("toy", images, responses, 32)
    cfg = settings.resolve("smoke", epochs=15, patience=15, seeds=[0, 1], latent_dim=16)
    split = {"train": np.arange(0, 40), "val": np.arange(40, 48), "test": np.arange(48, 60)}
    rows, kept, null = wf.evaluate_split(pset, split, ["vna", "direct_encoding", "ridge"], cfg["seeds"], cfg,
                                         protocol="toy", keep_scores=True, n_permutations=200)
    import pandas as pd

    table = wf.summarize(pd.DataFrame(rows), n_resamples=200, null=null)
    assert table.p_pairing.notna().all() and (table.null_sd > 0).all()
    assert table[table.method == "ridge"].p_pairing.max() < 0.05         # a linear toy: the null rejects
    assert np.isfinite(pd.DataFrame(rows).query("method == 'ridge'").ridge_alpha).all()
    assert set(table.task) == {"encoding", "decoding", "average"}
    ridge = table[(table.method == "ridge") & (table.task == "average")].iloc[0]
    assert ridge.auc > 0.8 and ridge.n_seeds == 1          # a linear toy: the linear reference must see it
    vna = table[(table.method == "vna") & (table.task == "average")].iloc[0]
    assert vna.n_seeds == 2 and vna.n_queries == 12 and vna.auc > 0.6
    assert ("vna", 1) in kept and kept[("vna", 1)].shape == (12, 12)
    assert (table.ci_low <= table.auc).all() and (table.auc <= table.ci_high).all()
    # convergence is recorded per fit: 15 epochs with patience 15 can never stop early (not converged);
    # ridge is closed form (converged); the summary row says converged only when every fit did
    per = pd.DataFrame(rows)
    assert not per[per.method == "vna"].converged.any() and per[per.method == "ridge"].converged.all()
    assert (per[per.method == "vna"].epochs_run == 15).all()
    assert not table[table.method == "vna"].converged.any() and table[table.method == "ridge"].converged.all()
    diff = wf.paired_differences(per, "vna", "ridge", n_resamples=200)
    assert len(diff) == 3 and not diff.converged.any()                 # a not-converged fit: no verdict


def test_a_trained_fit_is_a_run_read_back_by_its_content(tmp_path, monkeypatch):
    import json

    from alignlib.experiments.vna import settings, workflow as wf
    from alignlib.training import prepare_pairs

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    images, responses = _toy()
    pset = wf.prepare_set("toy set", images, responses, 32)
    split = {"train": np.arange(0, 40), "val": np.arange(40, 48), "test": np.arange(48, 60)}
    data, _, _ = prepare_pairs(pset.images, pset.responses, split, standardize=False)
    cfg = settings.resolve("smoke", epochs=6, patience=2, latent_dim=16)
    s1, info1 = wf.scored_fit("vna", data, pset.n_neurons, cfg, 32, 0, pset.name, device="cpu")
    spec = wf.fit_spec("vna", data, pset.n_neurons, cfg, 32, 0, pset.name)
    run = json.loads((spec.directory() / "run.json").read_text())
    assert spec.directory().name.startswith("toy-set-vna-s0-") and s1.shape == (12, 12)
    assert info1["converged"] == run["converged"] and info1["epochs_run"] == run["epochs_run"] <= 6
    # read back, not retrained: the run's files are not rewritten
    mtime = (spec.directory() / "run.json").stat().st_mtime_ns
    s2, info2 = wf.scored_fit("vna", data, pset.n_neurons, cfg, 32, 0, pset.name, device="cpu")
    assert np.array_equal(s1, s2) and info1 == info2
    assert (spec.directory() / "run.json").stat().st_mtime_ns == mtime
    # other data (one response changed), another seed or another setting: another run
    other = {k: {kk: vv.clone() for kk, vv in v.items()} for k, v in data.items()}
    other["test"]["responses"][0, 0] += 1.0
    keys = {spec.key, wf.fit_spec("vna", other, pset.n_neurons, cfg, 32, 0, pset.name).key,
            wf.fit_spec("vna", data, pset.n_neurons, cfg, 32, 1, pset.name).key,
            wf.fit_spec("vna", data, pset.n_neurons, {**cfg, "lr": 5e-4}, 32, 0, pset.name).key}
    assert len(keys) == 4
    with pytest.raises(ValueError, match="closed-form"):
        wf.fit_spec("ridge", data, pset.n_neurons, cfg, 32, 0, pset.name)


def test_pairing_null_perfect_model_rejects_and_random_model_does_not():
    import pandas as pd

    from alignlib.experiments.vna import workflow as wf
    from alignlib.metrics.discrimination import pairing_null, rank_aucs

    n = 20
    perfect = np.eye(n) + 0.01 * np.random.default_rng(0).standard_normal((n, n))
    null = pairing_null([perfect, perfect], n_permutations=300, seed=0)
    assert set(null) == {"encoding", "decoding", "average"} and null["encoding"].shape == (300,)
    assert abs(null["average"].mean() / n - 0.5) < 0.05                  # shuffled pairings score chance
    obs = rank_aucs(perfect).sum()
    assert (null["encoding"] >= obs).mean() == 0                          # perfect model: p ~ 0

    # random models: the p-value of the row is roughly uniform over many draws; a collapsed model gets p = 1
    ps = []
    for r in range(60):
        s = np.random.default_rng(100 + r).standard_normal((n, n))
        rows = pd.DataFrame(wf.query_rows(s, np.arange(n), dataset="d", protocol="p", fold=0, method="m", seed=0))
        nl = wf.pairing_null_rows([s], 200, seed=r, dataset="d", protocol="p", fold=0, method="m")
        ps.append(wf.summarize(rows, n_resamples=50, null=nl).set_index("task").p_pairing["average"])
    ps = np.array(ps)
    assert 0.3 < ps.mean() < 0.7 and (ps < 0.05).mean() < 0.2
    flat = np.zeros((n, n))
    rows = pd.DataFrame(wf.query_rows(flat, np.arange(n), dataset="d", protocol="p", fold=0, method="m", seed=0))
    nl = wf.pairing_null_rows([flat], 100, dataset="d", protocol="p", fold=0, method="m")
    t = wf.summarize(rows, n_resamples=50, null=nl)
    assert (t.p_pairing == 1).all() and (t.auc == 0.5).all()


def test_signal_checks_separate_signal_from_shuffled_pairs():
    from alignlib.experiments.vna import signal as sig

    images, responses = _toy(n=80, n_neurons=20, side=16, seed=2)
    feats = sig.coarse_features(images)
    assert feats.shape == (80, 32)
    obs, null, p = sig.rsa_permutation_test(feats, responses, n_permutations=99, seed=0)
    assert null.shape == (99,) and p == pytest.approx((1 + np.sum(null >= obs)) / 100)
    shuffled = responses[np.random.default_rng(0).permutation(80)]
    assert sig.rsa(feats, responses) > sig.rsa(feats, shuffled) + 0.02
    lin = sig.linear_cv_aucs(images, responses, ("ridge_encoding",), k=4)["ridge_encoding"]
    lin0 = sig.linear_cv_aucs(images, shuffled, ("ridge_encoding",), k=4)["ridge_encoding"]
    assert lin["decoding"].mean() > 0.8 and abs(lin0["decoding"].mean() - 0.5) < 0.15
    # index autocorrelation: a smooth series is caught, independent rows are not
    smooth = np.cumsum(np.random.default_rng(3).normal(size=(80, 10)), axis=0)
    curve, null_curves = sig.index_autocorrelation(smooth, [1, 2], n_permutations=50)
    assert curve[0] > np.quantile(null_curves[:, 0], 0.99)
    ev, ev_null = sig.shared_structure_test(responses, n_permutations=20)
    assert ev[0] >= ev[-1] and ev_null.shape == (20,)


def test_paired_differences_perfect_vs_collapsed_and_refuses_unpaired_items():
    import pandas as pd

    from alignlib.experiments.vna import workflow as wf

    n = 30
    rng = np.random.default_rng(0)
    perfect = np.eye(n) + 0.01 * rng.standard_normal((n, n))
    collapsed = np.zeros((n, n))
    rows = []
    for method, s in (("good", perfect), ("flat", collapsed)):
        for seed in (0, 1):
            rows += wf.query_rows(s, np.arange(n), dataset="d", protocol="p", fold=0, method=method, seed=seed,
                                  converged=True)
    per = pd.DataFrame(rows)
    d = wf.paired_differences(per, "good", "flat", n_resamples=300).set_index("task")
    # a perfect model scores AUC 1, a collapsed one chance (0.5): the difference is 0.5 with a tight interval
    assert np.allclose(d.difference, 0.5, atol=1e-6) and (d.ci_low > 0.45).all()
    assert d.converged.all() and (d.n_items == n).all() and (d.n_seeds_a == 2).all()
    same = wf.paired_differences(per, "good", "good", n_resamples=100)
    assert np.allclose(same[["difference", "ci_low", "ci_high"]].to_numpy(), 0)
    # a method tested on other items is not paired: refused
    other = per[per.method == "flat"].assign(item=lambda x: x["item"] + 100)
    bad = pd.concat([per[per.method == "good"], other], ignore_index=True)
    import pytest

    with pytest.raises(ValueError, match="not paired"):
        wf.paired_differences(bad, "good", "flat")
