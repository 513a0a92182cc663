"""The Vi-ST chapter's runs: binned data with cached prior features, one training run (trained once, cached
under ``runs/vist/<variant>-<hash>/``, reloaded by identical configurations), and per-cell scores.

A run directory holds ``spec.json`` (the resolved configuration), ``model.pt`` (the final — SWA — weights,
``weights_only=True``), ``history.csv`` (loss and learning rate per epoch), ``predictions.npz`` (the model's
prediction for the whole of every evaluated movie) and ``run.json`` (timings; written last: the completion
marker). Two ways to train, by the settings' ``patience``:

* ``patience`` None (the paper profile): the paper's fixed schedule (§4.3), a small loop of its own: a fixed
  number of epochs of random windows, warm-up + half-cycle cosine learning rate, stochastic weight averaging;
  nothing is selected, so such a run's convergence is unknown (the ledger gives it no verdict);
* ``patience`` set (quick, smoke): trained to convergence by :func:`alignlib.training.fit` (checkpointed every
  epoch, resumable): the last ``val_fraction`` of the training bins (``gap_bins`` after the bins trained on) is
  a validation segment; an epoch is every window start at a stride of half a window, shuffled; constant
  learning rate (AdamW); the epoch with the best validation CC (mean over cells) is kept, and training stops
  when it has not improved for ``patience`` epochs (``epochs`` is the cap). A fixed schedule ending at a
  budget cannot say whether a model has converged, which a comparison of models needs.

Models: ``vist`` and ``mstcn`` read the prior's features; ``openretina`` (openretina's salamander core +
readout, :mod:`alignlib.models.openretina_baseline`) reads the frames themselves, cropped around the cells' RFs
(:func:`alignlib.experiments.vist.explain.crop_around_rfs`), with its own loss (Poisson + its penalties) and
optimiser (AdamW lr 0.01, weight decay 0.01). What of openretina's training is NOT reproduced: its
LR-on-plateau schedule, gradient clipping at 1, its early-stopping rule (patience 10, min_delta 0.001, at most 50
epochs; here the chapter's rule) and its batches (64 chunks of 50 frames; here the chapter's windows, so its
summed loss is smaller against its penalties than in openretina's trainer); its masks start at the measured RF
centres. Its windows carry the ``n_lags - 1`` bins of real history its valid temporal convolutions need; Vi-ST and
the MSTCN head are trained, as in the paper's code, on windows whose causal convolutions pad the start with
zeros (every model predicts the whole movie with its full history).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.signal._peak_finding_utils import PeakPropertyWarning  # not re-exported by scipy.signal

from alignlib.data import onken
from alignlib.losses.softdtw import vist_loss
from alignlib.metrics.neural_prediction import noise_ceiling, pearson_cc, sd_kl, split_half_reliability
from alignlib.metrics.uncertainty import bootstrap_ci
from alignlib.models.linear_nonlinear import LinearNonlinear
from alignlib.models.prior import PriorSpec, prior_features
from alignlib.models.vist import build_vist_model, count_parameters
from alignlib.repro import get_device, provenance, seed_everything, write_json
from alignlib.training.loop import Objective
from alignlib.training.runs import RunSpec, is_complete, load_spec, run_lock
from alignlib.training.store import made_by, record_run_read

#: SD-KL's value when a series has fewer than two responses (alignlib.metrics.neural_prediction.sd_kl's ``fill``)
SD_KL_FILL = 1000.0

__all__ = ["RUN_FORMAT", "MovieData", "recording_name", "prior_spec", "load_movie", "load_experiment", "bin_frames",
           "bin_counts", "protocol_label", "table2_scores", "circular_shift_control", "with_prior",
           "cells_by_reliability", "ablation_scores",
           "segments", "model_config", "run_spec", "train_run", "load_predictions", "get_run", "score_cells",
           "summarise", "fit_ln", "lr_at", "planted_movie", "fit_rule", "validation_split", "predict_whole",
           "paired_model_difference", "MODELS", "run_convergence_of", "ln_learning_curve"]

#: bump when a code change alters what an unchanged configuration computes (2: the loader excludes silent
#: trials, :func:`alignlib.data.onken.silent_trials`)
RUN_FORMAT = 2


def recording_name(experiment: str, movie: int) -> str:
    """The published file name of ``experiment``'s recording under ``movie`` (:data:`alignlib.data.onken.MOVIE_OF`)."""
    names = [n for n in onken.RECORDINGS if n.endswith(experiment) and onken.MOVIE_OF[n] == movie]
    if len(names) != 1:
        raise ValueError(f"no recording of experiment {experiment!r} with movie {movie}")
    return names[0]


def prior_spec(settings: Mapping[str, Any], weights: str | None = None, layer: int | None = None,
               kind: str | None = None) -> PriorSpec:
    """The prior of these settings: pretrained DINOv2 when ``weights`` is a local directory, else the labelled
    randomly initialised one (``kind="luminance"`` for the control prior)."""
    layer = settings["prior_layer"] if layer is None else int(layer)
    if kind == "luminance":
        return PriorSpec("luminance", 0)
    if weights:
        return PriorSpec("dinov2", layer, weights=str(weights))
    return PriorSpec("random-dinov2", layer, config=settings["prior_config"])


def bin_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """(T, H, W) -> (T // k, H, W): the mean frame of each bin of ``k`` frames (incomplete last bin dropped)."""
    t = frames.shape[0] // k * k
    return frames[:t].reshape(-1, k, *frames.shape[1:]).mean(axis=1)


