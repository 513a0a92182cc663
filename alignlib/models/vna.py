"""VNA: Visual-Neural Alignment and its two baselines (VNA paper §3.1 and §4.2).

* :class:`VisualEncoder` (§3.1.1): the image is resized to a square side S; five convolutions (kernel 4,
  stride 2, padding 1) with 16, 32, 64, 128, 256 channels, each followed by BatchNorm2d and LeakyReLU;
  flatten (256 x (S/32)^2 values, 1024 at S = 64 — the paper's "1024-dimensional vector" fixes S = 64);
  a linear layer to the latent dimension d.
* :class:`SpikeEncoder` (§3.1.2): linear N -> 512, BatchNorm1d, LeakyReLU, linear 512 -> d.
* :class:`VNA`: the two encoders trained with the CLIP-style loss on cosine similarity (§3.1.3, Eq. 1;
  :func:`alignlib.losses.info_nce.info_nce`). It exposes ``image_maps``/``response_maps``/``normalize``
  so :class:`alignlib.training.ContrastiveObjective` and :func:`alignlib.training.encode_pairs` drive it.
* :class:`DirectEncoding` (§4.2.1): the visual encoder with d = N, trained with MSE to predict responses.
* :class:`DirectDecoding` (§4.2.2): the spike encoder with d = S*S, trained with MSE to predict the
  (resized) image. The paper does not give the baselines' architectures; reusing each modality's encoder
  with the output width of the other modality is this book's choice.

Every model exposes ``score_matrix(images, responses) -> S`` with ``S[i, j]`` the score of image i
against response j (higher = better match), the single matrix both discriminative tasks are read from
(:mod:`alignlib.metrics.discrimination`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VisualEncoder", "SpikeEncoder", "VNA", "DirectEncoding", "DirectDecoding", "build_vna_model",
           "METHODS", "CHANNELS", "resize_square"]

CHANNELS = (16, 32, 64, 128, 256)
METHODS = ("vna", "direct_encoding", "direct_decoding")


def resize_square(images: torch.Tensor, side: int) -> torch.Tensor:
    """(B, H, W) or (B, C, H, W) -> (B, C, side, side), bilinear (antialiased when shrinking)."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(f"images must be (B, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    if tuple(images.shape[-2:]) == (side, side):
        return images
    shrink = images.shape[-2] > side or images.shape[-1] > side
    return F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False, antialias=shrink)


class VisualEncoder(nn.Module):
    """Image -> d-vector (VNA §3.1.1). Inputs of any size are resized to ``side`` x ``side`` first."""

    def __init__(self, out_dim: int, side: int = 64, in_chans: int = 1, channels: Sequence[int] = CHANNELS,
                 negative_slope: float = 0.01):
        super().__init__()
        n = len(channels)
        if side % (2 ** n):
            raise ValueError(f"side must be divisible by {2 ** n} (five stride-2 layers), got {side}")
        self.side, self.in_chans = int(side), int(in_chans)
        layers, c_in = [], in_chans
        for c in channels:
            layers += [nn.Conv2d(c_in, c, kernel_size=4, stride=2, padding=1), nn.BatchNorm2d(c),
                       nn.LeakyReLU(negative_slope)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.flat_dim = c_in * (side // 2 ** n) ** 2
        self.head = nn.Linear(self.flat_dim, int(out_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_square(images, self.side)
        if x.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} channel(s), got {x.shape[1]}")
        return self.head(self.features(x).flatten(1))


class SpikeEncoder(nn.Module):
    """Response vector (N) -> d-vector (VNA §3.1.2): Linear(N, 512), BatchNorm1d, LeakyReLU, Linear(512, d)."""

    def __init__(self, n_neurons: int, out_dim: int, hidden: int = 512, negative_slope: float = 0.01):
        super().__init__()
        self.n_neurons = int(n_neurons)
        self.net = nn.Sequential(nn.Linear(self.n_neurons, hidden), nn.BatchNorm1d(hidden),
                                 nn.LeakyReLU(negative_slope), nn.Linear(hidden, int(out_dim)))

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        if responses.ndim != 2 or responses.shape[1] != self.n_neurons:
            raise ValueError(f"responses must be (B, {self.n_neurons}), got {tuple(responses.shape)}")
        return self.net(responses)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.flatten(1), dim=-1) @ F.normalize(b.flatten(1), dim=-1).T


class VNA(nn.Module):
    """Two encoders into a shared d-dimensional space; ``forward -> (z_img, z_neu)``, unit norm (Eq. 1)."""

    method = "vna"

    def __init__(self, n_neurons: int, latent_dim: int = 128, side: int = 64, in_chans: int = 1):
        super().__init__()
        self.image_tower = VisualEncoder(latent_dim, side, in_chans)
        self.neural_tower = SpikeEncoder(n_neurons, latent_dim)

    def image_maps(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_tower(images)

    def response_maps(self, responses: torch.Tensor) -> torch.Tensor:
        return self.neural_tower(responses)

    @staticmethod
    def normalize(z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z.flatten(1), dim=-1)

    def forward(self, images: torch.Tensor, responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalize(self.image_maps(images)), self.normalize(self.response_maps(responses))

    @torch.no_grad()
    def score_matrix(self, images: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of image i and response j in the shared space (§3.2)."""
        return _cosine(self.image_maps(images), self.response_maps(responses))


class DirectEncoding(nn.Module):
    """Image -> predicted response, trained with MSE (§4.2.1). Score of (image i, response j):
    ``-||f(x_i) - r_j||`` (Euclidean; the paper's "distance")."""

    method = "direct_encoding"

    def __init__(self, n_neurons: int, side: int = 64, in_chans: int = 1):
        super().__init__()
        self.encoder = VisualEncoder(n_neurons, side, in_chans)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def loss(self, images: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(images), responses)

    @torch.no_grad()
    def score_matrix(self, images: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self(images).double(), responses.double())


class DirectDecoding(nn.Module):
    """Response -> predicted image (S x S, the resized input), trained with MSE (§4.2.2). Score of
    (image i, response j): ``-||x_i - g(r_j)||`` over the resized image's pixels."""

    method = "direct_decoding"

    def __init__(self, n_neurons: int, side: int = 64, in_chans: int = 1):
        super().__init__()
        self.side, self.in_chans = int(side), int(in_chans)
        self.decoder = SpikeEncoder(n_neurons, in_chans * side * side)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        return self.decoder(responses).view(-1, self.in_chans, self.side, self.side)

    def target(self, images: torch.Tensor) -> torch.Tensor:
        return resize_square(images, self.side)

    def loss(self, images: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(responses), self.target(images))

    @torch.no_grad()
    def score_matrix(self, images: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.target(images).flatten(1).double(), self(responses).flatten(1).double())


def build_vna_model(method: str, n_neurons: int, latent_dim: int = 128, side: int = 64, in_chans: int = 1) -> nn.Module:
    """One of :data:`METHODS`: ``"vna"``, ``"direct_encoding"`` or ``"direct_decoding"``."""
    if method == "vna":
        return VNA(n_neurons, latent_dim, side, in_chans)
    if method == "direct_encoding":
        return DirectEncoding(n_neurons, side, in_chans)
    if method == "direct_decoding":
        return DirectDecoding(n_neurons, side, in_chans)
    raise ValueError(f"unknown VNA method {method!r}; choose from {', '.join(METHODS)}")
