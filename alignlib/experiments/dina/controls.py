"""One-switch-at-a-time controls of the DINA training choices (residual around the neuron attention,
neural-tower learning rate, image-tower geometry): train each variant on one mouse with everything else
fixed, and tabulate validation and test retrieval side by side."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from alignlib.experiments.dina.cast import MouseRecording
from alignlib.experiments.dina.workflow import DinaRun, train_mouse
from alignlib.metrics.retrieval import retrieval_rows, similarity_matrix

__all__ = ["RESIDUAL_LR_GRID", "GEOMETRY_GRID", "run_grid", "grid_table"]

#: the 2 x 2 of issue "DINA corrections" §3: residual on/off x neural lr 5e-5 (paper) / 1e-3
RESIDUAL_LR_GRID: dict[str, dict[str, Any]] = {
    "paper-tower.lr5e-5": {"neural_residual": False, "lr_neural": 5e-5},
    "paper-tower.lr1e-3": {"neural_residual": False, "lr_neural": 1e-3},
    "residual.lr5e-5": {"neural_residual": True, "lr_neural": 5e-5},
    "residual.lr1e-3": {"neural_residual": True, "lr_neural": 1e-3},
}
#: image-tower geometry: stride-2 stem and transition (paper's wording) vs stride-4 stem, stride-1 transition
GEOMETRY_GRID: dict[str, dict[str, Any]] = {"stem-stride2": {"stem_stride": 2}, "stem-stride4": {"stem_stride": 4}}


def run_grid(recording: MouseRecording, base: Mapping[str, Any], grid: Mapping[str, Mapping[str, Any]],
             seed: int = 0, split_seed: int = 0, device: str = "auto") -> dict[str, DinaRun]:
    """Train (or load) one run per grid entry: ``base`` settings with that entry's overrides."""
    return {name: train_mouse(recording, {**base, **over}, seed=seed, split_seed=split_seed,
                              variant=f"{recording.label}-{name}", device=device)
            for name, over in grid.items()}


def grid_table(runs: Mapping[str, DinaRun], grid: Mapping[str, Mapping[str, Any]], seed: int = 0) -> pd.DataFrame:
    """One row per variant and k: its switches, selected epoch, whether it converged, best validation
    top-1, test accuracy with CI."""
    rows = []
    for name, run in runs.items():
        emb = run.test_embeddings()
        sel = run.info["selections"][run.info["selected"]]
        for r in retrieval_rows(similarity_matrix(emb["z_neu"], emb["z_img"]), seed=seed):
            rows.append({"variant": name, **grid[name], "run": run.name, "selected_epoch": sel["epoch"],
                         "epochs_run": run.info["epochs_run"], "converged": run.converged,
                         "max_val_top1": float(run.history["val_top1"].max()), **r})
    return pd.DataFrame(rows)
