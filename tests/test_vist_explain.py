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


def test_contiguous_folds_cover_every_frame_once_with_gaps():
    folds = E.contiguous_folds(103, n_folds=5, gap=4)
    tested = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tested), np.arange(103))
    for train, test in folds:
        # no training frame within the gap of the test block
        assert np.min(np.abs(train[:, None] - test[None]), axis=None) > 4
    with pytest.raises(ValueError, match="folds"):
        E.contiguous_folds(3, n_folds=5)


def test_rf_luminance_ln_recovers_a_lagged_rectified_cell():
    from alignlib.models.linear_nonlinear import RFLuminanceLN

    lum = _smooth_lum(n_frames=1200, n_cells=3)
    rng = np.random.default_rng(1)
    drive = np.r_[np.zeros((3, 3)), -lum[:-3]]                      # OFF cells, 3 frames latency
    rates = np.maximum(drive, 0) + 0.1 * rng.standard_normal(drive.shape)
    model = RFLuminanceLN(n_lags=8).fit(lum, rates, rows=slice(0, 900))
    pred = model.predict(lum)
    cc = [np.corrcoef(pred[900:, c], rates[900:, c])[0, 1] for c in range(3)]
    assert min(cc) > 0.9 and model.alpha_.shape == (3,)
    # a model that sees only noise scores at chance
    noise = np.random.default_rng(2).standard_normal(rates.shape)
    pred0 = RFLuminanceLN(n_lags=8).fit(lum, noise, rows=slice(0, 900)).predict(lum)
    chance = [np.corrcoef(pred0[900:, c], noise[900:, c])[0, 1] for c in range(3)]
    assert abs(np.nanmean(chance)) < 0.12                       # 300 test frames: s.d. ~0.06 / sqrt(3)
    with pytest.raises(ValueError, match="rates must be"):
        RFLuminanceLN().fit(lum, rates[:-1])


def test_explained_share_scores_planted_cells_and_not_shuffled_ones():
    rng = np.random.default_rng(0)
    frames = rng.random((600, 12, 12)).astype(np.float32)
    frames = np.stack([frames[max(0, t - 2):t + 1].mean(0) for t in range(600)])
    masks = np.zeros((2, 12, 12), bool)
    masks[0, 2:5, 2:5] = masks[1, 7:10, 6:9] = True
    lum = onken.rf_luminance(frames, masks)
    rate = np.exp(0.8 * np.r_[np.zeros((2, 2)), -lum[:-2]]) * 0.5
    counts = rng.poisson(rate, size=(20, 600, 2))
    kw = dict(n_folds=3, gap=4, bin_frames=(1, 4), seeds=(0,), fractions=(0.5, 1.0),
              models=("RF-luminance LN",))
    d = E.explained_share(frames, counts, masks, **kw)
    full = d[(d.fraction == 1.0) & (d.bin_frames == 1)]
    assert len(full) == 3 * 2 and set(d.stretch) == {"all", "first", "last"}
    assert full.cc.mean() > 0.5 and (full.ceiling > full.cc).all()
    shuffled = counts[:, rng.permutation(600)]
    d0 = E.explained_share(frames, shuffled, masks, **kw)
    assert abs(d0[(d0.fraction == 1.0) & (d0.bin_frames == 1)].cc.mean()) < 0.1
    with pytest.raises(ValueError, match="unknown models"):
        E.explained_share(frames, counts, masks, models=("GLM",))


