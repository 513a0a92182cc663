"""The run store: a completed run is compacted into the store, found there by its configuration hash when
runs/ has none, checked before it is read (a tampered file is an error naming it), refused under a stale
RUN_FORMAT, and `verify` recomputes every recorded metric from the stored arrays."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from alignlib.experiments.dina import settings
from alignlib.experiments.dina.workflow import find_run, run_spec, train_mouse
from alignlib.training import store
from alignlib.training.store import StoreError, add_run, convergence, list_store, verify_store


@pytest.fixture(scope="module")
def trained(tiny_mouse, tmp_path_factory):
    """One short DINA run on the tiny twin (3 epochs, patience 1: converged by the rule), in its own runs/."""
    runs = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("ALIGNLIB_RUNS_DIR", str(runs))
    cfg = settings.resolve("smoke", epochs=3, patience=1, batch_size=64, neural_residual=True)
    run = train_mouse(tiny_mouse, cfg, seed=0)
    mp.undo()
    return run, cfg, runs


@pytest.fixture
def stored(trained, tmp_path, monkeypatch):
    run, cfg, runs = trained
    root = tmp_path / "store"
    monkeypatch.setenv("ALIGNLIB_STORE_DIR", str(root))
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path / "empty-runs"))
    dest = add_run(run.directory, maps=True, weights=True, command="pytest")
    return run, cfg, dest


def test_convergence_rule():
    info = {"selected": "val_mean_rank", "epochs_run": 40, "selections": {"val_mean_rank": {"epoch": 15}}}
    assert convergence(info, {"patience": 25, "epochs": 400})["converged"] is True
    info["selections"]["val_mean_rank"]["epoch"] = 30            # the cap arrived 10 epochs after the best
    res = convergence(info, {"patience": 25, "epochs": 40})
    assert res["converged"] is False and "still improving" in res["reason"]
    assert convergence(info, {"patience": None, "epochs": 40})["converged"] is None
    assert convergence(info, None)["converged"] is None


def test_longest_stall_counts_plateaus_before_the_best_epoch_only():
    from alignlib.training.store import longest_stall

    #          best  stall of 3 ->  best  stall 1   best  then a final stall of 4 (not counted)
    ranks = [50.0, 40.0, 41.0, 40.0, 45.0, 30.0, 31.0, 20.0, 20.0, 25.0, 22.0, 21.0]
    assert longest_stall(ranks, "val_mean_rank") == 3
    assert longest_stall([-r for r in ranks], "val_top1") == 3       # "max" criteria flip the sign
    # an improvement smaller than min_delta is no new best: 40 -> 30 -> 29.5 -> 20 is one stall of 3
    assert longest_stall([40.0, 30.0, 29.5, 29.8, 29.9, 20.0], "val_mean_rank", min_delta=1.0) == 3
    assert longest_stall([10.0, 11.0, 12.0], "val_mean_rank") == 0
    assert longest_stall([], "val_mean_rank") == 0


def test_stored_run_is_compact_found_and_loads_the_same_numbers(stored, tiny_mouse):
    run, cfg, dest = stored
    names = {p.name for p in dest.iterdir()}
    assert {"spec.json", "run.json", "history.csv", "store.json", "checkpoint.pt"} <= names
    assert "fit" not in names and "test_val_top1.npz" not in names        # no optimiser state, no extra selections
    meta = json.loads((dest / "store.json").read_text())
    assert meta["converged"] is True and meta["made_by"]["command"]
    assert set(meta["files"]) == names - {"store.json"}
    # runs/ is empty here: the spec finds the stored run, which gives the same retrieval within float16
    found = find_run(run_spec(tiny_mouse, cfg, 0))
    assert found.directory == dest and not found.trained_now
    a, b = run.test_embeddings(), found.test_embeddings()
    assert b["z_img"].dtype == np.float32
    np.testing.assert_allclose(a["z_img"], b["z_img"], rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(a["test_index"], b["test_index"])
    # train_mouse loads it instead of training
    again = train_mouse(tiny_mouse, cfg, seed=0)
    assert again.directory == dest and not again.trained_now
    table = list_store()
    assert list(table.run) == [dest.name] and bool(table.converged.iloc[0])


def test_verify_passes_then_names_a_tampered_file(stored, tiny_mouse):
    run, cfg, dest = stored
    assert verify_store().ok
    path = dest / "test_val_mean_rank.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])                                   # truncated
    result = verify_store()
    assert not result.ok and str(path) in result.problems[0]
    with pytest.raises(StoreError, match="test_val_mean_rank.npz"):      # a page never reads it
        find_run(run_spec(tiny_mouse, cfg, 0))
    path.write_bytes(data)
    assert verify_store().ok


def test_verify_recomputes_the_recorded_metrics(stored):
    run, cfg, dest = stored
    meta = json.loads((dest / "store.json").read_text())
    meta["metrics"]["test_val_mean_rank"]["top1"] += 0.01                  # a recorded number edited
    (dest / "store.json").write_text(json.dumps(meta))
    result = verify_store()
    assert not result.ok and "do not recompute" in result.problems[0]


def test_stale_run_format_is_refused(stored, tiny_mouse, monkeypatch):
    run, cfg, dest = stored
    monkeypatch.setitem(store.RUN_FORMATS, "dina", 999)
    with pytest.raises(StoreError, match="RUN_FORMAT"):
        find_run(run_spec(tiny_mouse, cfg, 0))
    assert not verify_store().ok


def test_store_off_and_half_stored_folder(stored, tiny_mouse, monkeypatch):
    run, cfg, dest = stored
    monkeypatch.setenv("ALIGNLIB_STORE", "off")
    assert run_spec(tiny_mouse, cfg, 0).find() is None
    monkeypatch.delenv("ALIGNLIB_STORE")
    half = dest.parent / "M1-0123456789"
    shutil.copytree(dest, half)
    (half / "store.json").unlink()
    assert any("half-stored" in p for p in verify_store().problems)


def test_the_shipped_store_verifies():
    """Every run in book/store/ loads, hashes to its configuration, and recomputes its recorded metrics."""
    from alignlib.paths import REPO_ROOT

    result = verify_store(REPO_ROOT / "book" / "store")
    assert result.ok, "\n".join(result.problems)


def test_pages_name_the_runs_they_read(stored):
    import nbformat

    from alignlib.runner import present

    run, cfg, dest = stored
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show_provenance(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/markdown": "> **Profile:** quick  \n> **Data:** x"})]
    nb.cells = [cell]
    present.finish_page(nb, "dina/train", "dina/train_M1", {"profile": "quick"}, [], "/tmp", [dest, dest])
    banner = nb.cells[0].outputs[0]["data"]["text/markdown"]
    assert "**Runs read:** 1 (1 from the run store; 1 converged)" in banner
    reproduce = nb.cells[-1].source
    assert f"`{dest.name}`" in reproduce and "alignlib book --retrain" in reproduce


def test_store_state_is_part_of_every_page_key(stored, monkeypatch):
    from alignlib.training.store import state_digest

    run, cfg, dest = stored
    before = state_digest()
    meta = dest / "store.json"
    meta.write_text(meta.read_text().replace('"store_format"', '"note": "x", "store_format"'))
    assert state_digest() != before
    monkeypatch.setenv("ALIGNLIB_STORE", "off")
    assert state_digest() == "off"


def test_every_file_a_page_reads_is_hashed(stored, tiny_mouse):
    """store.json is not hashed itself: a file dropped from its list, or a file it does not list, is refused."""
    run, cfg, dest = stored
    meta_path = dest / "store.json"
    meta = json.loads(meta_path.read_text())
    edited = {**meta, "files": {k: v for k, v in meta["files"].items() if k != "history.csv"}}
    meta_path.write_text(json.dumps(edited))
    with pytest.raises(StoreError, match="history.csv"):
        find_run(run_spec(tiny_mouse, cfg, 0))
    meta_path.write_text(json.dumps(meta))
    (dest / "extra.pt").write_bytes(b"x")
    assert any("extra.pt" in p for p in verify_store().problems)
    (dest / "extra.pt").unlink()
    assert verify_store().ok


def test_a_renamed_stored_run_is_refused(stored):
    run, cfg, dest = stored
    dest.rename(dest.with_name("M9-" + dest.name.split("-")[-1]))
    assert not verify_store().ok


def test_embeddings_read_the_same_from_runs_and_store(stored):
    from alignlib.experiments.dina.workflow import load_run

    run, cfg, dest = stored
    a, b = load_run(run.directory).test_embeddings(), load_run(dest).test_embeddings()
    np.testing.assert_array_equal(a["z_img"], b["z_img"])
    np.testing.assert_array_equal(a["z_neu"], b["z_neu"])


def test_two_adds_at_once_store_one_copy(trained, tmp_path, monkeypatch):
    """Two `store add` of one run at once: the second waits on the stored run's lock, then keeps
    the first's copy; no temporary folder is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    run, cfg, runs = trained
    root = tmp_path / "store"
    monkeypatch.setenv("ALIGNLIB_STORE_DIR", str(root))
    with ThreadPoolExecutor(2) as pool:
        dests = list(pool.map(lambda _: add_run(run.directory, command="pytest"), range(2)))
    assert dests[0] == dests[1]
    assert [p.name for p in dests[0].parent.iterdir() if not p.name.endswith(".lock")] == [
        dests[0].name]
    assert verify_store(root).ok


