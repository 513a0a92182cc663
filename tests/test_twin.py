"""The Stringer digital twin: real file format (read by the real loader), ground truth, determinism."""
import numpy as np
import pytest
import scipy.io

from alignlib.data import stringer
from alignlib.data import twin as T
from alignlib.data.twin import stringer2019
from alignlib.data.twin.stimuli import MIX_KINDS, stimulus_kind
from alignlib.interpret.spectra import cvpca_spectrum

# tiny, with strong signals so that per-neuron checks are robust at 60 images
TINY = dict(n_images=60, n_neurons=80, n_spont_timepoints=100, n_reference_images=60,
            gain_median=3.0, gain_log_sd=0.3)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    out = tmp_path_factory.mktemp("twin")
    return T.generate_twin(out, T.TwinConfig(**TINY), progress=False)


def test_manifest_lists_every_file(twin):
    assert [m.label for m in twin.mice] == ["M1", "M2", "M3", "M4", "W1", "W2", "D1", "D2"]
    assert {m.stimset for m in twin.mice} == {"natimg2800", "natimg2800_white", "natimg2800_8D"}
    for m in twin.mice:
        assert m.session_file == f"{m.stimset}_{m.mouse}_{m.date}.mat"
        assert m.images_file == stringer.image_file_for(m.session_file[:-4])
        for f in (m.session_file, m.images_file, m.groundtruth_file):
            assert f in twin.sha256 and (twin.out_dir / f).is_file()
    again = T.load_manifest(twin.out_dir)
    assert again.mice == twin.mice and again.sha256 == twin.sha256
    assert T.TwinConfig.from_dict(again.config) == T.TwinConfig(**TINY)
    assert twin.source_images and set(twin.source_images) <= set(T.PHOTO_SOURCES)
    assert len(twin.image_sources) == 60 and again.image_sources == twin.image_sources
    assert {stimulus_kind(s) for s in twin.image_sources} == set(MIX_KINDS)


def test_raw_file_layout(twin):
    m = twin.mouse("M1")
    dat = scipy.io.loadmat(twin.out_dir / m.session_file)
    resp, spont = dat["stim"][0]["resp"][0], dat["stim"][0]["spont"][0]
    istim = dat["stim"][0]["istim"][0]
    assert istim.shape == (resp.shape[0], 1) and istim.dtype == np.float64
    assert resp.shape[1] == spont.shape[1] == 80 and spont.shape[0] == 100
    assert dat["med"].shape == (80, 3) and dat["stat"].shape == (80, 1)
    assert dat["stat"][0]["npix"][0].item() > 0
    assert str(dat["db"][0]["mouse_name"][0][0]) == m.mouse
    counts = np.bincount(istim[:, 0].astype(int), minlength=62)[1:]
    assert counts[:60].min() >= 2 and counts[60] > 0          # gray screen = n_images + 1
    assert resp.min() >= 0 and spont.min() >= 0
    imgs = scipy.io.loadmat(twin.out_dir / m.images_file)["imgs"]
    assert imgs.shape == (68, 270, 60) and imgs.dtype == np.uint8
    assert abs(imgs.mean() - 128) < 10


def test_real_loader_reads_every_session(twin):
    for m in twin.mice:
        s = stringer.load_session(twin.out_dir / m.session_file, twin.out_dir / m.images_file)
        assert s.responses.shape == (60, 80, 2) and s.images.shape == (60, 68, 270)
        np.testing.assert_array_equal(s.image_ids, np.arange(60))
        assert np.isfinite(s.responses).all()
        med = scipy.io.loadmat(twin.out_dir / m.session_file)["med"]
        np.testing.assert_allclose(s.neuron_positions, med, rtol=1e-6)


