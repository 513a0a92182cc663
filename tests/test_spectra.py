"""cvPCA spectra, power-law fits and per-neuron reliability on synthetic data with planted truth."""
import numpy as np
import pytest

from alignlib.interpret.spectra import cvpca_spectrum, powerlaw_exponent
from alignlib.metrics.reliability import signal_noise_variance, snr, split_half_reliability


def _planted(alpha=1.0, n_images=600, n_neurons=400, noise_sd=0.3, seed=0):
    """Signal = latent factors with variance k^-alpha along random orthonormal neuron directions."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, n_images + 1)
    latents = rng.standard_normal((n_images, n_images)) * k ** (-alpha / 2)
    basis, _ = np.linalg.qr(rng.standard_normal((n_neurons, n_neurons)))
    n_lat = min(n_images, n_neurons)
    signal = 10.0 * latents[:, :n_lat] @ basis[:, :n_lat].T
    rep1 = signal + noise_sd * rng.standard_normal(signal.shape)
    rep2 = signal + noise_sd * rng.standard_normal(signal.shape)
    return signal, rep1, rep2


@pytest.mark.parametrize("alpha", [1.0, 1.5])
def test_cvpca_recovers_planted_powerlaw(alpha):
    _, rep1, rep2 = _planted(alpha=alpha)
    spectrum = cvpca_spectrum(rep1, rep2)
    fitted, _ = powerlaw_exponent(spectrum, fit_range=(11, 100))
    assert abs(fitted - alpha) < 0.1


def test_cvpca_noise_only_is_near_zero():
    rng = np.random.default_rng(1)
    rep1, rep2 = rng.standard_normal((2, 400, 300))
    spectrum = cvpca_spectrum(rep1, rep2)
    # the ordinary PCA spectrum of rep1 would have eigenvalues ~1; cvPCA has no shared variance
    assert abs(spectrum.sum()) < 0.1 * 300
    assert np.abs(spectrum[:20]).max() < 0.3


def test_cvpca_n_components_and_bad_shapes():
    rng = np.random.default_rng(2)
    rep1, rep2 = rng.standard_normal((2, 50, 30))
    assert cvpca_spectrum(rep1, rep2, n_components=10).shape == (10,)
    assert cvpca_spectrum(rep1, rep2).shape == (30,)
    with pytest.raises(ValueError):
        cvpca_spectrum(rep1, rep2[:, :29])
    with pytest.raises(ValueError):
        cvpca_spectrum(rep1[0], rep2[0])
    with pytest.raises(ValueError):
        snr(rep1, rep2[:-1])


def test_powerlaw_exponent_exact_and_errors():
    k = np.arange(1, 1001)
    alpha, b = powerlaw_exponent(3.0 * k ** -1.2)
    assert alpha == pytest.approx(1.2) and b == pytest.approx(np.log(3.0))
    assert powerlaw_exponent(3.0 * k ** -1.2, weighted=True)[0] == pytest.approx(1.2)
    with pytest.raises(ValueError, match="at least 3"):
        powerlaw_exponent(k[:12] ** -1.0)          # only ranks 11, 12 available
    with pytest.raises(ValueError, match="at least 3"):
        powerlaw_exponent(-np.ones(100))           # no positive values


def test_snr_and_reliability_match_planted_values():
    rng = np.random.default_rng(3)
    n_images, n_neurons = 4000, 6
    signal_sd = np.array([0.5, 1.0, 1.0, 2.0, 3.0, 0.0])
    noise_sd = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    signal = rng.standard_normal((n_images, n_neurons)) * signal_sd
    rep1 = signal + rng.standard_normal(signal.shape) * noise_sd
    rep2 = signal + rng.standard_normal(signal.shape) * noise_sd
    sig, noise = signal_noise_variance(rep1, rep2)
    assert np.all(np.abs(sig - signal_sd ** 2) < 0.1 * signal_sd ** 2 + 0.05)
    np.testing.assert_allclose(noise, noise_sd ** 2, rtol=0.1)
    true_snr = signal_sd ** 2 / noise_sd ** 2
    assert np.all(np.abs(snr(rep1, rep2) - true_snr) < 0.1 * true_snr + 0.05)
    true_r = signal_sd ** 2 / (signal_sd ** 2 + noise_sd ** 2)
    np.testing.assert_allclose(split_half_reliability(rep1, rep2), true_r, atol=0.05)


def test_top_share_difference_matches_pca_and_separates_low_from_high_dimensional_sets():
    import numpy as np

    from alignlib.interpret.spectra import pca_variance_spectrum, top_share_difference

    rng = np.random.default_rng(0)
    low = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 80)) + 0.1 * rng.standard_normal((60, 80))
    high = rng.standard_normal((60, 80))
    d, lo, hi = top_share_difference([low], [high], n_resamples=200)
    assert d == pytest.approx(pca_variance_spectrum(low)[:5].sum() - pca_variance_spectrum(high)[:5].sum())
    assert 0 < lo <= d <= hi                                   # a 3-dimensional set vs white noise
    assert top_share_difference([high], [high], n_resamples=50) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same items"):
        top_share_difference([low], [high[:50]])
