"""The book: the table of contents agrees with the pipeline, and the smoke profile runs every notebook
and builds the HTML with warnings as errors, offline math, banners and glued numbers."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from alignlib.paths import REPO_ROOT
from alignlib.runner import NotebookFailed, build_book, load_pipeline, run_pipeline
from alignlib.runner import cli
from alignlib.runner.book import toc_files


def test_toc_lists_exactly_the_pipeline_outputs():
    executed = {f.removeprefix("book/executed/") for f in toc_files() if f.startswith("book/executed/")}
    outputs = {r.output for r in load_pipeline().expand("quick")}
    assert executed == outputs


def test_book_command_stops_on_failed_notebook(monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise NotebookFailed("notebooks/dina/data.py", 3, 4, "ValueError: boom", None)

    built = []
    monkeypatch.setattr(cli, "run_pipeline", failing)
    monkeypatch.setattr(cli, "build_book", lambda *a, **k: built.append(1))
    assert cli.main(["book", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "notebooks/dina/data.py failed in cell 3 (In [4]): ValueError: boom" in err
    assert not built, "the book must not be built from a failed run"


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    """Run the whole pipeline under the smoke profile into a scratch copy of the book and build it."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "book", root / "book", ignore=shutil.ignore_patterns("executed", "_static"))
    env = {"ALIGNLIB_RUNS_DIR": str(root / "runs"), "ALIGNLIB_RESULTS_DIR": str(root / "results"),
           "ALIGNLIB_WORK_DIR": str(root / "generated")}
    run_pipeline("smoke", executed_dir=root / "book" / "executed", env=env)
    html = build_book(root)
    return root, html


@pytest.mark.slow
def test_smoke_pipeline_builds_the_book(smoke_book):
    root, html = smoke_book
    for page in toc_files(root):
        assert (html / f"{page}.html").exists(), page
    data_page = (html / "book/executed/dina/data.html").read_text()
    assert "Profile:" in data_page and "smoke" in data_page and "ground-truth twin" in data_page
    assert "_static/mathjax/MathJax.js" in data_page and (html / "_static/mathjax/MathJax.js").exists()
    config = re.search(r"MathJax\.js\?config=([\w-]+)", data_page).group(1)
    assert (html / "_static/mathjax/config" / f"{config}.js").exists(), "MathJax config file must ship offline"
    assert "MathJax.Hub.Config" in data_page and "math|" in data_page, "MathJax 2 must process Sphinx's math"
    assert "cdn.jsdelivr" not in data_page and "cdnjs" not in data_page
    assert data_page.count("<img") >= 3, "example images, SNR and eigenspectra figures must render"
    results_page = (html / "book/executed/dina/results.html").read_text()
    assert results_page.count("<img") >= 2, "retrieval panel and similarity matrices must render"
    assert (html / "book/executed/dina/train_M1.html").read_text().count("<img") >= 1, "loss curves"
    table = pd.read_csv(root / "results" / "dina" / "table1.csv")
    assert list(table.columns[:5]) == ["mouse", "model", "seed", "k", "accuracy"]
    assert set(table.mouse) == {"M1", "M2", "M3", "M4", "mean"}
    mean_top1 = table.query("mouse == 'mean' and k == 1").accuracy.item()
    assert f"{mean_top1:.3f}" in results_page, "the text must quote the glued table value"
    assert (root / "results" / "dina" / "table1.json").exists()
    run = root / "runs" / "dina" / "smoke" / "M1" / "seed0"
    assert {"checkpoint.pt", "config.json", "run.json", "history.csv", "test_embeddings.npz"} <= {p.name for p in run.iterdir()}
