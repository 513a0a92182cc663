"""Training and embedding for paired image–response models (DINA, Wang et al. 2026, §3).

Protocol (choices of this book where the paper is silent are marked *choice*):

* Splits (:func:`split_indices`): a random 10 % of the stimuli is held out as the test set
  and never touched by training; a validation set (10 % of all stimuli by default, *choice*)
  is carved from the rest and used for early stopping. The official code used one 90/10
  split as both validation and test set.
* Responses are z-scored per neuron with statistics of the TRAINING stimuli only
  (:class:`ResponseNormalizer`; the official code min-max scaled with all data). Neurons
  with zero training variance keep scale 1.
* Images are standardised with fixed constants (``(x - 128) / 64``,
  :func:`alignlib.models.dsnet.standardize_images`) when ``TrainConfig.standardize``.
* Optimisers (paper + official code): AdamW(lr 3e-4, wd 5e-5) for the image tower,
  RMSprop(lr 5e-5, alpha 0.9) for the neural tower, both stepped on every batch;
  fixed InfoNCE temperature 0.01; batch 128, reshuffled every epoch with a seeded
  generator; the last partial batch is kept, except that a batch of size 1 is skipped
  (InfoNCE needs >= 2 pairs). No learning-rate schedule (*choice*: the official
  ReduceLROnPlateau with patience 50 would never fire before early stopping).
* Validation (*choice*): after every epoch, the whole validation set is embedded in eval
  mode and ONE InfoNCE is computed over all validation pairs (so its scale is about
  log(n_val) for an untrained model, larger than the batch-128 training loss, but it is
  comparable across epochs and independent of batch composition); val top-1 retrieval is
  neural -> image over the validation images.
* Early stopping on the validation loss with ``patience`` epochs; the best epoch's
  weights are restored into the model at the end and saved to ``run_dir/checkpoint.pt``.
  Epochs are numbered from 1.

The checkpoint contains only tensors, dicts, lists, strings and numbers, so it loads with
``torch.load(path, weights_only=True)`` (:func:`load_checkpoint`).
"""
from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from alignlib.losses.info_nce import info_nce
from alignlib.metrics.retrieval import similarity_matrix, topk_accuracy
from alignlib.models.dsnet import standardize_images
from alignlib.repro import get_device, provenance, seed_everything, write_json

