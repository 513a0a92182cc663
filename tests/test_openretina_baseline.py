"""openretina's salamander core + readout (alignlib.models.openretina_baseline): shapes, causality, a few
training steps with openretina's own loss, and (when openretina's Lightning model imports) identity with the
model openretina's trainer builds from its config. Skipped when openretina is not installed."""

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("openretina.modules.core.base_core")

from alignlib.models import openretina_baseline as B  # noqa: E402

H = W = 32  # the smallest kind of frame the default spatial kernels (15, 11) take comfortably: 12 x 12 map


def _model(n_cells=3, n_lags=11, **kw):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Readout is NOT initialized with mean activity" when mean_rate is None
        return B.build(n_cells, (H, W), n_lags, **kw)


def test_available_and_version():
    import importlib.metadata

    assert B.available()
    assert importlib.metadata.version("openretina") == B.OPENRETINA_VERSION


def test_default_kernels_are_openretinas():
    assert B.split_lags(31) == (21, 11)
    m = _model(n_lags=31)
    convs = [layer.conv for layer in m.core.features]
    assert [c.temporal_kernel_size for c in convs] == [21, 11]
    assert [c.spatial_kernel_size for c in convs] == [15, 11]
    assert [c.out_channels for c in convs] == [16, 32]
    assert m.n_lags == 31


@pytest.mark.parametrize("causal_pad", [False, True])
def test_shapes(causal_pad):
    m = _model(n_cells=4, n_lags=11, causal_pad=causal_pad, mean_rate=np.full(4, 0.2))
    x = torch.randn(2, 1, 20, H, W)
    y = m(x)
    t_out = 20 if causal_pad else 20 - 11 + 1
    assert y.shape == (2, t_out, 4)
    assert torch.all(y >= 0)
    assert m(x[:, 0]).shape == y.shape  # (B, T, H, W) gets the channel axis
    assert m.readout["session"].bias.detach().numpy() == pytest.approx(0.2)


def test_too_short_window_and_too_small_frame_are_refused():
    m = _model(n_lags=11)
    with pytest.raises(ValueError, match="shorter than n_lags"):
        m(torch.randn(1, 1, 10, H, W))
    with pytest.raises(ValueError, match="too small|feature map"):
        B.build(2, (16, 16), 11)


@pytest.mark.parametrize("causal_pad", [False, True])
def test_causal(causal_pad):
    """In eval mode a change in frame s changes no output that belongs to an earlier frame, and changes the
    output of frame s itself."""
    m = _model(n_lags=11, causal_pad=causal_pad).eval()
    with torch.no_grad():  # openretina initialises the spatial weights at 0.01 s.d.: outputs differ in the 7th digit
        for layer in m.core.features:
            layer.conv.weight_spatial.mul_(100.0)
    x = torch.randn(1, 1, 24, H, W)
    s = 20
    x2 = x.clone()
    x2[:, :, s] += 3.0 * torch.randn(H, W)
    with torch.no_grad():
        y, y2 = m(x), m(x2)
    first = s - m.lag  # output index of frame s
    assert torch.equal(y[:, :first], y2[:, :first])
    assert (y[:, first] - y2[:, first]).abs().max() > 1e-4


def test_predict_movie_matches_windows():
    m = _model(n_lags=11).eval()
    frames = np.random.default_rng(0).standard_normal((30, H, W)).astype(np.float32)
    pred = B.predict_movie(m, frames, chunk=7)
    assert pred.shape == (30, 3)
    with torch.no_grad():
        direct = m(torch.as_tensor(frames)[None, None])[0].numpy()
    np.testing.assert_allclose(pred[10:], direct, rtol=1e-5, atol=1e-6)


def test_centres_place_the_masks():
    centres = np.array([[16.0, 16.0], [12.0, 20.0], [0.0, 31.0]])
    m = _model(centres=centres)
    masks = m.readout["session"].get_mask().detach().numpy()  # (cells, 12, 12); the map starts at pixel 10
    peaks = [np.unravel_index(mk.argmax(), mk.shape) for mk in masks]
    assert peaks == [(6, 6), (2, 10), (0, 11)]


