"""Safe to re-run (issue 20): paths built from parameters stay in their folders and bad values are refused
before anything runs, inputs are identified by their content, and two commands at once take turns
(locks per page, per training run and for the HTML book) instead of writing through each other."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from alignlib import paths
from alignlib.data import allen
from alignlib.data.errors import ChecksumError, DataFormatError
from alignlib.runner import ParameterError, cli, execute, load_pipeline
from alignlib.runner.pipeline import PlannedRun

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (empty when it does not exist)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


# --- 1. paths from parameters --------------------------------------------------------------------------

def test_traversal_value_is_refused_and_nothing_changes_on_disk(tmp_path, monkeypatch, capsys):
    """The issue's reproduction: `-p mouse=../../../../dina/data` wrote the failed page over dina/data."""
    executed = tmp_path / "executed"
    (executed / "dina").mkdir(parents=True)
    (executed / "dina" / "data.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (executed / "dina" / "data.manifest.json").write_text("{}\n")
    for name in ("EXECUTED", "RUNS", "RESULTS", "WORK"):
        monkeypatch.setenv(f"ALIGNLIB_{name}_DIR", str(tmp_path / name.lower() if name != "EXECUTED" else executed))
    before, book_before = tree_digest(tmp_path), tree_digest(REPO / "book" / "executed")
    code = cli.main(["run", "dina/train", "--profile", "smoke", "-p", "mouse=../../../../dina/data"])
    err = capsys.readouterr().err
    assert code == 2 and "parameter 'mouse' must be one of M1, M2, M3, M4" in err
    assert tree_digest(tmp_path) == before, "a refused value must change nothing"
    assert tree_digest(REPO / "book" / "executed") == book_before


def test_execute_refuses_a_page_name_that_leaves_its_folder(tmp_path):
    """Defence in depth: a name that got past the planner is refused by the executor before it writes."""
    source = tmp_path / "nb.py"
    source.write_text('# %% tags=["parameters"]\nx = 1\n')
    executed = tmp_path / "book" / "executed"
    executed.mkdir(parents=True)
    for output in ("../escaped", "a/../../escaped", "/tmp/escaped"):
        with pytest.raises(paths.OutsideFolder, match="would leave"):
            execute.execute_notebook(PlannedRun("nb", output, {}, source), executed, log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["book", "executed", "nb.py"]
    with pytest.raises(paths.OutsideFolder):
        paths.inside(tmp_path, "..", "x")
    assert paths.inside(tmp_path, "a/b.csv") == (tmp_path / "a" / "b.csv").resolve()


@pytest.mark.parametrize("override,message", [
    ({"epochs": 0}, "dina/train: parameter 'epochs' must be at least 1, got 0"),
    ({"epochs": -3}, "dina/train: parameter 'epochs' must be at least 1, got -3"),
    ({"mouse": "Z9"}, "dina/train: parameter 'mouse' must be one of M1, M2, M3, M4, W1, W2, D1, D2, got 'Z9'"),
    ({"twin_size": "huge"}, "parameter 'twin_size' must be one of smoke, quick, paper, got 'huge'"),
])
def test_ranges_and_choices_are_checked_before_anything_runs(override, message):
    with pytest.raises(ParameterError) as info:
        load_pipeline().plan("smoke", ["dina/train"], override)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_list_values_and_other_steps_are_checked_too():
    with pytest.raises(ParameterError, match=r"dina/results: parameter 'mice' must be one of .*got 'Z9' \(in"):
        load_pipeline().plan("smoke", ["dina/results"], {"mice": ["M1", "Z9"]})
    assert [r.output for r in load_pipeline().plan("smoke", ["dina/train"], {"mouse": "W1", "epochs": 1})] == [
        "dina/train_W1"], "choices widen a foreach list"


def test_renaming_a_page_with_its_loop_parameter_is_explained():
    with pytest.raises(ParameterError) as info:
        load_pipeline().plan("quick", ["dina/train_M1"], {"mouse": "M2"})
    text = str(info.value)
    assert "dina/train_M1 is the page of dina/train for mouse=M1" in text and "renames the page" in text
    assert "alignlib run dina/train -p mouse=M2" in text


def test_pipeline_declarations_are_checked(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.py").write_text('# %% tags=["parameters"]\nprofile = "t"\nk = "u"\n')
    base = 'profiles: {t: "x"}\nsteps:\n  - notebook: a\n    output: a_{k}\n    foreach: {k: [u, v]}\n'
    (tmp_path / "pipeline.yml").write_text(base + "    choices: {k: [u]}\n")
    with pytest.raises(ParameterError, match="choices of 'k' leave out its foreach value"):
        load_pipeline(tmp_path / "pipeline.yml")
    (tmp_path / "pipeline.yml").write_text(base + "    ranges: {n: [1]}\n")
    with pytest.raises(ParameterError, match=r"range of 'n' must be \[min, max\]"):
        load_pipeline(tmp_path / "pipeline.yml")
    (tmp_path / "pipeline.yml").write_text(base + "    ranges: {n: [1, null]}\n")
    with pytest.raises(ParameterError, match="declares choices or ranges for n, which the notebook does not take"):
        load_pipeline(tmp_path / "pipeline.yml").plan("t")


UNION = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "quick"
    epochs: int | None = None
    mice: list | None = None

    # %%
    print("epochs", epochs, "mice", mice)
    ''')


def test_papermill_knows_union_annotated_parameters(tmp_path, caplog):
    """papermill warned 'Passed unknown parameter: epochs' for `epochs: int | None = None`."""
    source = tmp_path / "union.py"
    source.write_text(UNION)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        out = execute.execute_notebook(PlannedRun("union", "union", {"epochs": 3, "mice": ["M1"]}, source),
                                       tmp_path / "executed", log=lambda *_: None)
    assert "epochs 3 mice ['M1']" in out.read_text()
    assert not [r for r in caplog.records if "unknown parameter" in r.getMessage()], caplog.text


# --- 2. inputs by content ------------------------------------------------------------------------------

def copy_real_allen(tmp_path) -> Path:
    root = Path(os.environ.get("ALIGNLIB_DATA_DIR") or SHARED_DATA) / "allen_ns118"
    if not all((root / name).exists() for name in allen.SHA256):
        pytest.skip(f"the Allen files are not in {root}")
    dest = tmp_path / "allen_ns118"
    dest.mkdir()
    for name in allen.SHA256:
        shutil.copy2(root / name, dest / name)
    return dest


def edit_in_place_keeping_size_and_mtime(path: Path) -> None:
    """Change one byte near the end, then set the mtime back (`touch -r`)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_allen_files_are_pinned_and_an_edit_fails_the_checksum(tmp_path):
    folder = copy_real_allen(tmp_path)
    assert all(allen.verify_checksums(folder).values())
    assert allen.load_allen_ns118(folder).responses.shape == (118, 212)
    edit_in_place_keeping_size_and_mtime(folder / "Allen_train_output.npy")
    with pytest.raises(ChecksumError, match=r"Allen_train_output.npy: sha256 [0-9a-f]{64} != pinned d51c2606"):
        allen.load_allen_ns118(folder)


def test_wrong_shaped_allen_file_names_itself_and_both_shapes(tmp_path):
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 256, size=(118, allen.SIDE ** 2)).astype(np.float64)
    split = allen.stated_split()
    for part, idx in split.items():
        np.save(tmp_path / allen.FILES[f"{part}_input"], scenes[idx])
        np.save(tmp_path / allen.FILES[f"{part}_output"], np.zeros((len(idx), 7 if part == "train" else 6)))
    np.save(tmp_path / allen.FILES["scenes"], scenes)
    with pytest.raises(DataFormatError) as info:
        allen.load_allen_ns118(tmp_path, verify=False)
    text = str(info.value)
    assert "Allen_test_output.npy" in text and "(18, 6)" in text and "(100, 7)" in text


# --- 3. two commands at once ---------------------------------------------------------------------------

def test_two_identical_trainings_at_once_end_with_one_run(tiny_mouse, tmp_path, monkeypatch, capsys):
    """Two trainings of one configuration started together: one trains, the other waits and loads it."""
    from alignlib.experiments.dina import settings
    from alignlib.experiments.dina.workflow import train_mouse

    monkeypatch.setenv("ALIGNLIB_RUNS_DIR", str(tmp_path))
    cfg = settings.resolve("smoke", epochs=1, patience=1, batch_size=64)
    runs, errors = [], []

    def train():
        try:
            runs.append(train_mouse(tiny_mouse, cfg, seed=0))
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert sorted(r.trained_now for r in runs) == [False, True], "exactly one of the two trained"
    assert runs[0].directory == runs[1].directory
    assert [d.name for d in (tmp_path / "dina").iterdir() if d.is_dir()] == [runs[0].directory.name]
    assert runs[0].info == runs[1].info
    assert "waiting: another command is writing the training run" in capsys.readouterr().err


def test_book_build_waits_for_another_build(tmp_path, monkeypatch):
    """A second `alignlib book` waits for the first build's lock, then finds the book unchanged."""
    from alignlib.runner import book

    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "book").mkdir()
    builds: list[float] = []

    def fake_build(cmd, cwd, **kwargs):
        builds.append(time.time())
        html = Path(cwd) / "_build" / "html"
        (html / "_static" / "mathjax").mkdir(parents=True, exist_ok=True)
        (html / "index.html").write_text("<html></html>")
        (html / "_static" / "mathjax" / "MathJax.js").write_text("")
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(book.subprocess, "run", fake_build)
    monkeypatch.setattr(book, "report_leaked_warnings", lambda *a, **k: [])
    lines: list[str] = []
    with paths.locked(tmp_path / book.BOOK_LOCK, "the book (held by the test)"):
        worker = threading.Thread(target=book.build_book, args=(tmp_path, lines.append))
        worker.start()
        time.sleep(0.5)
        assert builds == [] and any("waiting: another command is writing the HTML book" in x for x in lines)
    worker.join(30)
    book.build_book(tmp_path, lines.append)
    assert len(builds) == 1 and "not rebuilt" in lines[-1]
