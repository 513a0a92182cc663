"""DINA Table 1 in full: baseline towers, linear references, official-code switches, objectives."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlib.experiments.dina import settings
from alignlib.experiments.dina.linear import LinearReference, gabor_features, pixel_features
from alignlib.experiments.dina.workflow import (build_run_model, objective_for, response_scaler, run_spec,
                                                subset_indices)
from alignlib.metrics.retrieval import similarity_matrix, topk_accuracy
from alignlib.models.baselines import VGG16_CONFIG_D, VGG16Tower, build_baseline
from alignlib.models.dina import build_dina

IMAGES = torch.randn(4, 68, 270)


def _one_step(model, objective, batch):
    opts = objective.make_optimizers(model)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    loss = objective.loss(model, batch)
    assert torch.isfinite(loss)
    loss.backward()
    for o in opts:
        o.step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "one step changed no parameter"


@pytest.mark.parametrize("name", ["vgg16-mlp", "vit-mlp"])
def test_baseline_shapes_and_one_training_step(name):
    torch.manual_seed(0)
    model = build_baseline(name, 30, "quick")
    r = torch.randn(4, 30)
    assert model.image_maps(IMAGES).shape == (4, 16, 64)
    assert model.response_maps(r).shape == (4, 16, 64)
    z_img, z_neu = model(IMAGES, r)
    assert z_img.shape == z_neu.shape == (4, 1024)
    torch.testing.assert_close(z_img.norm(dim=1), torch.ones(4))
    cfg = settings.resolve("smoke", model=name)
    _one_step(model, objective_for(cfg), {"images": IMAGES, "responses": r})


def test_vgg16_state_dict_names_match_torchvision_configuration_d(tmp_path):
    tower = VGG16Tower()
    convs = [k for k in tower.features.state_dict() if k.endswith(".weight")]
    # torchvision's vgg16().features: conv at indices 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28
    assert [int(k.split(".")[0]) for k in convs] == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert len(convs) == sum(1 for v in VGG16_CONFIG_D if v != "M") == 13
    assert tower.features.state_dict()["28.weight"].shape == (512, 512, 3, 3)
    # a torchvision-style checkpoint (with "features." prefix and a classifier) loads
    state = {f"features.{k}": torch.full_like(v, 0.5) for k, v in tower.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "vgg16.pth")
    loaded = VGG16Tower(weights=tmp_path / "vgg16.pth")
    assert torch.all(loaded.features[28].weight == 0.5) and loaded.pretrained
    with pytest.raises(ValueError, match="width_divisor=1"):
        VGG16Tower(width_divisor=8, weights=tmp_path / "vgg16.pth")


@pytest.mark.parametrize("switch", ["frozen_backbone", "minmax_maps", "mlp_activation"])
def test_dina_official_switches(switch):
    torch.manual_seed(0)
    value = switch != "mlp_activation"
    m = build_dina(30, "quick", stem_stride=4, **{switch: value})
    r = torch.randn(4, 30)
    maps = m.image_maps(IMAGES)
    assert maps.shape == (4, 16, 64)
    if switch == "frozen_backbone":
        trainable = [n for n, p in m.image_tower.named_parameters() if p.requires_grad]
        assert trainable == ["head.weight", "head.bias"]
        assert m.image_tower.head.weight.shape == (1, 16, 1, 1)
    if switch == "minmax_maps":
        flat = maps.flatten(1)
        torch.testing.assert_close(flat.amin(1), torch.zeros(4))
        torch.testing.assert_close(flat.amax(1), torch.ones(4))
    if switch == "mlp_activation":
        assert isinstance(m.neural_tower.mlp[1], torch.nn.Identity)
        # without an activation the readout is affine: f(a) + f(b) - f(0) == f(a + b) after aggregation
        mlp = m.neural_tower.mlp
        a, b = torch.randn(2, 30), torch.randn(2, 30)
        torch.testing.assert_close(mlp(a) + mlp(b) - mlp(torch.zeros(2, 30)), mlp(a + b), atol=1e-4, rtol=1e-4)


def test_scaling_leak_uses_test_images_and_default_does_not():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(50, 5))
    splits = settings.dina_split(50, 0)
    changed = r.copy()
    changed[splits["test"]] += 100.0       # only the test responses change
    default_a, default_b = response_scaler(r, splits), response_scaler(changed, splits)
    np.testing.assert_array_equal(default_a.mean, default_b.mean)
    np.testing.assert_array_equal(default_a.std, default_b.std)
    leak_a, leak_b = response_scaler(r, splits, "all"), response_scaler(changed, splits, "all")
    assert not np.allclose(leak_a.mean, leak_b.mean)
    np.testing.assert_allclose(leak_a.mean, r.mean(0), rtol=1e-5)
    with pytest.raises(ValueError):
        response_scaler(r, splits, "test")


def test_switches_leave_existing_run_hashes_unchanged(tiny_mouse):
    cfg = settings.resolve("smoke")
    spec = run_spec(tiny_mouse, cfg)
    # settings as they were before the switches existed give the same configuration and hash
    before = {k: v for k, v in cfg.items() if k not in settings.SWITCH_DEFAULTS}
    assert run_spec(tiny_mouse, before).config == spec.config and run_spec(tiny_mouse, before).key == spec.key
    for name, over in settings.OFFICIAL_CODE.items():
        assert run_spec(tiny_mouse, {**cfg, **over}).key != spec.key, name
    leak = run_spec(tiny_mouse, {**cfg, "scaling_fit": "all"}).config
    assert "ALL images" in leak["data"]["normalisation"]


def test_objective_controls_one_step():
    torch.manual_seed(0)
    r = torch.randn(4, 30)
    for kind in ("reconstruction", "classification"):
        cfg = settings.resolve("smoke", objective=kind)
        model = build_run_model(cfg, 30, n_classes=3 if kind == "classification" else 0)
        batch = {"images": IMAGES, "responses": r, "labels": torch.tensor([0, 1, 2, 1])}
        _one_step(model, objective_for(cfg), batch)
        assert objective_for(cfg).to_dict()["kind"] == kind


def test_linear_reference_recovers_planted_mapping():
    rng = np.random.default_rng(0)
    n, p, N = 400, 15, 40
    F = rng.normal(size=(n, p))
    W = rng.normal(size=(p, N))
    R = F @ W + 0.05 * rng.normal(size=(n, N))
    train, test = np.arange(300), np.arange(300, 400)
    ridge = LinearReference("ridge").fit(F[train], R[train])
    # coefficients in standardised units: W scaled by the feature and response s.d.
    W_std = (W * F[train].std(0)[:, None]) / R[train].std(0)[None, :]
    assert np.corrcoef(ridge.coef_.T.ravel(), W_std.ravel())[0, 1] > 0.99
    for method in ("ridge", "rrr", "cca"):
        ref = LinearReference(method).fit(F[train], R[train])
        zi, zn = ref.embed(F[test], R[test])
        acc = topk_accuracy(similarity_matrix(zn, zi), ks=(1,))[1]
        assert acc > 0.9, f"{method}: planted mapping retrieved at top-1 {acc:.2f}"
    # a collapsed relation (responses independent of the features) stays near chance
    null = LinearReference("ridge").fit(F[train], rng.normal(size=(300, N)))
    zi, zn = null.embed(F[test], rng.normal(size=(100, N)))
    assert topk_accuracy(similarity_matrix(zn, zi), ks=(1,))[1] < 0.1


def test_image_features_shapes():
    imgs = np.random.default_rng(0).integers(0, 256, size=(3, 68, 270)).astype(np.uint8)
    assert pixel_features(imgs).shape == (3, 17 * 68)
    g = gabor_features(imgs, frequencies=(0.1,), n_orientations=2)
    assert g.shape == (3, 2 * 4 * 16) and np.all(g >= 0)


def test_subset_indices_nested():
    small, large = subset_indices(100, 10, 3), subset_indices(100, 40, 3)
    assert len(small) == 10 and set(small) <= set(large)
    np.testing.assert_array_equal(subset_indices(100, 0), np.arange(100))


def test_twin_class_labels_follow_the_source_photograph(tiny_mouse):
    from alignlib.experiments.dina.workflow import class_labels

    labels, names, where = class_labels(tiny_mouse)
    assert labels.shape == (tiny_mouse.session.n_images,) and labels.min() >= 0 and labels.max() < len(names)
    assert len(names) >= 2 and "twin" in where


def test_table1_command_line_trains_the_rows_the_page_would_read(tmp_path, monkeypatch, capsys):
    """``python -m alignlib.experiments.dina.table1`` trains a row with the page's base settings, so the
    page finds the run by its configuration hash; unknown rows are refused before anything trains."""
    from alignlib.experiments.dina import cast
    from alignlib.experiments.dina.table1 import main
    from alignlib.experiments.dina.workflow import find_run

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "--rows", "no-such-row"])
    main(["--profile", "smoke", "--rows", "VGG-16-MLP", "--mice", "M1", "--seeds", "0", "--source", "twin"])
    out = capsys.readouterr().out
    assert "[table1] M1 VGG-16-MLP seed 0: M1-t1-VGG-16-MLP-" in out
    # the page's own spec for that row (notebooks/dina/table1.py): base = the profile with the table's epochs
    base = settings.resolve("smoke", epochs=settings.TABLE1["smoke"]["epochs"])
    rec = cast.load_mouse("M1", source="twin", twin_size=base["twin_size"])
    run = find_run(run_spec(rec, {**base, "model": "vgg16-mlp", "image_weights": ""}, 0, 0))
    assert run.directory.parent == tmp_path / "runs" / "dina"


def test_row_seeds_narrow_a_row_to_the_seeds_it_lists(monkeypatch):
    """``TABLE1[profile]["row_seeds"]``: a row trains (or reads) only the page's seeds it lists; the
    other rows keep all of them. Every profile's row_seeds name known rows and seeds the profile has."""
    from alignlib.experiments.dina import table1

    trained = []
    monkeypatch.setattr(table1, "train_mouse",
                        lambda rec, cfg, seed, **kw: trained.append((cfg.get("model"), seed)) or f"run{seed}")
    rec = type("Rec", (), {"label": "M1"})()
    out = table1.train_rows(rec, {"epochs": 1}, {"A": {"model": "a"}, "B": {"model": "b"}}, [0, 1, 2],
                            row_seeds={"B": [0]})
    assert sorted(trained) == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    assert set(out) == {("A", 0), ("A", 1), ("A", 2), ("B", 0)}
    names = {n for rows in table1.ROW_GROUPS.values() for n in rows}
    for profile, scale in settings.TABLE1.items():
        for row, kept in scale.get("row_seeds", {}).items():
            assert row in names and set(kept) <= set(scale["seeds"]), (profile, row)
        for row, kept in scale.get("row_mice", {}).items():        # rows trained on some mice only
            assert row in names and kept and set(kept) <= set(scale["mice"]), (profile, row)