def bin_counts(counts: np.ndarray, k: int) -> np.ndarray:
    """(trials, T, cells) -> (trials, T // k, cells): spike counts summed over each bin of ``k`` frames."""
    t = counts.shape[1] // k * k
    return counts[:, :t].reshape(counts.shape[0], -1, k, counts.shape[2]).sum(axis=2)


@dataclass
class MovieData:
    """One recording, binned: ``features`` (T, g, g, C) of the prior, ``rates`` (T, cells) trial-averaged counts
    per bin, ``counts`` (trials, T, cells), ``rf_grid`` (cells, g, g) RF masks on the prior's grid."""

    name: str
    experiment: str
    movie: int
    bin_ms: float
    frames: np.ndarray
    features: np.ndarray
    rates: np.ndarray
    counts: np.ndarray
    rf_grid: np.ndarray
    prior: PriorSpec
    #: (cells, H, W) RF masks on the frame's pixels (for models that read the frames themselves)
    rf_masks: np.ndarray | None = None

    @property
    def n_bins(self) -> int:
        return int(self.rates.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.rates.shape[1])


def load_movie(experiment: str, movie: int, settings: Mapping[str, Any], prior: PriorSpec,
               root: str | Path | None = None, progress: bool = False) -> MovieData:
    """Load ``experiment``'s recording of ``movie``, bin it and attach its (cached) prior features."""
    rec = onken.load_recording(recording_name(experiment, movie), root,
                               exclude_tiled=bool(settings["exclude_tiled"]))
    k = int(settings["frames_per_bin"])
    frames = bin_frames(rec.frames, k)
    counts = bin_counts(rec.counts, k).astype(np.float32)
    feats = prior_features(frames, prior, progress=progress)
    return MovieData(rec.name, experiment, movie, rec.frame_ms * k, frames, feats, counts.mean(0), counts,
                     rec.rf_masks_on_grid(feats.shape[1]), prior, rec.rf_masks)


def load_experiment(experiment: str, settings: Mapping[str, Any], prior: PriorSpec, root: str | Path | None = None,
                    progress: bool = False) -> dict[int, MovieData]:
    """Both movies of one experiment (the same cells, in the same order, recorded under movie 1 and movie 2)."""
    movies = {m: load_movie(experiment, m, settings, prior, root, progress) for m in (1, 2)}
    if movies[1].n_cells != movies[2].n_cells:
        raise ValueError(f"{experiment}: the two recordings have {movies[1].n_cells} and {movies[2].n_cells} cells")
    return movies


def planted_movie(movie: MovieData, seed: int = 0, n_trials: int = 30) -> MovieData:
    """Positive control: the same recording (frames, prior features, RFs, bins) with its responses replaced by
    those of model cells driven by the frames at this binning.

    Each model cell sees the mean luminance of the binned frames weighted by its RF's area fractions on the
    prior's grid (``rf_grid``, upsampled to the frame), through a random biphasic temporal kernel over the last
    400 ms and an exponential nonlinearity, with Poisson trials (:func:`alignlib.experiments.vist.timing.
    planted_rates`), each firing at the mean rate of the recorded cell it replaces (so the control has the
    recordings' spike-count noise). The same ``seed`` plants the same cells in both movies, so cross-movie
    transfer is possible. The name gets a ``-planted<seed>-ownrates`` suffix, which gives its runs their own
    identity.
    """
    from dataclasses import replace

    from skimage.transform import resize

    from alignlib.experiments.vist.timing import planted_rates

    side = movie.frames.shape[1]
    weights = np.stack([resize(g, (side, side), order=0, anti_aliasing=False) for g in movie.rf_grid])
    lum = onken.rf_luminance(movie.frames, weights)
    mean_hz = np.maximum(movie.rates.mean(0), 1e-3) * 1000.0 / movie.bin_ms
    counts = planted_rates(lum, movie.bin_ms, 0.0, movie.n_bins, bin_ms=movie.bin_ms, n_trials=n_trials, seed=seed,
                           return_counts=True, mean_hz=mean_hz).astype(np.float32)
    return replace(movie, name=f"{movie.name}-planted{seed}-ownrates", rates=counts.mean(0), counts=counts)


def protocol_label(train_movie: int, test_movie: int) -> str:
    """"Mov1->Mov2" style label (the claims ledger's key uses "Mov1-Mov2")."""
    return f"Mov{train_movie}->Mov{test_movie}"


def segments(n_bins: int, settings: Mapping[str, Any]) -> tuple[slice, slice]:
    """Within-movie (training, held-out) bins: the last ``test_fraction``, ``gap_bins`` bins apart."""
    return onken.split_windows(n_bins, settings["test_fraction"], gap=settings["gap_bins"], position="end")


def model_config(settings: Mapping[str, Any], name: str, in_channels: int, n_cells: int,
                 ablate: str | None = None) -> dict[str, Any]:
    """Model keyword arguments (stored in the run's spec). ``ablate``: "c3tcn", "adaln" or "cmst" removes one."""
    if name == "openretina":
        return {"n_cells": n_cells, "n_lags": settings["openretina_lags"], "crop_margin": OPENRETINA_CROP[0],
                "crop_factor": OPENRETINA_CROP[1], "masks_start_at_rfs": True}
    if name == "mstcn":
        return {"in_channels": in_channels, "n_cells": n_cells, "reduce": settings["mstcn_reduce"],
                "width": settings["mstcn_width"], "n_stages": settings["mstcn_stages"],
                "n_layers": settings["mstcn_layers"], "dropout": settings["dropout"]}
    if ablate not in (None, "c3tcn", "adaln", "cmst"):
        raise ValueError(f"ablate must be None, 'c3tcn', 'adaln' or 'cmst', got {ablate!r}")
    return {"in_channels": in_channels, "n_cells": n_cells, "width": settings["width"],
            "c3tcn_layers": settings["c3tcn_layers"], "dropout": settings["dropout"],
            "rf_condition": settings["rf_condition"], "use_c3tcn": ablate != "c3tcn",
            "use_adaln": ablate != "adaln", "use_cmst": ablate != "cmst"}


