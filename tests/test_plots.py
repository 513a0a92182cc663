"""alignlib.plots: the book's figure style, saved figures and the landing gallery, the enlarged
retrieval panel and similarity matrices."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from alignlib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_book_style_is_applied_on_import():
    assert matplotlib.rcParams["image.cmap"] == plots.SEQUENTIAL_CMAP == "viridis"
    assert matplotlib.rcParams["font.size"] >= 11
    import seaborn as sns

    cycle = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert [mcolors.to_hex(c) for c in cycle[:3]] == sns.color_palette("colorblind").as_hex()[:3]


def test_saved_figures_feed_the_gallery(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLIB_RESULTS_DIR", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = plots.save_figure(fig, "dina", "data_example", page="dina/data", caption="An example")
    fig2, _ = plt.subplots()
    plots.save_figure(fig2, "vna", "unlinked")
    assert path == tmp_path / "dina" / "figures" / "data_example.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(path.with_suffix(".json").read_text())["page"] == "dina/data"
    found = plots.saved_figures()
    assert list(found.name) == ["data_example", "unlinked"] and list(found.page) == ["dina/data", ""]
    html = plots.gallery_html(found, href=lambda page: f"executed/{page}.html")
    assert html.count("<figure") == 2 and html.count("data:image/png;base64,") == 2
    assert html.count('href="executed/dina/data.html"') == 2, "image and caption link to the page"
    assert "executed/vna" not in html and "An example" in html


def test_saved_figures_empty_folder(tmp_path):
    assert plots.saved_figures(tmp_path).empty


def test_retrieval_panel_is_wide_and_marks_correct_images():
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 255, (3, 68, 270))
    retrieved = rng.integers(0, 255, (3, 5, 68, 270))
    correct = np.zeros((3, 5), bool)
    correct[0, 0] = correct[2, 3] = True
    fig = plots.retrieval_panel(queries, retrieved, correct, ["a", "b", "c"])
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3 * 6
    widths = [ax.get_position().width for ax in shown]
    assert min(widths) > 0.28, "three images per row: each about a third of the figure's width"
    framed = [ax for ax in shown if mcolors.to_hex(ax.spines["top"].get_edgecolor()) == plots.CORRECT_COLOUR.lower()]
    assert len(framed) == 2
    assert sum("correct" in ax.get_title(loc="left") for ax in shown) == 2


def test_similarity_matrices_share_one_colour_scale():
    mats = {f"M{i}": np.random.default_rng(i).normal(scale=i, size=(20, 20)) for i in range(1, 4)}
    fig = plots.similarity_matrices(mats)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3 and len({im.get_clim() for im in images}) == 1
    lo, hi = images[0].get_clim()
    assert lo == pytest.approx(min(m.min() for m in mats.values()))
    assert hi == pytest.approx(max(m.max() for m in mats.values()))
    assert fig.get_size_inches()[0] >= 10, "two matrices per row at page width"
