"""The retina (Vi-ST) and VNA chapters' pages under the smoke profile, one test per page: the second half
of tests/test_book.py's page tests, in a file of its own so that pytest-xdist runs it beside that one (the
two share one scratch book, conftest's ``smoke_area``)."""
from __future__ import annotations

import pytest

from alignlib.runner import load_pipeline

SMOKE_RUNS = [r for r in load_pipeline().expand("smoke") if r.output.startswith(("vist/", "vna/"))]


def test_this_file_and_test_book_cover_every_page():
    from test_book import OTHER_FILE_CHAPTERS, SMOKE_RUNS as BOOK_RUNS

    assert OTHER_FILE_CHAPTERS == ("vist/", "vna/")
    everything = {r.output for r in load_pipeline().expand("smoke")}
    assert {r.output for r in SMOKE_RUNS} | {r.output for r in BOOK_RUNS} == everything
    assert SMOKE_RUNS, "no retina or VNA page under the smoke profile"


@pytest.mark.slow
@pytest.mark.parametrize("run", SMOKE_RUNS, ids=[r.output for r in SMOKE_RUNS])
def test_smoke_step(smoke_step, run):
    """The step's notebook runs under the smoke profile (pages it needs run first if missing)."""
    smoke_step(run)