__all__ = [
    "split_indices",
    "ResponseNormalizer",
    "TrainConfig",
    "TrainResult",
    "make_optimizers",
    "train_step",
    "evaluate",
    "train_dina",
    "embed",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "alignlib.paired-model.v1"


# ---------------------------------------------------------------------------------------
# splits and normalisation
# ---------------------------------------------------------------------------------------
def split_indices(n_items: int, test_fraction: float = 0.1, val_fraction: float = 0.1,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Random disjoint train/val/test index sets (sorted int64 arrays) covering ``range(n_items)``.

    ``test_fraction`` and ``val_fraction`` are fractions of ALL items; the test set is drawn
    first and the validation set is carved from the remainder. A positive fraction gives at
    least one item; the training set keeps at least two.
    """
    n = int(n_items)
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    n_test = max(1, int(round(test_fraction * n))) if test_fraction > 0 else 0
    n_val = max(1, int(round(val_fraction * n))) if val_fraction > 0 else 0
    if n - n_test - n_val < 2:
        raise ValueError(f"{n} items leave fewer than 2 for training (test {n_test}, val {n_val})")
    perm = np.random.default_rng(seed).permutation(n)
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    return {"train": np.sort(train).astype(np.int64), "val": np.sort(val).astype(np.int64),
            "test": np.sort(test).astype(np.int64)}


class ResponseNormalizer:
    """Per-neuron z-scoring; fit on training responses only.

    ``transform(r) = (r - mean) / std`` with the training mean and (population) s.d.;
    neurons whose training s.d. is below ``eps`` get s.d. 1. State: ``{"mean", "std"}``
    float32 arrays (:meth:`state_dict` / :meth:`load_state_dict`).
    """

    def __init__(self, eps: float = 1e-6):
        self.eps = float(eps)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, responses) -> "ResponseNormalizer":
        r = _as_numpy(responses).astype(np.float64)
        if r.ndim != 2 or r.shape[0] < 1:
            raise ValueError(f"responses must be (n_items, n_neurons), got shape {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError("responses contain NaN or inf")
        std = r.std(axis=0)
        std[std < self.eps] = 1.0
        self.mean, self.std = r.mean(axis=0).astype(np.float32), std.astype(np.float32)
        return self

    def transform(self, responses):
        """Normalise (n, N) responses; NumPy in -> NumPy float32 out, torch in -> torch float32 out."""
        if not self.fitted:
            raise RuntimeError("ResponseNormalizer is not fitted")
        if isinstance(responses, torch.Tensor):
            mean = torch.as_tensor(self.mean, device=responses.device)
            std = torch.as_tensor(self.std, device=responses.device)
            self._check_width(responses.shape)
            return (responses.float() - mean) / std
        r = np.asarray(responses, dtype=np.float32)
        self._check_width(r.shape)
        return (r - self.mean) / self.std

    def fit_transform(self, responses):
        return self.fit(responses).transform(responses)

    def _check_width(self, shape) -> None:
        if len(shape) != 2 or shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected responses (n, {self.mean.shape[0]}), got {tuple(shape)}")

    def state_dict(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            raise RuntimeError("ResponseNormalizer is not fitted")
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> "ResponseNormalizer":
        self.mean = _as_numpy(state["mean"]).astype(np.float32).copy()
        self.std = _as_numpy(state["std"]).astype(np.float32).copy()
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError("normalizer state must hold two 1-d arrays of equal length")
        return self

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ResponseNormalizer":
        return cls().load_state_dict(state)


# ---------------------------------------------------------------------------------------
# configuration and result
# ---------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_dina` (defaults: paper/official code where stated)."""

    epochs: int = 100
    batch_size: int = 128                 # paper/official
    lr_image: float = 3e-4                # AdamW, image tower (official)
    weight_decay_image: float = 5e-5      # AdamW weight decay (official)
    lr_neural: float = 5e-5               # RMSprop, neural tower (official)
    rmsprop_alpha: float = 0.9            # RMSprop smoothing (official)
    weight_decay_neural: float = 0.0
    temperature: float = 0.01             # fixed InfoNCE temperature (paper/official)
    patience: int | None = 10             # early stopping on val loss; None disables it
    min_delta: float = 0.0                # improvement needed to reset patience
    seed: int = 0
    device: str = "auto"                  # "auto" -> CUDA when available (alignlib.repro.get_device)
    num_workers: int = 0                  # kept for API stability; data are in-memory tensors
    num_threads: int | None = None        # torch intra-op CPU threads while training (None: unchanged)
    progress: bool = True                 # tqdm bar over epochs
    standardize: bool = True              # apply (x - 128) / 64 to the images

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 for InfoNCE")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.patience is not None and self.patience < 1:
            raise ValueError("patience must be >= 1 or None")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError("num_threads must be >= 1 or None")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    history: list[dict[str, float]]       # one row per epoch: epoch, train_loss, val_loss, val_top1, seconds
    best_epoch: int                       # 1-based epoch whose weights are in the model
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    normalizer: ResponseNormalizer
    splits: dict[str, np.ndarray]
    config: TrainConfig
    train_seconds: float
    run_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------
def make_optimizers(model: nn.Module, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW for ``model.image_tower``, RMSprop for ``model.neural_tower`` (all parameters must belong to one)."""
    img = list(model.image_tower.parameters())
    neu = list(model.neural_tower.parameters())
    if len({id(p) for p in model.parameters()}) != len({id(p) for p in img + neu}):
        raise ValueError("model has parameters outside image_tower and neural_tower")
    return [
        torch.optim.AdamW(img, lr=config.lr_image, weight_decay=config.weight_decay_image),
        torch.optim.RMSprop(neu, lr=config.lr_neural, alpha=config.rmsprop_alpha,
                            weight_decay=config.weight_decay_neural),
    ]


def train_step(model: nn.Module, images: torch.Tensor, responses: torch.Tensor,
               optimizers: list[torch.optim.Optimizer], temperature: float = 0.01) -> float:
    """One optimisation step on one batch (model in train mode); returns the batch loss before the step."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    z_img, z_neu = model(images, responses)
    loss = info_nce(z_img, z_neu, temperature)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite training loss {loss.item()}")
    loss.backward()
    for opt in optimizers:
        opt.step()
    return float(loss.detach())


@torch.no_grad()
def _encode(model: nn.Module, images: torch.Tensor, responses: torch.Tensor, batch_size: int,
            device: torch.device, return_maps: bool = False):
    """Eval-mode embeddings (and maps) on the CPU; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    zi, zn, mi, mn = [], [], [], []
    try:
        for s in range(0, images.shape[0], batch_size):
            x = images[s:s + batch_size].to(device, non_blocking=True)
            r = responses[s:s + batch_size].to(device, non_blocking=True)
            m_img, m_neu = model.image_maps(x), model.response_maps(r)
            zi.append(model.normalize(m_img).float().cpu())
            zn.append(model.normalize(m_neu).float().cpu())
            if return_maps:
                mi.append(m_img.float().cpu())
                mn.append(m_neu.float().cpu())
    finally:
        model.train(was_training)
    out = (torch.cat(zi), torch.cat(zn))
    if return_maps:
        out = out + (torch.cat(mi), torch.cat(mn))
    return out


def evaluate(model: nn.Module, images: torch.Tensor, responses: torch.Tensor, temperature: float = 0.01,
             batch_size: int = 256, device: torch.device | None = None) -> dict[str, float]:
    """Loss (one InfoNCE over all pairs) and neural->image top-1/5 on prepared tensors."""
    device = _model_device(model) if device is None else device
    z_img, z_neu = _encode(model, images, responses, batch_size, device)
    loss = float(info_nce(z_img, z_neu, temperature))
    acc = topk_accuracy(similarity_matrix(z_neu, z_img), ks=(1, 5))
    return {"loss": loss, "top1": acc[1], "top5": acc[5]}


def train_dina(model: nn.Module, images, responses, splits: dict[str, Any], config: TrainConfig | None = None,
               run_dir: str | Path | None = None,
               epoch_callback: Callable[[int, nn.Module, dict[str, float]], None] | None = None) -> TrainResult:
    """Train a paired model (``image_tower``/``neural_tower``, ``forward -> (z_img, z_neu)``).

    images : (n, H, W) or (n, 1, H, W), 0..255 when ``config.standardize`` (NumPy or torch).
    responses : (n, N) raw responses; z-scored with training-split statistics.
    splits : dict with "train" and "val" index arrays (a "test" entry is stored, never used).
    run_dir : when given, writes ``checkpoint.pt``, ``history.csv`` and ``config.json`` there.
    epoch_callback : called as ``f(epoch, model, record)`` after each epoch's validation, with
        the model holding that epoch's weights; for logging and tests.

    Seeding: ``seed_everything(config.seed)`` is called before the first epoch (shuffling,
    dropout); the model's initialisation happens before this call, so seed that yourself
    (``seed_everything(s); model = build_dina(...)``). On CPU the same seeds give an
    identical history; CUDA kernels may add run-to-run noise.

    Returns a :class:`TrainResult`; the model ends holding the best epoch's weights.
    """
    config = TrainConfig() if config is None else config
    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(model, images, responses, splits, config, run_dir, epoch_callback)
    finally:
        torch.set_num_threads(threads)


def _train(model, images, responses, splits, config, run_dir, epoch_callback) -> TrainResult:
    from tqdm import tqdm

    device = get_device(config.device)
    x_all, r_all = _prepare_images(images, config.standardize), _as_tensor(responses)
    if r_all.ndim != 2 or r_all.shape[0] != x_all.shape[0]:
        raise ValueError(f"responses must be (n_items, n_neurons) with n_items = {x_all.shape[0]}, "
                         f"got {tuple(r_all.shape)}")
    splits = _check_splits(splits, x_all.shape[0])
    tr, va = splits["train"], splits["val"]

    seed_everything(config.seed)
    gen = torch.Generator().manual_seed(int(config.seed))
    normalizer = ResponseNormalizer().fit(r_all[tr])
    r_all = normalizer.transform(r_all)
    x_tr, r_tr = x_all[tr], r_all[tr]
    x_va, r_va = x_all[va], r_all[va]

    model.to(device)
    optimizers = make_optimizers(model, config)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
    stopped_early = False
    t_start = time.perf_counter()
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not config.progress,
               dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        total, count = 0.0, 0
        for s in range(0, len(tr), config.batch_size):
            idx = perm[s:s + config.batch_size]
            if idx.numel() < 2:
                continue
            xb = x_tr[idx].to(device, non_blocking=True)
            rb = r_tr[idx].to(device, non_blocking=True)
            total += train_step(model, xb, rb, optimizers, config.temperature) * idx.numel()
            count += idx.numel()
        val = evaluate(model, x_va, r_va, config.temperature, batch_size=max(config.batch_size, 256),
                       device=device)
        record = {"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": val["loss"],
                  "val_top1": val["top1"], "val_top5": val["top5"], "seconds": time.perf_counter() - t0}
        history.append(record)
        if epoch_callback is not None:
            epoch_callback(epoch, model, record)
        if record["val_loss"] < best_loss - config.min_delta:
            best_loss, best_epoch, bad = record["val_loss"], epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad += 1
        bar.set_postfix(train=f"{record['train_loss']:.3f}", val=f"{record['val_loss']:.3f}",
                        top1=f"{record['val_top1']:.2f}", best=best_epoch)
        if config.patience is not None and bad >= config.patience:
            stopped_early = epoch < config.epochs
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    result = TrainResult(history=history, best_epoch=best_epoch, best_val_loss=best_loss,
                         epochs_run=len(history), stopped_early=stopped_early, normalizer=normalizer,
                         splits=splits, config=config, train_seconds=time.perf_counter() - t_start,
                         run_dir=Path(run_dir) if run_dir is not None else None)
    if run_dir is not None:
        _save_run(Path(run_dir), model, result, n_items=int(x_all.shape[0]), n_neurons=int(r_all.shape[1]))
    return result


def _save_run(run_dir: Path, model: nn.Module, result: TrainResult, n_items: int, n_neurons: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "build_kwargs": copy.deepcopy(getattr(model, "build_kwargs", None)),
        "normalizer": {k: torch.from_numpy(v) for k, v in result.normalizer.state_dict().items()},
        "config": result.config.to_dict(),
        "history": [dict(h) for h in result.history],
        "best_epoch": int(result.best_epoch),
        "best_val_loss": float(result.best_val_loss),
        "splits": {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in result.splits.items()},
    }
    torch.save(ckpt, run_dir / "checkpoint.pt")
    cols = list(result.history[0].keys()) if result.history else ["epoch"]
    with open(run_dir / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(result.history)
    write_json(run_dir / "config.json", {
        "train_config": result.config.to_dict(),
        "build_kwargs": getattr(model, "build_kwargs", None),
        "n_items": n_items, "n_neurons": n_neurons,
        "split_sizes": {k: int(len(v)) for k, v in result.splits.items()},
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "provenance": provenance(device=str(get_device(result.config.device))),
    })


# ---------------------------------------------------------------------------------------
# embedding and checkpoints
# ---------------------------------------------------------------------------------------
def embed(model: nn.Module, images, responses, batch_size: int = 256, device: str | torch.device | None = None,
          normalizer: ResponseNormalizer | None = None, standardize: bool = True, return_maps: bool = False):
    """Eval-mode embeddings of paired data (typically the held-out test split).

    images are prepared as in training (``standardize`` -> ``(x - 128) / 64``); responses are
    z-scored with ``normalizer`` (pass ``TrainResult.normalizer``; None = already normalised).
    ``device=None`` uses the device the model is on; otherwise the model is moved there.
    Returns NumPy float32 ``(z_img, z_neu)``, each (n, 1024) and unit norm, plus
    ``(img_maps, neu_maps)`` (n, 16, 64) when ``return_maps``.
    """
    if device is None:
        dev = _model_device(model)
    else:
        dev = get_device(device)
        model.to(dev)
    x = _prepare_images(images, standardize)
    r = _as_tensor(responses)
    if normalizer is not None:
        r = normalizer.transform(r)
    if r.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(f"responses must be (n, N) with n = {x.shape[0]}, got {tuple(r.shape)}")
    out = _encode(model, x, r, batch_size, dev, return_maps=return_maps)
    return tuple(t.numpy() for t in out)


def load_checkpoint(path: str | Path, model: nn.Module | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a :func:`train_dina` checkpoint with ``torch.load(..., weights_only=True)``.

    Loads the weights into ``model`` when given; otherwise rebuilds the model from the stored
    ``build_kwargs`` (models made by :func:`alignlib.models.dina.build_dina`). Returns the
    checkpoint dict with "model" (the model), "normalizer" (a :class:`ResponseNormalizer`),
    "config" (a :class:`TrainConfig`) and "splits" (NumPy arrays) added/converted.
    """
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an alignlib checkpoint")
    if model is None:
        kw = ckpt.get("build_kwargs")
        if not kw:
            raise ValueError("checkpoint has no build_kwargs; pass the model to load into")
        from alignlib.models.dina import build_dina
        kw = dict(kw)
        model = build_dina(kw.pop("n_neurons"), kw.pop("width"), **kw)
    model.load_state_dict(ckpt["model_state"])
    ckpt["model"] = model
    ckpt["normalizer"] = ResponseNormalizer.from_state_dict(ckpt["normalizer"])
    ckpt["config"] = TrainConfig.from_dict(ckpt["config"])
    ckpt["splits"] = {k: v.numpy() for k, v in ckpt["splits"].items()}
    return ckpt


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_tensor(x) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.float()


def _prepare_images(images, standardize: bool) -> torch.Tensor:
    t = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim not in (3, 4):
        raise ValueError(f"images must be (n, H, W) or (n, C, H, W), got {tuple(t.shape)}")
    t = standardize_images(t.float()) if standardize else t.float()
    return t.contiguous()


def _check_splits(splits: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    out = {}
    for k, v in splits.items():
        a = np.asarray(_as_numpy(v), dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"split {k!r} has indices outside [0, {n})")
        if len(np.unique(a)) != a.size:
            raise ValueError(f"split {k!r} has repeated indices")
        out[k] = a
    for k in ("train", "val"):
        if k not in out or out[k].size < 2:
            raise ValueError(f"splits must contain a {k!r} entry with at least 2 items")
    keys = list(out)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if np.intersect1d(out[a], out[b]).size:
                raise ValueError(f"splits {a!r} and {b!r} overlap")
    return out


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")
