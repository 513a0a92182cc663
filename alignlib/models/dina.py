"""DINA: image–neural latent alignment model (Wang et al. 2026, §3).

An image tower (DS-Net, :mod:`alignlib.models.dsnet`) and a neural tower (attention over
neurons, :mod:`alignlib.models.neural_tower`) each produce a 16 x 64 map; the maps are
flattened to 1024-d vectors and L2-normalised, and the two towers are trained jointly with
a symmetric InfoNCE loss (:func:`alignlib.losses.info_nce.info_nce`).

Width profiles of :func:`build_dina`:

* ``"paper"``: DS-Net stages 1-2 of DS-Net-small (dims (64, 128), depths (3, 4), heads
  (1, 2), global ratios (8, 4)); neural tower d_model 512, 1 head, MLP hidden 2048.
* ``"quick"``: a narrow variant for CPU runs: dims (8, 16), depths (1, 1), heads (1, 1),
  global ratios (8, 4); d_model 32, 1 head, MLP hidden 256. Same geometry (16 x 64 maps,
  1024-d embeddings). Chosen for speed: a batch of 128 at 16 x 64 resolution costs about
  1 s per training step on one shared CPU core, and at 600 neurons the O(N^2 d) neuron
  attention is about a third of that.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from alignlib.models.dsnet import DSNetImageTower
from alignlib.models.neural_tower import NeuralTower

__all__ = ["DINA", "build_dina", "count_parameters", "WIDTH_PROFILES", "IMAGE_KEYS", "NEURAL_KEYS", "MODEL_KEYS"]

#: keyword arguments of :class:`DSNetImageTower` that :func:`build_dina` accepts as overrides
IMAGE_KEYS = ("in_chans", "dims", "depths", "heads", "global_ratios", "input_size", "mlp_ratio",
              "drop_path", "attn_drop", "stem_stride")
#: keyword arguments of :class:`NeuralTower` that :func:`build_dina` accepts as overrides
NEURAL_KEYS = ("d_model", "n_heads", "mlp_hidden", "dropout", "residual_norm", "token_bias", "residual",
               "mlp_activation")
#: switches of the whole model (official-code audit of the Table 1 page; off = this book's DINA)
MODEL_KEYS = ("minmax_maps", "frozen_backbone")

WIDTH_PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(dims=(64, 128), depths=(3, 4), heads=(1, 2), global_ratios=(8, 4),
                  d_model=512, n_heads=1, mlp_hidden=2048),
    "quick": dict(dims=(8, 16), depths=(1, 1), heads=(1, 1), global_ratios=(8, 4),
                  d_model=32, n_heads=1, mlp_hidden=256),
}


class DINA(nn.Module):
    """Two-tower model; ``forward(images, responses) -> (z_img, z_neu)``, each (B, H*W), unit norm."""

    def __init__(self, image_tower: nn.Module, neural_tower: nn.Module, minmax_maps: bool = False):
        super().__init__()
        self.image_tower = image_tower
        self.neural_tower = neural_tower
        #: official code: each map min-max scaled to [0, 1] per sample before flattening
        self.minmax_maps = bool(minmax_maps)
        #: keyword arguments that rebuild this model with :func:`build_dina` (set by it)
        self.build_kwargs: dict[str, Any] | None = None

    def image_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Un-normalised image maps (B, 16, 64) (min-max scaled per sample when ``minmax_maps``)."""
        return self._minmax(self.image_tower(images))

    def response_maps(self, responses: torch.Tensor) -> torch.Tensor:
        """Un-normalised neural maps (B, 16, 64) (min-max scaled per sample when ``minmax_maps``)."""
        return self._minmax(self.neural_tower(responses))

    def _minmax(self, maps: torch.Tensor) -> torch.Tensor:
        if not self.minmax_maps:
            return maps
        flat = maps.flatten(1)
        lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        return ((flat - lo) / (hi - lo).clamp_min(1e-8)).reshape(maps.shape)

    @staticmethod
    def normalize(maps: torch.Tensor) -> torch.Tensor:
        """Flatten (B, ...) maps and L2-normalise each row."""
        return F.normalize(maps.flatten(1), dim=-1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Flattened, L2-normalised image embeddings (B, 1024)."""
        return self.normalize(self.image_maps(images))

    def encode_responses(self, responses: torch.Tensor) -> torch.Tensor:
        """Flattened, L2-normalised neural embeddings (B, 1024)."""
        return self.normalize(self.response_maps(responses))

    def forward(self, images: torch.Tensor, responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_images(images), self.encode_responses(responses)


def build_dina(n_neurons: int, width: str = "paper", **overrides: Any) -> DINA:
    """Build a :class:`DINA` for ``n_neurons`` neurons with a width profile ("paper" | "quick").

    ``overrides`` replace profile entries or set other tower arguments: image tower keys
    :data:`IMAGE_KEYS`, neural tower keys :data:`NEURAL_KEYS`, model keys :data:`MODEL_KEYS`
    (``minmax_maps``; ``frozen_backbone``: the official code's detached, randomly initialised DS-Net with
    only a 1 x 1 convolution (dims[-1] -> 1) trained; its BatchNorm statistics still follow the batches in
    training mode, as in the official code); ``map_size`` of the neural tower always follows
    the image tower (``input_size / 4``).
    """
    if width not in WIDTH_PROFILES:
        raise ValueError(f"width must be one of {sorted(WIDTH_PROFILES)}, got {width!r}")
    unknown = set(overrides) - set(IMAGE_KEYS) - set(NEURAL_KEYS) - set(MODEL_KEYS)
    if unknown:
        raise TypeError(f"unknown build_dina overrides: {sorted(unknown)}")
    cfg = {**WIDTH_PROFILES[width], **overrides}
    image = DSNetImageTower(**{k: v for k, v in cfg.items() if k in IMAGE_KEYS})
    neural = NeuralTower(int(n_neurons), map_size=image.map_size,
                         **{k: v for k, v in cfg.items() if k in NEURAL_KEYS})
    if cfg.get("frozen_backbone"):
        image.requires_grad_(False)
        image.head = nn.Conv2d(image.dims[-1], 1, 1)     # trainable; official: Conv2d(128, 1, 1)
    model = DINA(image, neural, minmax_maps=bool(cfg.get("minmax_maps", False)))
    model.build_kwargs = {"n_neurons": int(n_neurons), "width": width,
                          **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}}
    return model


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable, by default) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
