"""Checks of issue 19 §1 (alignlib.experiments.vist.explain) and the small retina CNN, on planted
data."""

import numpy as np
import pytest
import torch

from alignlib.data import onken
from alignlib.experiments.vist import explain as E
from alignlib.experiments.vist.timing import planted_rates
from alignlib.models.retina_cnn import RetinaCNN, stimulus_history


def _smooth_lum(n_frames=900, n_cells=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_frames + 8, n_cells))
    x = np.stack(
        [np.convolve(x[:, c], np.ones(4) / 4, mode="valid")[:n_frames] for c in range(n_cells)], 1
    )
    return (x - x.mean(0)) / x.std(0)


def test_segment_alignment_finds_no_offset_when_aligned_and_a_jump_when_planted():
    lum = _smooth_lum()
    frame_ms, n_bins = 12.5, 1000  # 10-s trial, 11.25-s movie
    aligned = planted_rates(lum, frame_ms, 0.0, n_bins, n_trials=200, seed=1)
    d = E.segment_alignment(aligned, lum, frame_ms, 0.0, segment_ms=2000, step_ms=2000)
    assert (d.offset_ms.abs() <= 20).all() and (d.cc_best > d.cc_best_elsewhere + 0.1).all()
    assert E.segment_verdict(d)["verdict"] == "whole trial"
    # the second half of the trial shows the movie 1.5 s later (a pause): its segments are found 1.5
    # s off
    late = planted_rates(lum, frame_ms, 1500.0, n_bins, n_trials=200, seed=1)
    jumped = np.concatenate([aligned[:500], late[500:]])
    d = E.segment_alignment(jumped, lum, frame_ms, 0.0, segment_ms=2000, step_ms=2000)
    assert (d.offset_ms[d.start_s < 4].abs() <= 20).all()
    assert np.allclose(d.offset_ms[d.start_s >= 6], -1500, atol=30)
    v = E.segment_verdict(d)
    assert v["verdict"] == "in part" and 0 < v["n_placed"] < v["n_segments"]
    assert v["placed_spans"].startswith("0.0-")


def test_segment_verdict_rule():
    import pandas as pd

    d = pd.DataFrame({"start_s": [0.0, 1.5, 3.0, 4.5], "end_s": [3.0, 4.5, 6.0, 7.5],
                      "cc_expected": [0.3, 0.3, 0.0, 0.3], "cc_best_elsewhere": [0.1, 0.1, 0.2, 0.1]})
    v = E.segment_verdict(d)
    assert v == {"n_segments": 4, "n_placed": 3, "placed_spans": "0.0-4.5 s, 4.5-7.5 s",
                 "verdict": "in part"}
    assert E.segment_verdict(d.assign(cc_expected=0.5))["verdict"] == "whole trial"
    assert E.segment_verdict(d.assign(cc_expected=0.0))["placed_spans"] == "none"
    with pytest.raises(ValueError, match="no segments"):
        E.segment_verdict(d.iloc[:0])


def _square(cx, cy, half=10):
    return np.array(
        [
            [cx - half, cx + half, cx + half, cx - half],
            [cy - half, cy - half, cy + half, cy + half],
        ],
        float,
    )


def test_placement_scan_prefers_the_planted_placement():
    rng = np.random.default_rng(0)
    side = 36
    frames = rng.random((700, side, side)).astype(np.float32)
    frames = (frames + np.roll(frames, 1, 1) + np.roll(frames, 1, 2)) / 3
    contours = [_square(400 + dx, 300 + dy) for dx in (-80, 0, 80) for dy in (-80, 0, 80)]
    truth = (30.0, 0.0)  # the movie really sits 30 px right
    masks = onken.contour_masks(
        [onken._display_to_frame(c, side, shift=truth) for c in contours], side
    )[0]
    rates = planted_rates(onken.rf_luminance(frames, masks), 12.5, 0.0, 800, n_trials=100, seed=2)
    d = E.placement_scan(
        rates,
        frames,
        contours,
        12.5,
        0.0,
        shifts=[(0.0, 0.0), truth, (-30.0, 0.0)],
        scales=(1.0, 1.5),
    )
    best = d.loc[d.cv_cc.idxmax()]
    assert (best.dx, best.dy, best.scale) == (30.0, 0.0, 1.0)
    assert best.cv_cc > d[(d.dx == 0) & (d.scale == 1.0)].cv_cc.iloc[0] + 0.1


def test_stimulus_history_is_causal_means():
    f = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    h = stimulus_history(f, n_history=2, step=2)
    assert h.shape == (6, 2, 2, 2)
    assert (
        h[5, 0, 0, 0] == 4.5
        and h[5, 1, 0, 0] == 2.5
        and h[0, 0, 0, 0] == 0.0
        and h[1, 1, 0, 0] == 0.0
    )


def test_crop_and_cnn_learn_a_planted_cell():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frames = rng.random((900, 24, 24)).astype(np.float32)
    masks = np.zeros((2, 24, 24), bool)
    masks[0, 8:11, 8:11] = masks[1, 13:16, 12:15] = True
    small, centres = E.crop_around_rfs(frames, masks, margin=3, factor=1)
    np.testing.assert_allclose(
        small[:, centres[0, 0].round().astype(int), centres[0, 1].round().astype(int)],
        frames[:, 9, 9],
    )
    lum = onken.rf_luminance(frames, masks)
    drive = np.stack(
        [-(lum[2:-1, c] + lum[1:-2, c]) for c in range(2)], 1
    )  # OFF cells, 1-2 frames latency
    counts = rng.poisson(np.exp(np.r_[np.zeros((3, 2)), drive]) * 0.5, size=(10, 900, 2))
    train, test = slice(0, 700), slice(700, 900)
    pred, hist = E.fit_retina_cnn(
        small,
        counts.mean(0),
        centres,
        train,
        n_history=4,
        history_step=1,
        epochs=40,
        patience=10,
        model_kwargs={"kernel1": 3, "kernel2": 3, "channels1": 4, "channels2": 4},
    )
    assert pred.shape == (900, 2) and np.all(pred > 0) and len(hist) >= 1
    s = E.heldout_scores(pred, counts, test)
    assert s.cc.min() > 0.5 and s.ceiling.notna().all()


def test_cnn_rejects_bad_centres():
    with pytest.raises(ValueError, match="centres"):
        RetinaCNN(4, 10, np.zeros(3))
