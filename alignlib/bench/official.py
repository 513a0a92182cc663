"""The official DINA neural tower's *structure*, for the speed comparison (our own code).

The official code (the small-blingbling/DINA repository on GitHub, ``Train/neural_tower.py``, class
``AttentionWithNoDeconvPos``) holds one ``nn.Linear(1, d)`` per neuron for the tokens and
one ``nn.Linear(d, 1)`` per neuron for the aggregation, and loops over them in Python; one head of
attention (Q/K/V/output linears, SDPA); then ``Linear(N, 2048) -> Linear(2048, 512) -> Linear(512, 256)``
without activations, reshape to 8 x 32, bilinear resize to 16 x 64 and per-sample min-max.
:class:`OfficialStyleNeuralTower` reproduces that structure (same shapes, same loops, same op count);
:func:`load_official_tower` builds the official module itself from a local checkout.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OfficialStyleNeuralTower", "load_official_tower", "official_forward"]


class OfficialStyleNeuralTower(nn.Module):
    """Per-neuron ``Linear(1, d)`` / ``Linear(d, 1)`` modules looped in Python around one attention."""

    def __init__(self, n_neurons: int, d_model: int = 512, n_heads: int = 1):
        super().__init__()
        self.n_heads = n_heads
        self.embed = nn.ModuleList(nn.Linear(1, d_model) for _ in range(n_neurons))
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))
        self.unembed = nn.ModuleList(nn.Linear(d_model, 1) for _ in range(n_neurons))
        self.mlp = nn.Sequential(nn.Linear(n_neurons, 2048), nn.Linear(2048, 512), nn.Linear(512, 256))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        x = responses.unsqueeze(2)                                               # (B, N, 1)
        x = torch.stack([layer(x[:, i, :]) for i, layer in enumerate(self.embed)], dim=1)
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        o = F.scaled_dot_product_attention(q, k, v)
        b, h, n, c = o.shape
        x = self.o(o.transpose(1, 2).contiguous().view(b, n, h * c))
        x = torch.stack([layer(x[:, i, :]) for i, layer in enumerate(self.unembed)], dim=1).squeeze(-1)
        x = self.mlp(x).reshape(-1, 1, 8, 32)
        x = F.interpolate(x, size=(16, 64), mode="bilinear")
        lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        return (x - lo) / (hi - lo + 1e-8)


def load_official_tower(checkout: str | Path, n_neurons: int, d_model: int = 512, n_heads: int = 1) -> nn.Module:
    """The official ``AttentionWithNoDeconvPos`` from a local checkout of small-blingbling/DINA."""
    path = Path(checkout) / "Train" / "neural_tower.py"
    if not path.is_file():
        raise FileNotFoundError(f"no Train/neural_tower.py under {checkout} (a checkout of small-blingbling/DINA?)")
    spec = importlib.util.spec_from_file_location("dina_official_neural_tower", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AttentionWithNoDeconvPos(input_size=n_neurons, d_model=d_model, n_head=n_heads,
                                           max_len=n_neurons, num_neurons=n_neurons, device="cpu", hidden=2048)


def official_forward(model: nn.Module, responses: torch.Tensor) -> torch.Tensor:
    """The map of either module (the official one returns (map, attention, aggregated))."""
    out = model(responses)
    return out[0] if isinstance(out, tuple) else out


