"""CC, SD-KL and the split-half noise ceiling on constructed signals; the LN model on a planted filter."""
import numpy as np
import pytest

from alignlib.metrics.neural_prediction import (mean_abs_cc, noise_ceiling, normalized_cc, pearson_cc,
                                                response_durations, sd_kl, split_half_reliability)
from alignlib.models.linear_nonlinear import LinearNonlinear


def _bumps(t, centres, width):
    """Hann bumps of widths width, width + 2, width + 4, width + 6 in turn (a spread of durations)."""
    x = np.zeros(t)
    for k, c in enumerate(centres):
        w = width + 2 * (k % 4)
        x[c - w // 2:c + w // 2 + 1] += np.hanning(2 * (w // 2) + 1)
    return x


def test_pearson_cc_per_cell():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(200, 3))
    pred = np.stack([target[:, 0], -target[:, 1], rng.normal(size=200)], axis=1)
    cc = pearson_cc(pred, target)
    assert cc[0] == pytest.approx(1.0) and cc[1] == pytest.approx(-1.0) and abs(cc[2]) < 0.2
    assert mean_abs_cc(pred, target) > np.nanmean(cc)
    assert np.isnan(pearson_cc(np.ones((10, 1)), target[:10, :1])[0])
    with pytest.raises(ValueError):
        pearson_cc(pred, target[:, :2])


def test_sd_kl_zero_for_identical_and_grows_with_width_change():
    t = 600
    target = _bumps(t, range(20, 580, 40), 9)[:, None]
    assert sd_kl(target, target)[0] == pytest.approx(0.0, abs=1e-12)
    assert sd_kl(np.roll(target, 7, axis=0), target)[0] == pytest.approx(0.0, abs=1e-9)  # timing is ignored
    wider = _bumps(t, range(20, 580, 40), 13)[:, None]
    much_wider = _bumps(t, range(20, 580, 40), 25)[:, None]
    jitter = np.random.default_rng(0).uniform(0, 0.01, t)[:, None]
    a, b = sd_kl(wider + jitter, target + jitter)[0], sd_kl(much_wider + jitter, target + jitter)[0]
    assert 0 < a < b
    both = sd_kl(wider + jitter, target + jitter, bandwidth=0.25, direction="target||pred")[0]
    assert both > 0 and both != a
    assert sd_kl(np.zeros((t, 1)), target)[0] == 1000.0  # no events -> the paper's clip value
    with pytest.raises(ValueError):
        sd_kl(target, target, direction="both")


def test_response_durations_full_width_at_base():
    x = np.r_[np.zeros(5), [0.5, 1.0, 0.5], np.zeros(5)]
    assert response_durations(x)[0] == pytest.approx(4.0)  # from the zero before to the zero after


def test_split_half_reliability_noiseless_and_noise():
    rng = np.random.default_rng(0)
    signal = rng.poisson(2.0, size=(1, 300, 2)).astype(float)
    repeats = np.repeat(signal, 30, axis=0)
    np.testing.assert_allclose(split_half_reliability(repeats), 1.0)
    noise = rng.normal(size=(30, 300, 2))
    assert np.all(np.abs(split_half_reliability(noise, corrected=False)) < 0.15)
    mixed = signal + rng.normal(scale=3.0, size=(30, 300, 2))
    half_r = split_half_reliability(mixed, corrected=False)
    np.testing.assert_allclose(split_half_reliability(mixed), 2 * half_r / (1 + half_r))
    assert np.all((half_r > 0.3) & (half_r < 0.95))
    np.testing.assert_allclose(normalized_cc([0.5], [0.25]), [1.0])
    assert np.isnan(noise_ceiling([-0.1])[0])


def test_ln_recovers_planted_filter():
    rng = np.random.default_rng(0)
    t, side = 900, 10
    frames = rng.uniform(0, 1, size=(t, side, side)).astype(np.float32)
    spatial = np.zeros((side, side))
    spatial[3:6, 3:6] = 1.0
    drive = (frames - 0.5).reshape(t, -1) @ spatial.ravel()
    lagged = np.r_[np.zeros(4), drive[:-4]]           # 4-frame delay
    rates = np.log1p(np.exp(2 * lagged))[:, None] + rng.normal(scale=0.1, size=(t, 1))
    model = LinearNonlinear(grid=side, n_lags=6, lag_width=1, alphas=(1.0, 100.0), n_folds=3)
    model.fit(frames[:700], rates[:700])
    assert pearson_cc(model.predict(frames)[700:], rates[700:])[0] > 0.8
    filt = model.filters_[0]                          # (lags, grid, grid)
    assert np.argmax(np.abs(filt).sum(axis=(1, 2))) == 4  # the planted 4-frame delay
    assert np.corrcoef(filt[4].ravel(), spatial.ravel())[0, 1] > 0.9
    shuffled = LinearNonlinear(grid=side, n_lags=6, lag_width=1, alphas=(1.0, 100.0), n_folds=3)
    shuffled.fit(frames[:700], rng.permutation(rates[:700]))
    assert abs(pearson_cc(shuffled.predict(frames)[700:], rates[700:])[0]) < 0.2  # chance for a collapsed fit
