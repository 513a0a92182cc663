"""Shared test fixtures."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The test machine's 2 CPUs are shared with papermill kernels; one intra-op thread per test module
    avoids oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_twin(tmp_path_factory):
    """One small ground-truth twin for every test that needs a mouse in the Stringer format: 300 images x
    150 neurons, one natural, one whitened and one 8D mouse, strong signals and the legacy photo-crop
    stimuli, so that a few epochs learn: it tests the workflow, not what the book's twin finds."""
    from alignlib.data.twin import TwinConfig, generate_twin

    cfg = TwinConfig.quick(n_images=300, n_neurons=150, n_spont_timepoints=200, n_reference_images=100,
                           n_natural_mice=1, n_whitened_mice=1, n_8d_mice=1, gain_median=2.0, gain_log_sd=0.3,
                           stimuli="photo-crops")
    return generate_twin(tmp_path_factory.mktemp("tiny_twin"), cfg, progress=False)


@pytest.fixture(scope="session")
def tiny_mouse(tiny_twin):
    """Natural mouse M1 of :func:`tiny_twin` as the DINA chapter sees it."""
    from alignlib.data.stringer import load_session
    from alignlib.experiments.dina.cast import MouseRecording

    m = tiny_twin.mouse("M1")
    session = load_session(tiny_twin.session_path("M1"), tiny_twin.images_path("M1"))
    return MouseRecording("M1", "natural", "twin", session, "tiny test twin", "tiny test twin, M1",
                          {"session_sha256": tiny_twin.sha256[m.session_file],
                           "images_sha256": tiny_twin.sha256[m.images_file]})
