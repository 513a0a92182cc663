"""Configuration and result of :func:`alignlib.training.loop.fit`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["FitConfig", "FitResult", "Selection", "CRITERIA", "EXECUTION_FIELDS"]

#: validation criteria a fit can select on, and whether lower ("min") or higher ("max") is better
CRITERIA: dict[str, str] = {
    "val_loss": "min",        # the objective on the validation set (for InfoNCE: one loss over all pairs)
    "val_mean_rank": "min",   # mean rank of the true partner (retrieval, neural -> image)
    "val_top1": "max", "val_top5": "max", "val_top10": "max",
    "val_cc": "max",          # response prediction: mean over cells of the Pearson CC on validation bins
}

#: fields that say how a fit is executed, not what it computes (left out of a run's identity)
EXECUTION_FIELDS = ("device", "num_threads", "progress")


@dataclass
class FitConfig:
    """The generic part of a training run (objective-specific settings live in the objective).

    ``select`` drives early stopping and picks the restored epoch. Each criterion in ``track`` is
    followed alongside with its own patience, as if a run had selected on it: the epoch it would
    have restored is kept too (training itself does not depend on the criterion, only where it stops).
    """

    epochs: int = 100
    batch_size: int = 128
    patience: int | None = 10          # epochs without improvement of ``select``; None: run all epochs
    min_delta: float = 0.0
    select: str = "val_mean_rank"
    track: tuple[str, ...] = ("val_loss",)
    seed: int = 0
    device: str = "auto"               # "auto" -> CUDA when available
    num_threads: int | None = None     # torch CPU threads while training (None: unchanged)
    progress: bool = True              # tqdm bar over epochs

    def __post_init__(self) -> None:
        self.track = tuple(t for t in self.track if t != self.select)
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2")
        if self.patience is not None and self.patience < 1:
            raise ValueError("patience must be >= 1 or None")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError("num_threads must be >= 1 or None")
        for c in (self.select, *self.track):
            if c not in CRITERIA:
                raise ValueError(f"unknown selection criterion {c!r}; choose from {', '.join(CRITERIA)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["track"] = list(self.track)
        return d

    def identity(self) -> dict[str, Any]:
        """What the fit computes (without :data:`EXECUTION_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FitConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "track" in kw:
            kw["track"] = tuple(kw["track"])
        return cls(**kw)


@dataclass
class Selection:
    """The epoch a criterion picked. ``complete`` is False when training stopped (on another criterion)
    before this criterion's own patience ran out, so a run selecting on it might have gone further."""

    criterion: str
    epoch: int           # 1-based; 0 if no epoch ran
    value: float
    complete: bool


@dataclass
class FitResult:
    history: list[dict[str, float]]      # one row per epoch: epoch, train_loss, val_*, seconds
    selections: dict[str, Selection]     # the selected criterion and every tracked one
    selected: str                        # the criterion whose epoch the model holds
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    resumed_from: int = 0                # last epoch found in the checkpoint (0: fresh start)
    best_states: dict[str, dict] = field(default_factory=dict, repr=False)  # criterion -> weights (CPU)
    execution: dict[str, Any] = field(default_factory=dict)   # device, CPU threads, torch version

    @property
    def best_epoch(self) -> int:
        return self.selections[self.selected].epoch
