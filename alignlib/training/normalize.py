"""Per-neuron response normalisation fitted on the training split only."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from alignlib.arrays import as_numpy

__all__ = ["ResponseNormalizer"]


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
        r = as_numpy(responses).astype(np.float64)
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
        self.mean = as_numpy(state["mean"]).astype(np.float32).copy()
        self.std = as_numpy(state["std"]).astype(np.float32).copy()
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError("normalizer state must hold two 1-d arrays of equal length")
        return self

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ResponseNormalizer":
        return cls().load_state_dict(state)
