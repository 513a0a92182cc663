"""Tests for alignlib.data.stringer on small files written in the real (MATLAB struct) layout."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from alignlib.data.errors import DataFormatError
from alignlib.data.stringer import (IMAGE_FILES, SESSIONS, StringerSession, image_file_for,
                                    load_class_labels, load_session)

N_FILE, N_NEURONS, N_SPONT, RED = 12, 20, 60, 5
# image id (0-based) -> number of presentations; 10 of the file's 12 images are used
DESIGN = {**{i: 2 for i in range(8)}, 8: 3, 9: 1}


def _stat(n, red=None):
    stat = np.zeros((1, n), dtype=[("npix", "O"), ("redcell", "O")] if red is not None else [("npix", "O")])
    for i in range(n):
        stat[0, i]["npix"] = np.array([[50.0 + i]])
        if red is not None:
            stat[0, i]["redcell"] = np.array([[float(i in red)]])
    return stat


def write_session(folder: Path, design=DESIGN, n_gray=4, seed=0, istim_layout="col", red=(RED,), **override):
    """Write <folder>/session.mat and images.mat; return (session_path, images_path, raw dict)."""
    rng = np.random.default_rng(seed)
    ids = np.array([i for i, c in design.items() for _ in range(c)] + [N_FILE] * n_gray)  # gray = 12
    ids = ids[rng.permutation(len(ids))]
    loadings = rng.normal(size=(3, N_NEURONS))
    spont = (rng.normal(size=(N_SPONT, 3)) * [10, 6, 3]) @ loadings + 0.3 * rng.normal(size=(N_SPONT, N_NEURONS))
    spont += rng.normal(size=N_NEURONS) * 2
    resp = rng.normal(size=(len(ids), N_NEURONS)) + (rng.normal(size=(len(ids), 3)) * 8) @ loadings
    nan_row = int(np.flatnonzero(ids == 0)[0])
    resp[nan_row, 3] = np.nan
    istim = (ids + 1.0)[:, None]
    istim = {"col": istim, "row": istim.T, "flat": istim.ravel()}[istim_layout]
    imgs = rng.integers(0, 256, size=(68, 270, N_FILE), dtype=np.uint8)
    stim = {"resp": resp, "spont": spont, "istim": istim}
    top = {"stim": stim, "med": rng.uniform(0, 500, size=(N_NEURONS, 3)), "stat": _stat(N_NEURONS, red),
           "db": {"mouse_name": "M000000_TEST", "date": "2020-01-01"}}
    for key, value in override.items():  # e.g. resp=..., med=..., imgs=...
        (stim if key in ("resp", "spont", "istim") else top)[key] = value
    imgs = top.pop("imgs", imgs)
    top = {k: v for k, v in top.items() if v is not None}
    top["stim"] = {k: v for k, v in stim.items() if v is not None}
    sp, ip = folder / "session.mat", folder / "images.mat"
    scipy.io.savemat(sp, top)
    scipy.io.savemat(ip, {"imgs": imgs})
    return sp, ip, {"ids": ids, "resp": resp, "spont": spont, "imgs": imgs, "med": top.get("med"), "nan_row": nan_row}


@pytest.fixture
def session_files(tmp_path):
    return write_session(tmp_path)


def test_fixture_has_matlab_struct_layout(session_files):
    sp, ip, raw = session_files
    assert dict((n, (s, c)) for n, s, c in scipy.io.whosmat(sp))["stim"] == ((1, 1), "struct")
    dat = scipy.io.loadmat(sp)  # the access pattern of Stringer's notebook
    assert dat["stim"][0]["resp"][0].shape == (len(raw["ids"]), N_NEURONS)
    assert dat["stim"][0]["spont"][0].shape == (N_SPONT, N_NEURONS)
    istim = dat["stim"][0]["istim"][0].astype(np.int32)[:, 0] - 1
    assert istim.max() == N_FILE and dat["stat"].shape == (1, N_NEURONS)
    assert scipy.io.loadmat(ip)["imgs"].shape == (68, 270, N_FILE)


def _halves(resp, ids):
    out = {}
    for i in np.unique(ids):
        rows = np.flatnonzero(ids == i)  # time order
        if len(rows) >= 2:
            h = len(rows) // 2
            out[int(i)] = (resp[rows[:h]].mean(0), resp[rows[h:]].mean(0))
    return out


@pytest.mark.parametrize("layout", ["col", "row", "flat"])
def test_raw_halves_shapes_ids(tmp_path, layout):
    sp, ip, raw = write_session(tmp_path, istim_layout=layout)
    s = load_session(sp, ip, preprocess=False)
    assert isinstance(s, StringerSession) and not s.preprocessed
    np.testing.assert_array_equal(s.image_ids, np.arange(9))  # image 9 shown once: dropped
    assert s.image_ids.dtype == np.int64
    assert s.responses.shape == (9, N_NEURONS - 1, 2) and s.responses.dtype == np.float32
    assert s.images.shape == (9, 68, 270) and s.images.dtype == np.float32
    assert s.neuron_positions.shape == (N_NEURONS - 1, 3) and s.mean_response.shape == (9, N_NEURONS - 1)
    assert (s.n_images, s.n_neurons) == (9, N_NEURONS - 1)
    for k, i in enumerate(s.image_ids):
        np.testing.assert_array_equal(s.images[k], raw["imgs"][:, :, i].astype(np.float32))
    cells = np.arange(N_NEURONS) != RED
    np.testing.assert_allclose(s.neuron_positions, raw["med"][cells], rtol=1e-6)
    ref = _halves(np.nan_to_num(raw["resp"]), raw["ids"])
    for k, i in enumerate(s.image_ids):
        np.testing.assert_allclose(s.responses[k, :, 0], ref[i][0][cells], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.responses[k, :, 1], ref[i][1][cells], rtol=1e-5, atol=1e-5)
    m = s.meta
    assert m["n_presentations"] == len(raw["ids"]) and m["n_gray_presentations_dropped"] == 4
    assert m["n_nan_set_to_zero"] == 1 and m["n_images_dropped_fewer_than_2_repeats"] == 1
    assert m["n_red_cells_dropped"] == 1 and m["n_spont_pcs"] == 0 and len(m["session_sha256"]) == 64


def test_three_repeats_split_first_one_vs_last_two(session_files):
    sp, ip, raw = session_files
    s = load_session(sp, ip, preprocess=False, drop_red_cells=False)
    rows = np.flatnonzero(raw["ids"] == 8)
    k = int(np.flatnonzero(s.image_ids == 8)[0])
    np.testing.assert_allclose(s.responses[k, :, 0], raw["resp"][rows[0]], rtol=1e-5)
    np.testing.assert_allclose(s.responses[k, :, 1], raw["resp"][rows[1:]].mean(0), rtol=1e-5)
    assert s.n_neurons == N_NEURONS and s.meta["n_red_cells_dropped"] == 0


def _spont_pcs(spont, k):
    z = (spont - spont.mean(0)) / (spont.std(0) + 1e-6)
    return np.linalg.svd(z, full_matrices=False)[2][:k].T


def test_preprocess_matches_reference_and_removes_spont_pcs(session_files):
    sp, ip, raw = session_files
    s = load_session(sp, ip, n_spont_pcs=3, drop_red_cells=False)
    assert s.preprocessed and s.meta["n_spont_pcs"] == 3
    keep = raw["ids"] < N_FILE
    resp, ids, spont = np.nan_to_num(raw["resp"][keep]), raw["ids"][keep], raw["spont"]
    z = (resp - spont.mean(0)) / (spont.std(0) + 1e-6)
    v = _spont_pcs(spont, 3)
    z = z - (z @ v) @ v.T
    z = z - z.mean(0)
    ref = _halves(z, ids)
    for k, i in enumerate(s.image_ids):
        np.testing.assert_allclose(s.responses[k], np.stack(ref[i], -1), atol=2e-4)
    # every half is an average of rows orthogonal to the spont PCs: the projection must vanish ...
    scale = np.abs(s.responses).max()
    assert np.abs(np.einsum("inr,nk->ikr", s.responses, v)).max() < 1e-4 * scale
    # ... and would not without the PC removal (so this check can fail)
    s0 = load_session(sp, ip, n_spont_pcs=0, drop_red_cells=False)
    assert np.abs(np.einsum("inr,nk->ikr", s0.responses, v)).max() > 0.1 * np.abs(s0.responses).max()


def test_preprocess_mean_centres_each_neuron(tmp_path):
    sp, ip, _ = write_session(tmp_path, design={i: 2 for i in range(10)})  # nothing dropped
    s = load_session(sp, ip)
    assert s.meta["n_images_dropped_fewer_than_2_repeats"] == 0
    mean = s.mean_response.mean(0)
    assert np.abs(mean).max() < 1e-5 * np.abs(s.mean_response).max()
    raw = load_session(sp, ip, preprocess=False)
    assert np.abs(raw.mean_response.mean(0)).max() > 0.1  # the raw data are not centred


def test_no_stat_or_no_redcell_keeps_all_cells(tmp_path):
    sp, ip, _ = write_session(tmp_path, red=None)
    assert load_session(sp, ip, preprocess=False).n_neurons == N_NEURONS
    sp, ip, _ = write_session(tmp_path, stat=None)
    assert load_session(sp, ip, preprocess=False).n_neurons == N_NEURONS


# ---------------------------------------------------------------- bad inputs

def _raises(exc, path, fn):
    with pytest.raises(exc, match=re.escape(Path(path).name)) as info:
        fn()
    return str(info.value)


def test_missing_files(session_files, tmp_path):
    sp, ip, _ = session_files
    _raises(FileNotFoundError, tmp_path / "nope.mat", lambda: load_session(tmp_path / "nope.mat", ip))
    _raises(FileNotFoundError, tmp_path / "noimg.mat", lambda: load_session(sp, tmp_path / "noimg.mat"))


def test_not_a_mat_file_and_truncated(session_files, tmp_path):
    sp, ip, _ = session_files
    text = tmp_path / "notes.mat"
    text.write_text("this is not a MAT file\n" * 20)
    _raises(DataFormatError, text, lambda: load_session(text, ip))
    _raises(DataFormatError, text, lambda: load_session(sp, text))
    data = sp.read_bytes()
    cut = tmp_path / "cut.mat"
    cut.write_bytes(data[: len(data) // 2])
    _raises(DataFormatError, cut, lambda: load_session(cut, ip))
    idata = ip.read_bytes()
    icut = tmp_path / "icut.mat"
    icut.write_bytes(idata[: len(idata) // 2])
    _raises(DataFormatError, icut, lambda: load_session(sp, icut))


def test_missing_fields(tmp_path):
    sp = tmp_path / "nostim.mat"
    scipy.io.savemat(sp, {"med": np.zeros((3, 3))})
    ip = tmp_path / "images.mat"
    scipy.io.savemat(ip, {"imgs": np.zeros((68, 270, 2), np.uint8)})
    assert "'stim'" in _raises(DataFormatError, sp, lambda: load_session(sp, ip))
    for field in ("resp", "spont", "istim"):
        sp, ip, _ = write_session(tmp_path, **{field: None})
        assert field in _raises(DataFormatError, sp, lambda: load_session(sp, ip))
    sp, ip, _ = write_session(tmp_path, med=None)
    assert "med" in _raises(DataFormatError, sp, lambda: load_session(sp, ip))
    sp, _, _ = write_session(tmp_path)
    bad = tmp_path / "noimgs.mat"
    scipy.io.savemat(bad, {"images": np.zeros((68, 270, 2))})
    assert "imgs" in _raises(DataFormatError, bad, lambda: load_session(sp, bad))


def test_inconsistent_shapes(tmp_path):
    n_pres = sum(DESIGN.values()) + 4
    cases = {
        "istim": dict(istim=np.arange(1.0, n_pres)[:, None]),
        "spont": dict(spont=np.ones((N_SPONT, N_NEURONS + 1))),
        "med": dict(med=np.ones((N_NEURONS - 2, 3))),
    }
    for word, override in cases.items():
        sp, ip, _ = write_session(tmp_path, **override)
        assert word in _raises(DataFormatError, sp, lambda: load_session(sp, ip))


def test_ids_out_of_range_of_images_file(tmp_path):
    sp, ip, _ = write_session(tmp_path, imgs=np.zeros((68, 270, 9), np.uint8))  # id 9 >= 9
    assert "out of range" in _raises(DataFormatError, sp, lambda: load_session(sp, ip))
    sp, ip, _ = write_session(tmp_path, imgs=np.zeros((68, 270, 11), np.uint8))  # gray 12 > 11
    assert "out of range" in _raises(DataFormatError, ip, lambda: load_session(sp, ip))
    sp, ip, _ = write_session(tmp_path, imgs=np.zeros((68, 270, 12), np.uint8))  # real layout: gray = n
    assert load_session(sp, ip, preprocess=False).n_images == 9


def test_images_wrong_shape(tmp_path):
    for imgs in (np.zeros((68, 271, 12), np.uint8), np.zeros((68, 270), np.uint8),
                 np.zeros((12, 68, 270), np.uint8)):
        sp, ip, _ = write_session(tmp_path, imgs=imgs)
        assert "shape" in _raises(DataFormatError, ip, lambda: load_session(sp, ip))


def test_no_image_with_two_repeats(tmp_path):
    sp, ip, _ = write_session(tmp_path, design={i: 1 for i in range(10)})
    assert "twice" in _raises(DataFormatError, sp, lambda: load_session(sp, ip))


# ---------------------------------------------------------------- names and real label files

def test_session_names():
    assert len(SESSIONS["natimg2800"]) == 7 and len(SESSIONS["natimg2800_8D"]) == 6
    assert "natimg2800_M161025_MP030_2017-05-29" in SESSIONS["natimg2800"]
    assert "natimg2800_8D_M161025_MP030_2017-06-07" in SESSIONS["natimg2800_8D"]
    assert SESSIONS["natimg2800_white"] == []
    assert image_file_for(SESSIONS["natimg2800"][0]) == IMAGE_FILES["natimg2800"]
    assert image_file_for("natimg2800_8D_M161025_MP030_2017-06-07") == \
        "images_natimg2800_8D_M161025_MP030_2017-06-07.mat"


def _real_dir() -> Path:
    env = os.environ.get("ALIGNLIB_DATA_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "stringer2019"


@pytest.mark.parametrize("name,n_classes", [("stimuli_class_assignment.mat", 16),
                                            ("stimuli_class_assignment_confident.mat", 12)])
def test_real_class_labels(name, n_classes):
    path = _real_dir() / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    labels, names = load_class_labels(path)
    assert labels.shape == (2800,) and labels.dtype == np.int64
    assert len(names) == n_classes and names[0] == "unknown" and "birds" in names
    assert labels.min() == 0 and labels.max() == n_classes - 1


def test_class_labels_bad_file(tmp_path):
    bad = tmp_path / "labels.mat"
    scipy.io.savemat(bad, {"class_assignment": np.array([0, 5]), "class_names": np.array(["a", "b"], object)})
    assert "indices" in _raises(DataFormatError, bad, lambda: load_class_labels(bad))
    scipy.io.savemat(bad, {"class_assignment": np.array([0, 1])})
    assert "class_names" in _raises(DataFormatError, bad, lambda: load_class_labels(bad))


@pytest.mark.parametrize("shape", [(60, 20), (15, 40)])  # x.T @ x and x @ x.T Gram branches
def test_top_pcs_span_the_leading_singular_subspace(shape):
    from alignlib.data.stringer.loader import _top_pcs
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape) * np.linspace(3, 1, shape[1])
    v = _top_pcs(x, 5)
    ref = np.linalg.svd(x, full_matrices=False)[2][:5].T
    np.testing.assert_allclose(v.T @ v, np.eye(5), atol=1e-8)
    np.testing.assert_allclose(np.abs(v.T @ ref), np.eye(5), atol=1e-6)


def test_top_pcs_of_a_centred_block_with_fewer_timepoints_than_pcs():
    """k = t timepoints of a centred (z-scored) block: the last direction has zero variance and is
    dropped, so the columns stay orthonormal and the projection stays a projection."""
    from alignlib.data.stringer.loader import _top_pcs
    rng = np.random.default_rng(2)
    x = rng.normal(size=(15, 40))
    x -= x.mean(axis=0)
    v = _top_pcs(x, 15)
    assert v.shape == (40, 14)
    np.testing.assert_allclose(v.T @ v, np.eye(14), atol=1e-8)
    np.testing.assert_allclose(x - (x @ v) @ v.T, 0, atol=1e-8)   # the block lies in their span
