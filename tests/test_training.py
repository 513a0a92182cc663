"""The shared training package: splits, normalisation, objectives, the fit loop (early stopping, tracked
selections, resume after SIGKILL), checkpoints and run identity.

Models use ``input_size=(16, 64)`` (4 x 16 maps, 64-d embeddings) and narrow towers, so the file runs
in seconds on a CPU; the geometry of the paper model is tested in ``test_models.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignlib.losses.info_nce import info_nce
from alignlib.metrics.retrieval import chance_topk, similarity_matrix, topk_accuracy
from alignlib.models.dina import build_dina
from alignlib.repro import seed_everything
from alignlib.training import (ContrastiveObjective, FitConfig, OptimizerSpec, ResponseNormalizer, embed, fit,
                               load_model_checkpoint, make_optimizers, prepare_pairs, save_model_checkpoint,
                               split_indices)
from alignlib.training.runs import MixedConfigurations, RunSpec, check_comparable, load_spec

N_NEURONS = 40


def synthetic_pairs(n: int, n_neurons: int = N_NEURONS, n_factors: int = 8, size=(20, 80), seed: int = 0):
    """Smooth low-rank images (0..255) and responses = random linear function of the pixels + noise."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.standard_normal((n_factors, 1, 4, 8)).astype(np.float32))
    basis = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[:, 0].numpy()
    z = rng.standard_normal((n, n_factors)).astype(np.float32)
    images = np.clip(128 + 40 * np.einsum("nk,khw->nhw", z, basis), 0, 255).astype(np.float32)
    w = rng.standard_normal((n_neurons, size[0] * size[1])).astype(np.float32) / np.sqrt(size[0] * size[1])
    responses = (images.reshape(n, -1) - 128) @ w.T
    responses += 0.1 * responses.std() * rng.standard_normal(responses.shape).astype(np.float32)
    return images, responses.astype(np.float32)


def tiny_model(seed: int = 0, n_neurons: int = N_NEURONS):
    seed_everything(seed)
    return build_dina(n_neurons, "quick", input_size=(16, 64), dims=(8, 16))


def dina_objective(lr_image=1e-3, lr_neural=1e-3) -> ContrastiveObjective:
    return ContrastiveObjective([OptimizerSpec("image_tower", "adamw", lr_image, {"weight_decay": 5e-5}),
                                 OptimizerSpec("neural_tower", "rmsprop", lr_neural, {"alpha": 0.9})])


def fast_config(**kw) -> FitConfig:
    base = dict(epochs=3, batch_size=32, patience=None, progress=False, seed=0, device="cpu")
    base.update(kw)
    return FitConfig(**base)


def train(model, images, responses, splits, config, **kw):
    data, norm, splits = prepare_pairs(images, responses, splits)
    return fit(model, dina_objective(), data["train"], data["val"], config, **kw), norm


def _no_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ------------------------------------------------------------------------------ splits/normaliser
def test_split_indices_disjoint_cover_and_seeded():
    s = split_indices(2800, test_fraction=0.1, val_fraction=0.1, seed=3)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (2240, 280, 280)
    np.testing.assert_array_equal(np.sort(np.concatenate(list(s.values()))), np.arange(2800))
    again = split_indices(2800, 0.1, 0.1, seed=3)
    for k in s:
        np.testing.assert_array_equal(s[k], again[k])
    assert not np.array_equal(s["test"], split_indices(2800, 0.1, 0.1, seed=4)["test"])
    small = split_indices(7, 0.1, 0.1)
    assert len(small["test"]) == len(small["val"]) == 1
    with pytest.raises(ValueError):
        split_indices(3, 0.4, 0.4)


def test_response_normalizer_uses_training_rows_only():
    rng = np.random.default_rng(0)
    r = rng.normal(5.0, 3.0, size=(50, 4)).astype(np.float32)
    r[:, 3] = 2.0  # constant neuron
    train_idx = np.arange(40)
    norm = ResponseNormalizer().fit(r[train_idx])
    np.testing.assert_allclose(norm.mean, r[train_idx].mean(0), rtol=1e-5)
    assert norm.std[3] == 1.0
    out = norm.transform(r)
    np.testing.assert_allclose(out[train_idx, :3].mean(0), 0, atol=1e-5)
    assert not np.allclose(out[40:, :3].mean(0), 0, atol=1e-3)  # held-out rows are not re-centred
    clone = ResponseNormalizer.from_state_dict({k: torch.from_numpy(v) for k, v in norm.state_dict().items()})
    np.testing.assert_array_equal(clone.transform(r), out)
    with pytest.raises(ValueError):
        norm.transform(r[:, :3])
    # prepare_pairs fits on the train split: changing a test response changes nothing else
    images, responses = synthetic_pairs(30)
    splits = split_indices(30, seed=0)
    _, n1, _ = prepare_pairs(images, responses, splits)
    responses[splits["test"]] += 100.0
    _, n2, _ = prepare_pairs(images, responses, splits)
    np.testing.assert_array_equal(n1.mean, n2.mean)


