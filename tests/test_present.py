"""Pages a reader can follow: plumbing cells collapsed by rule, code within the text column, wide
tables shown compactly (``alignlib.runner.present``, ``alignlib.report``)."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from alignlib.report import interval_column, interval_table, interval_text
from alignlib.runner.present import is_plumbing_cell, tag_cells

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAX_CODE_LINE = 100


@pytest.mark.parametrize("source", [
    'glue("n_test", int(n), display=False)',
    'mean = main[main.mouse == "mean"].set_index("k")\nfor k in (1, 5):\n'
    '    glue(f"top{k}", float(mean.loc[k, "accuracy"]), display=False)',
    'save_table(table, "dina", "table1", {"profile": profile})',
    '_ = plots.save_figure(fig, "dina", "x", page="dina/data")',
    'path = report.save_table(df, "vist", "t")\nglue("rows", len(df), display=False)',
    'cfg = settings.resolve(profile, **overrides)\nmice = list(mice or settings.MICE)',
    'scale = settings.TABLE1[profile]\nseeds = [int(s) for s in (seeds or scale["seeds"])]',
    'recordings = {m: load(m) for m in mice}\nshow_provenance(profile, "twin")',
    'def t1(name):\n    return top1.loc[name]\n\nglue("t1", t1("DINA"), display=False)',
    'if real:\n    glue("note", "real", display=False)\nelse:\n    glue("note", "twin", display=False)',
])
def test_plumbing_cells_are_recognised(source):
    assert is_plumbing_cell(source)


@pytest.mark.parametrize("source", [
    "",
    "# only a comment",
    "import numpy as np",                                         # a setup cell, its own rule
    'table = summarise(long)\nsave_table(table, "dina", "t")\ntable.round(3)',   # shows the table
    'glue("x", 1, display=False)\nax.plot(x, y)',                 # draws
    'fig = plots.retrieval_panel(a, b, c, d)\nglue("n", 3, display=False)',     # a figure's code
    'runs = train_rows(rec, base, rows, seeds)\nframes.append(run_rows(runs))',  # analysis only
    'x = heavy(data)\ny = x + 1',                                 # assignments alone
    'cfg = settings.resolve(profile)\nmodel = fit(cfg)\nmodel.score()',         # goes on to analysis
    'cfg = make_config(profile)',                                 # not a settings resolution
    '%time glue("x", 1)',                                         # a magic
    'for m in mice:\n    glue(m, 1, display=False)\n    train(m)',   # the loop also trains
    'glue("x",',                                                  # does not parse
])
def test_analysis_cells_stay_visible(source):
    assert not is_plumbing_cell(source)


GLUE_RECORD = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x"}},
               "data": {"application/papermill.record/text/plain": "1"}}


def _cell(source, outputs=(), tags=None):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    if tags is not None:
        cell.metadata["tags"] = tags
    return cell


def test_plumbing_tags_hide_cell_when_nothing_shows_and_input_otherwise():
    table = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/html": "<table></table>", "text/plain": "t"}}
    nb = nbformat.v4.new_notebook(cells=[
        _cell('glue("x", 1, display=False)', [GLUE_RECORD]),
        _cell('claims = record("dina", "results", rows)\nclaims_view = claims.round(2)', [table]),
        _cell('glue("x", 1, display=False)', [GLUE_RECORD], tags=["remove-input"]),
        _cell('save_table(df, "c", "t")', [], tags=["full-width"]),
        _cell('table = summarise(long)\nsave_table(table, "dina", "t")\ntable.round(3)', [table]),
        _cell('save_table(df, "c", "t")', [{"output_type": "execute_result", "execution_count": 2,
                                             "metadata": {}, "data": {"text/plain": "PosixPath('t.csv')"}}]),
        _cell('print("saved")\nglue("x", 1, display=False)',
              [{"output_type": "stream", "name": "stdout", "text": "saved\n"}]),
    ])
    tag_cells(nb)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[0] == ["hide-cell"], "a glue-only cell shows nothing: collapsed whole"
    assert tags[1] == ["hide-input"], "its table stays visible, the code one click away"
    assert tags[2] == ["remove-input"], "a tag written in the source wins"
    assert tags[3] == ["full-width", "hide-cell"], "other tags are kept"
    assert tags[4] == [], "a cell that shows an analysis table stays open"
    assert tags[5] == ["hide-cell"], "the path that save_table echoes is no news"
    assert tags[6] == [], "print is not plumbing"


def _code_cells(path: Path):
    import jupytext

    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*/*.py")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_code_fits_the_text_column(path):
    long = [(i, line) for cell in _code_cells(path) for i, line in enumerate(cell.source.splitlines())
            if len(line) > MAX_CODE_LINE]
    assert not long, f"{len(long)} code line(s) over {MAX_CODE_LINE} characters, e.g. {long[0][1]!r}"


def test_interval_text_is_compact_and_honest_about_missing_values():
    assert interval_text(0.1432, 0.0812, 0.2249) == "0.14 [0.08, 0.22]"
    assert interval_text(0.1432, 0.0812, 0.2249, digits=1, scale=100) == "14.3 [8.1, 22.5]"
    assert interval_text(0.5, math.nan, math.nan) == "0.50"
    assert interval_text(math.nan, 0.1, 0.2) == "–"


def test_interval_table_shows_one_compact_column_per_k_and_keeps_the_long_table():
    long = pd.DataFrame({
        "group": ["DINA"] * 2 + ["regularisation"] * 2,
        "variant": ["DINA"] * 2 + ["dropout 0.2 + weight decay 1e-2"] * 2,
        "k": [1, 5, 1, 5], "accuracy": [0.1432, 0.5, 0.2, math.nan],
        "ci_low": [0.0812, 0.4, math.nan, 0.1], "ci_high": [0.2249, 0.6, math.nan, 0.3]})
    before = long.copy()
    shown = interval_table(long, ["group", "variant"], "k", "accuracy", digits=1, scale=100,
                           labels={"dropout 0.2 + weight decay 1e-2": "dropout, wd"},
                           column_label="top-{} (%)")
    assert list(shown.columns) == ["top-1 (%)", "top-5 (%)"]
    assert shown.loc[("DINA", "DINA"), "top-1 (%)"] == "14.3 [8.1, 22.5]"
    assert shown.loc[("regularisation", "dropout, wd")].tolist() == ["20.0", "–"]
    pd.testing.assert_frame_equal(long, before)
    ordered = interval_table(long, "variant", "k", "accuracy", column_order=[5, 1])
    assert list(ordered.columns) == [5, 1]
    assert interval_column(long, "accuracy").tolist()[:2] == ["0.14 [0.08, 0.22]", "0.50 [0.40, 0.60]"]
    with pytest.raises(KeyError, match="mean_cc"):
        interval_table(long, "variant", "k", "mean_cc")


def test_pages_show_intervals_through_the_one_helper():
    """No page formats "value [low, high]" itself: the display form has one home."""
    pages = {p.relative_to(NOTEBOOKS).as_posix(): p.read_text() for p in NOTEBOOKS.glob("*/*.py")}
    for page in ("dina/results.py", "dina/table1.py", "vist/train.py"):
        assert "[{lo:" not in pages[page] and "interval_table(" in pages[page], page
