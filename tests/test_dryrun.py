"""The dry run (alignlib.dryrun, ``alignlib run|book --dry-run``): the work is capped, never the
shapes; the banner says so; its pages, runs and results live in their own folders; the run store and
the claims ledger never see it. The last test runs two smoke pages through the command line as a dry
run (about 20 s)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from alignlib import dryrun
from alignlib.experiments.dina import settings as dina
from alignlib.experiments.vist import settings as vist
from alignlib.experiments.vna import settings as vna
from alignlib.paths import REPO_ROOT


SHAPES = {"dina": ("twin_size", "width", "batch_size", "stem_stride", "temperature"),
          "vna": ("side_twin", "side_allen", "latent_dim", "batch_size", "twin_size"),
          "vist": ("window", "batch_size", "width", "c3tcn_layers", "prior_config",
                   "frames_per_bin")}


def test_settings_caps_apply_only_in_a_dry_run_and_keep_the_shapes(monkeypatch):
    monkeypatch.delenv(dryrun.ENV, raising=False)
    real = {"dina": dina.resolve("paper", epochs=300), "vna": vna.resolve("paper"),
            "vist": vist.resolve("paper")}
    assert real["dina"]["epochs"] == 300 and dina.SEEDS["paper"] == [0, 1, 2]
    assert dina.TABLE1["paper"]["mice"] == list(dina.MICE)
    monkeypatch.setenv(dryrun.ENV, "1")
    capped = {"dina": dina.resolve("paper", epochs=300), "vna": vna.resolve("paper"),
              "vist": vist.resolve("paper")}
    for chapter, keys in SHAPES.items():
        kept = {k: capped[chapter][k] for k in keys}
        assert kept == {k: real[chapter][k] for k in keys}, chapter
    assert capped["dina"]["epochs"] == 1 and capped["dina"]["patience"] == 1   # overrides too
    assert capped["vna"]["epochs"] == 1 and capped["vna"]["seeds"] == [0]
    assert capped["vna"]["k_folds"] == real["vna"]["k_folds"]      # a fold's size is a shape
    v = capped["vist"]
    steps = (v["epochs"], v["warmup_epochs"], v["swa_epochs"], v["batches_per_epoch"])
    assert steps == (2, 1, 1, 1)
    assert v["ablation_cells"] == [1, "all"] and v["ablation_layers"] == [0, 1]
    assert v["seeds"] == [0]
    assert dina.SEEDS["paper"] == [0]
    t1 = dina.TABLE1["paper"]
    assert t1["mice"] == ["M1"] and t1["seeds"] == [0] and len(t1["regime_images"]) == 1


def test_dina_split_keeps_training_images_and_caps_evaluation(monkeypatch):
    monkeypatch.delenv(dryrun.ENV, raising=False)
    full = dina.dina_split(2800)
    monkeypatch.setenv(dryrun.ENV, "1")
    capped = dina.dina_split(2800)
    assert np.array_equal(capped["train"], full["train"])
    for k in ("val", "test"):
        assert len(capped[k]) == dryrun.EVAL_ITEMS and set(capped[k]) <= set(full[k])


def test_memory_estimates_name_what_cannot_fit():
    gb, why = dina.step_memory_gb(dina.PROFILES["paper"], 10_000)
    assert 10 < gb < 20 and "factored" in why      # measured: 13.8 GB at batch 128 on the CPU
    sdpa, why = dina.step_memory_gb({**dina.PROFILES["paper"], "token_bias": True}, 10_000)
    assert sdpa > 30 and "token bias" in why
    assert dina.uses_factored_tower(dina.PROFILES["paper"], 10_000)
    assert not dina.uses_factored_tower(dina.PROFILES["quick"], 600)   # the stored quick runs: SDPA
    too_big = dict(dina.table1_rows_too_big("paper", limit_gb=24))
    assert {"ViT-MLP", "token-bias", "official configuration"} <= set(too_big)
    assert "DINA" not in too_big and "VGG-16-MLP" not in too_big
    assert not dina.table1_rows_too_big("smoke", limit_gb=24)


def test_paper_settings_train_through_the_factored_tower_with_sdpa_results():
    """The paper profile's DINA (N >= FACTORED_MIN_NEURONS) runs its neural tower in the factored
    form, which the smoke and quick twins (N < 1,000) never reach; scaled down (quick width,
    N = 1,000, batch 3) it must give SDPA's embeddings and gradients."""
    import torch

    from alignlib.experiments.dina.workflow import build_run_model

    settings = {**dina.PROFILES["paper"], "width": "quick", "stem_stride": 4}
    n = dina.FACTORED_MIN_NEURONS
    torch.manual_seed(0)
    model = build_run_model(settings, n).double()
    assert model.neural_tower.attention == "factored"
    assert build_run_model(settings, n - 1).neural_tower.attention != "factored"
    r = torch.randn(3, n, dtype=torch.float64)
    z_factored = model.encode_responses(r)
    g_factored = torch.autograd.grad(z_factored.square().sum() + z_factored.sum(),
                                     list(model.neural_tower.parameters()), allow_unused=True)
    model.neural_tower.attention = "sdpa"
    z_sdpa = model.encode_responses(r)
    g_sdpa = torch.autograd.grad(z_sdpa.square().sum() + z_sdpa.sum(),
                                 list(model.neural_tower.parameters()), allow_unused=True)
    torch.testing.assert_close(z_factored, z_sdpa)
    assert sum(g is not None for g in g_sdpa) >= 4
    for p, a, b in zip(model.neural_tower.parameters(), g_factored, g_sdpa):
        # a parameter the factored form never touches (the key bias: softmax ignores it) has zero
        # gradient under SDPA too
        zero = torch.zeros_like(p)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b)


