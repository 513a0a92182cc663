"""Array conversions shared across the package (NumPy <-> torch, a model's device)."""
from __future__ import annotations

import numpy as np
import torch


def as_numpy(x) -> np.ndarray:
    """NumPy view of a NumPy array, list or (detached, CPU) torch tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def as_tensor(x) -> torch.Tensor:
    """float32 CPU tensor from a NumPy array or tensor."""
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.float()


def model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")