# ------------------------------------------------------------------------------ objectives
def test_dina_optimisers_and_one_step_reduces_loss():
    images, responses = synthetic_pairs(16)
    model = tiny_model()
    from alignlib.training import prepare_images
    x = prepare_images(images)
    r = torch.from_numpy(ResponseNormalizer().fit_transform(responses))
    obj = dina_objective(3e-4, 5e-5)
    opts = obj.make_optimizers(model)
    assert isinstance(opts[0], torch.optim.AdamW) and isinstance(opts[1], torch.optim.RMSprop)
    assert opts[0].defaults["lr"] == 3e-4 and opts[1].defaults["alpha"] == 0.9
    model.train()
    before = obj.loss(model, {"images": x, "responses": r})
    for o in opts:
        o.zero_grad()
    before.backward()
    for o in opts:
        o.step()
    with torch.no_grad():
        after = float(info_nce(*model(x, r), temperature=0.01))
    assert after < 0.95 * float(before.detach())


def test_optimisers_must_cover_every_parameter():
    model = tiny_model()
    with pytest.raises(ValueError, match="outside"):
        make_optimizers(model, [OptimizerSpec("image_tower", "adamw", 1e-3)])
    with pytest.raises(ValueError, match="another optimiser"):
        make_optimizers(model, [OptimizerSpec("*", "adamw", 1e-3), OptimizerSpec("image_tower", "sgd", 1e-3)])
    assert len(make_optimizers(model, [OptimizerSpec("*", "adam", 1e-3)])) == 1  # VNA-style: one optimiser


@pytest.mark.parametrize("tower", ["neural_tower", "image_tower"])
def test_validation_metrics_score_a_collapsed_model_at_chance(tower):
    """A model whose neural (or image) tower ignores its input scores chance on the validation retrieval.
    A collapsed image tower makes every candidate tie; a collapsed neural tower gives every query one ranking."""
    images, responses = synthetic_pairs(40)
    model = tiny_model()
    with torch.no_grad():
        if tower == "neural_tower":
            for p in model.neural_tower.parameters():
                p.zero_()
            model.neural_tower.mlp[-1].bias.fill_(1.0)   # every response -> the same map
        else:
            for p in model.image_tower.head[-1].parameters():
                p.zero_()
            model.image_tower.head[-1].bias.fill_(1.0)   # every image -> the same map
    from alignlib.training import prepare_images
    m = dina_objective().validate(model, {"images": prepare_images(images), "responses": torch.from_numpy(responses)},
                                  torch.device("cpu"))
    assert m["val_top1"] == pytest.approx(1 / 40) and m["val_top10"] == pytest.approx(10 / 40)
    assert m["val_mean_rank"] == pytest.approx((40 + 1) / 2)


# ------------------------------------------------------------------------------ fit loop
def test_seeded_fit_is_reproducible():
    images, responses = synthetic_pairs(60)
    splits = split_indices(60, seed=0)
    out = []
    for _ in range(2):
        model = tiny_model(seed=1)
        res, _ = train(model, images, responses, splits, fast_config(epochs=2, seed=5))
        out.append((_no_seconds(res.history), {k: v.clone() for k, v in model.state_dict().items()}))
    assert out[0][0] == out[1][0]
    for k in out[0][1]:
        torch.testing.assert_close(out[0][1][k], out[1][1][k], rtol=0, atol=0)