def test_pipeline_dry_run_params(monkeypatch):
    from alignlib.runner.pipeline import load_pipeline

    monkeypatch.delenv(dryrun.ENV, raising=False)
    real = {r.output: r.parameters for r in load_pipeline().plan("paper")}
    quick = {r.output: r.parameters for r in load_pipeline().plan("quick")}
    monkeypatch.setenv(dryrun.ENV, "1")
    capped = {r.output: r.parameters for r in load_pipeline().plan("paper")}
    # written for the paper profile's sizes: another profile's dry run keeps its own loops
    assert {r.output: r.parameters for r in load_pipeline().plan("quick")} == quick
    assert real["dina/interpret_image"].get("n_boot") is None
    assert capped["dina/interpret_image"]["n_boot"] == 20
    assert "occlusion_stride" not in capped["dina/interpret_image"]      # the paper's grid
    assert capped["dina/train_M1"] == real["dina/train_M1"]


def test_fit_runs_one_batch_per_epoch_in_a_dry_run(monkeypatch):
    from alignlib.training import FitConfig, fit
    from alignlib.training.loop import Objective

    class Counting(Objective):
        steps = 0

        def make_optimizers(self, model):
            return [torch.optim.SGD(model.parameters(), lr=0.1)]

        def loss(self, model, batch):
            Counting.steps += 1
            return model(batch["x"]).pow(2).mean()

        def validate(self, model, data, device):
            with torch.no_grad():
                return {"val_loss": float(model(data["x"]).pow(2).mean()), "val_mean_rank": 1.0}

    data = {"x": torch.randn(40, 3)}
    for active, expected in ((False, 2 * 5), (True, 2 * dryrun.TRAIN_STEPS)):
        monkeypatch.setenv(dryrun.ENV, "1" if active else "0")
        Counting.steps = 0
        config = FitConfig(epochs=2, batch_size=8, patience=None, progress=False)
        fit(torch.nn.Linear(3, 1), Counting(), data, data, config)
        assert Counting.steps == expected