def test_three_steps_with_openretinas_loss():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 0.5, size=(2, 16, 3)).astype(np.float32)
    m = _model(mean_rate=rates.mean((0, 1)))
    opt, sched = B.make_optimizer(m)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == 0.01
    x = torch.randn(2, 1, 16, H, W)
    y = torch.as_tensor(rates)
    losses = []
    for _ in range(3):
        loss = m.training_loss(m(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), B.TRAINING["gradient_clip_val"])
        opt.step()
        losses.append(float(loss.detach()))
    assert np.all(np.isfinite(losses))
    with torch.no_grad():
        r = m.correlation(m.eval()(x), y)
    assert torch.isfinite(r) and -1 <= float(r) <= 1
    sched.step(float(r))


def test_same_model_as_openretinas_trainer_builds():
    """openretina's UnifiedCoreReadout, instantiated as its Hydra trainer does from
    configs/model/base_core_readout.yaml + maheswaranathan_2023_core_readout.yaml (release 1.1.1, restated
    here since the wheel ships no configs), has the same parameters and, given the same weights, the same
    outputs and training loss. Needs openretina.models (Lightning, Hydra, OpenCV, moviepy)."""
    pytest.importorskip("lightning")
    pytest.importorskip("hydra")
    try:
        from openretina.models.core_readout import UnifiedCoreReadout
    except ImportError as err:
        pytest.skip(f"openretina.models does not import: {err}")
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "core": {"_target_": "openretina.modules.core.base_core.SimpleCoreWrapper", "_convert_": "object",
                 "gamma_input": 0.0, "gamma_hidden": 0.0, "gamma_in_sparse": 0.0, "gamma_temporal": 40.0,
                 "input_padding": 0, "hidden_padding": [0, 2, 2], "convolution_type": "custom_separable",
                 "temporal_kernel_sizes": [21, 11], "spatial_kernel_sizes": [15, 11], "cut_first_n_frames": 0,
                 "dropout_rate": 0.0, "maxpool_every_n_layers": None, "downsample_input_kernel_size": None,
                 "color_squashing_weights": None, "channels": "???"},
        "readout": {"_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
                    "_convert_": "object", "scale": True, "bias": True, "gaussian_mean_scale": 6.0,
                    "gaussian_var_scale": 4.0, "positive": True, "mask_l1_reg": 1.0,
                    "feature_weights_l1_reg": 1.0, "readout_reg_avg": False},
        "loss": {"_target_": "openretina.modules.losses.poisson.L1PoissonLoss3d", "gamma_l1": 0.001},
    })
    mean = torch.full((3,), 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = UnifiedCoreReadout(in_shape=(1, 40, H, W), n_neurons_dict={"session": 3}, core=cfg.core,
                                 readout=cfg.readout, hidden_channels=[16, 32], learning_rate=0.01, loss=cfg.loss,
                                 data_info={"mean_activity_dict": {"session": mean}})
    m = _model(n_lags=31, mean_rate=mean.numpy())
    ref_sd, sd = ref.state_dict(), m.state_dict()
    assert set(ref_sd) == set(sd)
    assert all(ref_sd[k].shape == sd[k].shape for k in sd)
    for k in sd:  # what is not drawn at random starts equal (BatchNorm statistics, readout bias)
        if "running" in k or k.endswith("readout.session.bias"):
            torch.testing.assert_close(sd[k], ref_sd[k])
    m.load_state_dict(ref_sd)
    x, y = torch.randn(2, 1, 40, H, W), torch.rand(2, 40, 3)
    torch.testing.assert_close(m.training_loss(m(x), y),
                               ref.loss(ref(x, "session"), y) + ref.core.regularizer()
                               + ref.readout.regularizer("session"))
    ref.eval(), m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x, "session"))
