"""DINA interpretability analyses on constructed inputs with known answers (alignlib.interpret)."""
import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from alignlib.interpret import ablation, attention_scores, blobs, groundtruth, occlusion, pathways, sti
from alignlib.interpret.spectra import pca_variance_spectrum
from alignlib.interpret.ssim import ssim_batch
from alignlib.models.dina import build_dina


# --- SSIM ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("win", [3, 7])
def test_ssim_batch_equals_skimage(win):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(16, 64))
    x = ref + rng.normal(scale=0.5, size=(4, 16, 64))
    dr = np.ptp(ref)
    ours = ssim_batch(x, ref, win).numpy()
    theirs = [structural_similarity(xi, ref, win_size=win, data_range=dr) for xi in x]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ssim_batch(ref[None], ref, win).item() == pytest.approx(1.0)


# --- occlusion ----------------------------------------------------------------------------------
def test_gaussian_window_is_paper_shape():
    g = occlusion.gaussian_window(4.0)
    assert g.shape == (25, 25) and g[12, 12] == 1.0 and g.max() == 1.0
    assert g[12, 8] == pytest.approx(np.exp(-16 / 32))


def test_occluded_copy_fills_window_mean():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(40, 60)).astype(np.float32)
    cfg = occlusion.OcclusionConfig(alpha=1.0)
    rows, cols = np.array([20]), np.array([30])
    occ = occlusion.occluded_copies(img, rows, cols, cfg)[0].numpy()
    window_mean = img[8:33, 18:43].mean()
    assert occ[20, 30] == pytest.approx(window_mean, abs=1e-5)       # G = 1 at the centre: fully the mean
    np.testing.assert_array_equal(occ[:7], img[:7])                  # outside the window: untouched
    np.testing.assert_array_equal(occ[:, 44:], img[:, 44:])


class LeftHalfTower(torch.nn.Module):
    """A 'tower' whose 4 x 8 map depends only on the left third of the image (columns < 40)."""

    def forward(self, x):
        x = x.reshape(len(x), 1, *x.shape[-2:])[..., :40]
        return torch.nn.functional.adaptive_avg_pool2d(torch.tanh(x) ** 2, (4, 8))[:, 0]


def test_occluding_an_ignored_region_changes_nothing():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(32, 120)).astype(np.float32)
    cfg = occlusion.OcclusionConfig(repetitions=1, batch_size=64)
    res = occlusion.occlusion_map(LeftHalfTower(), img, cfg, return_raw=True)
    cols = occlusion.grid_centres(img.shape, cfg.stride)[1]
    far = cols >= 40 + cfg.half_width                 # windows that cannot reach column < 40
    assert np.abs(res["delta_ssim"][:, far]).max() < 1e-6
    assert np.abs(res["delta_cos"][:, far]).max() < 1e-6
    assert res["delta_ssim"][:, cols < 30].mean() > 1e-3
    assert res["ssim"][:, 40 + 2 * cfg.half_width:].max() < 1e-6    # normalised map is zero there too
    assert res["ssim"].max() == pytest.approx(1.0)


def test_occlusion_batching_equals_one_at_a_time():
    torch.manual_seed(0)
    tower = build_dina(20, "quick", stem_stride=4).image_tower.eval()
    img = np.random.default_rng(3).normal(size=(68, 270)).astype(np.float32)
    cfg = occlusion.OcclusionConfig(stride=17, repetitions=2, batch_size=1000)
    batched = occlusion.occlusion_map(tower, img, cfg, return_raw=True)
    one = occlusion.occlusion_map(tower, img, occlusion.OcclusionConfig(stride=17, repetitions=2, batch_size=1),
                                  return_raw=True)
    for key in ("delta_cos", "delta_ssim"):
        np.testing.assert_allclose(batched[key], one[key], rtol=1e-3, atol=1e-6)
    for key in ("cos", "ssim"):           # min-max normalisation amplifies float32 batch-size rounding
        np.testing.assert_allclose(batched[key], one[key], atol=2e-4)
    # and against a hand loop: one occluded copy, one forward, skimage SSIM
    rows, cols = occlusion.grid_centres(img.shape, 17)
    ref = tower(torch.as_tensor(img)[None])[0].detach().numpy()
    a, b = 1, 3
    copy = occlusion.occluded_copies(img, rows, cols, cfg, a * len(cols) + b, a * len(cols) + b + 1)
    m = tower(copy)[0].detach().numpy()
    d = 1 - structural_similarity(m, ref, win_size=3, data_range=np.ptp(ref))
    assert batched["delta_ssim"][a, b] == pytest.approx(d, abs=1e-5)


