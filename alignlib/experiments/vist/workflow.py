"""The Vi-ST chapter's runs: binned data with cached prior features, one training run (trained once, cached
under ``runs/vist/<variant>-<hash>/``, reloaded by identical configurations), and per-cell scores.

A run directory holds ``spec.json`` (the resolved configuration), ``model.pt`` (the final — SWA — weights,
``weights_only=True``), ``history.csv`` (loss and learning rate per epoch), ``predictions.npz`` (the model's
prediction for the whole of every evaluated movie) and ``run.json`` (timings; written last: the completion
marker). The fit is a small loop of its own rather than :func:`alignlib.training.fit` (which selects epochs on
validation criteria): Vi-ST trains a fixed number of epochs on random windows with a warm-up + half-cycle cosine
schedule and stochastic weight averaging (§4.3), and selects nothing.
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
from alignlib.training.runs import RunSpec, is_complete, load_spec, run_lock
from alignlib.training.store import made_by, record_run_read

#: SD-KL's value when a series has fewer than two responses (alignlib.metrics.neural_prediction.sd_kl's ``fill``)
SD_KL_FILL = 1000.0

__all__ = ["RUN_FORMAT", "MovieData", "recording_name", "prior_spec", "load_movie", "load_experiment", "bin_frames",
           "bin_counts", "protocol_label", "table2_scores", "circular_shift_control", "with_prior",
           "cells_by_reliability", "ablation_scores",
           "segments", "model_config", "run_spec", "train_run", "load_predictions", "get_run", "score_cells",
           "summarise", "fit_ln", "lr_at", "planted_movie"]

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

    @property
    def n_bins(self) -> int:
        return int(self.rates.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.rates.shape[1])


def load_movie(experiment: str, movie: int, settings: Mapping[str, Any], prior: PriorSpec,
               root: str | Path | None = None, progress: bool = False) -> MovieData:
    """Load ``experiment``'s recording of ``movie``, bin it and attach its (cached) prior features."""
    rec = onken.load_recording(recording_name(experiment, movie), root)
    k = int(settings["frames_per_bin"])
    frames = bin_frames(rec.frames, k)
    counts = bin_counts(rec.counts, k).astype(np.float32)
    feats = prior_features(frames, prior, progress=progress)
    return MovieData(rec.name, experiment, movie, rec.frame_ms * k, frames, feats, counts.mean(0), counts,
                     rec.rf_masks_on_grid(feats.shape[1]), prior)


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


def run_spec(train: MovieData, settings: Mapping[str, Any], model: str = "vist", seed: int = 0,
             segment: str = "train", cells: Sequence[int] | None = None, ablate: str | None = None,
             variant: str | None = None) -> RunSpec:
    """The run's identity: model, training settings, data (recording, binning, training segment, cells, prior)."""
    if segment not in ("train", "all"):
        raise ValueError(f"segment must be 'train' (within-movie training part) or 'all', got {segment!r}")
    cells = list(range(train.n_cells)) if cells is None else [int(c) for c in cells]
    config = {
        "format": RUN_FORMAT,
        "model": {"name": model, **model_config(settings, model, train.features.shape[-1], len(cells), ablate)},
        "train": {k: settings[k] for k in _TRAIN_KEYS} | {"seed": int(seed)},
        "data": {"recording": train.name, "movie": train.movie, "frames_per_bin": settings["frames_per_bin"],
                 "segment": segment, "test_fraction": settings["test_fraction"], "gap_bins": settings["gap_bins"],
                 "cells": cells, "prior": train.prior.identity(), "targets": "trial-averaged counts per bin",
                 "features": "z-score per channel, training bins"},
    }
    tags = [model, f"no-{ablate}" if ablate else "", "rmse" if settings["loss"] == "rmse" else "",
            f"top{len(cells)}" if len(cells) < train.n_cells else "", train.prior.short, train.name, segment, f"s{seed}"]
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


