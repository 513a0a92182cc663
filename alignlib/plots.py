"""Figures for the book. Functions take computed arrays/tables and return a matplotlib Figure;
they compute nothing of scientific substance (that lives in the analysis modules).

Importing this module applies the book's one figure style (:func:`use_book_style`): seaborn's
"colorblind" palette, viridis for sequential and ``RdBu_r`` for signed colour maps (both readable by
colour-blind readers), and font sizes that stay readable when a 10-inch-wide figure is shown at page
width. :func:`save_figure` writes a page's key figures to ``results/<chapter>/figures/`` (with a json
sidecar naming the page), from where the landing page's gallery picks them up (:func:`saved_figures`,
:func:`gallery_html`).
"""
from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: sequential and diverging colour maps of the book (perceptually uniform, colour-blind safe)
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"
#: colour of a correct retrieval's frame: the "colorblind" palette's blue (green/red are hard to tell apart)
CORRECT_COLOUR = "#0173B2"

BOOK_RC = {
    "figure.figsize": (8.0, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": SEQUENTIAL_CMAP,
    "lines.linewidth": 1.8,
}


def use_book_style() -> None:
    """Apply the book's figure style (seaborn "ticks" theme, "colorblind" palette, :data:`BOOK_RC`)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="ticks", palette="colorblind", rc=BOOK_RC)


use_book_style()


def save_figure(fig, chapter: str, name: str, *, page: str | None = None, caption: str = "") -> Path:
    """Write ``fig`` to ``results/<chapter>/figures/<name>.png`` with a sidecar ``<name>.json`` (page,
    caption, provenance); the landing page's gallery shows every figure saved this way, linked to ``page``
    (``"<chapter>/<page>"``, e.g. ``"dina/data"``; default: no link). Returns the PNG's path."""
    from alignlib.paths import results_dir
    from alignlib.repro import provenance, write_json

    folder = results_dir(chapter) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path)
    write_json(path.with_suffix(".json"),
               provenance(figure=name, chapter=chapter, page=page or "", caption=caption))
    return path


def saved_figures(root: str | Path | None = None) -> pd.DataFrame:
    """Every figure saved by :func:`save_figure` under ``root`` (default: the results folder), one row
    each: chapter, name, page, caption, path; ordered by chapter then name."""
    from alignlib.paths import results_dir

    root = Path(root) if root else results_dir()
    rows = []
    for png in sorted(root.glob("*/figures/*.png")):
        side = png.with_suffix(".json")
        meta = json.loads(side.read_text()) if side.exists() else {}
        rows.append({"chapter": png.parent.parent.name, "name": png.stem, "page": meta.get("page", ""),
                     "caption": meta.get("caption", ""), "path": png})
    return pd.DataFrame(rows, columns=["chapter", "name", "page", "caption", "path"])