def test_banner_and_reproduce_command_say_dry_run(monkeypatch):
    from alignlib.report import provenance_markdown
    from alignlib.runner.present import reproduce_command

    monkeypatch.delenv(dryrun.ENV, raising=False)
    assert "dry run" not in provenance_markdown("paper", "twin").lower()
    assert "--dry-run" not in reproduce_command("dina/train", {"profile": "paper"})
    monkeypatch.setenv(dryrun.ENV, "1")
    banner = provenance_markdown("paper", "twin")
    assert banner.startswith("> **Profile:**") and "DRY RUN" in banner and "(**dry run**)" in banner
    assert "--dry-run" in reproduce_command("dina/train", {"profile": "paper"})


def test_ledger_ignores_dry_run_rows_outside_a_dry_run(monkeypatch, tmp_path):
    from alignlib.claims import Measurement, ledger, record

    monkeypatch.setenv("ALIGNLIB_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv(dryrun.ROOT_ENV, str(tmp_path))      # the dry run's results lie in its folder
    claim = "stringer2019.cvpca_alpha.natural"
    monkeypatch.setenv(dryrun.ENV, "1")
    rows = record("dina", "data", [Measurement(claim, 1.0, page="dina/data")])
    assert rows.dry_run.all()
    assert ledger(tmp_path).set_index("id").loc[claim, "ours"] == 1.0   # the dry run's own ledger
    monkeypatch.setenv(dryrun.ENV, "0")
    real = ledger(tmp_path).set_index("id").loc[claim]
    assert real.verdict == "not measured yet" and np.isnan(real.ours)
    record("dina", "data", [Measurement(claim, 2.0, page="dina/data")])   # a real row: no mark
    assert "dry_run" not in pd.read_csv(tmp_path / "dina" / "claims_data.csv").columns
    assert ledger(tmp_path).set_index("id").loc[claim, "ours"] == 2.0


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()} if root.exists() else {}


@pytest.fixture
def dry_area(monkeypatch, tmp_path):
    """A dry run's root under tmp; the whole environment is restored after the test (the command
    restores what it sets too: a leak would turn every later test into a dry run)."""
    from unittest import mock

    with mock.patch.dict(os.environ):
        for name in (*dryrun.folders(tmp_path), dryrun.ROOT_ENV, "ALIGNLIB_WORK_DIR"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALIGNLIB_STORE", "on")
        monkeypatch.setenv(dryrun.ROOT_ENV, str(tmp_path / "dry"))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        yield tmp_path / "dry"


def test_a_hand_set_switch_cannot_write_among_the_real_outputs(monkeypatch, tmp_path):
    """ALIGNLIB_DRY_RUN=1 without the command's folders: every output folder is refused; so is a
    dry-run folder that is the repository or lies among its real outputs. The switch is part of
    every page's cache key, so a dry-run page never passes for a real one."""
    from alignlib.paths import OutsideFolder, results_dir, runs_dir
    from alignlib.runner import cache
    from alignlib.runner.execute import default_executed_dir

    for name in ("ALIGNLIB_RUNS_DIR", "ALIGNLIB_RESULTS_DIR", "ALIGNLIB_EXECUTED_DIR",
                 dryrun.ROOT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(dryrun.ENV, "1")
    for folder in (runs_dir, results_dir, default_executed_dir):
        with pytest.raises(OutsideFolder, match="--dry-run"):
            folder()
    for bad in (REPO_ROOT, REPO_ROOT.parent, REPO_ROOT / "runs" / "x", REPO_ROOT / "book"):
        monkeypatch.setenv(dryrun.ROOT_ENV, str(bad))
        with pytest.raises(OutsideFolder, match="folder of its own"):
            dryrun.root()
    monkeypatch.setenv(dryrun.ROOT_ENV, str(tmp_path))
    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path / "runs"))
    assert runs_dir() == tmp_path / "runs"
    assert dryrun.ENV in cache.KEY_ENV


