"""Paired image–response data: preparation for a fit (fixed image scaling, response z-scoring fitted on
the training split only) and eval-mode embeddings of held-out pairs."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from alignlib.arrays import as_tensor, model_device
from alignlib.models.dsnet import standardize_images
from alignlib.repro import get_device
from alignlib.training.normalize import ResponseNormalizer
from alignlib.training.objectives import encode_pairs
from alignlib.training.splits import check_splits

__all__ = ["prepare_images", "prepare_pairs", "embed"]


def prepare_images(images, standardize: bool = True) -> torch.Tensor:
    """(n, H, W) or (n, C, H, W) float32 tensor; 0..255 images mapped by ``(x - 128) / 64`` when ``standardize``."""
    t = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim not in (3, 4):
        raise ValueError(f"images must be (n, H, W) or (n, C, H, W), got {tuple(t.shape)}")
    t = standardize_images(t.float()) if standardize else t.float()
    return t.contiguous()


def prepare_pairs(images, responses, splits: dict[str, Any], standardize: bool = True
                  ) -> tuple[dict[str, dict[str, torch.Tensor]], ResponseNormalizer, dict[str, np.ndarray]]:
    """Per-split tensors ``{split: {"images", "responses"}}``, the fitted normaliser and the checked splits.

    Responses are z-scored per neuron with the TRAINING split's mean and s.d. only.
    """
    x = prepare_images(images, standardize)
    r = as_tensor(responses)
    if r.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(f"responses must be (n_items, n_neurons) with n_items = {x.shape[0]}, got {tuple(r.shape)}")
    splits = check_splits(splits, x.shape[0])
    normalizer = ResponseNormalizer().fit(r[splits["train"]])
    r = normalizer.transform(r)
    data = {k: {"images": x[idx], "responses": r[idx]} for k, idx in splits.items()}
    return data, normalizer, splits


def embed(model: nn.Module, images, responses, batch_size: int = 256, device: str | torch.device | None = None,
          normalizer: ResponseNormalizer | None = None, standardize: bool = True, return_maps: bool = False):
    """Eval-mode embeddings of paired data (typically the held-out test split), as NumPy float32.

    Images are prepared as in training; responses z-scored with ``normalizer`` (None: already done).
    Returns ``(z_img, z_neu)`` (n, D), unit norm, plus ``(img_maps, neu_maps)`` when ``return_maps``.
    """
    if device is None:
        dev = model_device(model)
    else:
        dev = get_device(device)
        model.to(dev)
    x = prepare_images(images, standardize)
    r = as_tensor(responses)
    if normalizer is not None:
        r = normalizer.transform(r)
    if r.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(f"responses must be (n, N) with n = {x.shape[0]}, got {tuple(r.shape)}")
    return tuple(t.numpy() for t in encode_pairs(model, x, r, batch_size, dev, return_maps=return_maps))
