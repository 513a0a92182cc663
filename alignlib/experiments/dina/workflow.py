"""The DINA chapter's runs (Wang et al. 2026 §3-4): resolve a run's configuration, train it once (or load
it, or resume it after a kill), and read what the results pages need.

A run lives in ``runs/dina/<variant>-<hash>/`` (:mod:`alignlib.training.runs`): ``spec.json`` (resolved
configuration), ``fit/`` (per-epoch checkpoints while training; ``best_<criterion>_e<epoch>.pt`` after),
``checkpoint.pt`` (the selected epoch, ``weights_only=True``), ``history.csv``, ``run.json`` (data
identity, selections, timings; written last: the completion marker), and ``test_<criterion>.npz`` —
held-out embeddings and maps of the epoch each criterion selected.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from alignlib.experiments.dina.cast import MouseRecording
from alignlib.experiments.dina.settings import (SWITCH_DEFAULTS, TEST_FRACTION, VAL_FRACTION,
                                                changed_switches, dina_split, uses_factored_tower)
from alignlib.metrics.retrieval import similarity_matrix, topk_hits
from alignlib.metrics.uncertainty import bootstrap_ci_mean_of_means
from alignlib.models.dina import WIDTH_PROFILES, build_dina, count_parameters
from alignlib.repro import provenance, seed_everything, write_json
from alignlib.training import (ContrastiveObjective, FitConfig, OptimizerSpec, ResponseNormalizer, embed, fit,
                               prepare_images, prepare_pairs, register_model, save_model_checkpoint)
from alignlib.training.objectives import ClassificationObjective, ReconstructionObjective
from alignlib.training.config import Selection
from alignlib.training.runs import RunSpec, check_comparable, is_complete, load_spec, run_lock
from alignlib.training.store import compact_embeddings, convergence, made_by, record_run_read

#: bump when a code change alters what an unchanged configuration computes (metric conventions, model
#: code defaults that are not settings), so that cached runs are not reused across it
RUN_FORMAT = 2

__all__ = ["DinaRun", "model_kwargs", "objective_for", "fit_config_for", "run_spec", "train_mouse", "load_run", "find_run",
           "retrieval_table", "item_hits", "seed_hits", "build_run_model", "response_scaler", "subset_indices", "class_labels"]

register_model("baseline", "alignlib.models.baselines:build_baseline")

#: model switches of :func:`alignlib.models.dina.build_dina` (off = SWITCH_DEFAULTS; named only when on)
_DINA_SWITCHES = ("frozen_backbone", "mlp_activation", "minmax_maps", "dropout")


def model_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved :func:`build_dina` keyword arguments (besides ``n_neurons``) for these settings."""
    kw = {"width": settings["width"], **WIDTH_PROFILES[settings["width"]],
          "residual": bool(settings["neural_residual"]), "token_bias": bool(settings["token_bias"]),
          "stem_stride": int(settings["stem_stride"])}
    kw.update({k: v for k, v in changed_switches(settings).items() if k in _DINA_SWITCHES})
    return kw


def build_run_model(settings: Mapping[str, Any], n_neurons: int, n_classes: int = 0) -> torch.nn.Module:
    """The two-tower model of these settings: DINA (with its switches) or a Table 1 baseline
    (:mod:`alignlib.models.baselines`); ``n_classes`` adds the classification objective's linear heads."""
    name = settings.get("model", "dina")
    if name == "dina":
        kw = model_kwargs(settings)
        model = build_dina(n_neurons, kw.pop("width"), **kw)
        if uses_factored_tower(settings, n_neurons):   # exact, leaner, faster at large N
            model.neural_tower.attention = "factored"
    else:
        from alignlib.models.baselines import build_baseline

        model = build_baseline(name, n_neurons, settings["width"], weights=settings.get("image_weights") or None,
                               dropout=float(settings.get("dropout", 0.0)))
    if n_classes:
        d = model.neural_tower.map_size[0] * model.neural_tower.map_size[1]
        model.class_heads = torch.nn.ModuleDict({"image": torch.nn.Linear(d, n_classes),
                                                 "neural": torch.nn.Linear(d, n_classes)})
    return model


def response_scaler(responses, splits: Mapping[str, np.ndarray], fit_on: str = "train") -> ResponseNormalizer:
    """Per-neuron z-scoring fitted on the training split (``"train"``: this book) or on ALL images before
    the split (``"all"``: the official code's MinMaxScaler fitted before splitting, a test-set leak)."""
    if fit_on not in ("train", "all"):
        raise ValueError(f"fit_on must be 'train' or 'all', got {fit_on!r}")
    r = np.asarray(responses)
    return ResponseNormalizer().fit(r if fit_on == "all" else r[np.asarray(splits["train"])])