def test_command_line_twin_size_and_n_train_reach_the_run_the_page_reads(tmp_path, monkeypatch):
    """``--twin-size`` and ``--n-train`` train the run the page's paper-images section reads (same
    configuration hash): the twin's size enters through the recording, the subset through the row."""
    from alignlib.experiments.dina import cast, table1

    seen = []
    monkeypatch.setattr(cast, "load_mouse", lambda label, **kw: seen.append(("load", label, kw["twin_size"]))
                        or type("Rec", (), {"label": label})())
    monkeypatch.setattr(table1, "train_rows", lambda rec, base, rows, seeds, *a, **kw:
                        seen.append(("rows", dict(rows), list(seeds), base["twin_size"])) or {})
    table1.main(["--profile", "smoke", "--twin-size", "paper-images", "--rows", "DINA", "--mice", "M1",
                 "--seeds", "2", "--n-train", "800"])
    assert seen == [("load", "M1", "paper-images"), ("rows", {"DINA": {"n_train": 800}}, [2], "paper-images")]
    with pytest.raises(SystemExit):
        table1.main(["--profile", "smoke", "--twin-size", "huge", "--rows", "DINA"])


def test_paper_images_twin_has_the_papers_images_and_one_mouse():
    from alignlib.experiments.dina import cast

    cfg = cast.twin_config("paper-images")
    assert (cfg.n_images, cfg.n_neurons) == (2800, cast.PAPER_IMAGES_NEURONS) and cfg.n_neurons >= 2000
    assert (cfg.n_natural_mice, cfg.n_whitened_mice, cfg.n_8d_mice) == (1, 0, 0)
    assert set(cast.TWIN_SIZES) == {"smoke", "quick", "paper-images", "paper"}
    with pytest.raises(ValueError, match="twin size must be one of"):
        cast.twin_config("huge")