def test_groundtruth_matches_loaded_data(twin):
    m = twin.mouse("M1")
    gt = T.load_groundtruth(twin.out_dir / m.groundtruth_file)
    s = stringer.load_session(twin.out_dir / m.session_file, twin.out_dir / m.images_file, preprocess=False)
    mu = gt["mean_response"]
    assert mu.shape == (60, 80) and str(gt["label"]) == "M1"
    # the model reproduces the stored noise-free responses from the parameters alone
    np.testing.assert_allclose(T.model_response(gt, s.images), mu, rtol=1e-4, atol=1e-5)
    # measured mean responses track the planted ones for the high-SNR neurons
    snr = gt["gain"] / gt["noise_sd"]
    best = np.argsort(snr)[-20:]
    r = [np.corrcoef(s.mean_response[:, i], mu[:, i])[0, 1] for i in best]
    assert np.median(r) > 0.8
    # a simple cell is the rectified projection onto its receptive-field map
    i = int(np.flatnonzero(~gt["is_complex"])[0])
    rf = T.receptive_field_map(gt, i)
    assert rf.shape == (68, 270) and abs(rf.sum()) < 1e-6 and np.isclose((rf ** 2).sum(), 1.0)
    z = ((s.images - 128) / 128).reshape(60, -1) @ rf.ravel()
    np.testing.assert_allclose(np.maximum(z, 0) * gt["gain"][i] / gt["drive_scale"][i], mu[:, i],
                               rtol=1e-3, atol=1e-4)
    j = int(np.flatnonzero(gt["is_complex"])[0])
    pair = T.receptive_field_map(gt, j, quadrature=True)
    assert pair.shape == (2, 68, 270) and abs((pair[0] * pair[1]).sum()) < 0.1


def test_same_seed_same_files(twin, tmp_path):
    few = T.TwinConfig(**TINY, n_natural_mice=1, n_whitened_mice=1, n_8d_mice=1)
    a = T.generate_twin(tmp_path / "a", few, progress=False)
    b = T.generate_twin(tmp_path / "b", few, progress=False)
    assert a.sha256 == b.sha256                       # byte-identical files
    # each mouse has its own random stream: M1 does not depend on how many other mice there are
    m1 = twin.mouse("M1")
    for f in ("images_natimg2800_all.mat", m1.session_file, m1.groundtruth_file):
        assert a.sha256[f] == twin.sha256[f]
    w_a = T.load_groundtruth(tmp_path / "a" / a.mouse("W1").groundtruth_file)
    w_twin = T.load_groundtruth(twin.groundtruth_path("W1"))
    np.testing.assert_array_equal(w_a["mean_response"], w_twin["mean_response"])
    assert twin.sha256[m1.session_file] != twin.sha256[twin.mouse("M2").session_file]
    # an existing twin with the same config is reused, not rewritten
    mtime = (tmp_path / "a" / a.mice[0].session_file).stat().st_mtime_ns
    T.generate_twin(tmp_path / "a", few, progress=False)
    assert (tmp_path / "a" / a.mice[0].session_file).stat().st_mtime_ns == mtime


def _spectrum_slope(images):
    """Slope of log radially-averaged amplitude spectrum vs log spatial frequency."""
    x = images.astype(np.float64) - images.mean(axis=(1, 2), keepdims=True)
    amp = np.abs(np.fft.fft2(x)).mean(axis=0)
    fy, fx = np.meshgrid(np.fft.fftfreq(68), np.fft.fftfreq(270), indexing="ij")
    f = np.hypot(fy, fx)
    edges = np.geomspace(0.02, 0.5, 12)
    k = np.digitize(f, edges)
    mids = [(f[k == b].mean(), amp[k == b].mean()) for b in range(1, len(edges)) if (k == b).any()]
    lf, la = np.log(np.array(mids)).T
    return np.polyfit(lf, la, 1)[0]


def test_whitened_images_have_flat_spectrum(twin):
    load = lambda f: np.moveaxis(scipy.io.loadmat(twin.out_dir / f)["imgs"], 2, 0)
    nat = load("images_natimg2800_all.mat")
    white = load("images_natimg2800_white_all.mat")
    s_nat, s_white = _spectrum_slope(nat), _spectrum_slope(white)
    assert s_nat < -0.7 and abs(s_white) < 0.3
    np.testing.assert_allclose(white.std(axis=(1, 2)), nat.std(axis=(1, 2)), rtol=0.1)