def test_a_vna_fit_is_stored_exactly_and_read_back_from_the_store(tmp_path, monkeypatch):
    """VNA's score matrices are kept at float32 (rounding them to float16 ties near-constant scores and moves
    AUCs): the stored fit reads back the very numbers runs/ held, and verify passes."""
    from alignlib.experiments.vna import settings as vna_settings
    from alignlib.experiments.vna import workflow as wf
    from alignlib.training import prepare_pairs

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ALIGNLIB_STORE_DIR", str(tmp_path / "store"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 32, 32)).astype(np.float32)
    responses = rng.normal(size=(40, 8)).astype(np.float32)
    pset = wf.prepare_set("toy", images, responses, 32)
    split = {"train": np.arange(0, 24), "val": np.arange(24, 32), "test": np.arange(32, 40)}
    data, _, _ = prepare_pairs(pset.images, pset.responses, split, standardize=False)
    cfg = vna_settings.resolve("smoke", epochs=3, patience=1, latent_dim=8)
    scores, info = wf.scored_fit("direct_encoding", data, 8, cfg, 32, 0, "toy", device="cpu")
    spec = wf.fit_spec("direct_encoding", data, 8, cfg, 32, 0, "toy")
    assert store.policy_for(spec.directory())["exact_predictions"]
    dest = add_run(spec.directory(), exact_predictions=True, command="pytest")
    shutil.rmtree(spec.directory())                       # now only the store holds it
    again, info2 = wf.scored_fit("direct_encoding", data, 8, cfg, 32, 0, "toy", device="cpu")
    assert np.array_equal(scores, again) and info == info2
    assert spec.find() == dest and verify_store(tmp_path / "store").ok
    with np.load(dest / "predictions.npz") as z:
        assert z["scores"].dtype == np.float32