def test_accumulate_constant_delta_gives_constant_map():
    rows, cols = occlusion.grid_centres((20, 30), 2)
    gy = occlusion.gaussian_profile(20, rows, 4.0, 12)
    gx = occlusion.gaussian_profile(30, cols, 4.0, 12)
    r = occlusion.accumulate(np.full((len(rows), len(cols)), 0.3), gy, gx)
    np.testing.assert_allclose(r, 0.3, rtol=1e-6)
    assert occlusion.minmax(np.array([[1.0, 3.0]])).tolist() == [[0.0, 1.0]]


# --- blobs and STI ------------------------------------------------------------------------------
def test_single_bright_square_is_one_blob_of_known_area():
    m = np.zeros((68, 270))
    m[10:22, 50:65] = 1.0
    m[40, 200] = 0.6                      # exactly at the threshold: not a blob (eq. 16 is strict)
    table = blobs.blob_table(m[None])
    assert len(table) == 1 and table.area.iloc[0] == 12 * 15
    assert blobs.blobs_per_image(table, 2).tolist() == [1, 0]


def test_straight_line_has_coherence_one_and_tortuosity_one():
    sk = np.zeros((30, 40), bool)
    rr = np.arange(5, 25)
    sk[rr, rr + 5] = True                 # a diagonal line
    (seg,) = sti.skeleton_segments(sk)
    assert seg.tortuosity() == pytest.approx(1.0, abs=1e-6)
    assert sti.orientation_coherence([seg.orientation, seg.orientation + np.pi]) == pytest.approx(1.0)
    img = np.zeros((40, 60))
    img[:, 20:40] = 1.0                   # a bright stripe: two parallel straight step edges inside the blob
    mask = np.zeros_like(img, bool)
    mask[5:35, 10:50] = True
    out = sti.blob_sti(img, mask)
    assert out["n_segments"] >= 2
    assert out["R"] == pytest.approx(1.0) and out["T"] == pytest.approx(1.0, abs=1e-6)
    assert out["STI"] == pytest.approx(1.0, abs=1e-6)


def test_single_segment_blob_has_no_sti():
    img = np.zeros((40, 60))
    img[:, 30:] = 1.0                     # one straight step edge: one segment, R = 1 only by construction
    mask = np.zeros_like(img, bool)
    mask[5:35, 10:50] = True
    out = sti.blob_sti(img, mask)
    assert out["n_segments"] == 1 and sti.MIN_SEGMENTS == 2
    assert np.isnan(out["R"]) and np.isnan(out["STI"])
    assert out["T"] == pytest.approx(1.0, abs=1e-6)       # tortuosity is still reported
    lab = mask.astype(int)
    table = sti.sti_table(img[None], [lab])
    assert len(table) == 1 and table.n_segments.iloc[0] == 1 and table.STI.isna().all()


def test_wiggly_edges_score_as_texture():
    rng = np.random.default_rng(4)
    noise = rng.random((40, 60))
    mask = np.ones_like(noise, bool)
    out = sti.blob_sti(noise, mask)
    assert out["n_segments"] > 3 and out["R"] < 0.6 and out["T"] > 1.0
    assert sti.texture_strength(2.0, alpha=1.0) == pytest.approx(1 - np.exp(-1))
    with pytest.raises(ValueError):
        sti.texture_strength(2.0, alpha=0.0)


