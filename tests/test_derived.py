"""Derived results (alignlib.training.derived): computed once, read back checked, stored and verified
under the run store's rules; an edited file or a stale version is refused, never silently reused."""
from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest
import torch

from alignlib.training import derived

#: the golden maps of test_occlusion_golden_values_pin_maps_version (MAPS_VERSION 2)
GOLDEN_SSIM_SUM, GOLDEN_COS_SUM = 70.6925, 77.7556


@pytest.fixture
def areas(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ALIGNLIB_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("ALIGNLIB_STORE", raising=False)
    return tmp_path


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return {"maps": value, "index": np.arange(3)}
    return compute, calls


def test_cached_computes_once_and_returns_the_stored_values(areas):
    value = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    compute, calls = _counting(value)
    first, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    again, where2 = derived.cached("dina", "occlusion", {"a": 1}, compute)
    assert calls == [1] and where == where2 and where.parent.parent.name == "derived"
    # what is returned is what is stored, at its own precision (maps feed thresholds)
    np.testing.assert_array_equal(first["maps"], value)
    np.testing.assert_array_equal(first["maps"], again["maps"])
    assert first["maps"].dtype == np.float32 and first["index"].dtype.kind == "i"
    meta = json.loads((where / derived.DERIVED_MARKER).read_text())
    assert {"commit", "machine_description", "threads", "wall_seconds", "date", "command", "device",
            "torch"} <= set(meta["made_by"])
    derived.cached("dina", "occlusion", {"a": 2}, compute)          # another identity: computed again
    assert calls == [1, 1]


def test_an_edited_file_is_an_error_naming_it(areas):
    compute, _ = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    data = (where / "arrays.npz").read_bytes()
    (where / "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(derived.DerivedError, match="arrays.npz does not match its recorded SHA-256"):
        derived.cached("dina", "occlusion", {"a": 1}, compute)


def test_a_result_of_another_version_is_refused_not_reused(areas, monkeypatch):
    from alignlib.interpret import occlusion

    compute, calls = _counting(np.ones((2, 2), np.float32))
    _, old = derived.cached("dina", "occlusion", {"a": 1}, compute)
    monkeypatch.setattr(occlusion, "MAPS_VERSION", occlusion.MAPS_VERSION + 1)
    _, new = derived.cached("dina", "occlusion", {"a": 1}, compute)
    assert calls == [1, 1] and new != old
    with pytest.raises(derived.DerivedError, match="is not reused"):
        derived.check_derived(old)


def test_non_finite_results_and_edited_identities_are_refused(areas):
    with pytest.raises(derived.DerivedError, match="non-finite"):
        derived.cached("dina", "occlusion", {"a": 1}, lambda: {"maps": np.array([1.0, np.nan])})
    compute, _ = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    meta = json.loads((where / derived.DERIVED_MARKER).read_text())
    meta["identity"] = {"a": 2}
    (where / derived.DERIVED_MARKER).write_text(json.dumps(meta))
    with pytest.raises(derived.DerivedError, match="does not hash to its folder"):
        derived.cached("dina", "occlusion", {"a": 1}, compute)
    with pytest.raises(ValueError, match="chapter name"):
        derived.cached("../x", "occlusion", {"a": 1}, compute)


def test_dry_run_results_are_never_stored_nor_read_outside_one(areas, monkeypatch):
    compute, calls = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    meta = json.loads((where / derived.DERIVED_MARKER).read_text())
    meta["made_by"]["dry_run"] = True
    (where / derived.DERIVED_MARKER).write_text(json.dumps(meta))
    with pytest.raises(derived.DerivedError, match="dry run"):
        derived.cached("dina", "occlusion", {"a": 1}, compute)
    with pytest.raises(derived.DerivedError, match="dry run"):
        derived.add_derived(where)


def _stored_run(name, checkpoint=b"weights"):
    """A stored run folder with a store.json naming its checkpoint's hash (what verify_derived reads)."""
    import hashlib

    from alignlib.training.store import store_dir

    d = store_dir() / "dina" / name
    d.mkdir(parents=True)
    (d / "store.json").write_text(json.dumps({"files": {
        "checkpoint.pt": hashlib.sha256(checkpoint).hexdigest()}}))
    return d


def test_store_add_and_verify(areas):
    import hashlib

    from alignlib.training.store import main, store_dir, verify_store

    compute, calls = _counting(np.ones((2, 2), np.float32))
    run = {"chapter": "dina", "name": "M1-abc", "checkpoint_sha256": hashlib.sha256(b"weights").hexdigest()}
    _, where = derived.cached("dina", "occlusion", {"run": run}, compute)
    assert main(["add", str(where)]) == 0
    stored = store_dir() / "derived" / "dina" / where.name
    assert derived.is_derived(stored)
    # the run it names is not in the store (an empty folder is not a stored run): verify says so
    (store_dir() / "dina" / "M1-abc").mkdir(parents=True)
    result = verify_store()
    assert not result.ok and any("M1-abc" in p and "not in the store" in p for p in result.problems)
    (store_dir() / "dina" / "M1-abc").rmdir()
    _stored_run("M1-abc", b"other weights")          # retrained: another checkpoint
    assert any("checkpoint" in p for p in derived.verify_derived(store_dir())[1])
    import shutil

    shutil.rmtree(store_dir() / "dina" / "M1-abc")
    _stored_run("M1-abc")
    checked, problems = derived.verify_derived(store_dir())
    assert checked == 1 and problems == []
    # read from the store once runs/ no longer has it
    shutil.rmtree(where)
    arrays, again = derived.cached("dina", "occlusion", {"run": run}, compute)
    assert again == stored and calls == [1]
    (stored / "arrays.npz").write_bytes(b"x")
    assert any("does not match" in p for p in derived.verify_derived(store_dir())[1])


def test_stored_occlusion_maps_are_keyed_by_the_towers_weights(areas):
    from alignlib.interpret.occlusion import OcclusionConfig, occlusion_maps, stored_occlusion_maps

    torch.manual_seed(0)
    tower = torch.nn.Conv2d(1, 1, 3, padding=1)

    def f(x):
        return tower(x[:, None])[:, 0]
    f_module = torch.nn.Sequential()      # a Module whose forward is f (state dict: the conv's)
    f_module.add_module("conv", tower)
    f_module.forward = f
    f_module.eval()
    images = np.random.default_rng(0).standard_normal((2, 12, 16)).astype(np.float32)
    cfg = OcclusionConfig(stride=4, repetitions=1, sigma=1.0)
    maps, where = stored_occlusion_maps(f_module, images, cfg)
    direct = occlusion_maps(f_module, images, cfg)
    np.testing.assert_allclose(maps["ssim"], direct["ssim"], atol=1e-3)
    _, same = stored_occlusion_maps(f_module, images, cfg)
    assert same == where
    with torch.no_grad():
        tower.weight.add_(1.0)
    _, other = stored_occlusion_maps(f_module, images, cfg)
    assert other != where                 # new weights: another derived result
    f_module.train()
    assert stored_occlusion_maps(f_module, images, cfg)[1] != other     # another mode
    f_module.eval()
    tower.stride = (2, 2)                 # the same weights in another architecture
    assert stored_occlusion_maps(f_module, images, cfg)[1] != other
    tower.stride = (1, 1)
    assert stored_occlusion_maps(f_module, images[:1], cfg)[1] != other  # other images


def test_repetitions_use_distinct_offsets():
    from alignlib.interpret.occlusion import repetition_offsets

    offs = repetition_offsets(2, 5, seed=0)
    assert offs[0] == (0, 0) and len(offs) == 5
    assert set(offs[:4]) == {(0, 0), (0, 1), (1, 0), (1, 1)}      # every offset before any repeats
    assert len(set(repetition_offsets(8, 5, seed=3))) == 5
    assert repetition_offsets(1, 3) == [(0, 0)] * 3


def test_occlusion_golden_values_pin_maps_version():
    """The maps of a fixed tiny tower and image: if this fails, the code changed what the maps are;
    bump alignlib.interpret.occlusion.MAPS_VERSION (stored maps of the old version are then refused)
    and update the values here."""
    from alignlib.interpret.occlusion import MAPS_VERSION, OcclusionConfig, occlusion_map

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    image = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
    m = occlusion_map(lambda x: conv(x[:, None]).mean(1), image, OcclusionConfig(stride=2, repetitions=3, sigma=1.0))
    golden = {2: (GOLDEN_SSIM_SUM, GOLDEN_COS_SUM)}
    assert MAPS_VERSION in golden, "MAPS_VERSION changed: record its golden values"
    np.testing.assert_allclose([m["ssim"].sum(), m["cos"].sum()], golden[MAPS_VERSION], rtol=1e-4)


def test_pages_derived_reads_are_offered_to_store_add(areas):
    from alignlib.training.store import runs_read_by_pages

    compute, _ = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    executed = areas / "executed"
    executed.mkdir()
    (executed / "p.manifest.json").write_text(json.dumps({"runs_read": [str(where)]}))
    assert runs_read_by_pages(executed) == [where]


def test_derived_results_are_offered_with_their_run_only(areas):
    from alignlib.training.store import runs_read_by_pages

    compute, _ = _counting(np.ones((2, 2), np.float32))
    orphan = derived.cached("dina", "occlusion", {"run": {"chapter": "dina", "name": "M9-x"}}, compute)[1]
    _stored_run("M1-abc")
    kept = derived.cached("dina", "occlusion", {"run": {"chapter": "dina", "name": "M1-abc"}}, compute)[1]
    executed = areas / "executed"
    executed.mkdir()
    (executed / "p.manifest.json").write_text(json.dumps({"runs_read": [str(orphan), str(kept)]}))
    assert runs_read_by_pages(executed) == [kept]


def test_page_summary_lists_derived_results_apart_from_runs(areas):
    from alignlib.runner.present import runs_markdown, runs_summary

    compute, _ = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    s = runs_summary([where])
    assert s["n"] == 0 and sum(map(len, s["derived"].values())) == 1
    text = runs_markdown([where])
    assert "Derived results it read" in text and "Training runs" not in text


def test_map_check_with_several_control_networks():
    from alignlib.interpret import groundtruth

    rng = np.random.default_rng(0)
    cov = np.zeros((20, 20))
    cov[5:15, 5:15] = 1
    trained = cov[None] + 0.3 * rng.standard_normal((6, 20, 20))
    controls = rng.standard_normal((3, 6, 20, 20))
    c = groundtruth.bootstrap_map_check(trained, controls, cov, [5, 15, 5, 15], n_boot=100)
    each = [groundtruth.map_correlation(k.mean(0), cov) for k in controls]
    assert c["r_control"] == pytest.approx(np.mean(each)) and c["n_control_networks"] == 3
    assert c["r_control_sd"] == pytest.approx(np.std(each, ddof=1)) and c["diff_ci_low"] > 0
    one = groundtruth.bootstrap_map_check(trained, controls[0], cov, [5, 15, 5, 15], n_boot=50)
    assert one["n_control_networks"] == 1 and np.isnan(one["r_control_sd"])
    with pytest.raises(ValueError, match="same images"):
        groundtruth.bootstrap_map_check(trained, controls[:, :3], cov, [5, 15, 5, 15])


def test_tables_round_trip_and_nan_is_allowed_only_where_named(areas):
    import pandas as pd

    frame = pd.DataFrame({"selection": ["sorted", "random"], "k": [1, 2], "cc": [0.5, np.nan]})
    back = derived.arrays_frame(derived.frame_arrays(frame, "t:"), "t:")
    pd.testing.assert_frame_equal(back, frame)
    with pytest.raises(derived.DerivedError, match="non-finite"):
        derived.cached("vist", "timing_scan", {"a": 1}, lambda: derived.frame_arrays(frame))
    arrays, _ = derived.cached("vist", "timing_scan", {"a": 1}, lambda: derived.frame_arrays(frame),
                               nan_allowed=("cc",))
    assert np.isnan(arrays["cc"][1])
    with pytest.raises(derived.DerivedError, match="non-finite"):     # infinity stays refused
        derived.cached("vist", "timing_scan", {"a": 2}, lambda: {"cc": np.array([np.inf])}, nan_allowed=("cc",))
    assert derived.array_sha256(np.zeros(3)) != derived.array_sha256(np.zeros(3, np.float32))
    assert derived.array_sha256(np.zeros((2, 3))) != derived.array_sha256(np.zeros((3, 2)))


def test_stored_scan_equals_the_scan_and_is_read_back(areas, monkeypatch):
    import pandas as pd

    from alignlib.experiments.vist import timing

    rng = np.random.default_rng(0)
    lum1, lum2 = rng.standard_normal((300, 4)), rng.standard_normal((300, 4))
    rates = timing.planted_rates(lum1, 20.0, -500.0, 400, seed=0)
    args = (rates, {1: lum1, 2: lum2}, 1, [20.0], [19.5], 20.0, None, 4000.0)
    curves, summary = timing.scan_recording(*args)
    c1, s1, where = timing.stored_scan_recording("R", *args)
    pd.testing.assert_frame_equal(c1, curves)
    assert pd.Series(s1).equals(pd.Series(summary)) and where.parent.name == "vist"     # NaN == NaN
    monkeypatch.setattr(timing, "scan_recording", lambda *a, **k: pytest.fail("scanned again"))
    c2, s2, where2 = timing.stored_scan_recording("R", *args)
    pd.testing.assert_frame_equal(c2, curves)
    assert where2 == where and pd.Series(s2).equals(pd.Series(summary))
    with pytest.raises(pytest.fail.Exception, match="scanned again"):       # other rates: scanned, not reused
        timing.stored_scan_recording("R", rates + 1.0, *args[1:])


def test_stored_share_equals_the_analysis_and_is_read_back(areas, monkeypatch):
    import pandas as pd

    from alignlib.experiments.vist import explain

    rng = np.random.default_rng(0)
    frames = rng.random((120, 8, 8)).astype(np.float32)
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :3, :3] = masks[1, 4:7, 4:7] = True
    counts = rng.poisson(1.0, size=(6, 120, 2))
    kw = dict(n_folds=2, gap=4, bin_frames=(1,), fractions=(1.0,), models=("RF-luminance LN",))
    table = explain.explained_share(frames, counts, masks, **kw)
    t1, where = explain.stored_share("explained", "R", frames, counts, masks, **kw)
    pd.testing.assert_frame_equal(t1, table)
    assert where.parent.name == "vist" and where.name.startswith("explained_share-")
    @functools.wraps(explain.explained_share)           # same signature: the settings are checked
    def fail(*a, **k):
        pytest.fail("computed again")

    monkeypatch.setattr(explain, "explained_share", fail)
    t2, where2 = explain.stored_share("explained", "R", frames, counts, masks, **kw)
    pd.testing.assert_frame_equal(t2, table)
    assert where2 == where
    with pytest.raises(pytest.fail.Exception, match="computed again"):      # other counts: recomputed
        explain.stored_share("explained", "R", frames, counts + 1, masks, **kw)
    with pytest.raises(TypeError, match="unknown settings"):
        explain.stored_share("explained", "R", frames, counts, masks, context=3)


def test_stored_ablation_curves_equal_the_curves_and_follow_the_weights(areas, monkeypatch):
    import pandas as pd

    from alignlib.interpret import ablation
    from alignlib.models.dina import build_dina

    torch.manual_seed(0)
    tower = build_dina(40, "quick", stem_stride=4, residual=True).neural_tower.eval()
    raw = np.random.default_rng(1).gamma(1.0, size=(4, 40)).astype(np.float32)
    z = (raw - raw.mean(0)) / raw.std(0)
    kw = dict(fractions=(0.1, 1.0), n_random=2)
    direct = ablation.ablation_curves(tower, z, raw, **kw)
    stored, where = ablation.stored_ablation_curves(tower, z, raw, **kw)
    pd.testing.assert_frame_equal(stored, direct)
    monkeypatch.setattr(ablation, "ablation_curves", lambda *a, **k: pytest.fail("computed again"))
    assert ablation.stored_ablation_curves(tower, z, raw, **kw)[1] == where
    with torch.no_grad():
        next(tower.parameters()).add_(1.0)
    with pytest.raises(pytest.fail.Exception, match="computed again"):      # other weights: not reused
        ablation.stored_ablation_curves(tower, z, raw, **kw)


def test_stored_stimulus_checks_equal_the_checks_and_are_read_back(areas, monkeypatch):
    import pandas as pd

    from alignlib.experiments.vist import explain

    rng = np.random.default_rng(0)
    frames = rng.random((200, 36, 36)).astype(np.float32)
    contours = [np.array([[390.0, 410, 410, 390], [290.0, 290, 310, 310]])]
    masks = explain.onken.contour_masks([explain.onken._display_to_frame(contours[0], 36)], 36)[0]
    lum = explain.onken.rf_luminance(frames, masks)
    rates = rng.poisson(1.0, size=(240, 1)).astype(np.float64)
    kw = dict(shifts=(0.0, 20.0), scales=(1.0,), refresh_hz=(60.0,))
    window = (0.0, 2400.0)
    placements, jitter, where = explain.stored_stimulus_checks("R", rates, frames, contours, lum, 12.5, 0.0,
                                                               window, **kw)
    pd.testing.assert_frame_equal(placements, explain.heldout_placement(
        rates, frames, contours, 12.5, 0.0, window, shifts=(0.0, 20.0), scales=(1.0,)))
    pd.testing.assert_frame_equal(jitter, explain.jitter_costs(lum, 12.5, (60.0,), rates=rates, onset_ms=0.0))
    assert where.name.startswith("stimulus_checks-")
    monkeypatch.setattr(explain, "heldout_placement", lambda *a, **k: pytest.fail("computed again"))
    assert explain.stored_stimulus_checks("R", rates, frames, contours, lum, 12.5, 0.0, window, **kw)[2] == where
    with pytest.raises(pytest.fail.Exception, match="computed again"):      # another onset: recomputed
        explain.stored_stimulus_checks("R", rates, frames, contours, lum, 12.5, 50.0, window, **kw)
    with pytest.raises(TypeError, match="unknown settings"):
        explain.stored_stimulus_checks("R", rates, frames, contours, lum, 12.5, 0.0, window, lags=3)