def test_training_cost_text_sums_recorded_wall_time_per_chapter():
    import pandas as pd

    from alignlib.training.store import training_cost_text

    table = pd.DataFrame({"chapter": ["dina", "dina", "vist", "vna"], "wall_s": [3600.0, 1800.0, 7200.0, None],
                          "machine": ["m", "m", "m", None]})
    text = training_cost_text(table)
    assert "dina 1.5 h (2 runs)" in text and "vist 2.0 h (1 runs)" in text
    assert "in all 3.5 h" in text and "1 run(s) recorded no time" in text


def test_run_lock_is_the_configurations_not_the_folders(tmp_path):
    """A page and a command line asking for one configuration under two variant names share one lock,
    so the second waits and then finds the first's run instead of training it again."""
    import threading

    from alignlib.training.runs import run_lock

    a, b = tmp_path / "dina" / "M1-t1-DINA-abc123", tmp_path / "dina" / "M1-t1-DINA__800-abc123"
    order = []
    with run_lock(a):
        t = threading.Thread(target=lambda: run_lock(b).__enter__() or order.append("b"))
        t.start()
        t.join(0.5)
        order.append("a done")
    t.join(5)
    assert order == ["a done", "b"]
    assert (tmp_path / "dina" / ".run-abc123.lock").exists()


def test_span_coordinates_keep_every_similarity_in_fewer_dimensions():
    from alignlib.metrics.retrieval import similarity_matrix
    from alignlib.training.store import compact_embeddings

    rng = np.random.default_rng(0)
    z_img, z_neu = rng.normal(size=(12, 256)), rng.normal(size=(12, 256))
    out = compact_embeddings({"z_img": z_img, "z_neu": z_neu, "test_index": np.arange(12)})
    assert out["z_img"].shape == out["z_neu"].shape == (12, 24) and out["z_img"].dtype == np.float16
    np.testing.assert_array_equal(out["test_index"], np.arange(12))
    rounded = {k: v.astype(np.float16).astype(np.float64) for k, v in (("i", z_img), ("n", z_neu))}
    np.testing.assert_allclose(similarity_matrix(out["z_neu"].astype(np.float64), out["z_img"].astype(np.float64)),
                               similarity_matrix(rounded["n"], rounded["i"]), atol=2e-3)
    # already compact (width = the span's): left as it is; narrow embeddings are never rotated
    again = compact_embeddings(out)
    np.testing.assert_array_equal(again["z_img"], out["z_img"])
    narrow = compact_embeddings({"z_img": z_img[:, :20], "z_neu": z_neu[:, :20]})
    np.testing.assert_array_equal(narrow["z_img"], z_img[:, :20].astype(np.float16))