def test_dry_run_command_keeps_to_its_folders(dry_area, monkeypatch, capsys):
    """Two smoke pages as a dry run through the command line: they land in the dry run's folders,
    say "dry run" in their banner, train one batch, register their claims as dry-run rows, and leave
    the book's executed pages, runs, results and run store untouched; the store refuses the run."""
    from alignlib.runner import cli
    from alignlib.runner.cli import _dry_run_book_root
    from alignlib.training import store

    # runs/ is shared with other commands (a training in progress writes there): checked by name
    watched = {name: _tree(REPO_ROOT / name)
               for name in ("book/executed", "results", "book/store")}
    store_state = store.state_digest()
    assert cli.main(["run", "dina/train_M1", "--profile", "smoke", "--dry-run"]) == 0
    assert "dry run of the smoke profile" in capsys.readouterr().out
    for name, before in watched.items():
        assert _tree(REPO_ROOT / name) == before, f"the dry run touched {name}/"
    # the command restores the environment it changed: this process is not left in a dry run
    assert dryrun.ENV not in os.environ and os.environ["ALIGNLIB_STORE"] == "on"
    assert "ALIGNLIB_RUNS_DIR" not in os.environ
    assert store.state_digest() == store_state

    executed = dry_area / "book" / "executed" / "dina"
    for page in ("data", "train_M1"):
        nb = nbformat.read(executed / f"{page}.ipynb", as_version=4)
        text = json.dumps(nb.cells)
        assert "DRY RUN" in text and "(**dry run**)" in text, page
        assert "--dry-run" in text, f"{page}: its Reproduce command must say --dry-run"
    (run_dir,) = (dry_area / "runs" / "dina").glob("M1-*")
    assert not (REPO_ROOT / "runs" / "dina" / run_dir.name).exists()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["dry_run"] and info["epochs_run"] == 1
    assert info["split_sizes"]["test"] <= dryrun.EVAL_ITEMS
    claims = pd.read_csv(dry_area / "results" / "dina" / "claims_data.csv")
    assert claims.dry_run.all()
    with pytest.raises(store.StoreError, match="dry run"):
        store.add_run(run_dir, root=dry_area / "store")
    monkeypatch.delenv(dryrun.ROOT_ENV)          # the run no longer lies in the dry run's folder:
    with pytest.raises(store.StoreError, match="dry run"):          # marked in its run record
        store.add_run(run_dir, root=dry_area / "store")

    book = _dry_run_book_root(dry_area)    # the HTML build's source: the book's pages, its executed
    assert (book / "_toc.yml").exists() and (book / "book" / "intro.md").exists()
    assert not (book / "book" / "store").exists()
    assert (book / "book" / "executed" / "dina" / "train_M1.ipynb").exists()


def test_dry_run_cost_is_written_with_its_provenance(tmp_path):
    """A dry-run book records what it cost: each page's seconds (from the manifests, in execution
    order), the build, and the total with the peak memory, each row with its provenance; the
    benchmark page reads it back."""
    executed = tmp_path / "book" / "executed" / "dina"
    executed.mkdir(parents=True)
    for page, started, seconds in (("dina/train_M1", "2026-12-05T10:01:00+00:00", 150.0),
                                   ("dina/data", "2026-12-05T10:00:00+00:00", 60.0)):
        (executed / f"{page.split('/')[1]}.manifest.json").write_text(json.dumps(
            {"output": page, "started": started, "duration_s": seconds}))
    assert list(dryrun.page_seconds(tmp_path).page) == ["dina/data", "dina/train_M1"]
    path = dryrun.write_measurement("paper", 300.0, 15.1, 40.0, tmp_path, command="alignlib book")
    got = dryrun.read_measurement(path.parent)
    assert list(got.kind) == ["page", "page", "build", "total"]
    total = got[got.kind == "total"].iloc[0]
    assert total.seconds == 300.0 and total.peak_rss_gb == 15.1 and total.command == "alignlib book"
    assert {"machine", "threads", "torch", "commit", "date", "profile"} <= set(got.columns)
    assert dryrun.read_measurement(tmp_path / "nowhere") is None
    assert dryrun.peak_rss_gb() > 0.05
    head = dryrun.summary(got)
    assert head["minutes"] == 5.0 and head["peak_gb"] == 15.1 and head["n_pages"] == 2
    assert head["slowest_page"] == "dina/train_M1" and head["goal_met"]
