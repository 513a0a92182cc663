"""The GPU check (``python -m alignlib.bench.gpu_check``) at ``--scale small`` on the CPU: the same
code as on a GPU at reduced sizes. It runs as on the lent machine: without the packages that machine
lacks (dask, papermill, pooch, jupytext are blocked), the Onken recordings absent (synthetic Vi-ST
input)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from alignlib.bench import gpu_check
from alignlib.experiments.dina import settings as dina_settings

# Runs the check with the packages the GPU machine's python3 does not have made unimportable.
WITHOUT_MISSING_PACKAGES = textwrap.dedent('''\
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"dask", "distributed", "papermill", "pooch",
                                      "jupytext"}:
                raise ImportError(f"{name} is not installed on the GPU machine")

    sys.meta_path.insert(0, Block())
    from alignlib.bench.gpu_check import main
    sys.exit(main(sys.argv[1:]))
    ''')


@pytest.fixture(scope="module")
def small_check(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-check")
    (root / "no-data").mkdir()
    env = {**os.environ, "ALIGNLIB_DATA_DIR": str(root / "no-data"), "OMP_NUM_THREADS": "1"}
    env.pop("ALIGNLIB_CODE_VERSION", None)
    args = ["--scale", "small", "--device", "cpu", "--out", str(root / "out"),
            "--work", str(root / "work")]
    proc = subprocess.run([sys.executable, "-c", WITHOUT_MISSING_PACKAGES, *args],
                          capture_output=True, text=True, env=env, timeout=300)
    return root, proc


def test_small_check_writes_every_table_with_provenance(small_check):
    root, proc = small_check
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = root / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["gpu_check_dina.csv", "gpu_check_probe.csv", "gpu_check_summary.md",
                     "gpu_check_tower.csv", "gpu_check_vist.csv"]
    for name in (n for n in names if n.endswith(".csv")):
        row = pd.read_csv(out / name).iloc[0]
        for column in ("device_name", "torch", "date", "git_commit", "threads", "command"):
            assert isinstance(row[column], str) or column == "threads", (name, column)
        assert "--scale small" in row["command"] and row["git_commit"], name
    summary = (out / "gpu_check_summary.md").read_text()
    assert "**DINA**" in summary and "**Vi-ST**" in summary and "**Neural tower**" in summary
    assert (root / "work" / "runs" / "dina").is_dir() and (root / "work" / "twin").is_dir(), \
        "the runs and the twin go to the work folder, not the repository's"


def test_small_check_trains_dina_through_the_profile_and_projects(small_check):
    root, proc = small_check
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = pd.read_csv(root / "out" / "gpu_check_dina.csv").iloc[0]
    small = gpu_check.SCALES["small"]
    assert d["status"] == "ok" and d["profile"] == small["dina_profile"]
    assert (d["n_images"], d["n_neurons"]) == (small["twin"]["n_images"],
                                               small["twin"]["n_neurons"])
    epochs = [float(s) for s in str(d["epoch_s"]).split(";")]
    assert d["epochs_run"] == 2 and len(epochs) == 2 and min(epochs) > 0
    profile = dina_settings.PROFILES[small["dina_profile"]]
    assert d["epoch_cap"] == profile["epochs"] and d["patience"] == profile["patience"]
    assert d["projected_cap_h"] == pytest.approx(profile["epochs"] * epochs[-1] / 3600, rel=1e-3)
    assert d["batch"] == profile["batch_size"] and d["peak_mb"] > 0


def test_small_check_times_vist_steps_and_the_tower_table(small_check):
    root, proc = small_check
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = pd.read_csv(root / "out" / "gpu_check_vist.csv").iloc[0]
    assert v["status"] == "ok" and v["input"].startswith("synthetic") and v["step_s"] > 0
    assert v["features_shape"].startswith(f"{gpu_check.SYNTHETIC_MOVIE['frames'] // 3}x16x16x")
    assert v["cells"] == gpu_check.SYNTHETIC_MOVIE["cells"] and v["steps_timed"] == 2
    tower = pd.read_csv(root / "out" / "gpu_check_tower.csv")
    assert set(tower.attention) == {"sdpa", "factored"} and set(tower.n_neurons) == {250, 500}
    assert (tower.status == "ok").all() and (tower.median_s > 0).all()


def test_parts_past_the_budget_are_skipped(tmp_path):
    lines: list[str] = []
    code = gpu_check.main(["--scale", "small", "--device", "cpu", "--out", str(tmp_path),
                           "--budget-s", "0"], log=lines.append)
    assert code == 1
    summary = (tmp_path / "gpu_check_summary.md").read_text()
    assert summary.count("skipped: ") == 3, summary
    assert not list(tmp_path.glob("*.csv"))


def test_machine_tag():
    assert gpu_check.machine_tag("cpu").startswith("cpu-")
    assert all(c.isalnum() or c == "-" for c in gpu_check.machine_tag("cpu"))