def store_contents(directory: Path) -> dict[str, bool]:
    """What the run store keeps of a Vi-ST run (:mod:`alignlib.training.store`): its predictions, which the
    pages score, and its weights (small models; no page reads them yet, they are kept so that a reader can
    load and probe a stored model without retraining)."""
    return {"maps": False, "weights": True}


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
                     "mean_ceiling": float(cell.ceiling.mean())})
    return pd.DataFrame(rows)


def fit_ln(train: MovieData, train_bins: slice, evaluate: Mapping[str, MovieData]) -> dict[str, np.ndarray]:
    """A's linear-nonlinear model fitted on the binned frames of ``train_bins``; predictions for whole movies."""
    ln = LinearNonlinear().fit(train.frames[train_bins], train.rates[train_bins])
    return {name: ln.predict(d.frames) for name, d in evaluate.items()}


def _cross_segment(settings: Mapping[str, Any]) -> str:
    return "all" if settings["cross_uses_whole_movie"] else "train"


def table2_scores(movies: Mapping[int, MovieData], settings: Mapping[str, Any], seeds: Sequence[int],
                  models: Sequence[str] = ("vist", "mstcn", "ln"), device: str = "auto", progress: bool = False,
                  train_movies: Sequence[int] = (1, 2)) -> tuple[pd.DataFrame, dict[tuple, np.ndarray]]:
    """Per-cell scores of every model under the four protocols of Table 2 for one experiment, and the
    predictions (keyed by (model, train movie, test movie, seed)) for the traces.

    Within-movie: trained on the training segment, scored on the held-out segment of the same movie.
    Cross-movie: scored on the whole other movie, trained on the whole movie (``cross_uses_whole_movie``) or
    on the training segment (the within-movie run, to save time). The LN model is deterministic (seed 0 only).
    ``train_movies`` limits the protocols to those that train on these movies.
    """
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
                out = {}
                for segment, evaluate in runs.items():
                    if model == "ln":
                        bins = tr_bins if segment == "train" else slice(0, train.n_bins)
                        out.update({(segment, k): v for k, v in fit_ln(train, bins, evaluate).items()})
                        continue
                    spec = run_spec(train, settings, model, seed, segment)
                    p, _, _ = get_run(spec, train, evaluate, device=device, progress=progress)
                    out.update({(segment, k): v for k, v in p.items()})
                for test_movie, bins, segment in ((train_movie, te_bins, "train"),
                                                  (3 - train_movie, None, _cross_segment(settings))):
                    data = movies[test_movie]
                    bins = slice(0, data.n_bins) if bins is None else bins
                    pred = out[(segment, data.name)]
                    preds[(model, train_movie, test_movie, seed)] = pred
                    rows.append(score_cells(pred, data, bins).assign(
                        experiment=experiment, model=model, protocol=protocol_label(train_movie, test_movie),
                        kind="within-movie" if test_movie == train_movie else "cross-movie", seed=seed,
                        train=train.name, test=data.name))
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
                    prior_weights: str | None = None, device: str = "auto", progress: bool = False) -> pd.DataFrame:
    """Per-cell cross-movie scores (train ``train_movie`` -> the other, whole movie) of every ablation variant
    (Figs 5-6): loss (Vi-ST vs RMSE), prior layer (and the luminance control), one module removed at a time,
    and the number of cells predicted jointly (top-n most reliable cells, nested). Columns ``group``,
    ``variant``, ``n_joint`` besides :func:`score_cells`'s."""
    train, test = movies[train_movie], movies[3 - train_movie]
    segment = _cross_segment(settings)
    bins = slice(0, test.n_bins)
    rows = []

    def run(group: str, variant: str, cfg: Mapping[str, Any], tr: MovieData, te: MovieData, ablate=None,
            cells=None, n_joint=None):
        spec = run_spec(tr, cfg, "vist", seed, segment, cells=cells, ablate=ablate)
        preds, _, _ = get_run(spec, tr, {te.name: te}, device=device, progress=progress)
        rows.append(score_cells(preds[te.name], te, bins, cells).assign(
            group=group, variant=variant, n_joint=n_joint or tr.n_cells, seed=seed,
            protocol=protocol_label(train_movie, 3 - train_movie)))

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