# --- neural tower -------------------------------------------------------------------------------
def test_ablation_full_population_is_identical_and_random_is_worse():
    torch.manual_seed(0)
    tower = build_dina(50, "quick", stem_stride=4, residual=True).neural_tower.eval()
    rng = np.random.default_rng(5)
    raw = rng.gamma(1.0, size=(6, 50))
    z = (raw - raw.mean(0)) / raw.std(0)
    curves = ablation.ablation_curves(tower, z, raw, fractions=(0.1, 0.5, 1.0), n_random=3)
    assert set(curves.selection) == {"sorted", "signed raw", "random"}
    full = curves[curves.fraction == 1.0]
    np.testing.assert_allclose(full.ssim, 1.0, atol=1e-5)
    sorted_ = curves[curves.selection == "sorted"]
    assert ablation.fraction_for_ssim(sorted_, 0.9).kind in {"interpolated", "at or below", "above"}
    order = ablation.response_ranking(z)
    assert np.abs(z[0, order[0, 0]]) == np.abs(z[0]).max()
    assert ablation.response_ranking(np.array([[1.0, -3.0, 2.0]])).tolist() == [[1, 2, 0]]
    assert ablation.response_ranking(np.array([[1.0, -3.0, 2.0]]), magnitude=False).tolist() == [[2, 0, 1]]
    assert {0.8, 0.9, 0.95, 0.99, 0.02, 0.05, 0.1, 0.12, 0.2, 0.3, 0.5} <= set(ablation.DEFAULT_FRACTIONS)


class OneNeuronTower(torch.nn.Module):
    """A 'neural tower' whose 8 x 8 map is neuron 0's z times a fixed pattern, plus a constant."""

    def __init__(self):
        super().__init__()
        self.pattern = torch.linspace(0, 1, 64).reshape(8, 8)
        self.anchor = torch.nn.Parameter(torch.zeros(1))     # gives the tower a device

    def forward(self, z):
        return 1.0 + z[:, :1, None] * self.pattern[None] + 0 * self.anchor


def test_ablation_ranks_by_magnitude_and_fills_the_mean():
    # neuron 0 carries the whole map and has the most *negative* z: ranking by |z| keeps it first, so one
    # neuron already reproduces the map (crossing at the smallest fraction); the signed raw ranking drops it
    # until the whole population is kept; its crossing lies in (0.8, 1.0], wider than 0.1 -> a bound.
    rng = np.random.default_rng(9)
    z = rng.uniform(-1, 1, size=(5, 20))
    z[:, 0] = -3.0 - rng.random(5)
    raw = z.copy()
    fr = (0.05, 0.5, 0.8, 1.0)
    curves = ablation.ablation_curves(OneNeuronTower(), z, raw, fractions=fr, n_random=2)
    srt = curves[curves.selection == "sorted"]
    np.testing.assert_allclose(srt.ssim, 1.0, atol=1e-5)
    est = ablation.fraction_for_ssim(srt, 0.9)
    assert est.kind == "at or below" and est.value == pytest.approx(0.05)
    signed = curves[curves.selection == "signed raw"]
    assert (signed[signed.fraction < 1].ssim < 0.9).all()
    est = ablation.fraction_for_ssim(signed, 0.9)
    assert est.kind == "above" and est.low == pytest.approx(0.8) and np.isnan(est.value)
    assert est.label() == "> 80"


def test_fraction_for_ssim_interpolates_only_in_narrow_brackets():
    import pandas as pd
    c = pd.DataFrame({"fraction": [0.1, 0.2, 0.3], "ssim": [0.5, 0.8, 1.0], "stimulus": 0})
    est = ablation.fraction_for_ssim(c, 0.9)          # crossing known: halfway between 0.2 and 0.3
    assert est.kind == "interpolated" and est.value == pytest.approx(0.25)
    assert ablation.fraction_for_ssim(c.assign(ssim=0.1), 0.9).kind == "never reached"
    wide = pd.DataFrame({"fraction": [0.1, 0.7, 1.0], "ssim": [0.5, 0.85, 0.95], "stimulus": 0})
    est = ablation.fraction_for_ssim(wide, 0.9)       # bracket 0.7-1.0 is wider than 0.1: a bound
    assert est.kind == "above" and np.isnan(est.value) and est.low == pytest.approx(0.7)
    assert est.label() == "> 70"
    # 0.3 -> 0.4 is 0.1 wide in decimal but 0.10000000000000003 in binary floating point: still interpolated
    edge = pd.DataFrame({"fraction": [0.2, 0.3, 0.4], "ssim": [0.5, 0.8, 1.0], "stimulus": 0})
    assert ablation.fraction_for_ssim(edge, 0.9).value == pytest.approx(0.35)


