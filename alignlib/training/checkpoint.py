"""Checkpoints that load with ``torch.load(..., weights_only=True)``, written atomically, and a
registry of model builders so a checkpoint can rebuild its model from stored keyword arguments."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["MODEL_BUILDERS", "register_model", "build_model", "atomic_save", "save_model_checkpoint",
           "load_model_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "alignlib.model-checkpoint.v2"

#: name -> builder (a callable, or "module:function" resolved on first use, which avoids import cycles)
MODEL_BUILDERS: dict[str, Callable[..., nn.Module] | str] = {
    "dina": "alignlib.models.dina:build_dina",
}


def register_model(name: str, builder: Callable[..., nn.Module] | str) -> None:
    """Make ``build_model(name, **kwargs)`` (and checkpoints naming ``name``) use ``builder``."""
    MODEL_BUILDERS[name] = builder


def build_model(name: str, **kwargs: Any) -> nn.Module:
    if name not in MODEL_BUILDERS:
        raise KeyError(f"no model builder registered as {name!r}; known: {', '.join(sorted(MODEL_BUILDERS))}")
    builder = MODEL_BUILDERS[name]
    if isinstance(builder, str):
        module, func = builder.split(":")
        builder = MODEL_BUILDERS[name] = getattr(importlib.import_module(module), func)
    return builder(**kwargs)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader (or a process killed
    mid-write) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def save_model_checkpoint(path: str | Path, model: nn.Module, model_name: str, build_kwargs: dict[str, Any],
                          **extra: Any) -> Path:
    """Save weights plus what rebuilds the model (``model_name`` in :data:`MODEL_BUILDERS`, ``build_kwargs``)."""
    ckpt = {"format": CHECKPOINT_FORMAT, "model_name": model_name, "build_kwargs": dict(build_kwargs),
            "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    return atomic_save(ckpt, path)


def load_model_checkpoint(path: str | Path, model: nn.Module | None = None,
                          map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint (``weights_only=True``); rebuild the model from the registry unless ``model`` is given.

    Returns the checkpoint dict with ``"model"`` added (weights loaded).
    """
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an alignlib model checkpoint ({CHECKPOINT_FORMAT})")
    if model is None:
        model = build_model(ckpt["model_name"], **ckpt["build_kwargs"])
    model.load_state_dict(ckpt["model_state"])
    ckpt["model"] = model
    return ckpt
