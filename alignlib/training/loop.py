"""A generic fit loop: seeded batches, validation every epoch, early stopping on a chosen criterion,
and a checkpoint after every epoch so that a killed run resumes to exactly the same numbers (CPU).

Per epoch, with ``checkpoint_dir`` given, the loop writes (each file atomically):

* ``best_<criterion>_e<epoch>.pt`` when that criterion improved (model weights of that epoch; the
  previous file of that criterion is removed only after the commit point below);
* ``fit_state.pt`` last: model, optimisers, history, selection state and every RNG state
  (Python, NumPy, torch CPU/CUDA, the batch-order generator). This file is the commit point: a
  run killed at any moment resumes from the last complete epoch and replays the rest identically.

A directory belongs to one configuration: ``identity`` (any JSON-able dict, e.g. the run's resolved
config) is stored and a resume with a different one is refused. The device and CPU thread count are
recorded too: resuming under others warns, because they change the floating-point results.
"""
from __future__ import annotations

import math
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from alignlib import dryrun
from alignlib.repro import get_device, seed_everything
from alignlib.training.checkpoint import atomic_save
from alignlib.training.config import CRITERIA, FitConfig, FitResult, Selection

__all__ = ["fit", "Objective", "FIT_STATE"]

FIT_STATE = "fit_state.pt"


