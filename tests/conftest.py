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


@pytest.fixture(scope="session")
def smoke_area(tmp_path_factory):
    """One scratch copy of the book for the session: runs, results, generated data and executed pages
    under tmp. Pages executed by one test are reused (cache) by the next. Under pytest-xdist the test
    processes share it (it sits in the session's common base folder, set up once under a lock), so
    the page tests of tests/test_book.py and tests/test_book_vist_vna.py run side by side without
    running a page twice: each page runs under its own lock, and a process that finds a page running
    waits for it and then reads it from the cache."""
    import os
    import shutil

    from alignlib.paths import REPO_ROOT, locked
    from alignlib.runner import load_pipeline, render_toc

    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "smoke-book"
    else:
        root = tmp_path_factory.mktemp("book")
    with locked(root.parent / f".{root.name}.lock", f"the scratch book {root}"):
        if not (root / ".ready").exists():
            root.mkdir(exist_ok=True)
            shutil.copy(REPO_ROOT / "_config.yml", root / "_config.yml")
            (root / "_toc.yml").write_text(render_toc(load_pipeline()))
            shutil.copytree(REPO_ROOT / "book", root / "book", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("executed", "_static"))
            (root / ".ready").touch()
    env = {"ALIGNLIB_RUNS_DIR": str(root / "runs"), "ALIGNLIB_RESULTS_DIR": str(root / "results"),
           "ALIGNLIB_WORK_DIR": str(root / "generated")}
    return root, root / "book" / "executed", env


@pytest.fixture(scope="session")
def smoke_step(smoke_area):
    """Run one planned page under the smoke profile in :func:`smoke_area` (pages it needs run first
    if missing) and check what it left: its manifest with the step's parameters and the executed
    notebook."""
    from alignlib.runner import cache, run_pipeline

    root, executed, env = smoke_area

    def run_step(run):
        statuses = run_pipeline("smoke", [run.output], executed_dir=executed, env=env)
        assert run.output in [s.output for s in statuses]
        manifest = cache.read_manifest(executed, run.output)
        assert manifest and manifest["components"]["parameters"] == run.parameters
        assert (executed / f"{run.output}.ipynb").exists()

    return run_step