def subset_indices(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` of ``range(n)`` drawn at random (sorted); all when ``k`` is 0 or >= n. Nested: the first k of
    one permutation, so a smaller subset is contained in a larger one with the same seed."""
    if k <= 0 or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def class_labels(recording: MouseRecording) -> tuple[np.ndarray, list[str], str]:
    """Per-image class labels of the mouse's stimuli, the class names and where they come from.

    Real recordings: the natimg2800 classes (``stimuli_class_assignment_confident.mat``). Twin: the
    photograph each crop was cut from; every dead-leaves image is class "dead-leaves" and every texture
    "textures" (the twin records each image's source, :attr:`TwinManifest.image_sources`).
    """
    from alignlib.paths import data_dir

    ids = np.asarray(recording.session.image_ids)
    if recording.source == "real":
        from alignlib.data.stringer import load_class_labels

        path = data_dir() / "stringer2019" / "stimuli_class_assignment_confident.mat"
        labels, names = load_class_labels(path)
        return np.asarray(labels)[ids].astype(np.int64), list(names), f"natimg2800 classes ({path.name})"
    from alignlib.data.twin import load_manifest
    from alignlib.data.twin.stimuli import stimulus_kind

    manifest = load_manifest(Path(recording.session.session_path).parent)   # the twin folder of this session
    sources = np.asarray(manifest.image_sources, dtype=object)
    if not sources.size:
        raise ValueError("this twin records no per-image sources; regenerate it (mixed stimuli)")
    per_image = [s if stimulus_kind(s) == "photo" else stimulus_kind(s) for s in sources[ids]]
    names = sorted(set(per_image))
    return (np.array([names.index(c) for c in per_image], dtype=np.int64), names,
            "twin: source photograph of each crop; dead leaves and textures one class each")


def objective_for(settings: Mapping[str, Any]) -> ContrastiveObjective:
    """Symmetric InfoNCE; AdamW on the image tower, RMSprop on the neural tower (paper / official code).

    ``objective`` switches the loss (reconstruction / classification, the reviewer's control) with the
    same optimisers; ``weight_decay_neural`` adds weight decay to the neural tower's RMSprop."""
    neural = {"alpha": settings["rmsprop_alpha"]}
    if settings.get("weight_decay_neural", 0.0):
        neural["weight_decay"] = float(settings["weight_decay_neural"])
    opts = [OptimizerSpec("image_tower", "adamw", settings["lr_image"], {"weight_decay": settings["weight_decay_image"]}),
            OptimizerSpec("neural_tower", "rmsprop", settings["lr_neural"], neural)]
    kind = settings.get("objective", "contrastive")
    if kind == "contrastive":
        return ContrastiveObjective(temperature=settings["temperature"], optimizers=opts)
    if kind == "reconstruction":
        return ReconstructionObjective(temperature=settings["temperature"], optimizers=opts)
    if kind == "classification":
        opts.append(OptimizerSpec("class_heads", "adamw", settings["lr_image"]))
        return ClassificationObjective(temperature=settings["temperature"], optimizers=opts)
    raise ValueError(f"unknown objective {kind!r}: contrastive | reconstruction | classification")


def fit_config_for(settings: Mapping[str, Any], seed: int = 0, device: str = "auto", progress: bool = False,
                   num_threads: int | None = None) -> FitConfig:
    track = tuple(c for c in ("val_loss", "val_mean_rank", "val_top1") if c != settings["select"])
    patience = None if settings.get("last_epoch") else settings["patience"]   # official code: all epochs
    return FitConfig(epochs=settings["epochs"], batch_size=settings["batch_size"], patience=patience,
                     select=settings["select"], track=track, seed=seed, device=device, progress=progress,
                     num_threads=num_threads)


def run_spec(recording: MouseRecording, settings: Mapping[str, Any], seed: int = 0, split_seed: int = 0,
             variant: str | None = None) -> RunSpec:
    """The run's identity: model, objective, fit settings, data identity and split, hashed.

    ``variant`` defaults to ``<mouse>``; the hash tells configurations apart, so the name only has to be readable.
    """
    config = {
        "format": RUN_FORMAT,
        "model": {"name": "dina", "n_neurons": recording.session.n_neurons, **model_kwargs(settings)},
        "objective": objective_for(settings).to_dict(),
        "fit": fit_config_for(settings, seed).identity(),
        "data": {"mouse": recording.label, "stimset": recording.stimset, "source": recording.source,
                 **recording.identity, "responses": "mean over repeats",
                 "images": "(x - 128) / 64", "normalisation": "z-score, training split statistics"},
        "split": {"seed": split_seed, "test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION},
    }
    switches = changed_switches(settings)
    n_all = recording.session.n_neurons
    if switches.get("n_neurons") and switches["n_neurons"] < n_all:
        config["model"]["n_neurons"] = int(switches["n_neurons"])
        config["data"]["neurons"] = f"random {switches['n_neurons']} of {n_all} (seed {split_seed})"
    if switches.get("n_train"):
        config["data"]["n_train"] = int(switches["n_train"])
    if switches.get("scaling_fit") == "all":
        config["data"]["normalisation"] = "z-score, statistics of ALL images before the split (official-code leak)"
    if switches.get("last_epoch"):
        config["fit"]["keep"] = "last epoch"
    if switches.get("model"):
        from alignlib.models.baselines import BASELINE_WIDTHS, INIT

        config["model"] = {"name": settings["model"], "n_neurons": config["model"]["n_neurons"],
                           "width": settings["width"], **BASELINE_WIDTHS[settings["model"]][settings["width"]],
                           "weights": settings["image_weights"] or None, "dropout": float(settings["dropout"]),
                           "init": INIT[settings["model"]]}
    return RunSpec("dina", variant or recording.label, config)


@dataclass
class DinaRun:
    """A completed run as read from disk."""

    directory: Path
    spec: RunSpec
    info: dict[str, Any]          # run.json
    history: pd.DataFrame
    trained_now: bool = False     # False: loaded from an earlier, identical run

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def converged(self) -> bool | None:
        """Whether training stopped by its patience rule before the epoch cap (:func:`convergence`)."""
        return convergence(self.info, self.spec.config.get("fit"))["converged"]

    def test_embeddings(self, criterion: str | None = None) -> dict[str, np.ndarray]:
        """Held-out embeddings/maps of the epoch ``criterion`` selected (default: the run's own selection)."""
        criterion = criterion or self.info["selected"]
        path = self.directory / f"test_{criterion}.npz"
        if not path.exists():
            raise FileNotFoundError(f"run {self.name} has no test embeddings for {criterion!r} "
                                    f"(has: {', '.join(self.info['selections'])})")
        with np.load(path) as z:
            # the run store keeps floating arrays as float16, and the switch rows' embeddings in their
            # joint span's coordinates (store_contents); the same is done here wherever the run was read
            # from, so a page gives the same numbers from runs/ and from the store
            arrays = compact_embeddings({k: z[k] for k in z.files},
                                        span=store_contents(self.directory)["span"])
        return {k: v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v
                for k, v in arrays.items()}


def find_run(spec: RunSpec) -> DinaRun:
    """The completed run of ``spec``'s configuration (under any variant name)."""
    found = spec.find()
    if found is None:
        raise FileNotFoundError(f"no completed run of configuration {spec.key} (expected {spec.directory()}); "
                                f"run the dina/train page with the same settings first")
    return load_run(found)


def load_run(directory: str | Path) -> DinaRun:
    d = Path(directory)
    if not is_complete(d):
        raise FileNotFoundError(f"no completed run in {d}; run the dina/train page (or train_mouse) first")
    record_run_read(d)
    return DinaRun(d, load_spec(d), json.loads((d / "run.json").read_text()), pd.read_csv(d / "history.csv"))


def train_mouse(recording: MouseRecording, settings: Mapping[str, Any], *, seed: int = 0, split_seed: int = 0,
                variant: str | None = None, device: str = "auto", force: bool = False, progress: bool = False,
                num_threads: int | None = None) -> DinaRun:
    """Train DINA on one mouse (responses averaged over repeats), or load the identical completed run.

    A run killed mid-training resumes from its last epoch checkpoint and ends with the numbers of an
    uninterrupted run (CPU). ``force`` deletes the run and trains again. The split depends only on
    ``split_seed`` and the number of images, so every model of this mouse is tested on the same images;
    ``seed`` sets initialisation and batch order. The run directory is locked while this trains
    (:func:`~alignlib.training.runs.run_lock`): a second process asking for the same run waits, then loads it.
    """
    spec = run_spec(recording, settings, seed, split_seed, variant)
    with run_lock(spec.directory()):
        return _train_mouse(recording, settings, spec, seed=seed, split_seed=split_seed, device=device,
                            force=force, progress=progress, num_threads=num_threads)


def _train_mouse(recording: MouseRecording, settings: Mapping[str, Any], spec: RunSpec, *, seed: int,
                 split_seed: int, device: str, force: bool, progress: bool, num_threads: int | None) -> DinaRun:
    """:func:`train_mouse` with the run directory locked."""
    run_dir = spec.directory()
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    existing = None if force else spec.find()
    if existing is not None:
        return load_run(existing)
    spec.write(run_dir)
    session = recording.session
    seed_everything(seed)
    splits = dina_split(session.n_images, split_seed)
    if settings.get("n_train"):      # data regime: a random subset of the training images (split fixed)
        splits["train"] = splits["train"][subset_indices(len(splits["train"]), int(settings["n_train"]), split_seed)]
    neurons = subset_indices(session.n_neurons, int(settings.get("n_neurons") or 0), split_seed)
    responses = session.mean_response[:, neurons] if len(neurons) < session.n_neurons else session.mean_response
    labels = names = None
    if settings.get("objective") == "classification":
        labels, names, _ = class_labels(recording)
    model = build_run_model(settings, len(neurons), n_classes=len(names) if names else 0)
    data, normalizer, splits = prepare_pairs(session.images, responses, splits)
    if settings.get("scaling_fit", "train") != "train":     # official-code leak: scaling sees test images
        normalizer = response_scaler(responses, splits, settings["scaling_fit"])
        x, r = prepare_images(session.images), normalizer.transform(torch.as_tensor(np.asarray(responses)))
        data = {k: {"images": x[idx], "responses": r[idx]} for k, idx in splits.items()}
    if labels is not None:
        for k, idx in splits.items():
            data[k]["labels"] = torch.from_numpy(labels[idx])
    config = fit_config_for(settings, seed, device, progress, num_threads)
    last: dict[str, Any] = {}

    def keep_last(epoch: int, m: torch.nn.Module, record: Mapping[str, float]) -> None:
        last["epoch"], last["state"] = epoch, {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}

    result = fit(model, objective_for(settings), data["train"], data["val"], config,
                 checkpoint_dir=run_dir / "fit", identity=spec.config, epoch_callback=keep_last)
    if last:
        result.best_states["last"] = last["state"]
        result.selections["last"] = Selection("last", last["epoch"], float("nan"), True)
    if settings.get("last_epoch"):
        result.selected = "last"

    test = splits["test"]
    builder = "dina" if settings.get("model", "dina") == "dina" else "baseline"
    save_model_checkpoint(run_dir / "checkpoint.pt", model, builder, model.build_kwargs,
                          epoch=result.best_epoch, criterion=result.selected,
                          normalizer={k: torch.from_numpy(v) for k, v in normalizer.state_dict().items()},
                          splits={k: torch.from_numpy(v) for k, v in splits.items()})
    for criterion, state in result.best_states.items():
        model.load_state_dict(state)
        z_img, z_neu, img_maps, neu_maps = embed(model, session.images[test], responses[test],
                                                 normalizer=normalizer, return_maps=True)
        np.savez_compressed(run_dir / f"test_{criterion}.npz", z_img=z_img, z_neu=z_neu, img_maps=img_maps,
                            neu_maps=neu_maps, test_index=test, image_ids=session.image_ids[test])
    model.load_state_dict(result.best_states[result.selected])
    with open(run_dir / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(result.history[0]))
        w.writeheader()
        w.writerows(result.history)
    write_json(run_dir / "run.json", {
        "run": spec.name, "mouse": recording.label, "data": recording.description,
        "n_images": session.n_images, "n_neurons": int(len(neurons)), "n_neurons_recorded": session.n_neurons,
        "switches": changed_switches(settings), "class_names": names,
        "split_sizes": {k: int(len(v)) for k, v in splits.items()},
        "n_parameters": {"image_tower": count_parameters(model.image_tower),
                         "neural_tower": count_parameters(model.neural_tower)},
        "selected": result.selected,
        "selections": {c: {"epoch": s.epoch, "value": s.value, "complete": s.complete}
                       for c, s in result.selections.items()},
        "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from, "train_seconds": result.train_seconds,
        "execution": result.execution,
        "neural_attention": getattr(model.neural_tower, "attention", None),
        **convergence({"selected": result.selected, "epochs_run": result.epochs_run,
                       "selections": {c: {"epoch": s.epoch} for c, s in result.selections.items()}},
                      spec.config["fit"]),
        "provenance": provenance(), **made_by(),
    })
    (run_dir / "fit" / "fit_state.pt").unlink(missing_ok=True)   # optimiser state is not needed once complete
    run = load_run(run_dir)
    run.trained_now = True
    return run


def store_contents(directory: Path) -> dict[str, Any]:
    """What the run store keeps of a DINA run (:mod:`alignlib.training.store`). Every run keeps the test
    embeddings of its selected epoch; plain DINA runs (no Table 1 switch: the training pages' mice, the
    stimulus controls) also those of the literal validation-loss selection, which the results page compares;
    the training pages' runs of natural-image mice keep their weights, every seed (the towers the
    interpretation pages explain: the figures the seed-0 tower, the relative claims every seed's; the
    controls page's residual x learning-rate grid is not explained and keeps none), and the plain
    natural-image seed-0 runs also the selected epoch's token maps (the maps the pages show; no page explains a stimulus control's towers, so
    those keep neither). Table 1's baselines (VGG-16-MLP, ViT-MLP) keep their maps,
    every seed: the Table 1 page compares every model's maps (SSIM per mouse and seed). The objective
    control's seed-0 runs keep their maps (the Table 1 page's variance spectra). Runs on the
    ``paper-images`` twin keep their selected epoch's embeddings only (no page explains their towers or
    reads their literal validation-loss selection). The Table 1 switch rows (every switch but the
    baselines' model) keep their embeddings in their joint span's coordinates (``span``: same
    similarities, about half the size; :meth:`DinaRun.test_embeddings` reads those runs so wherever they
    are); the other runs keep them as they are, because an embedding is also its tower's map flattened
    and the Table 1 page scores the maps' spatial organisation from it."""
    spec, info = load_spec(directory), json.loads((Path(directory) / "run.json").read_text())
    # the token-bias row is a model setting, not a Table 1 switch: the run records no switch for it
    plain = not info.get("switches") and not spec.config["model"].get("token_bias")
    explained = spec.config["data"].get("twin_size") != "paper-images"
    natural = spec.config["data"].get("stimset", "natural") == "natural"
    explained_tower = plain and explained and natural
    # the training pages' runs are named after their mouse; the controls page's grid (residual x lr) is not
    # explained, so it keeps no weights
    training_page = spec.variant == spec.config["data"].get("mouse")
    first = explained_tower and spec.config["fit"]["seed"] == 0
    baseline = set(info.get("switches") or {}) <= {"model", "image_weights"} and "model" in (info.get("switches") or {})
    objective = set(info.get("switches") or {}) == {"objective"} and spec.config["fit"]["seed"] == 0
    return {"selections": [info["selected"], "val_loss"] if plain and explained else [info["selected"]],
            "maps": first or baseline or objective, "weights": explained_tower and training_page,
            "span": not plain and not baseline}


def seed_hits(runs: Sequence[DinaRun], k: int, criterion: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per run (the seeds of one model on one mouse) and test image, the top-``k`` retrieval hit (expected
    over ties), shape (runs, images), and the test images' indices (checked to be the same for every run)."""
    hits, index = [], None
    for run in runs:
        emb = run.test_embeddings(criterion or run.info["selected"])
        if index is not None and not np.array_equal(index, emb["test_index"]):
            raise ValueError(f"run {run.name} was tested on other images than the other seeds")
        index = emb["test_index"]
        hits.append(topk_hits(similarity_matrix(emb["z_neu"], emb["z_img"]), k))
    return np.stack(hits), index


def item_hits(runs: Sequence[DinaRun], k: int, criterion: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per test image, the top-``k`` retrieval hit averaged over ``runs`` (:func:`seed_hits`), and the test
    images' indices."""
    hits, index = seed_hits(runs, k, criterion)
    return hits.mean(axis=0), index


def retrieval_table(runs: Mapping[str, DinaRun | Sequence[DinaRun]], criterion: str | None = None,
                    model: str = "DINA", variant: str = "", ks: Iterable[int] = (1, 5, 10),
                    seed: int = 0) -> pd.DataFrame:
    """Long-format Table 1 rows for one row of runs: per mouse (one run, or one run per seed) and their mean
    over mice. Columns: mouse, model, variant, selection, seeds, n_seeds, k, accuracy, ci_low, ci_high,
    n_test, chance, epoch (mean selected epoch), converged (every run stopped by its patience rule), run.

    Each test image's hit is averaged over the seeds first (the seeds of a mouse share its test images);
    the 95 % interval is a percentile bootstrap over test images, within each mouse for the mean over mice
    (:func:`~alignlib.metrics.uncertainty.bootstrap_ci_mean_of_means`), so it reflects the sampling of test
    images for these mice and seeds, not the variation between mice. Refuses runs whose configurations
    differ in anything but their data and seed (:class:`alignlib.training.runs.MixedConfigurations`).
    """
    from alignlib.metrics.retrieval import chance_topk
    from alignlib.metrics.uncertainty import bootstrap_ci

    groups = {m: list(r) if isinstance(r, (list, tuple)) else [r] for m, r in runs.items()}
    check_comparable([r.spec for rs in groups.values() for r in rs], allowed=("data", "model.n_neurons", "fit.seed"))
    rows, per_mouse = [], {int(k): [] for k in ks}
    for mouse, rs in groups.items():
        crit = criterion or rs[0].info["selected"]
        seeds = sorted(r.spec.config["fit"]["seed"] for r in rs)
        common = {"mouse": mouse, "model": model, "variant": variant, "selection": crit,
                  "seeds": ",".join(map(str, seeds)), "n_seeds": len(rs),
                  "epoch": float(np.mean([r.info["selections"][crit]["epoch"] for r in rs])),
                  "converged": all(r.converged is True for r in rs), "run": ", ".join(r.name for r in rs)}
        for k in per_mouse:
            hits, _ = item_hits(rs, k, crit)
            per_mouse[k].append(hits)
            lo, hi = bootstrap_ci(hits, seed=seed)
            rows.append({**common, "k": int(k), "accuracy": float(hits.mean()), "ci_low": lo, "ci_high": hi,
                         "n_test": len(hits), "chance": chance_topk(len(hits), k)})
    df = pd.DataFrame(rows)
    for k, hits in per_mouse.items():
        lo, hi = bootstrap_ci_mean_of_means(hits, seed=seed)
        sub = df[df.k == k]
        rows.append({"mouse": "mean", "model": model, "variant": variant, "selection": sub.selection.iloc[0],
                     "seeds": sub.seeds.iloc[0], "n_seeds": int(sub.n_seeds.min()), "k": int(k),
                     "accuracy": float(np.mean([h.mean() for h in hits])), "ci_low": lo, "ci_high": hi,
                     "n_test": np.nan, "chance": float(sub.chance.mean()), "epoch": float(sub.epoch.mean()),
                     "converged": bool(sub.converged.all()), "run": ""})
    cols = ["mouse", "model", "variant", "selection", "seeds", "n_seeds", "k", "accuracy", "ci_low", "ci_high",
            "n_test", "chance", "epoch", "converged", "run"]
    return pd.DataFrame(rows)[cols]


def main(argv: list[str] | None = None) -> None:
    """Train (or find) the training pages' DINA runs outside the pages, e.g. to rebuild a stored run with
    the weights the store's policy now keeps: ``ALIGNLIB_STORE=off python -m
    alignlib.experiments.dina.workflow --mice M1 M2 --seeds 1 2`` trains every mouse x seed that
    ``runs/`` does not hold (seeds outer), with the profile's settings and no override, as the training page
    (``notebooks/dina/train.py``) does; then ``alignlib store add --replace runs/dina/<run>``. Threads: torch's
    default (set ``OMP_NUM_THREADS``)."""
    import argparse
    import time

    from alignlib.experiments.dina import cast, settings

    ap = argparse.ArgumentParser(prog="python -m alignlib.experiments.dina.workflow", description=main.__doc__)
    ap.add_argument("--profile", default="quick", choices=sorted(settings.PROFILES))
    ap.add_argument("--mice", nargs="+", default=list(settings.MICE), choices=list(settings.MICE))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    cfg = settings.resolve(args.profile)
    for seed in args.seeds:
        for mouse in args.mice:
            start = time.time()
            rec = cast.load_mouse(mouse, twin_size=cfg["twin_size"])
            run = train_mouse(rec, cfg, seed=seed, split_seed=args.split_seed, device=args.device)
            print(f"{mouse} seed {seed}: {run.name}, {run.info.get('epochs_run')} epochs, converged "
                  f"{run.info.get('converged')}, {time.time() - start:.0f} s now"
                  + (f" ({run.info['train_seconds']:.0f} s in all, resumed from epoch {resumed})"
                     if (resumed := run.info.get("resumed_from_epoch")) else ""), flush=True)


if __name__ == "__main__":
    main()