def test_whitening_is_one_filter_by_the_average_spectrum():
    """Stringer et al.'s whitening divides every image by the natural set's AVERAGE amplitude
    spectrum (one filter, then each image's own contrast): each image keeps its spectral shape
    relative to the average; a per-image (phase-only) whitening flattens every image instead."""
    rng = np.random.default_rng(0)
    fy, fx = np.meshgrid(np.fft.fftfreq(68), np.fft.fftfreq(270), indexing="ij")
    f = np.maximum(np.hypot(fy, fx), 1 / 270)
    imgs = []
    for slope, contrast in [(-1.0, 30.0), (-1.6, 30.0), (-0.5, 30.0), (-1.0, 15.0)] * 3:
        x = np.fft.ifft2(np.fft.fft2(rng.standard_normal((68, 270))) * f ** slope).real
        imgs.append(128 + contrast * x / x.std())
    imgs = np.clip(np.rint(imgs), 0, 255).astype(np.uint8)      # no clipping at these contrasts
    white = T.whiten_images(imgs)
    centred = lambda x: x.astype(float) - x.mean(axis=(1, 2), keepdims=True)
    X, W = np.fft.rfft2(centred(imgs)), np.fft.rfft2(centred(white))
    A = np.abs(X).mean(axis=0)                               # the average amplitude spectrum
    predicted = np.where(A > 0, X / np.where(A > 0, A, 1), 0)       # F_i / mean_j |F_j|
    P, Wf = predicted.reshape(len(W), -1), W.reshape(len(W), -1)
    g = np.einsum("ij,ij->i", P.conj(), Wf).real / np.einsum("ij,ij->i", P.conj(), P).real
    err = np.linalg.norm(Wf - g[:, None] * P, axis=1) / np.linalg.norm(Wf, axis=1)
    assert err.max() < 0.1, f"every image must go through the same filter (relative error {err})"
    np.testing.assert_allclose(T.average_amplitude_spectrum(imgs), A, rtol=1e-9, atol=1e-9)
    # each image keeps its own spectrum relative to the average: steep images stay steeper
    assert _spectrum_slope(white[1::4]) < _spectrum_slope(white[0::4]) - 0.5
    # each whitened image has its natural image's RMS contrast
    np.testing.assert_allclose(white.std(axis=(1, 2)), imgs.std(axis=(1, 2)), rtol=0.05)


def test_8d_images_are_rank_8_inside_region_gray_outside(twin):
    for label in ("D1", "D2"):
        m = twin.mouse(label)
        imgs = np.moveaxis(scipy.io.loadmat(twin.out_dir / m.images_file)["imgs"], 2, 0).astype(float)
        r0, r1, c0, c1 = m.rf_region
        assert (r1 - r0) * (c1 - c0) < 68 * 270          # a real window, not the whole screen
        outside = np.ones((68, 270), bool)
        outside[r0:r1, c0:c1] = False
        assert (imgs[:, outside] == 128).all()
        inside = imgs[:, r0:r1, c0:c1].reshape(60, -1)
        sv = np.linalg.svd(inside - inside.mean(axis=0), compute_uv=False)
        assert sv[8] < 0.1 * sv[7] and sv[7] > 0.1 * sv[0]    # 8 dims + uint8 rounding/clipping
        # the neurons' receptive fields lie inside the region
        gt = T.load_groundtruth(twin.out_dir / m.groundtruth_file)
        assert ((gt["x"] >= c0) & (gt["x"] < c1) & (gt["y"] >= r0) & (gt["y"] < r1)).all()


