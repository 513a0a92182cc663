"""The twin's stimulus generators and the near-duplicate statistic of alignlib.interpret.stimuli."""
import numpy as np
import pytest

from alignlib.data.twin import TwinConfig
from alignlib.data.twin.generative import dead_leaves, power_law_noise, powerlaw_radii, textures_with_edges
from alignlib.data.twin.photos import PHOTO_SOURCES, distinct_crops, photo_crops, smooth_fraction
from alignlib.data.twin.stimuli import MIX_KINDS, mixed_images, natural_images, natural_stimuli, stimulus_kind
from alignlib.data.twin.stringer2019 import image_stream
from alignlib.experiments.dina.settings import dina_split
from alignlib.interpret.stimuli import near_duplicate_summary, nearest_train_correlation

CONTRAST = (0.25, 0.45)


def _check_images(imgs, n):
    assert imgs.shape == (n, 68, 270) and imgs.dtype == np.uint8
    means = imgs.mean(axis=(1, 2))
    rms = imgs.std(axis=(1, 2)) / 128
    assert np.all(np.abs(means - 128) < 8), means
    # clipping to 0..255 can only lower the contrast a little below the drawn value
    assert np.all(rms > CONTRAST[0] - 0.05) and np.all(rms < CONTRAST[1] + 0.01), rms


@pytest.mark.parametrize("make", [
    lambda n, seed: dead_leaves(n, np.random.default_rng(seed), contrast=CONTRAST),
    lambda n, seed: textures_with_edges(n, np.random.default_rng(seed), contrast=CONTRAST),
    lambda n, seed: distinct_crops(n, np.random.default_rng(seed), contrast=CONTRAST)[0],
    lambda n, seed: mixed_images(n, np.random.default_rng(seed), contrast=CONTRAST)[0],
], ids=["dead-leaves", "textures", "distinct-crops", "mixed"])
def test_generators_shape_contrast_and_determinism(make):
    a = make(12, 0)
    _check_images(a, 12)
    np.testing.assert_array_equal(a, make(12, 0))
    assert not np.array_equal(a, make(12, 1))
    assert len({im.tobytes() for im in a}) == 12


def test_dead_leaves_radii_follow_the_power_law():
    r = powerlaw_radii(np.random.default_rng(0), 200_000, 1.5, 150.0, exponent=3.0)
    assert r.min() >= 1.5 and r.max() <= 150.0
    edges = np.geomspace(1.5, 40.0, 12)
    density = np.histogram(r, edges)[0] / np.diff(edges)
    mids = np.sqrt(edges[1:] * edges[:-1])
    slope = np.polyfit(np.log(mids), np.log(density), 1)[0]
    assert abs(slope + 3.0) < 0.15, slope


def _amplitude_slope(images):
    x = images.astype(np.float64) - images.mean(axis=(1, 2), keepdims=True)
    amp = np.abs(np.fft.fft2(x)).mean(axis=0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(68), np.fft.fftfreq(270), indexing="ij"))
    edges = np.geomspace(0.02, 0.3, 10)
    k = np.digitize(f, edges)
    pts = np.log([(f[k == b].mean(), amp[k == b].mean()) for b in range(1, len(edges))])
    return np.polyfit(pts[:, 0], pts[:, 1], 1)[0]


def test_generated_images_have_natural_image_spectra():
    """Amplitude spectra fall roughly as 1/f (natural images: slope about -1)."""
    for imgs in (dead_leaves(30, np.random.default_rng(0)), textures_with_edges(30, np.random.default_rng(0))):
        assert -1.6 < _amplitude_slope(imgs) < -0.7
    noise = power_law_noise(np.random.default_rng(0), 4, beta=1.0)
    assert noise.dtype == np.float32 and np.allclose(noise.std(axis=(1, 2)), 1, atol=1e-4)


def test_distinct_crops_rarely_overlap_and_avoid_blank_ramps():
    imgs, names, overlap = distinct_crops(60, np.random.default_rng(0), max_overlap=0.2)
    assert set(names) <= set(PHOTO_SOURCES) and len(set(names)) > 10
    assert np.mean(overlap <= 0.2) > 0.9                    # ~3-4 crops per photograph fit without overlap
    smooth = np.array([smooth_fraction(im) for im in imgs])
    assert np.mean(smooth <= 0.5) > 0.95
    ramp = np.add.outer(np.arange(68), np.arange(270)).astype(float)
    assert smooth_fraction(ramp) > 0.99


def test_mixed_set_counts_sources_and_legacy_option():
    imgs, sources = mixed_images(50, np.random.default_rng(0), fractions=(0.2, 0.5, 0.3))
    kinds = [stimulus_kind(s) for s in sources]
    assert [kinds.count(k) for k in MIX_KINDS] == [10, 25, 15]
    assert len(set(s for s in sources if stimulus_kind(s) != "photo")) == 40    # each its own source
    with pytest.raises(ValueError, match="fractions"):
        mixed_images(5, np.random.default_rng(0), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="stimulus_fractions"):
        TwinConfig(stimulus_fractions=(1.0, 0.5, 0.0))
    with pytest.raises(ValueError, match="stimuli"):
        TwinConfig(stimuli="imagenet")
    # the legacy generator is today's photo crops, unchanged
    cfg = TwinConfig(n_images=20, stimuli="photo-crops")
    legacy, per_image, used = natural_stimuli(cfg, image_stream(cfg))
    np.testing.assert_array_equal(legacy, natural_images(20, image_stream(cfg))[0])
    np.testing.assert_array_equal(legacy, photo_crops(20, image_stream(cfg))[0])
    assert set(per_image) <= set(used)


def test_nearest_train_correlation_on_constructed_inputs():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(70, 40, 25))
    train, test = np.arange(50), np.arange(50, 70)
    r = nearest_train_correlation(noise, train, test)
    assert r.shape == (20,) and np.all(np.abs(r) < 0.15)     # independent noise: ~0
    dup = noise.copy()
    dup[60] = 3 * noise[7] + 10                              # an exact duplicate up to contrast/offset
    r, where = nearest_train_correlation(dup, train, test, return_index=True)
    assert np.isclose(r[10], 1.0) and where[10] == 7
    groups = np.zeros(70, dtype=int)
    groups[7] = groups[60] = 1                               # same source: the duplicate is left out
    r_groups = nearest_train_correlation(dup, train, test, groups=groups)
    assert r_groups[10] < 0.15
    np.testing.assert_allclose(nearest_train_correlation(dup, train, test, chunk=3), r, rtol=1e-6)
    alone = nearest_train_correlation(dup, [7], [60], groups=groups)     # nothing eligible
    assert np.isnan(alone).all()
    s = near_duplicate_summary(np.array([0.95, 0.8, 0.1, np.nan]))
    assert np.isclose(s["frac_above_0.9"], 1 / 3) and np.isclose(s["frac_above_0.7"], 2 / 3) and s["n_test"] == 3


def test_default_twin_has_few_near_duplicates():
    """Quick-size natural set, DINA's split: at most 1 % of test images have a training image with
    pixel correlation > 0.9 and at most 10 % one above 0.7 (the legacy photo crops: 3 % and 17 %)."""
    cfg = TwinConfig.quick()
    assert cfg.stimuli == "mixed"
    images, _, _ = natural_stimuli(cfg, image_stream(cfg))
    split = dina_split(cfg.n_images)
    summary = near_duplicate_summary(nearest_train_correlation(images, split["train"], split["test"]))
    assert summary["frac_above_0.9"] <= 0.01 and summary["frac_above_0.7"] <= 0.1, summary