def test_early_stopping_restores_best_epoch_and_tracks_other_criteria():
    """Validation pairs are deliberately mismatched (responses rolled among val items), so learning the
    true relation makes validation WORSE after a point."""
    images, responses = synthetic_pairs(120, seed=1)
    splits = split_indices(120, seed=0)
    va = splits["val"]
    responses = responses.copy()
    responses[va] = responses[np.roll(va, 1)]
    snapshots = {}

    def keep(epoch, model, record):
        snapshots[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model = tiny_model()
    res, _ = train(model, images, responses, splits, fast_config(epochs=25, patience=3, select="val_loss",
                                                                 track=("val_mean_rank",)), epoch_callback=keep)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == 1 + int(np.argmin(losses))
    assert res.stopped_early and res.epochs_run == res.best_epoch + 3 < 25
    final = model.state_dict()
    for k, v in snapshots[res.best_epoch].items():
        torch.testing.assert_close(final[k], v, rtol=0, atol=0)
    # the tracked criterion's epoch is the best mean rank within its own patience window
    ranks = [h["val_mean_rank"] for h in res.history]
    sel = res.selections["val_mean_rank"]
    assert ranks[sel.epoch - 1] == min(ranks[:sel.epoch + 3] if sel.complete else ranks)
    for k, v in snapshots[sel.epoch].items():
        torch.testing.assert_close(res.best_states["val_mean_rank"][k], v, rtol=0, atol=0)


def test_tracked_selection_equals_a_run_that_selects_on_it():
    images, responses = synthetic_pairs(100, seed=3)
    splits = split_indices(100, seed=0)
    a, b = tiny_model(), tiny_model()
    ra, _ = train(a, images, responses, splits, fast_config(epochs=8, patience=2, select="val_top1",
                                                            track=("val_loss",)))
    rb, _ = train(b, images, responses, splits, fast_config(epochs=8, patience=2, select="val_loss"))
    if ra.selections["val_loss"].complete:
        assert ra.selections["val_loss"].epoch == rb.best_epoch
        for k, v in b.state_dict().items():
            torch.testing.assert_close(ra.best_states["val_loss"][k], v, rtol=0, atol=0)


_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_training import synthetic_pairs, tiny_model, dina_objective
    from alignlib.training import FitConfig, fit, prepare_pairs, split_indices
    kill_at, ckpt, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    images, responses = synthetic_pairs(80, seed=4)
    data, _, _ = prepare_pairs(images, responses, split_indices(80, seed=0))
    model = tiny_model(seed=2)
    def maybe_die(epoch, model, record):
        if epoch == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    cfg = FitConfig(epochs=6, batch_size=16, patience=None, progress=False, seed=7, device="cpu")
    res = fit(model, dina_objective(), data["train"], data["val"], cfg, checkpoint_dir=ckpt,
              identity={{"test": 1}}, epoch_callback=maybe_die)
    torch.save({{"history": [{{k: v for k, v in h.items() if k != "seconds"}} for h in res.history],
                "state": model.state_dict(), "resumed_from": res.resumed_from}}, out)
""")


@pytest.mark.slow
def test_sigkill_and_resume_gives_the_uninterrupted_numbers(tmp_path):
    from pathlib import Path

    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(Path(__file__).parent)))

    def child(kill_at, ckpt, out):
        return subprocess.run([sys.executable, str(script), str(kill_at), str(ckpt), str(out)],
                              capture_output=True, text=True, timeout=300)

    ref = child(0, tmp_path / "ref", tmp_path / "ref.pt")
    assert ref.returncode == 0, ref.stderr
    killed = child(4, tmp_path / "run", tmp_path / "run.pt")
    assert killed.returncode == -9, killed.stderr          # really killed by SIGKILL, after epoch 4's step
    assert not (tmp_path / "run.pt").exists()
    resumed = child(0, tmp_path / "run", tmp_path / "run.pt")
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "ref.pt", weights_only=True)
    b = torch.load(tmp_path / "run.pt", weights_only=True)
    assert b["resumed_from"] == 3 and a["resumed_from"] == 0   # epoch 4 was lost and replayed
    assert a["history"] == b["history"]
    for k, v in a["state"].items():
        torch.testing.assert_close(b["state"][k], v, rtol=0, atol=0)
    # another configuration may not resume from this directory
    with pytest.raises(ValueError, match="another configuration"):
        images, responses = synthetic_pairs(80, seed=4)
        data, _, _ = prepare_pairs(images, responses, split_indices(80, seed=0))
        fit(tiny_model(), dina_objective(), data["train"], data["val"], fast_config(), checkpoint_dir=tmp_path / "run",
            identity={"test": 2})


# ------------------------------------------------------------------------------ checkpoints
def test_checkpoint_weights_only_and_registry_rebuild(tmp_path):
    model = tiny_model()
    save_model_checkpoint(tmp_path / "c.pt", model, "dina", model.build_kwargs, epoch=3)
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    assert raw["epoch"] == 3 and not (tmp_path / "c.pt.tmp").exists()
    rebuilt = load_model_checkpoint(tmp_path / "c.pt")["model"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[k], v, rtol=0, atol=0)
    other = tiny_model(seed=9)
    load_model_checkpoint(tmp_path / "c.pt", other)
    torch.testing.assert_close(other.state_dict()["neural_tower.token_weight"],
                               model.state_dict()["neural_tower.token_weight"])
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an alignlib"):
        load_model_checkpoint(tmp_path / "bad.pt")


# ------------------------------------------------------------------------------ run identity
def test_run_spec_hash_names_configurations(tmp_path):
    a = RunSpec("dina", "M1", {"fit": {"epochs": 30, "lr": 1e-3}, "data": {"sha": "x"}})
    same = RunSpec("dina", "M1", {"data": {"sha": "x"}, "fit": {"lr": 1e-3, "epochs": 30}})
    b = RunSpec("dina", "M1", {"fit": {"epochs": 31, "lr": 1e-3}, "data": {"sha": "x"}})
    assert a.key == same.key and a.key != b.key and a.directory(tmp_path) != b.directory(tmp_path)
    assert a.name.startswith("M1-") and len(a.key) == 10
    a.write(tmp_path / a.name)
    assert load_spec(tmp_path / a.name) == a
    with pytest.raises(ValueError, match="another configuration"):
        b.write(tmp_path / a.name)
    with pytest.raises(ValueError):
        RunSpec("dina", "M1/../x", {})
    other_mouse = RunSpec("dina", "M2", {"fit": {"epochs": 30, "lr": 1e-3}, "data": {"sha": "y"}})
    check_comparable([a, other_mouse])              # differ only in data: one row
    with pytest.raises(MixedConfigurations, match="fit.epochs"):
        check_comparable([a, other_mouse, b])


# ------------------------------------------------------------------------------ end to end
def test_end_to_end_retrieval_far_above_chance():
    n = 200
    images, responses = synthetic_pairs(n, seed=2)
    splits = split_indices(n, seed=0)
    model = tiny_model()
    res, norm = train(model, images, responses, splits, fast_config(epochs=12, patience=5))
    te = splits["test"]
    z_img, z_neu, m_img, m_neu = embed(model, images[te], responses[te], normalizer=norm, return_maps=True)
    assert z_img.shape == z_neu.shape == (len(te), 64) and m_img.shape == (len(te), 4, 16)
    np.testing.assert_allclose(np.linalg.norm(z_neu, axis=1), 1, rtol=1e-5)
    acc = topk_accuracy(similarity_matrix(z_neu, z_img), ks=(1, 5))
    assert acc[1] >= 10 * chance_topk(len(te), 1), acc  # chance is 1/20
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_kill_just_before_the_commit_point_keeps_every_best_epoch(tmp_path, monkeypatch):
    """Die after an epoch's best-weights files are written but before fit_state.pt commits that epoch: the
    resumed run must still find the committed best epochs' weights and end like an uninterrupted run."""
    import alignlib.training.loop as loop

    images, responses = synthetic_pairs(80, seed=4)
    data, _, _ = prepare_pairs(images, responses, split_indices(80, seed=0))
    cfg = fast_config(epochs=5, batch_size=16, track=("val_loss", "val_top1"))
    ref_model = tiny_model(seed=2)
    ref = fit(ref_model, dina_objective(), data["train"], data["val"], cfg)

    real_save, calls = loop.atomic_save, {"n": 0}

    def dying_save(obj, path):
        if path.name == loop.FIT_STATE and len(obj["history"]) == 3:
            raise KeyboardInterrupt("killed before the commit of epoch 3")
        return real_save(obj, path)

    monkeypatch.setattr(loop, "atomic_save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(seed=2), dina_objective(), data["train"], data["val"], cfg, checkpoint_dir=tmp_path)
    monkeypatch.setattr(loop, "atomic_save", real_save)
    model = tiny_model(seed=2)
    res = fit(model, dina_objective(), data["train"], data["val"], cfg, checkpoint_dir=tmp_path)
    assert res.resumed_from == 2
    assert _no_seconds(res.history) == _no_seconds(ref.history)
    assert {c: s.epoch for c, s in res.selections.items()} == {c: s.epoch for c, s in ref.selections.items()}
    for k, v in ref_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    kept = sorted(p.name for p in tmp_path.glob("best_*.pt"))
    assert kept == sorted(f"best_{c}_e{s.epoch}.pt" for c, s in res.selections.items())
