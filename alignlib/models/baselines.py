"""Baseline towers of DINA's Table 1 (Wang et al. 2026, §4.3): VGG-16-MLP and ViT-MLP.

Each baseline is a :class:`alignlib.models.dina.DINA` two-tower model (same encoders' interface, same
InfoNCE objective and optimisation as DINA) whose image tower is a standard vision network and whose
neural tower is a feed-forward MLP readout (``Linear(N, hidden) -> GELU -> Linear(hidden, 16*64)``, the
"MLP neural readout" of §4.3). Both image towers end in a one-channel 16 x 64 map, shaped like DINA's,
so that maps and retrieval are compared on equal terms.

Choices (the paper names the networks only):

* **VGG-16** (Simonyan & Zisserman 2015, configuration D): the 13 convolutions of torchvision's
  ``vgg16().features`` with the SAME parameter names (``features.0.weight`` ... ``features.28.bias``), so
  a local torchvision state dict loads (``weights=<path to .pth>``, keys with or without the
  ``features.`` prefix; the classifier is ignored). Grayscale input is repeated to 3 channels. The input
  is resized to 64 x 256 like DINA's; the max-pools after blocks 1-2 are kept (-> 16 x 64) and those
  after blocks 3-5 are dropped (identity; they hold no parameters), so all 13 pretrained layers are used
  and the map stays 16 x 64. A 1 x 1 convolution reads the map out (as DINA's head). Initialisation as
  torchvision's (Kaiming-normal, fan-out, zero biases). ``width_divisor``
  narrows every layer (quick profile; then pretrained weights cannot load).
* **ViT** (Dosovitskiy et al. 2021) from transformers' :class:`~transformers.ViTModel`: without weights,
  a config with ``image_size=(64, 256)`` and ``patch_size=4`` so the 16 x 64 token grid IS the map grid
  (one token per map cell), one input channel; a linear layer reads each token out to one map value.
  With ``pretrained=<directory>``, ``ViTModel.from_pretrained`` (its own patch size and channels;
  grayscale repeated; position embeddings interpolated) and the token grid resized to 16 x 64.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from alignlib.models.dina import DINA

__all__ = ["VGG16_CONFIG_D", "VGG16Tower", "ViTTower", "MLPReadout", "build_baseline", "BASELINES",
           "BASELINE_WIDTHS"]

#: VGG-16 (configuration D): channels per conv, "M" = max-pool (torchvision's ``cfgs["D"]``)
VGG16_CONFIG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
MAP_SIZE = (16, 64)
INPUT_SIZE = (64, 256)

#: how the towers are initialised (part of a run's identity)
INIT = {"vgg16-mlp": "torchvision (kaiming_normal fan_out, zero bias)", "vit-mlp": "transformers ViT default"}
#: widths per profile: "paper" = the published networks; "quick" = narrow CPU variants (labelled as such)
BASELINE_WIDTHS: dict[str, dict[str, dict[str, Any]]] = {
    "vgg16-mlp": {"paper": {"width_divisor": 1, "mlp_hidden": 2048},
                  "quick": {"width_divisor": 16, "mlp_hidden": 256}},
    "vit-mlp": {"paper": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                          "intermediate_size": 3072, "mlp_hidden": 2048},
                "quick": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                          "intermediate_size": 64, "mlp_hidden": 256}},
}
BASELINES = tuple(BASELINE_WIDTHS)


def _gray_to(images: torch.Tensor, channels: int, size) -> torch.Tensor:
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, channels):
        raise ValueError(f"expected images (B, H, W) or (B, 1|{channels}, H, W), got {tuple(images.shape)}")
    x = images if images.is_floating_point() else images.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x.expand(-1, channels, -1, -1) if x.shape[1] != channels else x


class VGG16Tower(nn.Module):
    """VGG-16 (configuration D) image tower -> (B, 16, 64) map; torchvision-compatible ``features.N`` names."""

    def __init__(self, width_divisor: int = 1, weights: str | Path | None = None, in_chans: int = 3):
        super().__init__()
        if width_divisor < 1:
            raise ValueError(f"width_divisor must be >= 1, got {width_divisor}")
        self.width_divisor, self.in_chans = int(width_divisor), int(in_chans)
        layers: list[nn.Module] = []
        c, pools = self.in_chans, 0
        for v in VGG16_CONFIG_D:
            if v == "M":
                pools += 1
                layers.append(nn.MaxPool2d(2, 2) if pools <= 2 else nn.Identity())   # map stays 16 x 64
            else:
                out = max(1, int(v) // self.width_divisor)
                layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*layers)
        self.out_channels = c
        self.head = nn.Conv2d(c, 1, 1)
        for m in self.modules():      # torchvision's VGG initialisation (PyTorch's default fades over 13 layers)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.map_size = MAP_SIZE
        self.pretrained = None
        if weights is not None:
            self.load_pretrained(weights)

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision VGG-16 weights (a state dict saved with ``torch.save``) into ``features``."""
        if self.width_divisor != 1:
            raise ValueError("pretrained VGG-16 weights need width_divisor=1")
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")} or dict(state)
        self.features.load_state_dict(feats, strict=True)
        self.pretrained = str(path)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _gray_to(images, self.in_chans, INPUT_SIZE)
        return self.head(self.features(x)).squeeze(1)


