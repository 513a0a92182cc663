"""Training loop: splits, normalisation, a step, early stopping, checkpoints, end to end.

Models here use ``input_size=(16, 64)`` (4 x 16 maps, 64-d embeddings) and narrow towers so
the whole file runs in seconds on a CPU; the geometry of the paper model is tested in
``test_models.py``.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignlib.losses.info_nce import info_nce
from alignlib.metrics.retrieval import chance_topk, similarity_matrix, topk_accuracy
from alignlib.models.dina import build_dina
from alignlib.models.dsnet import standardize_images
from alignlib.repro import seed_everything
from alignlib.train import (ResponseNormalizer, TrainConfig, embed, load_checkpoint, make_optimizers,
                            split_indices, train_dina, train_step)

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


def fast_config(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=32, lr_image=1e-3, lr_neural=1e-3, patience=None, progress=False, seed=0,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------ splits/normaliser
def test_split_indices_disjoint_cover_and_seeded():
    s = split_indices(2800, test_fraction=0.1, val_fraction=0.1, seed=3)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (2240, 280, 280)
    allidx = np.concatenate([s["train"], s["val"], s["test"]])
    np.testing.assert_array_equal(np.sort(allidx), np.arange(2800))
    again = split_indices(2800, 0.1, 0.1, seed=3)
    for k in s:
        np.testing.assert_array_equal(s[k], again[k])
    assert not np.array_equal(s["test"], split_indices(2800, 0.1, 0.1, seed=4)["test"])
    small = split_indices(7, 0.1, 0.1)
    assert len(small["test"]) == len(small["val"]) == 1
    with pytest.raises(ValueError):
        split_indices(3, 0.4, 0.4)


def test_response_normalizer_uses_given_rows_and_roundtrips():
    rng = np.random.default_rng(0)
    r = rng.normal(5.0, 3.0, size=(50, 4)).astype(np.float32)
    r[:, 3] = 2.0  # constant neuron
    train = np.arange(40)
    norm = ResponseNormalizer().fit(r[train])
    np.testing.assert_allclose(norm.mean, r[train].mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std[:3], r[train, :3].std(0), rtol=1e-5)
    assert norm.std[3] == 1.0
    out = norm.transform(r)
    np.testing.assert_allclose(out[train, :3].mean(0), 0, atol=1e-5)
    assert not np.allclose(out[40:, :3].mean(0), 0, atol=1e-3)  # held-out rows are not re-centred
    torch.testing.assert_close(norm.transform(torch.from_numpy(r)), torch.from_numpy(out))
    clone = ResponseNormalizer.from_state_dict({k: torch.from_numpy(v) for k, v in norm.state_dict().items()})
    np.testing.assert_array_equal(clone.transform(r), out)
    with pytest.raises(ValueError):
        norm.transform(r[:, :3])


# ------------------------------------------------------------------------------ training
def test_one_training_step_reduces_loss():
    images, responses = synthetic_pairs(16)
    model = tiny_model()
    x = standardize_images(torch.from_numpy(images))
    r = torch.from_numpy(ResponseNormalizer().fit_transform(responses))
    opts = make_optimizers(model, TrainConfig())  # paper optimisers and learning rates
    assert isinstance(opts[0], torch.optim.AdamW) and isinstance(opts[1], torch.optim.RMSprop)
    assert opts[0].defaults["lr"] == 3e-4 and opts[0].defaults["weight_decay"] == 5e-5
    assert opts[1].defaults["lr"] == 5e-5 and opts[1].defaults["alpha"] == 0.9
    model.train()
    before = train_step(model, x, r, opts, temperature=0.01)
    with torch.no_grad():  # same batch, same (train-mode) batch-norm statistics
        after = float(info_nce(*model(x, r), temperature=0.01))
    assert after < 0.95 * before


def test_seeded_training_is_reproducible():
    images, responses = synthetic_pairs(60)
    splits = split_indices(60, seed=0)
    runs = []
    for _ in range(2):
        model = tiny_model(seed=1)
        res = train_dina(model, images, responses, splits, fast_config(epochs=2, seed=5))
        runs.append(([{k: v for k, v in h.items() if k != "seconds"} for h in res.history],
                     {k: v.clone() for k, v in model.state_dict().items()}))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        torch.testing.assert_close(runs[0][1][k], runs[1][1][k], rtol=0, atol=0)


def test_early_stopping_restores_best_epoch():
    """Validation pairs are deliberately mismatched (responses rolled among val items), so
    learning the true image->response relation makes the val loss WORSE after a point."""
    images, responses = synthetic_pairs(120, seed=1)
    splits = split_indices(120, seed=0)
    va = splits["val"]
    responses = responses.copy()
    responses[va] = responses[np.roll(va, 1)]
    snapshots = {}

    def keep(epoch, model, record):
        snapshots[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model = tiny_model()
    res = train_dina(model, images, responses, splits, fast_config(epochs=25, patience=3), epoch_callback=keep)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == 1 + int(np.argmin(losses))
    assert res.best_val_loss == min(losses)
    assert res.stopped_early and res.epochs_run == res.best_epoch + 3 < 25
    assert losses[-1] > res.best_val_loss
    final = model.state_dict()
    for k, v in snapshots[res.best_epoch].items():
        torch.testing.assert_close(final[k], v, rtol=0, atol=0)
    last = snapshots[res.epochs_run]
    assert any(not torch.equal(last[k], final[k]) for k in final if final[k].is_floating_point())


def test_checkpoint_files_and_weights_only_load(tmp_path):
    images, responses = synthetic_pairs(60)
    splits = split_indices(60, seed=0)
    model = tiny_model()
    res = train_dina(model, images, responses, splits, fast_config(epochs=2), run_dir=tmp_path)
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert raw["best_epoch"] == res.best_epoch and len(raw["history"]) == 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(raw["model_state"][k], v, rtol=0, atol=0)
    # into a given model
    other = tiny_model(seed=9)
    ck = load_checkpoint(tmp_path / "checkpoint.pt", other)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v, rtol=0, atol=0)
    np.testing.assert_array_equal(ck["normalizer"].mean, res.normalizer.mean)
    assert ck["config"] == res.config
    np.testing.assert_array_equal(ck["splits"]["test"], splits["test"])
    # rebuilt from build_kwargs
    rebuilt = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[k], v, rtol=0, atol=0)
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["train_config"]["lr_image"] == 1e-3 and cfg["split_sizes"]["test"] == 6


def test_end_to_end_retrieval_far_above_chance():
    n = 200
    images, responses = synthetic_pairs(n, seed=2)
    splits = split_indices(n, seed=0)
    model = tiny_model()
    res = train_dina(model, images, responses, splits, fast_config(epochs=12, patience=5))
    te = splits["test"]
    z_img, z_neu, m_img, m_neu = embed(model, images[te], responses[te], normalizer=res.normalizer,
                                       return_maps=True)
    assert z_img.shape == z_neu.shape == (len(te), 64) and m_img.shape == (len(te), 4, 16)
    np.testing.assert_allclose(np.linalg.norm(z_neu, axis=1), 1, rtol=1e-5)
    acc = topk_accuracy(similarity_matrix(z_neu, z_img), ks=(1, 5))
    assert acc[1] >= 10 * chance_topk(len(te), 1), acc  # chance is 1/20
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
