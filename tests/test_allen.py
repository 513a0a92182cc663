"""Allen natural-scenes loader: the stated seed-31 split is verified against the images (fixtures in the
real file format, built in tmp)."""
from __future__ import annotations

import numpy as np
import pytest

from alignlib.data.allen import (SIDE, SplitMismatch, kfold_splits, load_allen_ns118, stated_split)
from alignlib.data.errors import DataFormatError


def write_fixture(folder, n_cells=7, seed=0, corrupt=None):
    """118 random 31x31 scenes and responses saved as the preparation saves them (seed-31 permutation)."""
    rng = np.random.default_rng(seed)
    scenes = rng.integers(0, 256, size=(118, SIDE * SIDE)).astype(np.float64)
    responses = rng.normal(size=(118, n_cells))
    np.random.seed(31)
    p = np.random.permutation(118)
    files = {"all_input_scenes_118_961.npy": scenes,
             "Allen_train_input.npy": scenes[p[:100]], "Allen_test_input.npy": scenes[p[100:]],
             "Allen_train_output.npy": responses[p[:100]], "Allen_test_output.npy": responses[p[100:]]}
    if corrupt == "swap":          # two training rows in the wrong order
        x = files["Allen_train_input.npy"].copy()
        x[[3, 4]] = x[[4, 3]]
        files["Allen_train_input.npy"] = x
    if corrupt == "wrong_seed":    # a split from another permutation
        np.random.seed(30)
        q = np.random.permutation(118)
        files["Allen_train_input.npy"], files["Allen_test_input.npy"] = scenes[q[:100]], scenes[q[100:]]
    for name, a in files.items():
        np.save(folder / name, a)
    return scenes, responses


def test_loader_restores_scene_order(tmp_path):
    scenes, responses = write_fixture(tmp_path)
    data = load_allen_ns118(tmp_path, verify=False)
    assert data.images.shape == (118, SIDE, SIDE) and data.responses.shape == (118, 7)
    np.testing.assert_allclose(data.images.reshape(118, -1), scenes)
    np.testing.assert_allclose(data.responses, responses, rtol=1e-6)
    assert sorted(np.concatenate([data.split["train"], data.split["test"]]).tolist()) == list(range(118))


@pytest.mark.parametrize("corrupt", ["swap", "wrong_seed"])
def test_split_check_catches_a_wrong_split(tmp_path, corrupt):
    write_fixture(tmp_path, corrupt=corrupt)
    with pytest.raises(SplitMismatch, match="differ from the scenes"):
        load_allen_ns118(tmp_path, verify=False)


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="all_input_scenes_118_961.npy"):
        load_allen_ns118(tmp_path, verify=False)
    write_fixture(tmp_path)
    np.save(tmp_path / "Allen_test_output.npy", np.zeros((17, 7)))
    with pytest.raises(DataFormatError, match=r"Allen_test_output.npy: shape \(17, 7\).*\(18, 961\)"):
        load_allen_ns118(tmp_path, verify=False)


def test_stated_split_keeps_global_numpy_state():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    s = stated_split()
    assert np.random.rand() == expected
    assert len(s["train"]) == 100 and len(s["test"]) == 18


def test_kfold_tests_every_scene_once():
    folds = kfold_splits(118, 5, seed=1)
    tested = np.concatenate([f["test"] for f in folds])
    assert sorted(tested.tolist()) == list(range(118))
    for f in folds:
        assert not set(f["train"]) & set(f["val"]) and not set(f["train"]) & set(f["test"])
        assert len(f["val"]) >= 2