class ViTTower(nn.Module):
    """transformers ``ViTModel`` image tower -> (B, 16, 64) map (one linear read-out per token)."""

    def __init__(self, hidden_size: int = 768, num_hidden_layers: int = 12, num_attention_heads: int = 12,
                 intermediate_size: int = 3072, patch_size: int = 4, pretrained: str | Path | None = None):
        super().__init__()
        from transformers import ViTConfig, ViTModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if pretrained is not None:
            self.vit = ViTModel.from_pretrained(str(pretrained), add_pooling_layer=False)
            self.pretrained = str(pretrained)
        else:
            cfg = ViTConfig(image_size=INPUT_SIZE, patch_size=patch_size, num_channels=1, hidden_size=hidden_size,
                            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                            intermediate_size=intermediate_size, attn_implementation="sdpa")
            self.vit = ViTModel(cfg, add_pooling_layer=False)
            self.pretrained = None
        cfg = self.vit.config
        p = cfg.patch_size
        self.channels = cfg.num_channels
        self.grid = (INPUT_SIZE[0] // p, INPUT_SIZE[1] // p)
        self.readout = nn.Linear(cfg.hidden_size, 1)
        self.map_size = MAP_SIZE

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _gray_to(images, self.channels, INPUT_SIZE)
        tokens = self.vit(pixel_values=x, interpolate_pos_encoding=self.pretrained is not None).last_hidden_state
        m = self.readout(tokens[:, 1:]).reshape(x.shape[0], 1, *self.grid)       # drop [CLS]
        if self.grid != MAP_SIZE:
            m = F.interpolate(m, size=MAP_SIZE, mode="bilinear", align_corners=False)
        return m.squeeze(1)


class MLPReadout(nn.Module):
    """Feed-forward neural readout: responses (B, N) -> (B, 16, 64) map (§4.3 "MLP")."""

    def __init__(self, n_neurons: int, mlp_hidden: int = 2048, map_size=MAP_SIZE, dropout: float = 0.0):
        super().__init__()
        self.n_neurons, self.map_size = int(n_neurons), tuple(map_size)
        self.mlp = nn.Sequential(nn.Linear(n_neurons, mlp_hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_hidden, self.map_size[0] * self.map_size[1]))

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        if responses.ndim != 2 or responses.shape[1] != self.n_neurons:
            raise ValueError(f"expected responses (B, {self.n_neurons}), got {tuple(responses.shape)}")
        return self.mlp(responses.float()).reshape(responses.shape[0], *self.map_size)


def build_baseline(name: str, n_neurons: int, width: str = "paper", weights: str | Path | None = None,
                   dropout: float = 0.0) -> DINA:
    """A Table 1 baseline (``"vgg16-mlp"`` | ``"vit-mlp"``) as a two-tower :class:`DINA`.

    ``weights``: torchvision VGG-16 state-dict file, or a ViT directory for ``from_pretrained``; None
    trains the image tower from scratch (random initialisation).
    """
    if name not in BASELINE_WIDTHS:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if width not in BASELINE_WIDTHS[name]:
        raise ValueError(f"width must be one of {sorted(BASELINE_WIDTHS[name])}, got {width!r}")
    cfg = dict(BASELINE_WIDTHS[name][width])
    hidden = cfg.pop("mlp_hidden")
    if name == "vgg16-mlp":
        image = VGG16Tower(weights=weights, **cfg)
    else:
        image = ViTTower(pretrained=weights, **cfg)
    model = DINA(image, MLPReadout(n_neurons, hidden, dropout=dropout))
    model.build_kwargs = {"name": name, "n_neurons": int(n_neurons), "width": width,
                          "weights": None if weights is None else str(weights), "dropout": dropout}
    return model