def _long_rows(variant, hits, mouse="M1", seed=0, converged=True, run=None):
    """One long-format row; a trained row names its run, a closed-form one (converged None) does not."""
    from alignlib.experiments.dina.table1 import HITS

    run = run if run is not None else ("" if converged is None else f"{variant}-s{seed}")
    return {"group": "g", "mouse": mouse, "model": variant, "variant": variant, "k": 1, "seed": seed,
            "accuracy": float(np.mean(hits)), "chance": 0.1, "converged": converged, "run": run,
            HITS: np.asarray(hits)}


def test_hits_difference_pairs_images_averages_seeds_and_scores_equal_models_zero():
    import pandas as pd

    from alignlib.experiments.dina.table1 import hits_difference

    rng = np.random.default_rng(0)
    h = rng.integers(0, 2, 200).astype(float)
    long = pd.DataFrame([_long_rows("A", h, seed=0), _long_rows("A", 1 - h, seed=1),
                         _long_rows("B", np.full(200, 0.5), converged=None)])
    d = hits_difference(long, "A", "B", ks=[1]).iloc[0]
    # A's seeds average to 0.5 on every image: exactly B, so the difference and its interval are 0
    assert d.difference == 0 and d.ci_low == 0 and d.ci_high == 0 and d.n_items == 200 and d.converged
    long2 = pd.DataFrame([_long_rows("A", np.ones(200)), _long_rows("B", h)])
    d2 = hits_difference(long2, "A", "B", ks=[1]).iloc[0]
    assert d2.difference == pytest.approx(100 * (1 - h.mean())) and d2.ci_low > 0
    with pytest.raises(ValueError, match="not paired"):
        hits_difference(pd.DataFrame([_long_rows("A", h), _long_rows("B", h[:100])]), "A", "B", ks=[1])
    with pytest.raises(KeyError, match="no row 'C'"):
        hits_difference(long, "A", "C", ks=[1])
    not_conv = pd.DataFrame([_long_rows("A", h, converged=False), _long_rows("B", h)])
    assert not hits_difference(not_conv, "A", "B", ks=[1]).converged.iloc[0]
    # a trained run whose convergence is unknown counts as not converged
    unknown = pd.DataFrame([_long_rows("A", h, converged=None, run="A-s0"), _long_rows("B", h)])
    assert not hits_difference(unknown, "A", "B", ks=[1]).converged.iloc[0]