_TRAIN_KEYS = ("window", "batch_size", "batches_per_epoch", "epochs", "warmup_epochs", "lr", "min_lr",
               "weight_decay", "swa_epochs", "loss")
#: what a run trained to convergence (:func:`fit_rule`) keeps of the training settings (no schedule, no SWA)
_FIT_TRAIN_KEYS = ("window", "batch_size", "lr", "weight_decay", "loss")
#: openretina's input: the frames cropped to the square around every RF plus this margin (pixels), then
#: block-averaged by this factor (:func:`alignlib.experiments.vist.explain.crop_around_rfs`)
OPENRETINA_CROP = (16, 3)
MODELS = ("vist", "mstcn", "openretina", "ln")


def fit_rule(settings: Mapping[str, Any], model: str = "vist") -> dict[str, Any] | None:
    """The convergence rule of a deep model's run, or None for the paper's fixed schedule: the settings'
    ``patience`` (epochs without a better validation CC) and ``epochs`` (the cap). openretina's model always
    stops early; without a ``patience`` in the settings it follows openretina's own rule (patience 10, at
    most 50 epochs)."""
    from alignlib.models.openretina_baseline import TRAINING

    if settings.get("patience") is not None:
        return {"epochs": int(settings["epochs"]), "patience": int(settings["patience"]), "select": "val_cc",
                "val_fraction": float(settings["val_fraction"]), "window_stride": "half a window"}
    if model == "openretina":
        return {"epochs": TRAINING["max_epochs"], "patience": TRAINING["early_stopping_patience"],
                "select": "val_cc", "val_fraction": float(settings["val_fraction"]),
                "window_stride": "half a window"}
    return None


def validation_split(train_bins: slice, val_fraction: float, gap: int) -> tuple[slice, slice]:
    """(bins trained on, validation bins) of a training segment: the last ``val_fraction`` of it validates,
    ``gap`` bins after the bins trained on (responses outlast a bin: the gap keeps them apart)."""
    n = train_bins.stop - train_bins.start
    n_val = int(round(n * float(val_fraction)))
    if not 0 < n_val < n - gap:
        raise ValueError(f"a validation fraction of {val_fraction} leaves no bins to train or to validate on "
                         f"in a {n}-bin training segment (gap {gap})")
    return slice(train_bins.start, train_bins.stop - n_val - gap), slice(train_bins.stop - n_val, train_bins.stop)


