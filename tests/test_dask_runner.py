"""Parallel sweeps on dask.distributed: a real LocalCluster on loopback runs a tiny pipeline of trivial
notebooks (in tmp), respecting `needs`, skipping cached pages, keeping the other pages' outputs when one
fails, and retrying or reporting a page whose worker was killed."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

distributed = pytest.importorskip("distributed")

from alignlib.runner import StepsFailed, cache, cli, execute, load_pipeline, parallel, run_pipeline  # noqa: E402
from alignlib.runner.parallel import local_cluster, thread_env  # noqa: E402

PIPELINE = textwrap.dedent('''\
    profiles: {tiny: "for tests"}
    steps:
      - notebook: toy/a
      - notebook: toy/b
        output: toy/b_{k}
        foreach: {k: [u, v]}
        needs: [toy/a]
      - notebook: toy/c
        needs: [toy/b]
      - notebook: toy/d
    ''')

# Each page appends "<name> start|end <time>" to a log and prints its threads; between, it waits (120 s at
# most) until every page named in `together` has started: pages that run side by side meet there.
TIMED = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "tiny"
    k = "u"
    log = ""
    name = ""
    together: list = []

    # %%
    import os, time
    name = name.format(k=k)
    with open(log, "a") as f:
        f.write(f"{name} start {time.time()}\\n")
    deadline = time.time() + 120
    while time.time() < deadline and not all(f"{p} start" in open(log).read() for p in together):
        time.sleep(0.1)
    print("threads", os.environ.get("OMP_NUM_THREADS"))
    with open(log, "a") as f:
        f.write(f"{name} end {time.time()}\\n")
    ''')

# Kills the Dask worker running it (its kernel's parent) when `marker` does not exist yet, or always.
KILLER = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "tiny"
    marker = ""
    always = False

    # %%
    import os, signal
    from pathlib import Path
    if always or not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(1)
    print("survived")
    ''')


def write_area(root: Path, pipeline: str, notebooks: dict[str, str]) -> Path:
    (root / "pipeline.yml").write_text(pipeline)
    for name, text in notebooks.items():
        path = root / "notebooks" / "toy" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data").mkdir(exist_ok=True)
    return root / "pipeline.yml"


def run(root: Path, client, lines: list[str] | None = None, **kwargs):
    return run_pipeline("tiny", executed_dir=root / "executed", client=client,
                        env={"ALIGNLIB_DATA_DIR": str(root / "data"), "ALIGNLIB_RESULTS_DIR": str(root / "results")},
                        log=(lines.append if lines is not None else lambda *_: None),
                        pipeline=load_pipeline(root / "pipeline.yml"), **kwargs)


@pytest.fixture(scope="module")
def threaded_client():
    """Workers as threads of this process: monkeypatched execution reaches them (no real kernels)."""
    with local_cluster(2, processes=False) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def process_client():
    """Worker processes, as `alignlib book --workers` starts them: real kernels run there (papermill's
    event loop cannot run inside a threaded worker of a process that already runs one)."""
    with local_cluster(2, processes=True) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(autouse=True)
def fixed_package_hash(monkeypatch):
    monkeypatch.setattr(cache, "package_hash", lambda *args: "fixed-package-hash")


def test_sweep_runs_in_parallel_after_its_needs_then_is_cached(tmp_path, process_client):
    log = tmp_path / "times.log"
    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/a
            params: {{common: {{log: "{log}", name: a}}}}
          - notebook: toy/b
            output: toy/b_{{k}}
            foreach: {{k: [u, v]}}
            needs: [toy/a]
            params: {{common: {{log: "{log}", name: "b_{{k}}", together: [b_u, b_v]}}}}
          - notebook: toy/c
            needs: [toy/b]
            params: {{common: {{log: "{log}", name: c}}}}
          - notebook: toy/d
            params: {{common: {{log: "{log}", name: d}}}}
        ''')
    write_area(tmp_path, pipeline, {n: TIMED for n in "abcd"})
    statuses = run(tmp_path, process_client, threads=1)
    assert [s.output for s in statuses if s.executed] == ["toy/a", "toy/b_u", "toy/b_v", "toy/c", "toy/d"]
    times: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        name, what, t = line.split()
        times.setdefault(name, {})[what] = float(t)
    for page in ("b_u", "b_v"):
        assert times[page]["start"] >= times["a"]["end"], f"{page} started before the page it needs ended"
        assert times["c"]["start"] >= times[page]["end"], f"c started before {page} ended"
    assert times["b_u"]["start"] < times["b_v"]["end"] and times["b_v"]["start"] < times["b_u"]["end"], \
        "the two independent pages must run side by side"
    executed = (tmp_path / "executed/toy/b_u.ipynb").read_text()
    assert "threads 1" in executed, "each kernel gets OMP_NUM_THREADS from --threads"
    manifest = cache.read_manifest(tmp_path / "executed", "toy/c")
    assert manifest["components"]["upstream"] == {o: cache.read_manifest(tmp_path / "executed", o)["key"]
                                                  for o in ("toy/b_u", "toy/b_v")}
    lines: list[str] = []
    assert not any(s.executed for s in run(tmp_path, process_client, lines))
    assert sum("up to date, skipped" in line for line in lines) == 5


def fake_papermill(calls: list[str]):
    import nbformat
    import papermill

    def fake(src, out, parameters, cwd, env=None):
        calls.append(parameters.get("k", "-"))
        nbformat.write(nbformat.read(src, as_version=4), out)
        if parameters.get("k") == "v" and parameters.get("fail"):
            raise papermill.PapermillExecutionError(2, 3, "", "ValueError", "planted failure", [])
    return fake


def test_failing_step_stops_its_dependants_and_keeps_the_others(tmp_path, threaded_client, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(execute, "_run_papermill", fake_papermill(calls))
    pipeline = PIPELINE.replace("    foreach: {k: [u, v]}\n", "    foreach: {k: [u, v]}\n    params: {common: {fail: true}}\n")
    write_area(tmp_path, pipeline, {n: "# %% tags=['parameters']\nprofile = 'tiny'\nk = 'u'\nfail = False\n"
                                    for n in "abcd"})
    with pytest.raises(StepsFailed) as info:
        run(tmp_path, threaded_client)
    err = info.value
    assert list(err.failures) == ["toy/b_v"] and err.blocked == ["toy/c"]
    message = str(err)
    assert "step toy/b_v" in message and "toy/b.py failed in cell 2" in message and "planted failure" in message
    assert "not started, because a page they need failed: toy/c" in message
    executed = tmp_path / "executed"
    for kept in ("toy/a", "toy/b_u", "toy/d"):
        assert (executed / f"{kept}.ipynb").exists() and cache.read_manifest(executed, kept), kept
    assert not (executed / "toy/c.ipynb").exists() and cache.read_manifest(executed, "toy/b_v") is None
    (tmp_path / "pipeline.yml").write_text(PIPELINE)  # `fail` dropped: both b pages' parameters change
    assert [s.output for s in run(tmp_path, threaded_client) if s.executed] == ["toy/b_u", "toy/b_v", "toy/c"]
    assert "u" in calls and calls.count("v") == 2


def test_killed_worker_is_retried(tmp_path):
    """Real worker processes: the page kills its worker the first time; the page runs again and is kept."""
    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/lucky
            params: {{common: {{marker: "{tmp_path / 'lucky.marker'}"}}}}
        ''')
    write_area(tmp_path, pipeline, {"lucky": KILLER})
    with local_cluster(2, processes=True) as cluster, distributed.Client(cluster) as client:
        statuses = run(tmp_path, client)
    assert [s.output for s in statuses if s.executed] == ["toy/lucky"]
    assert (tmp_path / "lucky.marker").exists(), "the page did kill its first worker"
    assert "survived" in (tmp_path / "executed/toy/lucky.ipynb").read_text()


def worker_died(*args, **kwargs):
    raise distributed.KilledWorker("alignlib-toy-a-1", SimpleNamespace(address="tcp://127.0.0.1:1"), 1)


def test_worker_dying_again_is_reported_as_a_failed_step(tmp_path, threaded_client, monkeypatch):
    """What the scheduler raises after the retry (KilledWorker) is reported as the step's failure, and the
    page that needs it is not started (a real second death costs two more worker restarts: see above)."""
    monkeypatch.setattr(parallel, "execute_step", worker_died)
    write_area(tmp_path, PIPELINE, {n: "# %% tags=['parameters']\nprofile = 'tiny'\nk = 'u'\n" for n in "abcd"})
    with pytest.raises(StepsFailed) as info:
        run(tmp_path, threaded_client)
    assert set(info.value.failures) == {"toy/a", "toy/d"} and info.value.blocked == ["toy/b_u", "toy/b_v", "toy/c"]
    assert "step toy/a" in str(info.value) and "worker died" in str(info.value) and "toy/a.py" in str(info.value)


def test_cli_flags():
    args = cli._parser().parse_args(["book", "--workers", "2", "--threads", "1", "--scheduler", "tcp://h:8786"])
    assert (args.workers, args.threads, args.scheduler) == (2, 1, "tcp://h:8786")
    assert cli._parser().parse_args(["run", "dina/data"]).workers == 1, "serial stays the default"
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["run", "--workers", "0"])


def test_thread_env_keeps_a_user_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    env = thread_env(2)
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "3"
    assert thread_env(None) == {}
    assert json.dumps(env)


# A separate `dask scheduler` and two `dask worker` processes on loopback, as on a cluster: the
# sweep goes through `alignlib run --scheduler tcp://127.0.0.1:<port>` (the CLI, in this process).
import os  # noqa: E402


def _start_dask(folder: Path, processes: list, command: str, *args: str) -> None:
    """Start `dask <command>` (this interpreter's distributed) in a process group of its own."""
    import subprocess
    import sys

    # The runner's own LocalCluster settings (retry a page once when its worker dies; hold only
    # the page a worker runs), which a separate scheduler has to be given in its configuration.
    env = os.environ | {
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(parallel.ALLOWED_FAILURES),
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    log = open(folder / f"{len(processes)}-{command}.log", "wb")
    processes.append(subprocess.Popen(
        [sys.executable, "-m", f"distributed.cli.dask_{command}", *args], env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True))
    log.close()


def _stop_dask(process) -> None:
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)  # the worker's nanny and its worker process too
            process.wait(timeout=15)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def separate_scheduler(tmp_path_factory):
    """The address of a `dask scheduler` (on a free port) with two `dask worker --nthreads 1`
    processes, all separate processes, stopped afterwards whatever happened."""
    import time

    folder = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = folder / "scheduler.json"
    processes: list = []
    try:
        _start_dask(folder, processes, "scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--no-dashboard", "--scheduler-file", str(scheduler_file))
        deadline = time.time() + 60
        while (not scheduler_file.exists() and time.time() < deadline
               and processes[0].poll() is None):
            time.sleep(0.2)
        assert scheduler_file.exists(), (folder / "0-scheduler.log").read_text()
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:"), address
        for _ in range(2):
            _start_dask(folder, processes, "worker", address, "--nthreads", "1",
                        "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
                        "--local-directory", str(folder))
        with distributed.Client(address) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            _stop_dask(process)


def _cli_run(root: Path, monkeypatch, capsys, address: str) -> tuple[int, str]:
    """`alignlib run --profile tiny --scheduler ADDRESS --threads 1` on the pipeline in `root`."""
    for name, sub in (("DATA", "data"), ("RESULTS", "results"), ("EXECUTED", "executed")):
        monkeypatch.setenv(f"ALIGNLIB_{name}_DIR", str(root / sub))
    monkeypatch.setattr(execute, "load_pipeline", lambda: load_pipeline(root / "pipeline.yml"))
    code = cli.main(["run", "--profile", "tiny", "--scheduler", address, "--threads", "1"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_separate_scheduler_runs_the_sweep_in_order_then_caches(
        tmp_path, separate_scheduler, monkeypatch, capsys):
    log = tmp_path / "times.log"
    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/a
            params: {{common: {{log: "{log}", name: a}}}}
          - notebook: toy/b
            output: toy/b_{{k}}
            foreach: {{k: [u, v]}}
            needs: [toy/a]
            params: {{common: {{log: "{log}", name: "b_{{k}}", together: [b_u, b_v]}}}}
          - notebook: toy/c
            needs: [toy/b]
            params: {{common: {{log: "{log}", name: c}}}}
        ''')
    write_area(tmp_path, pipeline, {n: TIMED for n in "abc"})
    code, printed = _cli_run(tmp_path, monkeypatch, capsys, separate_scheduler)
    assert code == 0, printed
    assert f"Dask scheduler {separate_scheduler}: 2 worker(s)" in printed
    times: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        name, what, t = line.split()
        times.setdefault(name, {})[what] = float(t)
    assert sorted(times) == ["a", "b_u", "b_v", "c"]
    for page in ("b_u", "b_v"):
        assert times[page]["start"] >= times["a"]["end"], f"{page} started before a ended"
        assert times["c"]["start"] >= times[page]["end"], f"c started before {page} ended"
    assert (times["b_u"]["start"] < times["b_v"]["end"]
            and times["b_v"]["start"] < times["b_u"]["end"]), \
        "the two independent pages must run side by side, one on each worker"
    assert "threads 1" in (tmp_path / "executed/toy/b_u.ipynb").read_text()
    executed = tmp_path / "executed"
    assert cache.read_manifest(executed, "toy/c")["components"]["upstream"] == {
        o: cache.read_manifest(executed, o)["key"] for o in ("toy/b_u", "toy/b_v")}
    log.unlink()
    code, printed = _cli_run(tmp_path, monkeypatch, capsys, separate_scheduler)
    assert code == 0, printed
    assert printed.count("up to date, skipped") == 4, printed
    assert not log.exists(), "a second run executes nothing"


def test_separate_scheduler_retries_a_page_whose_worker_was_killed(
        tmp_path, separate_scheduler, monkeypatch, capsys):
    """The page kills its `dask worker` process the first time; the nanny restarts it, the
    scheduler runs the page again (on either worker) and the page is kept."""
    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/lucky
            params: {{common: {{marker: "{tmp_path / 'lucky.marker'}"}}}}
        ''')
    write_area(tmp_path, pipeline, {"lucky": KILLER})
    code, printed = _cli_run(tmp_path, monkeypatch, capsys, separate_scheduler)
    assert code == 0, printed
    assert (tmp_path / "lucky.marker").exists(), "the page did kill its first worker"
    assert "survived" in (tmp_path / "executed/toy/lucky.ipynb").read_text()
    assert "toy/lucky done in" in printed


def test_separate_scheduler_reports_a_second_worker_death_as_a_failed_step(
        tmp_path, separate_scheduler, monkeypatch, capsys):
    """A page that kills its worker every time: retried once, then reported (exit status 2),
    never lost."""
    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/doomed
            params: {{common: {{marker: "{tmp_path / 'doomed.marker'}", always: true}}}}
        ''')
    write_area(tmp_path, pipeline, {"doomed": KILLER})
    code, printed = _cli_run(tmp_path, monkeypatch, capsys, separate_scheduler)
    assert code == 2 and "step toy/doomed" in printed and "worker died" in printed, printed
    assert "KilledWorker" in printed and "toy/doomed.py" in printed, printed
    assert cache.read_manifest(tmp_path / "executed", "toy/doomed") is None


# --- issue 20: a parallel build killed mid-way (the whole process group), then run again ---------------

SLEEPER = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "tiny"
    k = "u"
    marker = ""

    # %%
    import time
    from pathlib import Path
    first = not Path(marker + k).exists()
    Path(marker + k).touch()
    if first:
        time.sleep(120)
    print("finished", k)
    ''')

BUILD = ("import sys; from pathlib import Path; from alignlib.runner import load_pipeline, run_pipeline; "
         "root = Path(sys.argv[1]); run_pipeline('tiny', executed_dir=root / 'executed', workers=2, "
         "pipeline=load_pipeline(root / 'pipeline.yml'))")


def _processes_with(token: str) -> list[int]:
    """Processes whose environment holds ``token`` (the build's own ALIGNLIB_RESULTS_DIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_killed_parallel_build_leaves_nothing_behind_and_reruns_to_completion(tmp_path):
    """SIGKILL to the whole process group of a `--workers 2` build while two pages run: nothing
    half-written is published, no worker or kernel is left, and the same command then completes."""
    import signal
    import subprocess
    import sys
    import time

    pipeline = textwrap.dedent(f'''\
        profiles: {{tiny: "for tests"}}
        steps:
          - notebook: toy/b
            output: toy/b_{{k}}
            foreach: {{k: [u, v]}}
            params: {{common: {{marker: "{tmp_path / 'started-'}"}}}}
        ''')
    write_area(tmp_path, pipeline, {"b": SLEEPER})
    token = f"ALIGNLIB_RESULTS_DIR={tmp_path / 'results'}"
    env = {**os.environ, "ALIGNLIB_DATA_DIR": str(tmp_path / "data"), "ALIGNLIB_RESULTS_DIR": str(tmp_path / "results")}
    build = subprocess.Popen([sys.executable, "-c", BUILD, str(tmp_path)], env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not all((tmp_path / f"started-{k}").exists() for k in "uv"):
        assert build.poll() is None, build.stdout.read()
        time.sleep(0.2)
    assert all((tmp_path / f"started-{k}").exists() for k in "uv"), "both pages were running"
    os.killpg(build.pid, signal.SIGKILL)
    build.wait(30)
    executed = tmp_path / "executed"
    assert not list(executed.rglob("*.ipynb")), "a page killed while running is not published"
    assert cache.read_manifest(executed, "toy/b_u") is None and cache.read_manifest(executed, "toy/b_v") is None
    deadline = time.time() + 20  # kernels notice their parent's death within a second or two
    while time.time() < deadline and _processes_with(token):
        time.sleep(0.5)
    assert _processes_with(token) == [], "a worker or kernel outlived the killed build"

    rerun = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path)], env=env, capture_output=True,
                           text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for k in "uv":
        assert f"finished {k}" in (executed / f"toy/b_{k}.ipynb").read_text()
        assert cache.read_manifest(executed, f"toy/b_{k}")["key"]
    assert not list(executed.rglob("*.partial"))
    assert _processes_with(token) == []


def test_ready_pages_start_with_the_one_most_pages_wait_for():
    """The long chain goes first: a page that many pages need (directly or through others) outranks a leaf,
    whatever the schedule order; a page nothing needs counts 0."""
    from alignlib.runner.parallel import downstream_counts

    run = lambda out, *needs: (SimpleNamespace(output=out, needs=tuple(needs)), "target")
    scheduled = [run("bench"), run("data"), run("train", "data"), run("interp", "train"),
                 run("neural", "train", "interp"), run("ledger", "train", "neural", "outside")]
    counts = downstream_counts(scheduled)
    assert counts == {"bench": 0, "data": 4, "train": 3, "interp": 2, "neural": 1, "ledger": 0}
    ready = sorted(["bench", "data"], key=lambda o: (-counts[o], [r.output for r, _ in scheduled].index(o)))
    assert ready == ["data", "bench"]
