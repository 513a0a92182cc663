"""Runner: parameter reading and checking, pipeline planning, atomic execution, the CLI."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alignlib.runner import NotebookFailed, ParameterError, execute_notebook, load_pipeline, read_parameters
from alignlib.runner.params import parse_override, validate_parameters
from alignlib.runner.pipeline import PlannedRun

NOTEBOOK = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "quick"
    epochs = 3
    rate: float = 0.5
    mice = ["M1"]
    fail = False

    # %%
    print("epochs", epochs)

    # %%
    if fail:
        raise ValueError("planted failure")
    ''')


@pytest.fixture
def toy_notebook(tmp_path) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(NOTEBOOK)
    return path


def test_read_parameters_types(toy_notebook):
    params = read_parameters(toy_notebook)
    assert {k: p.type_name for k, p in params.items()} == {
        "profile": "str", "epochs": "int", "rate": "float", "mice": "list", "fail": "bool"}
    assert params["epochs"].default == 3


@pytest.mark.parametrize("text,expected", [("epochs=30", ("epochs", 30)), ("rate=1e-3", ("rate", 1e-3)),
                                           ("mice=[M1, M2]", ("mice", ["M1", "M2"])), ("mouse=M2", ("mouse", "M2")),
                                           ("fail=true", ("fail", True))])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_validation_refuses_unknown_and_wrong_type(toy_notebook):
    declared = read_parameters(toy_notebook)
    validate_parameters("toy", declared, {"epochs": 5, "rate": 1, "mice": ["M2"]})  # int is a valid float
    with pytest.raises(ParameterError, match="unknown parameter.*epoch\\b.*takes: epochs"):
        validate_parameters("toy", declared, {"epoch": 5})
    with pytest.raises(ParameterError, match="'epochs' expects int.*got str 'ten'"):
        validate_parameters("toy", declared, {"epochs": "ten"})
    with pytest.raises(ParameterError, match="'epochs' expects int.*got bool"):
        validate_parameters("toy", declared, {"epochs": True})
    with pytest.raises(ParameterError, match="'fail' expects bool"):
        validate_parameters("toy", declared, {"fail": 1})


@pytest.mark.parametrize("profile", ["quick", "paper", "smoke"])
def test_declared_pipeline_is_valid_for_every_profile(profile):
    runs = load_pipeline().plan(profile)
    assert runs and all(r.parameters["profile"] == profile for r in runs)
    outputs = [r.output for r in runs]
    assert len(outputs) == len(set(outputs)), "two runs would overwrite each other"


def test_foreach_override_selects_one_output():
    runs = load_pipeline().plan("quick", ["dina/train"], {"mouse": "M2", "epochs": 30})
    assert [(r.output, r.parameters["mouse"], r.parameters["epochs"]) for r in runs] == [("dina/train_M2", "M2", 30)]
    assert [r.output for r in load_pipeline().plan("quick", ["dina/train_M3"])] == ["dina/train_M3"]


def test_declared_needs_and_inputs():
    runs = {r.output: r for r in load_pipeline().expand("smoke")}
    assert runs["dina/data"].needs == () and runs["dina/methods"].needs == ("dina/data",)
    assert runs["dina/train_M2"].needs == ("dina/data",)
    assert runs["dina/results"].needs == tuple(f"dina/train_M{i}" for i in range(1, 5))
    assert runs["dina/train_M2"].inputs == ("stringer2019/*.mat",)
    assert not hasattr(load_pipeline(), "notebooks")


def test_unknown_target_and_profile():
    with pytest.raises(ParameterError, match="unknown notebook.*dina/trian"):
        load_pipeline().plan("quick", ["dina/trian"])
    with pytest.raises(ParameterError, match="unknown profile 'fast'"):
        load_pipeline().plan("fast")


def test_cli_refuses_bad_parameter_before_running():
    proc = subprocess.run([sys.executable, "-m", "alignlib", "run", "dina/train", "-p", "epochs=many"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "'epochs' expects int" in proc.stderr and "running" not in proc.stdout


def test_execute_success_then_failure_keeps_previous_output(toy_notebook, tmp_path):
    executed = tmp_path / "executed"
    ok = PlannedRun("toy", "chapter/toy", {"epochs": 7}, toy_notebook)
    out = execute_notebook(ok, executed, log=lambda *_: None)
    text = out.read_text()
    assert "epochs 7" in text and '"parameters"' in text
    bad = PlannedRun("toy", "chapter/toy", {"fail": True}, toy_notebook)
    with pytest.raises(NotebookFailed) as info:
        execute_notebook(bad, executed, log=lambda *_: None)
    message = str(info.value)
    assert "toy.py" in message and "ValueError: planted failure" in message and "cell" in message
    assert out.read_text() == text, "a failed run must not overwrite the last good executed notebook"
    assert info.value.partial is not None and "planted failure" in info.value.partial.read_text()
    assert not list(executed.rglob("*.partial"))


# --- page presentation (alignlib.runner.present): collapsed cells, "Reproduce this page", leaked warnings

PAGE = textwrap.dedent('''\
    # %% [markdown]
    # # A toy page

    # %% tags=["parameters"]
    profile = "quick"
    mice = ["M1"]
    note = "a b"

    # %%
    # %matplotlib inline
    import warnings

    import pandas as pd

    from alignlib.report import save_table

    # %%
    path = save_table(pd.DataFrame({"x": [1, 2]}), "toy", "table")
    warnings.warn("a library complains", UserWarning)
    print(path.name)

    # %% tags=["remove-input"]
    import os

    # %%
    import numpy as np

    values = np.arange(3)
    int(values.sum())
    ''')


@pytest.fixture(scope="module")
def executed_page(tmp_path_factory):
    """One real kernel run of PAGE into a tiny book root (results in tmp)."""
    root = tmp_path_factory.mktemp("tiny_book")
    source = root / "notebooks" / "toy" / "page.py"
    source.parent.mkdir(parents=True)
    source.write_text(PAGE)
    run = PlannedRun("toy/page", "toy/page", {"profile": "quick", "mice": ["M1", "M2"], "note": "a b"}, source)
    executed = root / "book" / "executed"
    execute_notebook(run, executed, env={"ALIGNLIB_RESULTS_DIR": str(root / "results")}, log=lambda *_: None,
                     manifest={"output": "toy/page"})
    return root, run, executed


def _cells(executed):
    import nbformat

    return nbformat.read(executed / "toy/page.ipynb", as_version=4).cells


@pytest.mark.parametrize("source,expected", [
    ("import numpy as np\nfrom alignlib import plots", True),
    ("%matplotlib inline\nimport seaborn as sns\nsns.set_theme()\nplt.rcParams['figure.dpi'] = 120", True),
    ("plots.use_style()\nwarnings.filterwarnings('ignore')", True),
    ("import numpy as np\nx = np.zeros(3)", False),
    ("show_provenance(profile, 'twin')", False),
    ("%time fit()", False),
    ("# only a comment", False),
])
def test_setup_cell_detection(source, expected):
    from alignlib.runner.present import is_setup_cell

    assert is_setup_cell(source) is expected


def test_executed_page_collapses_parameters_and_setup(executed_page):
    _, _, executed = executed_page
    tags = [(c.cell_type, c.source.splitlines()[0] if c.source else "", c.metadata.get("tags", [])) for c in _cells(executed)]
    by_first_line = {first: t for _, first, t in tags}
    assert "hide-cell" in by_first_line['profile = "quick"'] and "parameters" in by_first_line['profile = "quick"']
    injected = [t for _, _, t in tags if "injected-parameters" in t]
    assert injected and "hide-cell" in injected[0]
    assert by_first_line["%matplotlib inline"] == ["hide-input"], "imports and plotting setup: input collapsed"
    assert by_first_line['path = save_table(pd.DataFrame({"x": [1, 2]}), "toy", "table")'] == [], "analysis stays visible"
    assert by_first_line["import os"] == ["remove-input"], "tags written in the source win"
    cells = _cells(executed)
    split = next(i for i, c in enumerate(cells) if c.source == "import numpy as np")
    assert cells[split].metadata["tags"] == ["hide-input"], "the imports opening an analysis cell collapse"
    assert cells[split + 1].source == "values = np.arange(3)\nint(values.sum())" and not cells[split + 1].metadata.get("tags")
    assert cells[split + 1].outputs[0]["data"]["text/plain"] == "3", "the analysis half runs as before"


@pytest.mark.parametrize("source,prefix", [
    ("import numpy as np\n\n# load\nx = np.zeros(3)", 1),
    ("%matplotlib inline\nimport seaborn as sns\nsns.set_theme()\nx = 1", 3),
    ("import numpy as np", None),
    ("x = 1\nimport numpy as np\ny = 2", None),
    ("plots.use_style()\nx = 1", None),
    ("import os\n%time fit()", None),
])
def test_setup_prefix_of_mixed_cells(source, prefix):
    from alignlib.runner.present import _setup_prefix

    assert _setup_prefix(source) == prefix


def test_executed_page_ends_with_reproduce_cell(executed_page):
    from alignlib.runner.present import REPRODUCE_HEADING

    root, run, executed = executed_page
    last = _cells(executed)[-1]
    assert last.cell_type == "markdown" and last.source.startswith(REPRODUCE_HEADING)
    command = "alignlib run toy/page --profile quick -p 'mice=[M1, M2]' -p 'note=a b'"
    assert command in last.source
    words = shlex.split(command)
    assert dict(parse_override(words[i + 1]) for i, w in enumerate(words) if w == "-p") == \
        {k: v for k, v in run.parameters.items() if k != "profile"}, "the command gives back the parameters"
    assert 'href="../../../results/toy/table.csv"' in last.source and "results/toy/table.json" in last.source
    manifest = json.loads((executed / "toy/page.manifest.json").read_text())
    assert manifest["wrote"] == [str((root / "results/toy/table.csv").resolve()),
                                 str((root / "results/toy/table.json").resolve())]


@pytest.mark.parametrize("value", ["M1", "a b", "", "null", "yes", 3, 0.001, True, None, [1, 2], ["M1", "M2"],
                                   {"lr": 0.1, "name": "x y"}, {}])
def test_override_format_round_trips(value):
    from alignlib.runner.present import format_override

    assert parse_override(format_override("p", value)) == ("p", value)


def test_leaked_warnings_name_page_and_cell(executed_page, tmp_path):
    from alignlib.runner.present import leaked_warnings

    _, _, executed = executed_page
    leaks = leaked_warnings(executed)
    cells = _cells(executed)
    assert len(leaks) == 1 and leaks[0].page == "toy/page" and "UserWarning: a library complains" in leaks[0].text
    assert cells[leaks[0].cell].source.startswith("path = save_table")
    (tmp_path / "clean.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "Warning: in stdout is fine\n"}]}]}))
    assert leaked_warnings(tmp_path) == []


@pytest.mark.slow
def test_tiny_book_ships_the_result_files(executed_page):
    from alignlib.runner import build_book

    root, _, _ = executed_page
    (root / "_config.yml").write_text('title: tiny\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: "off"\n'
                                      'exclude_patterns: ["notebooks/**", "results/**"]\n')
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: book/executed/toy/page\n")
    (root / "intro.md").write_text("# Tiny\n")
    html = build_book(root, log=lambda *_: None, results=root / "results")
    page = (html / "book/executed/toy/page.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert "Reproduce this page" in text and "alignlib run toy/page --profile quick" in text
    href = re.search(r'href="([^"]*table\.csv)"', page).group(1)
    target = (html / "book/executed/toy" / href).resolve()
    assert target == (html / "results/toy/table.csv").resolve() and target.read_text().startswith("x\n1\n2")
    assert "tag_hide-cell" in page and "tag_hide-input" in page, "collapsed cells carry Jupyter Book's toggle"