def run_spec(train: MovieData, settings: Mapping[str, Any], model: str = "vist", seed: int = 0,
             segment: str = "train", cells: Sequence[int] | None = None, ablate: str | None = None,
             variant: str | None = None) -> RunSpec:
    """The run's identity: model, training settings, data (recording, binning, training segment, cells, prior)."""
    if segment not in ("train", "all"):
        raise ValueError(f"segment must be 'train' (within-movie training part) or 'all', got {segment!r}")
    cells = list(range(train.n_cells)) if cells is None else [int(c) for c in cells]
    rule = fit_rule(settings, model)
    train_cfg = {k: settings[k] for k in (_TRAIN_KEYS if rule is None else _FIT_TRAIN_KEYS)} | {"seed": int(seed)}
    data = {"recording": train.name, "movie": train.movie, "frames_per_bin": settings["frames_per_bin"],
            "segment": segment, "test_fraction": settings["test_fraction"], "gap_bins": settings["gap_bins"],
            "cells": cells, "prior": train.prior.identity(), "targets": "trial-averaged counts per bin",
            "features": "z-score per channel, training bins"}
    if settings.get("exclude_tiled"):    # named only when on, so runs made before the switch keep their hashes
        data["tiled"] = "copied block left out (onken.TILED_MS, longest clean part of the trial)"
    if model == "openretina":        # its own input, loss and optimiser (openretina's configuration)
        from alignlib.models.openretina_baseline import OPENRETINA_VERSION, TRAINING

        train_cfg.update(lr=TRAINING["learning_rate"], weight_decay=TRAINING["weight_decay"],
                         loss=f"openretina {OPENRETINA_VERSION} L1PoissonLoss3d + core and readout penalties")
        data.pop("prior")
        data["features"] = "frames cropped around the RFs, block-averaged, z-scored with the training bins"
    config = {
        "format": RUN_FORMAT,
        "model": {"name": model, **model_config(settings, model, train.features.shape[-1], len(cells), ablate)},
        "train": train_cfg,
        "data": data,
    }
    if rule is not None:
        config["fit"] = rule
    tags = [model, f"no-{ablate}" if ablate else "", "rmse" if settings["loss"] == "rmse" and model != "openretina" else "",
            f"top{len(cells)}" if len(cells) < train.n_cells else "",
            "" if model == "openretina" else train.prior.short, train.name, segment, f"s{seed}"]
    name = variant or "-".join(t for t in tags if t)
    return RunSpec("vist", name, config)


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr: float) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then half-cycle cosine from ``lr`` to ``min_lr`` (§4.3)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _loss(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "rmse":
        return torch.sqrt(torch.mean((pred - target) ** 2))            # eq. 1
    return vist_loss(pred, target)                                      # eq. 4


def _standardise(features: np.ndarray, train: slice) -> tuple[np.ndarray, np.ndarray]:
    f = features[train].reshape(-1, features.shape[-1])
    return f.mean(0), f.std(0) + 1e-6


def _to_input(features: np.ndarray, mean: np.ndarray, std: np.ndarray, device: torch.device) -> torch.Tensor:
    x = (features - mean) / std                                          # (T, g, g, C)
    return torch.as_tensor(x, dtype=torch.float32).permute(3, 0, 1, 2)[None].contiguous().to(device)


def train_run(spec: RunSpec, train: MovieData, evaluate: Mapping[str, MovieData], device: str = "auto",
              progress: bool = False) -> Path:
    """Train the run of ``spec`` on ``train`` and save its predictions for every movie in ``evaluate``
    (the run directory locked meanwhile: :func:`~alignlib.training.runs.run_lock`)."""
    with run_lock(spec.directory()):
        return _train_run(spec, train, evaluate, device, progress)


def _train_run(spec: RunSpec, train: MovieData, evaluate: Mapping[str, MovieData], device: str,
               progress: bool) -> Path:
    if "fit" in spec.config:
        return _train_converged(spec, train, evaluate, device, progress)
    cfg, tr = spec.config, spec.config["train"]
    directory = spec.directory()
    spec.write(directory)
    dev = get_device(device)
    cells = cfg["data"]["cells"]
    train_bins = (segments(train.n_bins, cfg["data"])[0] if cfg["data"]["segment"] == "train"
                  else slice(0, train.n_bins))
    mean, std = _standardise(train.features, train_bins)
    x_all = _to_input(train.features, mean, std, dev)
    y_all = torch.as_tensor(train.rates[:, cells], dtype=torch.float32, device=dev)
    rng = seed_everything(tr["seed"])
    model = build_vist_model(cfg["model"]["name"], {k: v for k, v in cfg["model"].items() if k != "name"},
                             train.rf_grid[cells]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=tr["lr"], weight_decay=tr["weight_decay"])
    swa = torch.optim.swa_utils.AveragedModel(model)
    n_steps, warm = tr["epochs"] * tr["batches_per_epoch"], tr["warmup_epochs"] * tr["batches_per_epoch"]
    lo, hi = train_bins.start, train_bins.stop - tr["window"]
    if hi < lo:
        raise ValueError(f"training segment of {train_bins.stop - lo} bins is shorter than a {tr['window']}-bin window")

    def batch():
        starts = rng.integers(lo, hi + 1, size=tr["batch_size"])
        idx = torch.as_tensor(starts[:, None] + np.arange(tr["window"]), device=dev)
        return x_all[0][:, idx].permute(1, 0, 2, 3, 4), y_all[idx]

    history, t0, step = [], time.time(), 0
    epochs = range(tr["epochs"])
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=spec.variant, leave=False)
    for epoch in epochs:
        model.train()
        losses = []
        for _ in range(tr["batches_per_epoch"]):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, n_steps, warm, tr["lr"], tr["min_lr"])
            xb, yb = batch()
            loss = _loss(tr["loss"], model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        if epoch >= tr["epochs"] - tr["swa_epochs"]:
            swa.update_parameters(model)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"]})
    # SWA weights with BatchNorm statistics recomputed on training windows (torch.optim.swa_utils.update_bn)
    torch.optim.swa_utils.update_bn([batch()[0] for _ in range(max(2, tr["batches_per_epoch"]))], swa)
    final = swa.module.eval()
    preds = {}
    with torch.no_grad():
        for name, data in evaluate.items():
            out = final(_to_input(data.features, mean, std, dev))[0].cpu().numpy()
            preds[name] = out
    torch.save(final.state_dict(), directory / "model.pt")
    pd.DataFrame(history).to_csv(directory / "history.csv", index=False)
    np.savez_compressed(directory / "predictions.npz", **preds)
    write_json(directory / "run.json", {"train_seconds": time.time() - t0, "n_parameters": count_parameters(final),
                                        "device": str(dev), "threads": torch.get_num_threads(),
                                        "evaluated": sorted(preds), **provenance(), **made_by()})
    return directory


class _WindowObjective(Objective):
    """Windows of the movie's inputs -> the cells' trial-averaged counts (:func:`_train_converged`).

    ``x`` (1, C, history + T, H, W): the inputs left-padded with ``history`` zero bins (the models that need
    input before a window's first output: openretina's valid temporal convolutions); ``y`` (T, cells).
    A batch is a set of window starts; validation predicts the whole movie and scores ``val_bins``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, window: int, history: int, val_bins: slice,
                 loss: str, lr: float, weight_decay: float):
        self.x, self.y, self.window, self.history = x, y, int(window), int(history)
        self.val_bins, self.loss_name, self.lr, self.weight_decay = val_bins, loss, float(lr), float(weight_decay)

    def make_optimizers(self, model: torch.nn.Module) -> list[torch.optim.Optimizer]:
        return [torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)]

    def loss(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        starts = batch["start"].to(self.x.device)
        span = torch.arange(self.history + self.window, device=self.x.device)
        xb = self.x[0][:, starts[:, None] + span].permute(1, 0, 2, 3, 4)        # (B, C, history + W, H, W)
        yb = self.y[starts[:, None] + span[: self.window]]                      # (B, W, cells)
        pred = model(xb)[:, -self.window:]
        if self.loss_name.startswith("openretina"):
            return model.training_loss(pred, yb)
        return _loss(self.loss_name, pred, yb)

    def validate(self, model: torch.nn.Module, data: Mapping[str, torch.Tensor],
                 device: torch.device) -> dict[str, float]:
        pred = predict_whole(model, self.x, self.history)
        cc = pearson_cc(pred[self.val_bins], self.y[self.val_bins].cpu().numpy())
        return {"val_cc": float(np.mean(np.nan_to_num(cc, nan=0.0)))}

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "history": self.history, "loss": self.loss_name, "lr": self.lr,
                "weight_decay": self.weight_decay, "val_bins": [self.val_bins.start, self.val_bins.stop]}


def predict_whole(model: torch.nn.Module, x: torch.Tensor, history: int) -> np.ndarray:
    """(T, cells) prediction for a whole movie from ``x`` (1, C, history + T, H, W), eval mode (restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)[0]
    finally:
        model.train(was_training)
    n_bins = x.shape[2] - history
    return out[-n_bins:].cpu().numpy()


def _model_inputs(spec: RunSpec, train: MovieData, fit_bins: slice, dev: torch.device):
    """(inputs of a movie as (1, C, history + T, H, W), history bins, the model) for ``spec``'s model: z-scored
    with the statistics of the bins trained on."""
    cfg = spec.config
    name, cells = cfg["model"]["name"], cfg["data"]["cells"]
    if name == "openretina":
        from alignlib.experiments.vist.explain import crop_around_rfs
        from alignlib.models import openretina_baseline

        if train.rf_masks is None:
            raise ValueError(f"{train.name}: openretina's model needs the RF masks on the frame (MovieData.rf_masks)")
        masks = train.rf_masks[cells]
        margin, factor = cfg["model"]["crop_margin"], cfg["model"]["crop_factor"]
        crop, centres = crop_around_rfs(train.frames, masks, margin, factor)
        mu, sd = float(crop[fit_bins].mean()), float(crop[fit_bins].std()) + 1e-6
        history = int(cfg["model"]["n_lags"]) - 1

        def inputs(movie: MovieData) -> torch.Tensor:
            z = (crop_around_rfs(movie.frames, masks, margin, factor)[0] - mu) / sd
            z = np.concatenate([np.zeros((history, *z.shape[1:]), np.float32), z.astype(np.float32)])
            return torch.as_tensor(z)[None, None].to(dev)

        model = openretina_baseline.build(len(cells), crop.shape[1:], cfg["model"]["n_lags"],
                                          mean_rate=train.rates[fit_bins][:, cells].mean(0),
                                          centres=centres if cfg["model"]["masks_start_at_rfs"] else None)
        return inputs, history, model
    mean, std = _standardise(train.features, fit_bins)
    model = build_vist_model(name, {k: v for k, v in cfg["model"].items() if k != "name"}, train.rf_grid[cells])
    return (lambda movie: _to_input(movie.features, mean, std, dev)), 0, model


def _train_converged(spec: RunSpec, train: MovieData, evaluate: Mapping[str, MovieData], device: str,
                     progress: bool) -> Path:
    """Train to convergence (:func:`fit_rule`) with :func:`alignlib.training.fit`: checkpointed every epoch
    under ``<run>/fit/`` (a killed run resumes), the best validation-CC epoch kept."""
    from alignlib.training import FitConfig, fit
    from alignlib.training.store import convergence

    cfg, tr, rule = spec.config, spec.config["train"], spec.config["fit"]
    directory = spec.directory()
    spec.write(directory)
    dev = get_device(device)
    cells = cfg["data"]["cells"]
    train_bins = (segments(train.n_bins, cfg["data"])[0] if cfg["data"]["segment"] == "train"
                  else slice(0, train.n_bins))
    fit_bins, val_bins = validation_split(train_bins, rule["val_fraction"], cfg["data"]["gap_bins"])
    window = int(tr["window"])
    if fit_bins.stop - fit_bins.start < window:
        raise ValueError(f"{fit_bins.stop - fit_bins.start} bins to train on are fewer than a {window}-bin window")
    seed_everything(tr["seed"])
    inputs, history, model = _model_inputs(spec, train, fit_bins, dev)
    model.to(dev)
    x = inputs(train)
    y = torch.as_tensor(train.rates[:, cells], dtype=torch.float32, device=dev)
    starts = torch.arange(fit_bins.start, fit_bins.stop - window + 1, max(1, window // 2))
    objective = _WindowObjective(x, y, window, history, val_bins, tr["loss"], tr["lr"], tr["weight_decay"])
    config = FitConfig(epochs=rule["epochs"], batch_size=max(2, int(tr["batch_size"])), patience=rule["patience"],
                       select=rule["select"], track=(), seed=int(tr["seed"]), device=str(dev), progress=progress)
    result = fit(model, objective, {"start": starts}, {"start": torch.zeros(1, dtype=torch.long)}, config,
                 checkpoint_dir=directory / "fit", identity=spec.config)
    preds = {name: predict_whole(model, inputs(data), history) for name, data in evaluate.items()}
    torch.save(model.state_dict(), directory / "model.pt")
    pd.DataFrame(result.history).to_csv(directory / "history.csv", index=False)
    np.savez_compressed(directory / "predictions.npz", **preds)
    selections = {c: {"epoch": s.epoch, "value": s.value, "complete": s.complete}
                  for c, s in result.selections.items()}
    write_json(directory / "run.json", {
        "train_seconds": result.train_seconds, "n_parameters": count_parameters(model), "device": str(dev),
        "threads": torch.get_num_threads(), "execution": result.execution, "evaluated": sorted(preds),
        "fit_bins": [fit_bins.start, fit_bins.stop], "val_bins": [val_bins.start, val_bins.stop],
        "selected": result.selected, "selections": selections, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early, "resumed_from_epoch": result.resumed_from,
        **convergence({"selected": result.selected, "epochs_run": result.epochs_run,
                       "selections": selections}, rule),
        "provenance": provenance(), **made_by()})
    (directory / "fit" / "fit_state.pt").unlink(missing_ok=True)   # no optimiser state once complete
    return directory


def store_contents(directory: Path) -> dict[str, bool]:
    """What the run store keeps of a Vi-ST run (:mod:`alignlib.training.store`): its predictions, which the
    pages score, and the seed-0 weights of the training page's models on the recordings (small; no page reads
    them yet, they are kept so that a reader can load and probe a stored model without retraining; the other
    seeds' weights would cost the room that the DINA towers every seed of which the interpretation pages
    explain need). Controls (planted responses), the loss, module and cell ablations and the luminance prior
    keep their predictions only (a prior-layer variant of the paper profile keeps its weights: its spec does
    not say which layer is the training page's)."""
    spec = load_spec(directory)
    model, data = spec.config["model"], spec.config["data"]
    variant = ("planted" in data["recording"] or not model.get("use_c3tcn", True)
               or not model.get("use_adaln", True) or not model.get("use_cmst", True)
               or spec.config["train"].get("loss") == "rmse"
               or any(t.startswith("top") and t[3:].isdigit() for t in spec.variant.split("-"))
               or (data.get("prior") or {}).get("kind") == "luminance")
    return {"maps": False, "weights": not variant and spec.config["train"].get("seed", 0) == 0}


def run_convergence_of(directory: str | Path) -> dict[str, Any]:
    """{"converged": True/False/None, "epochs_run", "selected_epoch"} of a Vi-ST run (None: the paper's fixed
    schedule, whose convergence is unknown)."""
    import json

    info = json.loads((Path(directory) / "run.json").read_text())
    sel = (info.get("selections") or {}).get(info.get("selected") or "", {})
    return {"converged": info.get("converged"), "epochs_run": info.get("epochs_run"),
            "selected_epoch": sel.get("epoch"), "val_cc_selected": sel.get("value")}


def load_predictions(directory: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(directory) / "predictions.npz") as z:
        return {k: z[k] for k in z.files}


def get_run(spec: RunSpec, train: MovieData, evaluate: Mapping[str, MovieData], device: str = "auto",
            progress: bool = False) -> tuple[dict[str, np.ndarray], bool, Path]:
    """(predictions per evaluated recording, trained_now, run directory): a completed identical run is reused
    when it evaluated every recording asked for; otherwise the run is trained now. The run directory is
    locked meanwhile: a second process asking for the same run waits, then loads it."""
    with run_lock(spec.directory()):
        found = spec.find()
        if found is not None:
            preds = load_predictions(found)
            if set(evaluate) <= set(preds):
                record_run_read(found)
                return preds, False, found
        directory = train_run(spec, train, evaluate, device=device, progress=progress)
        record_run_read(directory)
        return load_predictions(directory), True, directory


def score_cells(pred: np.ndarray, data: MovieData, bins: slice, cells: Sequence[int] | None = None,
                reliability_seed: int = 0) -> pd.DataFrame:
    """Per-cell scores of ``pred`` (T, cells) against ``data`` on ``bins``: Pearson CC, |CC|, SD-KL (paper's
    bandwidth 0.3 and direction KL(pred || target)), split-half reliability of the same bins, the noise ceiling
    (sqrt of the reliability) and CC / ceiling."""
    cells = list(range(data.n_cells)) if cells is None else list(cells)
    target = data.rates[bins][:, cells]
    p = np.asarray(pred)[bins]
    cc = pearson_cc(p, target)
    with warnings.catch_warnings():   # flat-topped responses have zero-prominence peaks; SD-KL handles them
        warnings.simplefilter("ignore", PeakPropertyWarning)
        kl = sd_kl(p, target)
    rel = split_half_reliability(data.counts[:, bins][:, :, cells], seed=reliability_seed)
    ceiling = noise_ceiling(rel)
    return pd.DataFrame({"cell": cells, "cc": cc, "abs_cc": np.abs(cc), "sd_kl": kl,
                         "reliability": rel, "ceiling": ceiling, "cc_over_ceiling": cc / ceiling})


def summarise(per_cell: pd.DataFrame, keys: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """One row per ``keys`` group: mean CC over cells (each cell first averaged over seeds) with a 95 % bootstrap
    CI over cells, mean |CC| (the official code's logged value, labelled), median SD-KL and the fraction of
    (cell, seed) scores at SD-KL's fill value (fewer than two responses in a series: no distribution to compare),
    mean CC / ceiling."""
    rows = []
    for key, g in per_cell.groupby(list(keys), sort=False):
        cell = g.groupby("cell")[["cc", "abs_cc", "sd_kl", "cc_over_ceiling", "ceiling"]].mean()
        cc = cell.cc.dropna().to_numpy()
        lo, hi = bootstrap_ci(cc, seed=seed) if len(cc) > 1 else (np.nan, np.nan)
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "n_cells": len(cell),
                     "n_seeds": g.seed.nunique() if "seed" in g else 1, "mean_cc": float(np.mean(cc)),
                     "ci_low": lo, "ci_high": hi, "mean_abs_cc": float(cell.abs_cc.mean()),
                     "median_sd_kl": float(cell.sd_kl.median()),
                     "frac_sd_kl_fill": float((g.sd_kl >= SD_KL_FILL).mean()),
                     "mean_cc_over_ceiling": float(cell.cc_over_ceiling.mean()),
                     **dict(zip(("share_ci_low", "share_ci_high"),
                                bootstrap_ci(cell.cc_over_ceiling.dropna().to_numpy(), seed=seed)
                                if cell.cc_over_ceiling.notna().sum() > 1 else (np.nan, np.nan))),
                     "mean_ceiling": float(cell.ceiling.mean()),
                     # spread of the per-seed mean CC (what the interval over cells leaves out)
                     "seed_range": float(np.ptp(g.groupby("seed").cc.mean())) if "seed" in g else np.nan,
                     # every run behind the row stopped by its convergence rule (None: a fixed schedule somewhere)
                     "converged": (None if "converged" not in g or g.converged.isna().any()
                                   else bool((g.converged == True).all()))})  # noqa: E712
    return pd.DataFrame(rows)


def paired_model_difference(per_cell: pd.DataFrame, a: str, b: str, seed: int = 0, **where: Any) -> dict[str, Any]:
    """Model ``a`` minus model ``b`` in mean CC over cells, paired by cell (each cell's CC first averaged over
    the seeds of its model), with a 95 % percentile-bootstrap interval over cells
    (:func:`alignlib.metrics.uncertainty.paired_difference_ci`): the interval of the claims ledger's
    ``paired_difference`` rule. ``where``: column == value filters (e.g. ``protocol="Mov2->Mov2"``).
    Cells whose CC is undefined for either model (a flat series) are left out."""
    from alignlib.metrics.uncertainty import paired_difference_ci

    sel = per_cell
    for col, value in where.items():
        sel = sel[sel[col] == value]
    cells = {m: sel[sel.model == m].groupby("cell").cc.mean() for m in (a, b)}
    for m, c in cells.items():
        if c.empty:
            raise ValueError(f"no scores of model {m!r} where {where}")
    both = pd.concat(cells, axis=1).dropna()
    d, lo, hi = paired_difference_ci(both[a].to_numpy(), both[b].to_numpy(), seed=seed)
    return {"a": a, "b": b, **where, "difference": d, "ci_low": lo, "ci_high": hi, "n_cells": len(both),
            "n_seeds_a": int(sel[sel.model == a].seed.nunique()), "n_seeds_b": int(sel[sel.model == b].seed.nunique())}


def fit_ln(train: MovieData, train_bins: slice, evaluate: Mapping[str, MovieData]) -> dict[str, np.ndarray]:
    """A's linear-nonlinear model fitted on the binned frames of ``train_bins``; predictions for whole movies."""
    ln = LinearNonlinear().fit(train.frames[train_bins], train.rates[train_bins])
    return {name: ln.predict(d.frames) for name, d in evaluate.items()}


def ln_learning_curve(movie: MovieData, settings: Mapping[str, Any],
                      fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), seed: int = 0) -> pd.DataFrame:
    """Held-out CC of the LN model (closed form) trained on the last ``fractions`` of the training segment
    (the bins nearest the test segment kept, so every point is tested on the same bins): does more movie help,
    and is the curve still rising at the whole segment? Columns fraction, n_bins, seconds, mean_cc, ci_low,
    ci_high, mean_cc_over_ceiling."""
    train_bins, test_bins = segments(movie.n_bins, settings)
    n = train_bins.stop - train_bins.start
    rows = []
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"fractions must lie in (0, 1], got {f}")
        bins = slice(train_bins.stop - max(2, int(round(n * f))), train_bins.stop)
        sc = score_cells(fit_ln(movie, bins, {movie.name: movie})[movie.name], movie, test_bins)
        cc = sc.cc.dropna().to_numpy()
        lo, hi = bootstrap_ci(cc, seed=seed)
        rows.append({"fraction": float(f), "n_bins": bins.stop - bins.start,
                     "seconds": (bins.stop - bins.start) * movie.bin_ms / 1000, "mean_cc": float(cc.mean()),
                     "ci_low": lo, "ci_high": hi, "mean_cc_over_ceiling": float(sc.cc_over_ceiling.mean())})
    return pd.DataFrame(rows)