def test_known_lognormal_samples_fit_back():
    x = stats.lognorm.rvs(s=0.7, scale=np.exp(-5.0), size=20000, random_state=6)
    fits = attention_scores.fit_distributions(x, n_fit=20000)
    assert fits.distribution.iloc[0] == "lognormal"
    ln = fits.set_index("distribution").loc["lognormal"]
    assert ln.mu == pytest.approx(-5.0, abs=0.03) and ln.sigma == pytest.approx(0.7, abs=0.02)
    assert ln.aic < fits.set_index("distribution").loc["exponential"].aic


def test_sampled_attention_rows_are_softmax_rows():
    torch.manual_seed(0)
    tower = build_dina(40, "quick", stem_stride=4).neural_tower.eval()
    z = np.random.default_rng(7).normal(size=(3, 40)).astype(np.float32)
    a = attention_scores.sample_attention(tower, z, n_rows=8)
    assert a.shape == (3, 8, 40)
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-5)
    full = tower.attention_scores(torch.as_tensor(z), reduce=None).mean(1).numpy()   # (3, N, N)
    assert any(np.allclose(a[0, 0], full[0, i], atol=1e-6) for i in range(40))


# --- pathways, spectra, ground truth ------------------------------------------------------------
def test_pathway_masking_switch_is_off_by_default_and_restored():
    torch.manual_seed(0)
    tower = build_dina(20, "quick", stem_stride=4).image_tower.eval()
    x = torch.randn(3, 68, 270)
    with torch.no_grad():
        before = tower(x)
        with pathways.masked_pathway(tower, "global"):
            masked = tower(x)
        after = tower(x)
    assert torch.equal(before, after) and not torch.allclose(before, masked)
    table = pathways.pathway_masking(tower, x.numpy())
    assert set(table.kept) == {"local", "global"} and len(table) == 6
    assert (table.ssim < 1).all()


def test_variance_spectrum_of_rank_one_data():
    rng = np.random.default_rng(8)
    x = np.outer(rng.normal(size=50), rng.normal(size=30))
    s = pca_variance_spectrum(x)
    assert s[0] == pytest.approx(1.0) and s.sum() == pytest.approx(1.0)


def test_ground_truth_helpers():
    gt = {"x": np.array([20.0]), "y": np.array([30.0]), "sigma": np.array([3.0]), "rf_truncate": 4.0,
          "mean_response": np.array([[0.0], [2.0]]), "noise_sd": np.array([1.0]),
          "shared_loadings": np.zeros((1, 2))}
    cov = groundtruth.rf_coverage_map(gt, shape=(68, 270))
    assert np.unravel_index(cov.argmax(), cov.shape) == (30, 20) and cov[30, 40] == 0
    assert groundtruth.true_snr(gt)[0] == pytest.approx(1.0)
    assert groundtruth.map_correlation(cov, 2 * cov + 1) == pytest.approx(1.0)
    snr = np.array([3.0, 2.0, 1.0])
    ranking = np.array([[0, 1, 2], [0, 2, 1]])
    assert groundtruth.keep_order_vs_snr(ranking, snr)[0] > 0.8
    inside, area = groundtruth.region_mass(cov, [0, 68, 0, 135])
    assert inside == pytest.approx(1.0) and area == pytest.approx(0.5)