def test_planted_signal_is_lower_dimensional_for_8d(twin):
    """Participation ratio of the ground-truth (noise-free) responses: 8D < natural. (Whitened
    vs natural is a finding, not a property of the code: with Stringer et al.'s average-spectrum
    whitening the twin's whitened mice come out LOWER-dimensional than its natural ones, issue 18;
    the data page reports it.)"""
    def pr(label):
        mu = T.load_groundtruth(twin.out_dir / twin.mouse(label).groundtruth_file)["mean_response"]
        spec = cvpca_spectrum(mu, mu)                     # noise-free: plain PCA spectrum
        return spec.sum() ** 2 / (spec ** 2).sum()
    nat = np.mean([pr(f"M{k}") for k in range(1, 5)])
    assert np.mean([pr("D1"), pr("D2")]) < nat


def test_bad_config_and_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError):
        T.load_manifest(tmp_path)
    with pytest.raises(ValueError, match="complex_fraction"):
        T.TwinConfig(complex_fraction=1.5)
    with pytest.raises(ValueError, match="sigma_range"):
        T.TwinConfig(sigma_range=(10, 4))


def test_reuse_only_when_config_and_generator_match(twin, monkeypatch):
    manifest = twin.out_dir / T.MANIFEST_NAME
    before = manifest.stat().st_mtime_ns
    T.generate_twin(twin.out_dir, T.TwinConfig(**TINY), progress=False)
    assert manifest.stat().st_mtime_ns == before, "same config and generator: reused"
    monkeypatch.setattr(stringer2019, "GENERATOR_VERSION", T.GENERATOR_VERSION + 1)
    T.generate_twin(twin.out_dir, T.TwinConfig(**TINY), progress=False)
    assert manifest.stat().st_mtime_ns != before, "a new generator version must regenerate"


def test_two_commands_asking_for_one_twin_write_it_once(tmp_path):
    """Two callers generating the same twin folder at once (the lock is a file lock, so threads wait
    for each other as processes do): one writes it under the folder's lock, the other waits and
    reuses it (the page tests of two pytest workers, two pages of the book)."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = T.TwinConfig(**TINY, n_natural_mice=1, n_whitened_mice=0, n_8d_mice=0)

    def make(_):
        m = T.generate_twin(tmp_path, cfg, progress=False)
        return (tmp_path / T.MANIFEST_NAME).stat().st_mtime_ns, m.sha256

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(make, range(2))
    assert first == second, "both saw the same files: the twin was written once"


def test_read_only_twin_is_reused_and_a_missing_one_is_named(tmp_path, monkeypatch):
    """A folder this process cannot write (a shared, pre-generated twin; simulated, since root may write
    anywhere): a matching twin is reused without taking the lock, a missing one is an error naming it."""
    import os

    cfg = T.TwinConfig(**TINY, n_natural_mice=1, n_whitened_mice=0, n_8d_mice=0)
    made = T.generate_twin(tmp_path / "made", cfg, progress=False)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert T.generate_twin(tmp_path / "made", cfg, progress=False).sha256 == made.sha256
    (tmp_path / "empty").mkdir()
    with pytest.raises(PermissionError, match="read-only and holds no twin"):
        T.generate_twin(tmp_path / "empty", cfg, progress=False)
    assert not (tmp_path / "empty" / ".twin.lock").exists()


def test_legacy_stimuli_reproduce_version_1_images(tmp_path):
    """``stimuli="photo-crops"`` writes the images of GENERATOR_VERSION 1 (the photo crops)."""
    cfg = T.TwinConfig(**TINY, stimuli="photo-crops", n_natural_mice=1, n_whitened_mice=0, n_8d_mice=0)
    m = T.generate_twin(tmp_path, cfg, progress=False)
    imgs = np.moveaxis(scipy.io.loadmat(tmp_path / "images_natimg2800_all.mat")["imgs"], 2, 0)
    np.testing.assert_array_equal(imgs, T.natural_images(60, stringer2019.image_stream(cfg))[0])
    assert set(m.source_images) <= set(T.SOURCE_IMAGES) and set(m.image_sources) <= set(m.source_images)