def _cross_segment(settings: Mapping[str, Any]) -> str:
    return "all" if settings["cross_uses_whole_movie"] else "train"


def table2_scores(movies: Mapping[int, MovieData], settings: Mapping[str, Any], seeds: Sequence[int],
                  models: Sequence[str] | None = None, device: str = "auto", progress: bool = False,
                  train_movies: Sequence[int] | None = None) -> tuple[pd.DataFrame, dict[tuple, np.ndarray]]:
    """Per-cell scores of every model under the four protocols of Table 2 for one experiment, and the
    predictions (keyed by (model, train movie, test movie, seed)) for the traces.

    Within-movie: trained on the training segment, scored on the held-out segment of the same movie.
    Cross-movie: scored on the whole other movie, trained on the whole movie (``cross_uses_whole_movie``) or
    on the training segment (the within-movie run, to save time). The LN model is deterministic (seed 0 only).
    ``models`` and ``train_movies`` (the protocols that train on these movies) default to the settings'.
    """
    models = list(settings["models"] if models is None else models)
    train_movies = list(settings["train_movies"] if train_movies is None else train_movies)
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {', '.join(MODELS)}")
    rows, preds = [], {}
    experiment = movies[1].experiment
    for train_movie in train_movies:
        train, other = movies[train_movie], movies[3 - train_movie]
        tr_bins, te_bins = segments(train.n_bins, settings)
        for model in models:
            for seed in (seeds if model != "ln" else seeds[:1]):
                runs = {"train": {train.name: train, other.name: other}}
                if _cross_segment(settings) == "all":
                    runs = {"train": {train.name: train}, "all": {other.name: other}}
                out, conv = {}, {}
                for segment, evaluate in runs.items():
                    if model == "ln":            # closed form: nothing to converge
                        bins = tr_bins if segment == "train" else slice(0, train.n_bins)
                        out.update({(segment, k): v for k, v in fit_ln(train, bins, evaluate).items()})
                        conv[segment] = {"converged": True, "epochs_run": None, "selected_epoch": None,
                                         "val_cc_selected": None}
                        continue
                    spec = run_spec(train, settings, model, seed, segment)
                    p, _, directory = get_run(spec, train, evaluate, device=device, progress=progress)
                    out.update({(segment, k): v for k, v in p.items()})
                    conv[segment] = {**run_convergence_of(directory), "run": directory.name}
                for test_movie, bins, segment in ((train_movie, te_bins, "train"),
                                                  (3 - train_movie, None, _cross_segment(settings))):
                    data = movies[test_movie]
                    bins = slice(0, data.n_bins) if bins is None else bins
                    pred = out[(segment, data.name)]
                    preds[(model, train_movie, test_movie, seed)] = pred
                    rows.append(score_cells(pred, data, bins).assign(
                        experiment=experiment, model=model, protocol=protocol_label(train_movie, test_movie),
                        kind="within-movie" if test_movie == train_movie else "cross-movie", seed=seed,
                        train=train.name, test=data.name, **conv[segment]))
    return pd.concat(rows, ignore_index=True), preds


