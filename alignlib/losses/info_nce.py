r"""Symmetric (CLIP-style) InfoNCE, the DINA training objective.

For a batch of B paired embeddings, image ``z^I_i`` and neural ``z^N_i`` (flattened maps,
L2-normalised), with temperature :math:`\tau`:

.. math::

    s_{ij} = \frac{\langle z^I_i, z^N_j \rangle}{\tau}, \qquad
    \mathcal{L} = \frac{1}{2B} \sum_{i=1}^{B} \Big[
        -\log \frac{e^{s_{ii}}}{\sum_j e^{s_{ij}}}
        -\log \frac{e^{s_{ii}}}{\sum_j e^{s_{ji}}} \Big],

i.e. ``(CE(S, arange(B)) + CE(S^T, arange(B))) / 2``: image-to-neural and neural-to-image
classification of the true partner among the B candidates. DINA uses a fixed
:math:`\tau = 0.01`. For a model that ignores its input the loss is ``log B``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce"]


def info_nce(z_img: torch.Tensor, z_neu: torch.Tensor, temperature: float = 0.01,
             normalize: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE between paired embeddings (row i of each is pair i).

    z_img, z_neu : (B, D) embeddings or (B, ...) maps (flattened here), same shape, B >= 2.
    temperature : positive scalar :math:`\\tau`.
    normalize : L2-normalise the flattened rows first (idempotent for unit-norm input).
    Returns a scalar tensor.
    """
    if not isinstance(z_img, torch.Tensor) or not isinstance(z_neu, torch.Tensor):
        raise TypeError("info_nce expects torch tensors")
    if z_img.shape != z_neu.shape:
        raise ValueError(f"z_img and z_neu must have the same shape, got {tuple(z_img.shape)} and "
                         f"{tuple(z_neu.shape)}")
    if z_img.ndim < 2:
        raise ValueError(f"expected (B, D) or (B, ...) inputs, got shape {tuple(z_img.shape)}")
    if z_img.shape[0] < 2:
        raise ValueError("InfoNCE needs at least 2 pairs in a batch (with 1 the loss is identically 0)")
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    a, b = z_img.flatten(1), z_neu.flatten(1)
    if normalize:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
