"""The DINA chapter workflow end to end on a small twin: train, save the run, tabulate retrieval."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alignlib.data import catalog
from alignlib.data.stringer import load_session
from alignlib.data.twin import TwinConfig, generate_twin
from alignlib.experiments import dina
from alignlib.train import TrainConfig, load_checkpoint


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A small twin mouse with strong signals (so that 20 epochs are enough to learn)."""
    out = tmp_path_factory.mktemp("twin")
    cfg = TwinConfig.quick(n_images=300, n_neurons=150, n_spont_timepoints=200, n_reference_images=100,
                           n_natural_mice=1, n_whitened_mice=0, n_8d_mice=0, gain_median=2.0, gain_log_sd=0.3)
    manifest = generate_twin(out, cfg, progress=False)
    session = load_session(manifest.session_path("M1"), manifest.images_path("M1"))
    return catalog.MouseRecording("M1", "natural", "twin", session, "test twin", "test twin",
                                  {"session_sha256": manifest.sha256[manifest.mouse("M1").session_file]})


@pytest.mark.slow
def test_train_mouse_saves_run_and_retrieves_above_chance(recording, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    run_dir = dina.run_dir_for("test", "M1", 0)
    config = TrainConfig(epochs=20, patience=20, lr_neural=1e-3, seed=0, progress=False, num_threads=1)
    result = dina.train_mouse(recording, run_dir, width="quick", config=config, model_overrides={"residual": True})
    assert {"checkpoint.pt", "config.json", "run.json", "history.csv", "test_embeddings.npz"} <= {
        p.name for p in run_dir.iterdir()}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["split_sizes"] == {"train": 240, "val": 30, "test": 30}
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")  # weights_only=True inside
    assert ckpt["best_epoch"] == result.best_epoch
    np.testing.assert_array_equal(ckpt["splits"]["test"], np.load(run_dir / "test_embeddings.npz")["test_index"])

    table = dina.retrieval_table("test", ["M1"], seed=0)
    assert isinstance(table, pd.DataFrame) and set(table.mouse) == {"M1", "mean"}
    top5 = table.query("mouse == 'M1' and k == 5").iloc[0]
    assert top5.chance == pytest.approx(5 / 30)
    assert top5.accuracy >= 2 * top5.chance, f"top-5 {top5.accuracy:.2f} not far above chance {top5.chance:.2f}"
    assert top5.ci_low <= top5.accuracy <= top5.ci_high

    other = catalog.MouseRecording("M1", "natural", "twin", recording.session, "another twin", "another twin",
                                   {"session_sha256": "0" * 64})
    with pytest.raises(ValueError, match="was trained on test twin"):
        dina.check_run_data(run_dir, other)


def test_representative_queries_span_the_rank_distribution():
    sim = np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.1], [0.3, 0.8, 0.4]])
    picks, topk = dina.representative_queries(sim, n=3, k=2)
    assert list(picks) == [0, 1, 2]  # ranks 1, 2, 2: sorted stable
    np.testing.assert_array_equal(topk, [[0, 1], [0, 1], [1, 2]])


def test_powerlaw_fit_range_caps_small_data():
    assert dina.powerlaw_fit_range(2800, 10000) == (11, 500)
    assert dina.powerlaw_fit_range(1000, 600) == (11, 300)