def circular_shift_control(pred: np.ndarray, data: MovieData, bins: slice) -> pd.DataFrame:
    """Control: the same prediction, shifted circularly by half the scored segment, so it keeps its statistics
    but loses its alignment with the movie; its CC should be near 0 (what a model without stimulus locking scores)."""
    p = np.asarray(pred)[bins]
    shifted = np.array(pred, copy=True)
    shifted[bins] = np.roll(p, len(p) // 2, axis=0)
    return score_cells(shifted, data, bins)


def with_prior(movie: MovieData, prior: PriorSpec, progress: bool = False) -> MovieData:
    """The same recording with another prior's (cached) features."""
    from dataclasses import replace

    return replace(movie, features=prior_features(movie.frames, prior, progress=progress), prior=prior)


def cells_by_reliability(movie: MovieData, bins: slice, seed: int = 0) -> list[int]:
    """Cells ordered from most to least reliable (split-half, on ``bins`` of the training movie): the ranking of
    the "cells predicted jointly" ablation (the paper ranks by model CC; we avoid ranking on test data)."""
    rel = split_half_reliability(movie.counts[:, bins], seed=seed)
    return [int(i) for i in np.argsort(-np.nan_to_num(rel, nan=-1.0), kind="stable")]


def ablation_scores(movies: Mapping[int, MovieData], settings: Mapping[str, Any], train_movie: int = 1, seed: int = 0,
                    prior_weights: str | None = None, device: str = "auto", progress: bool = False,
                    within: bool = False) -> pd.DataFrame:
    """Per-cell scores of every ablation variant (Figs 5-6): loss (Vi-ST vs RMSE), prior layer (and the
    luminance control), one module removed at a time, and the number of cells predicted jointly (top-n most
    reliable cells, nested). Cross-movie (train ``train_movie`` -> the other, whole movie), or ``within`` the
    training movie (trained on its training segment, scored on its held-out segment; the full model's run is the
    training page's). Columns ``group``, ``variant``,
    ``n_joint``, ``converged`` besides :func:`score_cells`'s."""
    train, test = movies[train_movie], movies[3 - train_movie]
    segment = "train" if within else _cross_segment(settings)
    bins = segments(train.n_bins, settings)[1] if within else slice(0, test.n_bins)
    rows = []

    def run(group: str, variant: str, cfg: Mapping[str, Any], tr: MovieData, te: MovieData, ablate=None,
            cells=None, n_joint=None):
        # tr: the training movie, te: the other movie, both with the variant's prior
        spec = run_spec(tr, cfg, "vist", seed, segment, cells=cells, ablate=ablate)
        # within: the training movie only (a subset of what the training page's runs evaluated, so they are
        # reused in every profile); cross: the other movie (and the training one for within-segment runs)
        evaluate = {tr.name: tr} if within else {tr.name: tr, te.name: te} if segment == "train" else {te.name: te}
        preds, _, directory = get_run(spec, tr, evaluate, device=device, progress=progress)
        target = tr if within else te
        rows.append(score_cells(preds[target.name], target, bins, cells).assign(
            group=group, variant=variant, n_joint=n_joint or tr.n_cells, seed=seed,
            protocol=protocol_label(train_movie, train_movie if within else 3 - train_movie),
            **run_convergence_of(directory)))

    full = f"Vi-ST ({train.prior.short})"
    run("loss", "Vi-ST loss", settings, train, test)
    run("loss", "RMSE", {**settings, "loss": "rmse"}, train, test)
    for module in ("c3tcn", "adaln", "cmst"):
        run("modules", f"without {dict(c3tcn='C3TCN', adaln='AdaLN-Zero', cmst='CMST')[module]}", settings,
            train, test, ablate=module)
    run("modules", "full model", settings, train, test)
    priors = [prior_spec(settings, prior_weights, layer) for layer in settings["ablation_layers"]]
    if settings["ablation_luminance"]:
        priors.append(prior_spec(settings, kind="luminance"))
    for p in priors:
        tr, te = (train, test) if p == train.prior else (with_prior(train, p, progress), with_prior(test, p, progress))
        run("prior", "no ViT: patch luminance" if p.kind == "luminance" else f"layer {p.layer}", settings, tr, te)
    ranking = cells_by_reliability(train, segments(train.n_bins, settings)[0] if segment == "train"
                                   else slice(0, train.n_bins))
    for n in settings["ablation_cells"]:
        n = train.n_cells if n == "all" else min(int(n), train.n_cells)
        run("cells", f"{n} cells", settings, train, test, cells=None if n == train.n_cells else ranking[:n],
            n_joint=n)
    out = pd.concat(rows, ignore_index=True)
    out["rank"] = out.cell.map({c: i for i, c in enumerate(ranking)})
    out.attrs["full"] = full
    return out