def test_augmented_share_gains_from_aligned_extra_frames_only():
    rng = np.random.default_rng(3)

    def planted(n):
        f = rng.random((n, 12, 12)).astype(np.float32)
        return np.stack([f[max(0, t - 2):t + 1].mean(0) for t in range(n)])

    masks = np.zeros((2, 12, 12), bool)
    masks[0, 2:5, 2:5] = masks[1, 7:10, 6:9] = True

    def respond(frames):
        lum = onken.rf_luminance(frames, masks)
        return np.exp(0.8 * np.r_[np.zeros((2, 2)), -lum[:-2]]) * 0.5

    frames, extra = planted(240), planted(900)
    counts = rng.poisson(respond(frames), size=(20, 240, 2))
    extra_rates = rng.poisson(respond(extra), size=(20, 900, 2)).mean(0)
    extras = {"aligned": (extra, extra_rates), "shifted": (extra, np.roll(extra_rates, 450, 0))}
    d = E.augmented_share(frames, counts, masks, extras, n_folds=3, gap=4, bin_frames=(1,),
                          models=("RF-luminance LN",), context=8)
    cc = d.groupby("added").cc.mean()
    assert set(cc.index) == {"none", "aligned", "shifted"}
    assert cc["aligned"] > cc["none"] - 0.02 and cc["aligned"] > cc["shifted"] + 0.2
    no_base = E.augmented_share(frames, counts, masks, {"aligned": extras["aligned"]}, n_folds=3,
                                gap=4, bin_frames=(1,), models=("RF-luminance LN",), context=8,
                                baseline=False)
    assert set(no_base.added) == {"aligned"}
    assert np.allclose(no_base.cc, d[d.added == "aligned"].cc, equal_nan=True)
    with pytest.raises(ValueError, match="context"):
        E.augmented_share(frames, counts, masks, {"tiny": (extra[:5], extra_rates[:5])}, context=8)
    with pytest.raises(ValueError, match="extras"):
        E.stored_share("explained", "x", frames, counts, masks, extras=extras)


def test_segment_stretches_find_the_placed_run_and_a_leading_onset():
    import pandas as pd

    # 0-6 s best 2.68 s later than the pinned onset puts it (unplaced), 7.5 s on placed
    starts = np.arange(0, 15.1, 1.5)
    offsets = np.where(starts < 4, 2680.0, 0.0)
    offsets[3] = 18780.0                               # an unplaced segment with a stray best match
    placed = offsets == 0
    seg = pd.DataFrame({"start_s": starts, "end_s": starts + 3, "offset_ms": offsets,
                        "cc_expected": np.where(placed, 0.3, 0.05),
                        "cc_best_elsewhere": np.where(placed, 0.1, 0.2)})
    st = E.segment_stretches(seg, onset_ms=2590.0)
    assert st["placed"] == {"start_ms": 6000.0, "end_ms": 18000.0, "onset_ms": 2590.0}
    assert st["leading"] == {"start_ms": 0.0, "end_ms": 6000.0, "onset_ms": -90.0}
    assert set(E.segment_stretches(seg.assign(cc_expected=0.3, cc_best_elsewhere=0.1), 0.0)) == {"placed"}
    # the pinned table (onken.STRETCHES) agrees to the segments' 1.5-s step and 10 ms of onset
    assert E.stretches_agree(st, ((0.0, 6000.0, -90.0), (7500.0, 18000.0, 2590.0)))
    assert not E.stretches_agree(st, ((0.0, 6000.0, -90.0), (9000.0, 18000.0, 2590.0)))
    assert not E.stretches_agree(st, ((0.0, 6000.0, -120.0), (7500.0, 18000.0, 2590.0)))
    assert not E.stretches_agree({"placed": st["placed"]}, ((0.0, 6000.0, -90.0), (7500.0, 18000.0, 2590.0)))


def test_scored_counts_a_constant_prediction_as_zero_not_a_flat_response():
    import pandas as pd

    t = pd.DataFrame({"cc": [np.nan, np.nan, 0.5], "ceiling": [0.9, np.nan, 0.9], "cell": [0, 1, 2],
                      "fold": 0, "seed": 0, "model": "m"})
    out = E.scored(t)
    assert out.cc.iloc[0] == 0.0 and np.isnan(out.cc.iloc[1]) and out.cc.iloc[2] == 0.5
    s = E.share_summary(t, ["model"])
    assert s.n_cells.item() == 2 and np.isclose(s.mean_cc.item(), 0.25)