def test_bootstrap_map_check_separates_a_real_effect_from_none():
    rng = np.random.default_rng(10)
    cov = np.zeros((20, 40))
    cov[5:15, 5:15] = 1.0
    trained = cov[None] + rng.normal(scale=0.5, size=(12, 20, 40))      # maps that follow the coverage
    control = rng.normal(scale=0.5, size=(12, 20, 40)) + 1.0             # maps that do not
    c = groundtruth.bootstrap_map_check(trained, control, cov, [5, 15, 5, 15], n_boot=200)
    assert c["r"] > 0.8 and abs(c["r_control"]) < 0.3
    assert c["diff_ci_low"] > 0 and c["p"] < 0.01 and c["mass_excess_ci_low"] > 0 and c["n_images"] == 12
    same = groundtruth.bootstrap_map_check(control, control, cov, [5, 15, 5, 15], n_boot=50)
    assert same["diff"] == 0 and same["p"] == 1.0               # no difference: the check cannot pass
    with pytest.raises(ValueError):
        groundtruth.bootstrap_map_check(trained, control[:3], cov, [5, 15, 5, 15])
    one = groundtruth.bootstrap_map_check(trained[:1], control[:1], cov, [5, 15, 5, 15])
    assert np.isnan(one["diff_ci_low"]) and np.isnan(one["p"]) and one["n_images"] == 1


def test_energy_kept_ranked_keeps_the_most_and_random_keeps_its_share():
    """energy_kept: the top-|z| subset keeps at least its share k/N of each stimulus's sum of z squared
    (exactly the share when every neuron carries the same energy), all of it at 100 %, and the random
    selection keeps k/N; energy_at_fraction interpolates and passes a NaN crossing through."""
    from alignlib.interpret.ablation import energy_at_fraction, energy_kept

    z = np.array([[3.0, -1.0, 0.0, 0.0], [1.0, 1.0, -1.0, 1.0]])
    e = energy_kept(z, fractions=(0.25, 0.5, 1.0)).set_index("fraction")
    assert e.loc[0.25, "sorted"] == pytest.approx((9 / 10 + 1 / 4) / 2)
    assert e.loc[0.5, "sorted"] == pytest.approx((10 / 10 + 2 / 4) / 2)
    assert e.loc[1.0, "sorted"] == pytest.approx(1.0) and e.loc[0.25, "random"] == pytest.approx(0.25)
    assert (e["sorted"] >= e["random"] - 1e-12).all()
    flat = energy_kept(np.ones((3, 10)), fractions=(0.3, 0.7))
    np.testing.assert_allclose(flat["sorted"], flat["random"])
    table = e.reset_index()
    assert energy_at_fraction(table, "random", 0.375) == pytest.approx(0.375)
    assert np.isnan(energy_at_fraction(table, "sorted", float("nan")))


def test_tower_identity_sees_the_residual_and_the_controls_have_the_runs_architecture():
    """Two neural towers with the same weights but another computation (residual, head count) are
    different towers to the derived-result cache; the untrained controls are built with every
    architecture switch of the settings they stand beside (the quick profile's residual tower)."""
    from alignlib.experiments.dina import settings
    from alignlib.interpret.loading import untrained_image_tower, untrained_neural_tower
    from alignlib.interpret.occlusion import tower_sha256
    from alignlib.models.dina import build_dina

    torch.manual_seed(0)
    plain = build_dina(30, "quick").neural_tower
    torch.manual_seed(0)
    residual = build_dina(30, "quick", residual=True).neural_tower
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), residual.state_dict().values()))
    assert tower_sha256(plain) != tower_sha256(residual)
    cfg = settings.resolve("quick")
    assert cfg["neural_residual"]
    tower = untrained_neural_tower(30, cfg, seed=3)
    assert tower.residual and not tower.training
    assert tower_sha256(tower) == tower_sha256(untrained_neural_tower(30, cfg, seed=3))
    assert tower_sha256(untrained_image_tower(30, cfg, seed=3)) != tower_sha256(
        untrained_image_tower(30, cfg, seed=4))