def test_a_span_stored_run_reads_the_same_from_runs_and_store_and_compacts_once(stored, monkeypatch):
    from alignlib.experiments.dina import workflow
    from alignlib.experiments.dina.workflow import load_run
    from alignlib.training.store import compact_stored

    run, cfg, dest = stored
    with np.load(next(dest.glob("test_*.npz"))) as z:
        n, width = z["z_img"].shape
    if width <= 2 * n:
        pytest.skip("the tiny twin's embeddings are no wider than their span")
    real = workflow.store_contents
    monkeypatch.setattr(workflow, "store_contents", lambda d: {**real(d), "span": True})
    made = json.loads((dest / "store.json").read_text())["made_by"]
    assert compact_stored(dest) and not compact_stored(dest)     # a second pass finds nothing to do
    meta = json.loads((dest / "store.json").read_text())
    assert meta["compacted"]["files"] and meta["made_by"] == made     # who made the run is kept
    assert verify_store().ok
    a, b = load_run(run.directory).test_embeddings(), load_run(dest).test_embeddings()
    assert b["z_img"].shape == (n, 2 * n)
    np.testing.assert_array_equal(a["z_img"], b["z_img"])
    np.testing.assert_array_equal(a["z_neu"], b["z_neu"])


def test_the_token_bias_row_is_kept_as_a_switch_row():
    """Token bias is a model setting, not a Table 1 switch (its run records none): the store policy must
    still treat the row as a switch row (no weights or maps, embeddings in their joint span)."""
    from alignlib.experiments.dina.workflow import store_contents
    from alignlib.paths import REPO_ROOT

    rows = sorted((REPO_ROOT / "book" / "store" / "dina").glob("M1-t1-token-bias-*"))
    if not rows:
        pytest.skip("no stored token-bias run")
    for d in rows:
        keep = store_contents(d)
        assert keep["span"] and not keep["weights"] and not keep["maps"], d.name
        assert not any((d / w).exists() for w in ("checkpoint.pt", "model.pt")), d.name


def test_prune_drops_weights_the_policy_no_longer_keeps_and_nothing_else(stored, monkeypatch):
    """`store prune`: a stored run whose chapter's policy stops keeping its weights loses them (and only them);
    store.json lists the remaining files, who made the run is kept, verify passes, a second pass does nothing,
    and a run whose policy keeps its weights is left alone."""
    from alignlib.experiments.dina import workflow
    from alignlib.training.store import prune_stored

    run, cfg, dest = stored
    real = workflow.store_contents
    monkeypatch.setattr(workflow, "store_contents", lambda d: {**real(d), "weights": True})
    assert prune_stored(dest) == [] and (dest / "checkpoint.pt").exists()
    before = {p.name for p in dest.iterdir()}
    made = json.loads((dest / "store.json").read_text())["made_by"]
    monkeypatch.setattr(workflow, "store_contents", lambda d: {**real(d), "weights": False})
    assert prune_stored(dest) == ["checkpoint.pt"] and prune_stored(dest) == []
    assert {p.name for p in dest.iterdir()} == before - {"checkpoint.pt"}
    meta = json.loads((dest / "store.json").read_text())
    assert "checkpoint.pt" not in meta["files"] and meta["made_by"] == made and meta["pruned"]["files"]
    assert verify_store().ok


def test_the_shipped_store_holds_weights_exactly_where_its_policy_keeps_them():
    """No stored run carries weights that no page reads (they cost the store's room), and every run whose
    towers a page explains has them."""
    from alignlib.paths import REPO_ROOT
    from alignlib.training.store import WEIGHT_FILES, policy_for

    runs = sorted(p.parent for p in (REPO_ROOT / "book" / "store").glob("*/*/store.json")
                  if p.parent.parent.name != "derived")
    if not runs:
        pytest.skip("no shipped store")
    wrong = [f"{d.parent.name}/{d.name}" for d in runs
             if bool(policy_for(d)["weights"]) != any((d / w).exists() for w in WEIGHT_FILES)]
    assert not wrong, f"weights against the store policy: {wrong}"
