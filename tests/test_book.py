"""The book: the table of contents is generated from the pipeline; under the smoke profile each step's
notebook runs (one test per page, named by its output; pages they need come from the shared cache),
and the HTML builds with warnings as errors, offline math, banners and glued numbers."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from alignlib.runner import NotebookFailed, build_book, load_pipeline, render_toc, run_pipeline, toc_differences
from alignlib.runner import cli
from alignlib.runner.book import toc_files

OTHER_FILE_CHAPTERS = ("vist/", "vna/")


def test_toc_lists_exactly_the_pipeline_outputs():
    executed = {f.removeprefix("book/executed/") for f in toc_files() if f.startswith("book/executed/")}
    outputs = {r.output for r in load_pipeline().expand("quick")}
    assert executed == outputs


def test_committed_toc_is_generated_from_pipeline():
    problems = toc_differences(load_pipeline())
    assert not problems, "_toc.yml is out of date (run `alignlib toc`): " + "; ".join(problems)


def test_toc_difference_names_the_page(tmp_path):
    pipeline = load_pipeline()
    (tmp_path / "_toc.yml").write_text(render_toc(pipeline).replace("train_M3", "train_M7"))
    problems = " ".join(toc_differences(pipeline, tmp_path))
    assert "book/executed/dina/train_M3 is generated from pipeline.yml but missing" in problems
    assert "book/executed/dina/train_M7 is in _toc.yml but pipeline.yml does not generate it" in problems
    (tmp_path / "_toc.yml").write_text(render_toc(pipeline).replace('"Training: mouse M2"', '"Mouse 2"'))
    assert "book/executed/dina/train_M2" in " ".join(toc_differences(pipeline, tmp_path))


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


#: the retina and VNA pages' smoke steps run in tests/test_book_vist_vna.py, beside these in a second test
#: process (the two files share one scratch book: see conftest's ``smoke_area``)
SMOKE_RUNS = [r for r in load_pipeline().expand("smoke") if not r.output.startswith(OTHER_FILE_CHAPTERS)]


@pytest.mark.slow
@pytest.mark.parametrize("run", SMOKE_RUNS, ids=[r.output for r in SMOKE_RUNS])
def test_smoke_step(smoke_step, run):
    """The step's notebook runs under the smoke profile (pages it needs run first if missing)."""
    smoke_step(run)


@pytest.fixture(scope="session")
def smoke_book(smoke_area):
    """Every page (already executed by the step tests, else now), then the HTML build."""
    root, executed, env = smoke_area
    run_pipeline("smoke", executed_dir=executed, env=env)
    html = build_book(root, results=root / "results")
    return root, html


@pytest.mark.slow
def test_smoke_pipeline_builds_the_book(smoke_book):
    root, html = smoke_book
    lines = []
    assert build_book(root, log=lines.append, results=root / "results") == html
    assert any("not rebuilt" in line for line in lines), "an unchanged book is not built again"
    from alignlib.runner.present import leaked_warnings

    leaks = leaked_warnings(root / "book" / "executed")
    assert not leaks, "library warnings leaked into pages: " + "; ".join(map(str, leaks[:5]))
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
    assert list(table.columns[:10]) == ["mouse", "model", "variant", "selection", "seeds", "n_seeds", "k",
                                        "accuracy", "ci_low", "ci_high"]
    assert "converged" in table.columns
    assert set(table.mouse) == {"M1", "M2", "M3", "M4", "mean"}
    assert set(table.selection) == {"val_mean_rank", "val_loss"}
    mean_top1 = table.query("mouse == 'mean' and k == 1 and selection == 'val_mean_rank'").accuracy.item()
    assert f"{mean_top1:.3f}" in results_page, "the text must quote the glued table value"
    assert (root / "results" / "dina" / "table1.json").exists()
    for run_name in table.run.dropna().unique():
        run = root / "runs" / "dina" / run_name
        assert {"checkpoint.pt", "spec.json", "run.json", "history.csv", "test_val_mean_rank.npz",
                "test_val_loss.npz"} <= {p.name for p in run.iterdir()}, run_name
    assert "Claims ledger" in (html / "book/executed/claims/ledger.html").read_text()
    assert "claims/ledger" in (html / "book/intro.html").read_text(), "the landing page links the ledger"