def _thumbnail_uri(path: Path, width: int) -> str:
    """A PNG thumbnail ``width`` pixels wide, as a data URI (the gallery needs no copied files)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.width > width:
            img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gallery_html(figures: pd.DataFrame, href: Callable[[str], str], width: int = 320) -> str:
    """HTML grid of figure thumbnails (from :func:`saved_figures`), each linked to its page by
    ``href(page)`` and captioned; figures without a page are shown unlinked."""
    from html import escape

    cards = []
    for row in figures.itertuples():
        img = (f'<img src="{_thumbnail_uri(Path(row.path), 2 * width)}" alt="{escape(row.caption or row.name)}" '
               f'style="width:100%;height:auto;border:1px solid #ddd"/>')
        label = escape(row.caption or row.name.replace("_", " "))
        if row.page:
            img = f'<a href="{escape(href(row.page))}">{img}</a>'
            label += f' (<a href="{escape(href(row.page))}">{escape(row.page)}</a>)'
        cards.append(f'<figure style="margin:0">{img}<figcaption style="font-size:0.85em">{label}'
                     '</figcaption></figure>')
    return ('<div class="alignlib-gallery" style="display:grid;grid-template-columns:'
            f'repeat(auto-fill,minmax({width}px,1fr));gap:1em">' + "".join(cards) + "</div>")


def image_rows(rows: Mapping[str, np.ndarray], n: int = 4):
    """One row per named image set (each (k, H, W)), ``n`` examples each, gray scale 0..255."""
    fig, axes = plt.subplots(len(rows), n, figsize=(2.6 * n, 1.2 * len(rows) + 0.3), squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=255, aspect="equal")
        axes[r, 0].text(-0.04, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center")
    fig.tight_layout()
    return fig


def eigenspectra(spectra: Mapping[str, np.ndarray], fits: Mapping[str, tuple[float, float]] | None = None,
                 fit_range: tuple[int, int] = (11, 500), reference_alpha: float | None = None):
    """Log-log cvPCA eigenspectra (normalised to sum 1 over positive values), with power-law fits."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, spec in spectra.items():
        spec = np.asarray(spec, float)
        ranks = np.arange(1, len(spec) + 1)
        keep = spec > 0
        norm = spec[keep].sum()
        (line,) = ax.loglog(ranks[keep], spec[keep] / norm, lw=1.4,
                            label=f"{name}" + (f"  (α = {fits[name][0]:.2f})" if fits and name in fits else ""))
        if fits and name in fits:
            alpha, intercept = fits[name]
            lo, hi = fit_range[0], min(fit_range[1], len(spec))
            r = np.arange(lo, hi + 1)
            ax.loglog(r, np.exp(intercept) * r ** (-alpha) / norm, "--", color=line.get_color(), lw=1)
    if reference_alpha is not None:
        r = np.array([1.0, 1000.0])
        ax.loglog(r, 0.1 * r ** (-reference_alpha), ":", color="k", lw=1.2, label=f"slope −{reference_alpha} (Stringer 2019)")
    ax.set_xlabel("PC dimension")
    ax.set_ylabel("variance (fraction, cross-validated)")
    ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def histograms(values: Mapping[str, np.ndarray], xlabel: str, bins: int | np.ndarray = 40, log_x: bool = False):
    """Overlaid step histograms, one per named array."""
    fig, ax = plt.subplots(figsize=(8, 4))
    all_v = np.concatenate([np.asarray(v, float).ravel() for v in values.values()])
    all_v = all_v[np.isfinite(all_v)]
    if log_x:
        all_v = all_v[all_v > 0]
        bins = np.logspace(np.log10(all_v.min()), np.log10(all_v.max()), bins if isinstance(bins, int) else len(bins))
        ax.set_xscale("log")
    for name, v in values.items():
        v = np.asarray(v, float)
        ax.hist(v[np.isfinite(v)], bins=bins, histtype="step", lw=1.6, label=name, density=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def loss_curves(history: pd.DataFrame, selections: Mapping[str, int] | None = None, chance: Mapping[str, float] | None = None):
    """Training curves: InfoNCE (train, validation), validation top-k retrieval and mean rank per epoch.

    ``selections`` maps a criterion name to the epoch it selected (drawn as vertical lines);
    ``chance`` maps ``val_top1``/``val_mean_rank``... to their chance levels (dashed lines).
    """
    panels = [("InfoNCE loss", ["train_loss", "val_loss"])]
    if "val_top1" in history:
        panels.append(("validation retrieval (top-k)", [c for c in ("val_top1", "val_top5", "val_top10") if c in history]))
    if "val_mean_rank" in history:
        panels.append(("validation mean rank", ["val_mean_rank"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    styles = {name: ls for name, ls in zip(selections or {}, (":", "--", "-."))}
    for ax, (label, cols) in zip(axes[0], panels):
        for c in cols:
            ax.plot(history["epoch"], history[c], label=c.replace("_", " "))
            if chance and c in chance:
                ax.axhline(chance[c], color="0.6", lw=0.8, ls="--")
        for name, epoch in (selections or {}).items():
            ax.axvline(epoch, color="k", lw=1, ls=styles[name], label=f"selected by {name.replace('_', ' ')}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_curves(histories: Mapping[str, pd.DataFrame], column: str, chance: float | None = None):
    """One validation metric per epoch for several runs (one line each), e.g. the controls' val_top1."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, h in histories.items():
        ax.plot(h["epoch"], h[column], label=name)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel(column.replace("_", " "))
    ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def retrieval_panel(query_images: np.ndarray, retrieved: np.ndarray, correct: np.ndarray, labels: Sequence[str]):
    """Fig 3-style panel: for each neural query, the image that evoked it, then the top-k retrieved images
    in rank order; a correct retrieval is framed in blue (thick border) and titled "correct".

    Wide images (68 x 270 in DINA) are laid out three per row, each query in a block of rows with its
    label on the left, so that each image is about a third of the page wide."""
    n_q, k = retrieved.shape[:2]
    per_row = min(3, k + 1)
    rows_per_query = math.ceil((k + 1) / per_row)
    h, w = np.asarray(query_images).shape[1:3]
    img_h = 3.2 * h / w
    fig, axes = plt.subplots(n_q * rows_per_query, per_row, squeeze=False,
                             figsize=(10.5, n_q * rows_per_query * (img_h + 0.35) + 0.2))
    for i in range(n_q):
        images = [query_images[i]] + [retrieved[i, j] for j in range(k)]
        titles = ["stimulus (true image)"] + [f"top-{j + 1}" + (" · correct" if correct[i, j] else "") for j in range(k)]
        frames = [False] + [bool(correct[i, j]) for j in range(k)]
        for slot in range(rows_per_query * per_row):
            ax = axes[i * rows_per_query + slot // per_row, slot % per_row]
            ax.set_xticks([])
            ax.set_yticks([])
            if slot >= len(images):
                ax.axis("off")
                continue
            ax.imshow(images[slot], cmap="gray", vmin=0, vmax=255)
            ax.set_title(titles[slot], fontsize=10, loc="left", pad=2)
            for side in ax.spines.values():
                side.set_visible(True)
                side.set_edgecolor(CORRECT_COLOUR if frames[slot] else "0.7")
                side.set_linewidth(4 if frames[slot] else 0.8)
        axes[i * rows_per_query, 0].set_ylabel(labels[i], fontsize=10, rotation=0, ha="right", va="center")
    fig.tight_layout(h_pad=0.6, w_pad=0.4)
    return fig


def similarity_matrices(matrices: Mapping[str, np.ndarray]):
    """Fig A.1-style image–neural cosine-similarity matrices (rows: neural queries, columns: images),
    two per row on one shared colour scale (one colour bar), so that mice can be compared."""
    n = len(matrices)
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    values = np.concatenate([np.asarray(m, float).ravel() for m in matrices.values()])
    values = values[np.isfinite(values)]
    vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols + 1.0, 4.6 * rows), squeeze=False)
    im = None
    for ax, (name, m) in zip(axes.flat, matrices.items()):
        im = ax.imshow(m, cmap=SEQUENTIAL_CMAP, interpolation="nearest", vmin=vmin, vmax=vmax)
        ax.set_title(name)
        ax.set_xlabel("test image")
        ax.set_ylabel("neural response")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.03, label="cosine similarity")
    return fig


def convergence_curves(histories: Mapping[str, pd.DataFrame], selected: Mapping[str, int], column: str,
                       patience: int | None = None, converged: Mapping[str, bool | None] | None = None,
                       chance: float | None = None, lower_is_better: bool = True):
    """One validation criterion per epoch for several runs (e.g. the seeds of one mouse), each run's
    selected epoch marked with a dot, and the ``patience`` epochs after it shaded: a run converged when
    its curve ran through the whole shaded window without a new best (the legend says which did)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i}"
        conv = (converged or {}).get(name)
        tag = {True: "converged", False: "NOT converged", None: "convergence unknown"}[conv]
        ax.plot(h["epoch"], h[column], color=color, lw=1, label=f"{name} ({tag})")
        best = selected.get(name)
        if best:
            value = h.set_index("epoch").loc[best, column]
            ax.plot([best], [value], "o", color=color, ms=6)
            if patience:
                ax.axvspan(best, best + patience, color=color, alpha=0.08)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel(column.replace("_", " ") + (" (lower is better)" if lower_is_better else ""))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig
