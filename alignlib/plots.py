"""Figures for the book. Functions take computed arrays/tables and return a matplotlib Figure;
they compute nothing of scientific substance (that lives in the analysis modules)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def image_rows(rows: Mapping[str, np.ndarray], n: int = 4):
    """One row per named image set (each (k, H, W)), ``n`` examples each, gray scale 0..255."""
    fig, axes = plt.subplots(len(rows), n, figsize=(2.6 * n, 1.0 * len(rows) + 0.3), squeeze=False)
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=255, aspect="equal")
        axes[r, 0].text(-0.04, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def eigenspectra(spectra: Mapping[str, np.ndarray], fits: Mapping[str, tuple[float, float]] | None = None,
                 fit_range: tuple[int, int] = (11, 500), reference_alpha: float | None = None):
    """Log-log cvPCA eigenspectra (normalised to sum 1 over positive values), with power-law fits."""
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for name, spec in spectra.items():
        spec = np.asarray(spec, float)
        ranks = np.arange(1, len(spec) + 1)
        keep = spec > 0
        norm = spec[keep].sum()
        (line,) = ax.loglog(ranks[keep], spec[keep] / norm, lw=1.2,
                            label=f"{name}" + (f"  (α = {fits[name][0]:.2f})" if fits and name in fits else ""))
        if fits and name in fits:
            alpha, intercept = fits[name]
            lo, hi = fit_range[0], min(fit_range[1], len(spec))
            r = np.arange(lo, hi + 1)
            ax.loglog(r, np.exp(intercept) * r ** (-alpha) / norm, "--", color=line.get_color(), lw=0.8)
    if reference_alpha is not None:
        r = np.array([1.0, 1000.0])
        ax.loglog(r, 0.1 * r ** (-reference_alpha), ":", color="k", lw=1, label=f"slope −{reference_alpha} (Stringer 2019)")
    ax.set_xlabel("PC dimension")
    ax.set_ylabel("variance (fraction, cross-validated)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def histograms(values: Mapping[str, np.ndarray], xlabel: str, bins: int | np.ndarray = 40, log_x: bool = False):
    """Overlaid step histograms, one per named array."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    all_v = np.concatenate([np.asarray(v, float).ravel() for v in values.values()])
    all_v = all_v[np.isfinite(all_v)]
    if log_x:
        all_v = all_v[all_v > 0]
        bins = np.logspace(np.log10(all_v.min()), np.log10(all_v.max()), bins if isinstance(bins, int) else len(bins))
        ax.set_xscale("log")
    for name, v in values.items():
        v = np.asarray(v, float)
        ax.hist(v[np.isfinite(v)], bins=bins, histtype="step", lw=1.2, label=name, density=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=7, frameon=False)
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
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
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
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def metric_curves(histories: Mapping[str, pd.DataFrame], column: str, chance: float | None = None):
    """One validation metric per epoch for several runs (one line each), e.g. the controls' val_top1."""
    fig, ax = plt.subplots(figsize=(6, 3.3))
    for name, h in histories.items():
        ax.plot(h["epoch"], h[column], label=name)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel(column.replace("_", " "))
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def retrieval_panel(query_images: np.ndarray, retrieved: np.ndarray, correct: np.ndarray, labels: Sequence[str]):
    """Fig 3-style panel: for each neural query (row), its true image then the top-k retrieved images;
    a correct retrieval is framed in green."""
    n_q, k = retrieved.shape[:2]
    fig, axes = plt.subplots(n_q, k + 1, figsize=(1.9 * (k + 1), 0.75 * n_q + 0.4), squeeze=False)
    for i in range(n_q):
        axes[i, 0].imshow(query_images[i], cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_ylabel(labels[i], fontsize=7)
        for j in range(k):
            ax = axes[i, j + 1]
            ax.imshow(retrieved[i, j], cmap="gray", vmin=0, vmax=255)
            if correct[i, j]:
                for side in ax.spines.values():
                    side.set_edgecolor("limegreen")
                    side.set_linewidth(3)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("stimulus", fontsize=8)
    for j in range(k):
        axes[0, j + 1].set_title(f"top-{j + 1}", fontsize=8)
    fig.tight_layout()
    return fig


def similarity_matrices(matrices: Mapping[str, np.ndarray]):
    """Fig A.1-style image–neural cosine-similarity matrices (rows: neural queries, columns: images)."""
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        im = ax.imshow(m, cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("test image")
        ax.set_ylabel("neural response")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