class Objective:
    """What a fit optimises. Subclasses implement :meth:`make_optimizers`, :meth:`loss` (one batch,
    model in train mode) and :meth:`validate` (eval mode, returns ``val_*`` metrics)."""

    def make_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, model: nn.Module, data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, float]:
        raise NotImplementedError

    def min_batch(self) -> int:
        """Batches smaller than this are skipped (InfoNCE needs 2 pairs)."""
        return 1

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class _Selector:
    def __init__(self, criterion: str, patience: int | None, min_delta: float):
        self.criterion, self.patience, self.min_delta = criterion, patience, float(min_delta)
        self.sign = 1.0 if CRITERIA[criterion] == "min" else -1.0
        self.best, self.epoch, self.bad, self.frozen = math.inf, 0, 0, False

    def update(self, value: float, epoch: int) -> bool:
        """Feed one epoch's value; True when it is a new best (and the weights should be kept)."""
        if self.frozen:
            return False
        v = self.sign * value
        improved = v < self.best - self.min_delta
        if improved:
            self.best, self.epoch, self.bad = v, epoch, 0
        else:
            self.bad += 1
            if self.patience is not None and self.bad >= self.patience:
                self.frozen = True
        return improved

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "epoch": self.epoch, "bad": self.bad, "frozen": self.frozen}

    def load(self, s: Mapping[str, Any]) -> None:
        self.best, self.epoch, self.bad, self.frozen = float(s["best"]), int(s["epoch"]), int(s["bad"]), bool(s["frozen"])


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
            "numpy_gauss": [int(np_state[3]), float(np_state[4])],
            "torch": torch.get_rng_state(), "batches": gen.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(s: Mapping[str, Any], gen: torch.Generator) -> None:
    random.setstate((3, tuple(int(v) for v in s["python"]), s["python_pos"]))
    np.random.set_state(("MT19937", s["numpy_keys"].numpy().astype(np.uint32), int(s["numpy_pos"]),
                         int(s["numpy_gauss"][0]), float(s["numpy_gauss"][1])))
    torch.set_rng_state(s["torch"])
    gen.set_state(s["batches"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _best_path(ckpt_dir: Path, criterion: str, epoch: int) -> Path:
    return ckpt_dir / f"best_{criterion}_e{epoch}.pt"


def _execution(device: torch.device) -> dict[str, Any]:
    """What changes floating-point results without being part of the configuration."""
    return {"device": str(device), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__)}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fit(model: nn.Module, objective: Objective, train: Mapping[str, torch.Tensor], val: Mapping[str, torch.Tensor],
        config: FitConfig | None = None, *, checkpoint_dir: str | Path | None = None,
        identity: Mapping[str, Any] | None = None,
        epoch_callback: Callable[[int, nn.Module, dict[str, float]], None] | None = None) -> FitResult:
    """Train ``model`` on ``train`` (dict of equally long tensors, batched along dim 0), validate on ``val``.

    Seeding: ``seed_everything(config.seed)`` before the first epoch; the model's initialisation
    happens before this call, so seed that yourself. On CPU the same seeds give an identical history,
    also across a kill and resume. The model ends holding the weights of the epoch selected by
    ``config.select``; every tracked criterion's epoch is in ``result.selections`` (and, with
    ``checkpoint_dir``, its weights in ``best_<criterion>_e<epoch>.pt``).
    """
    config = config or FitConfig()
    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        return _fit(model, objective, train, val, config, Path(checkpoint_dir) if checkpoint_dir else None,
                    dict(identity or {}), epoch_callback)
    finally:
        torch.set_num_threads(threads)


def _check_data(train: Mapping[str, torch.Tensor], val: Mapping[str, torch.Tensor]) -> int:
    for name, data in (("train", train), ("val", val)):
        lengths = {k: len(v) for k, v in data.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"{name} tensors must be non-empty and equally long, got lengths {lengths}")
    if set(train) != set(val):
        raise ValueError(f"train and val hold different inputs: {sorted(train)} vs {sorted(val)}")
    return len(next(iter(train.values())))


def _fit(model, objective, train, val, config, ckpt_dir, identity, epoch_callback) -> FitResult:
    from tqdm.auto import tqdm

    n_train = _check_data(train, val)
    device = get_device(config.device)
    seed_everything(config.seed)
    gen = torch.Generator().manual_seed(int(config.seed))
    model.to(device)
    optimizers = objective.make_optimizers(model)
    criteria = [config.select, *config.track]
    selectors = {c: _Selector(c, config.patience, config.min_delta) for c in criteria}
    best_states: dict[str, dict[str, torch.Tensor]] = {}
    history: list[dict[str, float]] = []
    start_epoch, stopped_early, elapsed = 1, False, 0.0

    state_path = ckpt_dir / FIT_STATE if ckpt_dir else None
    if state_path is not None and state_path.exists():
        s = torch.load(state_path, map_location="cpu", weights_only=True)
        if s["identity"] != identity:
            raise ValueError(f"{ckpt_dir} holds a fit of another configuration; use a new directory "
                             f"(or delete it to start again)")
        model.load_state_dict(s["model_state"])
        for opt, st in zip(optimizers, s["optimizer_states"]):
            opt.load_state_dict(st)
        for c, st in s["selectors"].items():
            selectors[c].load(st)
        for c in criteria:
            if selectors[c].epoch:
                best_states[c] = torch.load(_best_path(ckpt_dir, c, selectors[c].epoch), map_location="cpu",
                                            weights_only=True)["model_state"]
        if s.get("execution") != _execution(device):
            warnings.warn(f"resuming {ckpt_dir} with {_execution(device)}, but it was trained with "
                          f"{s.get('execution')}: the result may differ from an uninterrupted run", stacklevel=3)
        history, stopped_early, elapsed = list(s["history"]), bool(s["stopped_early"]), float(s["elapsed"])
        start_epoch = len(history) + 1
        _set_rng_state(s["rng"], gen)
        if s["finished"]:
            start_epoch = config.epochs + 1
    resumed_from = start_epoch - 1

    t_start = time.perf_counter() - elapsed
    max_steps = dryrun.TRAIN_STEPS if dryrun.active() else None   # a dry run: batches per epoch
    finished = selectors[config.select].frozen or start_epoch > config.epochs
    bar = tqdm(range(start_epoch, config.epochs + 1), desc="train", unit="epoch",
               disable=not config.progress or finished, dynamic_ncols=True, initial=start_epoch - 1,
               total=config.epochs)
    for epoch in ([] if finished else bar):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n_train, generator=gen)
        total, count, steps = 0.0, 0, 0
        for s0 in range(0, n_train, config.batch_size):
            if max_steps is not None and steps >= max_steps:
                break                                 # a dry run: the epoch's first batches only
            idx = perm[s0:s0 + config.batch_size]
            if idx.numel() < objective.min_batch():
                continue
            steps += 1
            batch = {k: v[idx].to(device, non_blocking=True) for k, v in train.items()}
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss = objective.loss(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch}")
            loss.backward()
            for opt in optimizers:
                opt.step()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        metrics = objective.validate(model, val, device)
        record = {"epoch": epoch, "train_loss": total / max(count, 1), **metrics,
                  "seconds": time.perf_counter() - t0}
        missing = [c for c in criteria if c not in record]
        if missing:
            raise KeyError(f"objective.validate returned no {missing}; it returned {sorted(metrics)}")
        history.append(record)
        if epoch_callback is not None:
            epoch_callback(epoch, model, record)
        superseded, weights = [], None     # this epoch's weights, copied once and shared by every use
        for c in criteria:
            previous = selectors[c].epoch
            if selectors[c].update(float(record[c]), epoch):
                weights = weights if weights is not None else _cpu_state(model)
                best_states[c] = weights
                if ckpt_dir is not None:
                    atomic_save({"epoch": epoch, "model_state": best_states[c]}, _best_path(ckpt_dir, c, epoch))
                    if previous:
                        superseded.append(_best_path(ckpt_dir, c, previous))
        main = selectors[config.select]
        bar.set_postfix(train=f"{record['train_loss']:.3f}", **{config.select: f"{record[config.select]:.3g}"},
                        best=main.epoch)
        done = main.frozen or epoch == config.epochs
        stopped_early = main.frozen and epoch < config.epochs
        if ckpt_dir is not None:
            atomic_save({"identity": identity, "model_state": weights if weights is not None else _cpu_state(model),
                         "optimizer_states": [o.state_dict() for o in optimizers],
                         "selectors": {c: sel.state() for c, sel in selectors.items()},
                         "history": history, "stopped_early": stopped_early, "finished": done,
                         "elapsed": time.perf_counter() - t_start, "rng": _rng_state(gen),
                         "execution": _execution(device)}, state_path)
            for path in superseded:          # only after the commit point: a kill never loses a best epoch
                path.unlink(missing_ok=True)
        if done:
            break
    bar.close()
    if config.select in best_states:
        model.load_state_dict(best_states[config.select])
    ran_all = len(history) >= config.epochs
    selections = {c: Selection(c, sel.epoch, float(sel.sign * sel.best) if sel.epoch else math.nan,
                               complete=sel.frozen or ran_all)
                  for c, sel in selectors.items()}
    return FitResult(history=history, selections=selections, selected=config.select, epochs_run=len(history),
                     stopped_early=stopped_early, train_seconds=time.perf_counter() - t_start,
                     resumed_from=resumed_from, best_states=best_states, execution=_execution(device))