def test_gap_change_is_the_difference_of_two_paired_gaps():
    import pandas as pd

    from alignlib.experiments.dina.table1 import gap_change, seed_accuracies

    rng = np.random.default_rng(1)
    h = {n: rng.integers(0, 2, 100).astype(float) for n in ("A1", "B1", "A0", "B0")}
    long = pd.DataFrame([_long_rows(n, v, converged=True if n.startswith("A") else None) for n, v in h.items()])
    g = gap_change(long, ("A1", "B1"), ("A0", "B0"), ks=[1]).iloc[0]
    expected = 100 * ((h["A1"] - h["B1"]) - (h["A0"] - h["B0"])).mean()
    assert g.change == pytest.approx(expected) and g.ci_low <= g.change <= g.ci_high and g.n_items == 100
    same = gap_change(long, ("A1", "B1"), ("A1", "B1"), ks=[1]).iloc[0]
    assert same.change == 0 and same.ci_low == 0 and same.ci_high == 0
    seeds = seed_accuracies(pd.concat([long, pd.DataFrame([_long_rows("A1", 1 - h["A1"], seed=1)])]))
    assert set(seeds.variant) == {"A1", "A0"} and len(seeds[seeds.variant == "A1"]) == 2   # trained rows only


def test_command_line_keeps_to_the_mice_a_twin_has(monkeypatch):
    from alignlib.experiments.dina import cast, table1

    seen = []
    monkeypatch.setattr(cast, "load_mouse", lambda label, **kw: seen.append(label) or type("R", (), {"label": label})())
    monkeypatch.setattr(table1, "train_rows", lambda *a, **kw: {})
    table1.main(["--profile", "quick", "--twin-size", "paper-images", "--rows", "DINA", "--seeds", "0"])
    assert seen == ["M1"]                      # the default mice, narrowed to the twin's
    with pytest.raises(SystemExit):
        table1.main(["--profile", "quick", "--twin-size", "paper-images", "--rows", "DINA", "--mice", "M2"])