def test_heldout_placement_finds_a_planted_shift_and_the_verdict_rejects_the_loader():
    rng = np.random.default_rng(0)
    side = 36
    frames = rng.random((1500, side, side)).astype(np.float32)
    frames = (frames + np.roll(frames, 1, 1) + np.roll(frames, 1, 2)) / 3
    contours = [_square(400 + dx, 300 + dy) for dx in (-80, 0, 80) for dy in (-80, 0, 80)]

    def planted(shift):
        masks = onken.contour_masks([onken._display_to_frame(c, side, shift=shift) for c in contours],
                                    side)[0]
        return planted_rates(onken.rf_luminance(frames, masks), 12.5, 0.0, 1800, n_trials=100, seed=2)

    kw = dict(shifts=(-30.0, 0.0, 30.0), scales=(1.0, 1.5))
    t = E.heldout_placement(planted((30.0, 0.0)), frames, contours, 12.5, 0.0, (0.0, 18000.0), **kw)
    assert set(t.scan) == {"shift", "scale", "orientation", "held-out"}
    assert set(t.chosen_on) == {"first half", "second half"}
    v = E.placement_verdict(t)
    assert v["best_on_first"].startswith("+30, +0 px, scale 1,") and v["n_placements"] == 9 + 1 + 7
    assert v["gain_held_out"] > 0.1 and not v["confirmed"] and v["cc_worst_shift"] < v["cc_loader"] + 0.1
    # planted at the loader's placement: confirmed (held-out gain 0: each half picks the loader's)
    v0 = E.placement_verdict(E.heldout_placement(planted((0.0, 0.0)), frames, contours, 12.5, 0.0,
                                                 (0.0, 18000.0), **kw))
    assert v0["confirmed"] and abs(v0["gain_held_out"]) < 1e-12 and v0["best_on_second"].startswith("+0, +0")
    with pytest.raises(ValueError, match="loader's placement"):
        E.placement_search(planted((0.0, 0.0)), frames, contours, 12.5, 0.0, shifts=(-30.0, 30.0))


def test_jitter_costs_count_dropped_frames_and_cost_little_on_planted_cells():
    rng = np.random.default_rng(1)
    lum = rng.standard_normal((600, 3)).astype(np.float32)
    lum = np.cumsum(lum, 0) / 10                                       # slow, like the movie's luminance
    lum = (lum - lum.mean(0)) / lum.std(0)
    rates = planted_rates(lum, 12.45, 0.0, 740, n_trials=60, seed=4)
    t = E.jitter_costs(lum, 12.45, refresh_hz=(60.0, 120.0), seeds=(0,), rates=rates, onset_ms=0.0)
    assert list(t.refresh_hz) == [60.0, 120.0]
    assert abs(t.frames_dropped.iloc[0] - (1 - 12.45 / (1000 / 60))) < 0.01   # 60 Hz: a quarter never shown
    assert t.frames_dropped.iloc[1] == 0.0
    assert (t.planted_regular > 0.3).all() and (t.planted_cost.abs() < 0.05).all()
    # cells planted on the regular schedule are not fitted better by a jittered one
    assert (t.real_regular > 0.3).all() and (t.real_gain < 0.01).all()
    # the schedule itself: frame k from the first refresh at or after k x 12.45 ms
    seq = E.display_schedule(4, 12.45, 1000 / 60)
    assert seq.tolist() == [0] * 17 + [1] * 16 + [2] * 17                 # frame 3 is never shown


def test_window_cc_scores_only_the_window():
    rng = np.random.default_rng(3)
    lum = rng.standard_normal((1500, 4)).astype(np.float32)
    rates = planted_rates(lum, 12.5, 0.0, 1800, n_trials=60, seed=1)
    rates[1200:] = rng.poisson(2.0, size=rates[1200:].shape)          # the last 6 s: copies, not responses
    whole = E.window_cc(rates, lum, 12.5, 0.0, (0.0, 18000.0))
    clean = E.window_cc(rates, lum, 12.5, 0.0, (0.0, 12000.0))
    late = E.window_cc(rates, lum, 12.5, 0.0, (12000.0, 18000.0))
    assert clean > whole + 0.1 and abs(late) < 0.1
    with pytest.raises(ValueError, match="outside"):
        E.window_cc(rates, lum, 12.5, 0.0, (0.0, 19000.0))
