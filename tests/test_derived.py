"""Derived results (alignlib.training.derived): computed once, read back checked, stored and verified
under the run store's rules; an edited file or a stale version is refused, never silently reused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alignlib.training import derived


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
    # what is returned is what is stored (float16 values), on the first call as on the next
    np.testing.assert_array_equal(first["maps"], value.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(first["maps"], again["maps"])
    assert first["index"].dtype.kind == "i"
    meta = json.loads((where / derived.DERIVED_MARKER).read_text())
    assert {"commit", "machine_description", "threads", "wall_seconds", "date", "command"} <= set(meta["made_by"])
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


def test_store_add_and_verify(areas):
    from alignlib.training.store import main, store_dir, verify_store

    compute, calls = _counting(np.ones((2, 2), np.float32))
    run = {"chapter": "dina", "name": "M1-abc"}
    _, where = derived.cached("dina", "occlusion", {"run": run}, compute)
    assert main(["add", str(where)]) == 0
    stored = store_dir() / "derived" / "dina" / where.name
    assert derived.is_derived(stored)
    # the run it names is not in the store: verify says so
    result = verify_store()
    assert not result.ok and any("M1-abc" in p and "not in the store" in p for p in result.problems)
    (store_dir() / "dina" / "M1-abc").mkdir(parents=True)
    checked, problems = derived.verify_derived(store_dir())
    assert checked == 1 and problems == []
    # read from the store once runs/ no longer has it
    import shutil

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


def test_pages_derived_reads_are_offered_to_store_add(areas):
    from alignlib.training.store import runs_read_by_pages

    compute, _ = _counting(np.ones((2, 2), np.float32))
    _, where = derived.cached("dina", "occlusion", {"a": 1}, compute)
    executed = areas / "executed"
    executed.mkdir()
    (executed / "p.manifest.json").write_text(json.dumps({"runs_read": [str(where)]}))
    assert runs_read_by_pages(executed) == [where]
