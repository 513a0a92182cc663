"""The DINA chapter's runs end to end on the tiny twin: train once, load instead of retraining, keep
variants apart, refuse mixed configurations in one table row."""
from __future__ import annotations

import json

import numpy as np
import pytest

from alignlib.experiments.dina import settings
from alignlib.experiments.dina.workflow import find_run, load_run, retrieval_table, run_spec, train_mouse
from alignlib.training import load_model_checkpoint
from alignlib.training.runs import MixedConfigurations


def tiny_settings(**kw):
    return settings.resolve("smoke", **{"epochs": 20, "patience": 20, "batch_size": 64, "neural_residual": True, **kw})


@pytest.mark.slow
def test_train_once_then_load_and_variants_live_side_by_side(tiny_mouse, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    cfg = tiny_settings()
    run = train_mouse(tiny_mouse, cfg, seed=0)
    assert run.trained_now and run.directory.parent == tmp_path / "dina" and run.name.startswith("M1-")
    names = {p.name for p in run.directory.iterdir()}
    assert {"spec.json", "run.json", "checkpoint.pt", "history.csv", "test_val_mean_rank.npz",
            "test_val_loss.npz", "fit"} <= names
    assert not (run.directory / "fit" / "fit_state.pt").exists()  # optimiser state dropped once complete
    info = json.loads((run.directory / "run.json").read_text())
    assert info["split_sizes"] == {"train": 240, "val": 30, "test": 30}
    assert info["selected"] == "val_mean_rank"
    ckpt = load_model_checkpoint(run.directory / "checkpoint.pt")    # weights_only=True inside
    assert ckpt["epoch"] == info["selections"]["val_mean_rank"]["epoch"]
    np.testing.assert_array_equal(ckpt["splits"]["test"].numpy(), run.test_embeddings()["test_index"])

    again = train_mouse(tiny_mouse, cfg, seed=0)                      # identical config: loaded, not retrained
    assert not again.trained_now and again.directory == run.directory
    other = train_mouse(tiny_mouse, tiny_settings(epochs=2, patience=2), seed=0)   # like `-p epochs=2`
    assert other.directory != run.directory and run.directory.exists() and other.directory.parent == run.directory.parent

    table = retrieval_table({"M1": run})
    top5 = table.query("mouse == 'M1' and k == 5").iloc[0]
    assert top5.chance == pytest.approx(5 / 30) and top5.ci_low <= top5.accuracy <= top5.ci_high
    assert top5.accuracy >= 2 * top5.chance, f"top-5 {top5.accuracy:.2f} not far above chance {top5.chance:.2f}"
    assert top5.run == run.name
    with pytest.raises(MixedConfigurations, match="fit.epochs"):
        retrieval_table({"M1": run, "M1-short": other})
    # the literal validation-loss selection comes from the same run
    assert set(retrieval_table({"M1": run}, criterion="val_loss").selection) == {"val_loss"}
    # the spec a results page resolves finds this run by its hash
    assert load_run(run_spec(tiny_mouse, cfg, 0).directory()).name == run.name
    # an identical configuration under another readable name is the same run (loaded, not retrained)
    alias = train_mouse(tiny_mouse, cfg, seed=0, variant="M1-control")
    assert not alias.trained_now and alias.directory == run.directory
    assert find_run(run_spec(tiny_mouse, cfg, 0, variant="M1-control")).directory == run.directory


def test_run_identity_follows_every_setting(tiny_mouse):
    base = run_spec(tiny_mouse, tiny_settings(), 0)
    for change in ({"lr_neural": 5e-5}, {"neural_residual": False}, {"stem_stride": 2}, {"select": "val_loss"},
                   {"width": "paper"}, {"temperature": 0.1}):
        assert run_spec(tiny_mouse, tiny_settings(**change), 0).key != base.key, change
    assert run_spec(tiny_mouse, tiny_settings(), 1).key != base.key           # training seed
    assert run_spec(tiny_mouse, tiny_settings(), 0, split_seed=1).key != base.key
    assert run_spec(tiny_mouse, tiny_settings(), 0).key == base.key
    with pytest.raises(ValueError, match="unknown DINA setting"):
        settings.resolve("quick", epoch=3)


def test_powerlaw_fit_range_caps_small_data():
    from alignlib.experiments.dina.stats import powerlaw_fit_range

    assert powerlaw_fit_range(2800, 10000) == (11, 500)
    assert powerlaw_fit_range(1000, 600) == (11, 300)


def test_pipeline_trains_the_mice_the_results_page_tabulates():
    """The results page defaults to settings.MICE; the pipeline's training loop must cover exactly those."""
    from alignlib.runner.pipeline import load_pipeline

    train = next(s for s in load_pipeline().steps if s.notebook == "dina/train")
    assert list(train.foreach["mouse"]) == list(settings.MICE)
