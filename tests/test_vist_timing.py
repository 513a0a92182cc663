"""Frame-period x onset scan of the Vi-ST data page: exact against a direct fit, finds a planted alignment."""
import numpy as np
import pytest

from alignlib.experiments.vist import timing as T


def _smooth_luminance(n_frames=400, n_cells=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_frames + 20, n_cells))
    x = np.stack([np.convolve(x[:, c], np.ones(5) / 5, mode="valid")[:n_frames] for c in range(n_cells)], 1)
    return (x - x.mean(0)) / x.std(0)


def test_rf_luminance_means_inside_masks():
    frames = np.zeros((3, 4, 4), np.float32)
    frames[:, 0, 0] = [0.0, 1.0, 2.0]
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 0, 0] = masks[0, 0, 1] = True          # mean of a changing and a constant pixel
    lum = T.rf_luminance(frames, masks)
    np.testing.assert_allclose(lum[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    assert np.all(lum[:, 1] == 0)                   # empty mask
    with pytest.raises(ValueError):
        T.rf_luminance(frames, masks[:, :3])


def test_scan_matches_direct_least_squares():
    lum = _smooth_luminance()
    n_bins, P, bin_ms = 300, 20.0, 10.0
    rates = np.random.default_rng(1).poisson(1.0, size=(n_bins, lum.shape[1])).astype(float)
    onsets = np.array([-2000.0, -500.0, 0.0, 300.0])
    scan = T.scan_onsets(rates, lum, P, onsets, bin_ms, n_folds=4, ridge=1e-3)
    for i, o in enumerate(onsets):
        pad_before = max(0.0, onsets.max()) + n_bins * bin_ms
        Z = T.lagged_timeline(lum, P, bin_ms, pad_before, max(0.0, -onsets.min()) + n_bins * bin_ms)
        start = int(round((pad_before - o) / bin_ms))
        X = Z[start:start + n_bins]
        for c in range(lum.shape[1]):
            ccs = []
            for f in np.array_split(np.arange(n_bins), 4):
                tr = np.setdiff1d(np.arange(n_bins), f)
                A = np.c_[X[tr, c], np.ones(len(tr))]
                reg = 1e-3 * np.eye(A.shape[1])
                reg[-1, -1] = 0
                w = np.linalg.solve(A.T @ A + reg, A.T @ rates[tr, c])
                ccs.append(np.corrcoef(np.c_[X[f, c], np.ones(len(f))] @ w, rates[f, c])[0, 1])
            assert scan[i, c] == pytest.approx(np.mean(ccs), abs=1e-6)


def test_scan_finds_a_planted_alignment_and_nothing_at_the_wrong_period():
    lum = _smooth_luminance(n_frames=600)
    P, onset, n_bins = 30.0, -4000.0, 800
    rates = T.planted_rates(lum, P, onset, n_bins, n_trials=30, seed=0)
    grid = T.onset_grid(len(lum), P, n_bins * 10.0, 10.0)
    cc = np.nanmean(T.scan_onsets(rates, lum, P, grid), axis=1)
    # the free temporal kernel absorbs part of a shift (onset and latency trade off): within two frames
    assert abs(grid[np.argmax(cc)] - onset) <= 2 * P and cc.max() > 0.5
    assert np.median(cc) < 0.1
    wrong = np.nanmean(T.scan_onsets(rates, lum, 20.0, T.onset_grid(len(lum), 20.0, n_bins * 10.0, 10.0)), axis=1)
    assert wrong.max() < 0.5 * cc.max()


def test_grid_and_bad_inputs():
    grid = T.onset_grid(100, 20.0, 1000.0, 10.0)      # movie 2000 ms, trial 1000 ms, half must overlap
    assert grid[0] == -1500.0 and grid[-1] == 500.0 and np.all(np.diff(grid) == 10.0)
    lum = _smooth_luminance(50, 2)
    with pytest.raises(ValueError, match="frame_ms"):
        T.lagged_timeline(lum, 5.0, 10.0, 0, 0)
    with pytest.raises(ValueError, match="multiples"):
        T.scan_onsets(np.zeros((10, 2)), lum, 20.0, np.array([5.0]))
    with pytest.raises(ValueError, match="cells"):
        T.scan_onsets(np.zeros((10, 3)), lum, 20.0, np.array([0.0]))


def test_scan_recording_finds_the_driving_movie_and_its_nulls_stay_low():
    lum1, lum2 = _smooth_luminance(600, 6, seed=0), _smooth_luminance(600, 6, seed=5)
    n_bins, P, onset = 800, 20.0, -1500.0
    rates = T.planted_rates(lum1, P, onset, n_bins, seed=0)
    curves, s = T.scan_recording(rates, {1: lum1, 2: lum2}, 1, [10.0, 20.0], [19.5, 20.5], P, onset, n_bins * 10.0)
    assert set(curves.movie) == {1, 2} and set(curves[curves.movie == 1].frame_ms) == {10.0, 19.5, 20.0, 20.5}
    assert set(curves[curves.movie == 2].frame_ms) == {10.0, 20.0}
    assert s["found"] and s["best_frame_ms"] == P and abs(s["best_onset_ms"] - onset) <= 2 * P
    assert s["best_cc_movie1_at_20.0ms"] > 0.5 > s["best_cc_movie2_at_20.0ms"]
    assert s["null_time_reversed"] < 0.3 and s["null_rf_shuffled"] < 0.3
    assert s["cv_cc_at_loader_timing"] > 0.4
    # responses driven by neither movie: nothing is found
    noise = np.random.default_rng(2).poisson(0.2, size=(n_bins, 6)).astype(float)
    assert not T.scan_recording(noise, {1: lum1, 2: lum2}, 1, [20.0], [], P, None, n_bins * 10.0)[1]["found"]


def test_scan_recording_reports_a_swap_when_the_other_movie_drives_the_cells():
    lum1, lum2 = _smooth_luminance(600, 6, seed=0), _smooth_luminance(600, 6, seed=5)
    n_bins, P = 800, 20.0
    rates = T.planted_rates(lum2, P, -1500.0, n_bins, seed=0)       # driven by movie 2, "named" movie 1
    _, s = T.scan_recording(rates, {1: lum1, 2: lum2}, 1, [20.0], [], P, None, n_bins * 10.0)
    assert not s["found"] and s["found_other_movie"] and s["best_cv_cc_other_movie"] > 0.5
    assert abs(s["best_onset_at_frame_ms"] - s["best_onset_ms"]) < 1e-9 and not s["best_period_on_grid_edge"]
