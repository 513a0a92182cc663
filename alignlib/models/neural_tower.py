"""DINA neural tower: self-attention over neurons (Wang et al. 2026, §3, eqs. 4-8).

For a response vector r in R^N (one stimulus, N neurons, z-scored per neuron):

* neuron tokens (eqs. 4-5): ``e_i = r_i * w_i`` with a learned ``w_i in R^d`` per neuron
  (parameter ``token_weight`` (N, d)), which also acts as the neuron's identity embedding (no
  separate position encoding). Initialised U(-1, 1) like the official code's per-neuron
  ``Linear(1, d)``; ``token_bias=True`` adds that layer's bias ``b_i`` (official-code variant).
* self-attention over the N tokens (eqs. 6-7): ``Q = E W_Q``, ``K = E W_K``, ``V = E W_V``
  (linears with bias), ``n_heads`` heads, ``A = softmax(Q K^T / sqrt(d / n_heads))``,
  ``R^atten = (A V) W_O``. Computed with
  :func:`torch.nn.functional.scaled_dot_product_attention`, whose fused CPU (flash) and
  CUDA kernels never materialise the N x N matrix (checked at N = 10,000 in the tests).
  The paper has no residual connection or LayerNorm around the attention; that is the
  default here. ``residual=True`` gives ``R^atten = E + attention(E)`` and ``residual_norm=True``
  ``LayerNorm(E + attention(E))``. Without a residual, attention averages the N tokens, so
  the stimulus-dependent part of R^atten is ~1/sqrt(N) of the bias terms at initialisation and
  the tower starts nearly collapsed; the DINA controls page measures what that costs.
* per-neuron aggregation (eq. 8): ``u_i = w^agg_i . r^atten_i`` with ``w^agg`` of shape
  (N, d) and no bias (a per-neuron bias would be absorbed by the first MLP layer's bias).
* MLP to the neural map: ``Linear(N, mlp_hidden) -> GELU -> Dropout -> Linear(mlp_hidden,
  H*W)``, reshaped to (H, W) = ``map_size`` (16 x 64). The paper says "MLP" without
  naming an activation; the official code stacks three linears with none (which is a single
  linear map). We use one hidden layer with GELU (a choice).

``attention_scores`` returns, per stimulus, the attention each neuron *receives*, i.e. the
column means of A averaged over the query neurons and the heads, computed in query chunks
so only a ``chunk_size x N`` slice of A exists at a time.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from alignlib.models.attention import merge_heads, split_heads

__all__ = ["NeuralTower"]


class NeuralTower(nn.Module):
    """Attention-over-neurons encoder from responses (B, N) to a (B, 16, 64) neural map.

    Parameters
    ----------
    n_neurons : N, the number of recorded neurons (fixed per model).
    d_model : token dimension d (paper/official code: 512).
    n_heads : attention heads (paper/official code: 1); ``d_model`` must be divisible by it.
    mlp_hidden : hidden width of the map MLP (official code: 2048).
    map_size : (H, W) of the output map; H*W is the embedding dimension (1024).
    dropout : dropout on attention weights and in the MLP (0 by default; note that attention
        dropout > 0 makes PyTorch's CPU kernel fall back to a path that stores N x N).
    residual_norm : wrap the attention in ``LayerNorm(E + attn(E))`` (off: the paper has none).
    token_bias : add a per-neuron bias to the tokens (official code; the paper's eqs. 4-5 have none).
    residual : ``E + attn(E)`` without normalisation (off: the paper has none).
    """

    def __init__(self, n_neurons: int, d_model: int = 512, n_heads: int = 1, mlp_hidden: int = 2048,
                 map_size: Sequence[int] = (16, 64), dropout: float = 0.0, residual_norm: bool = False,
                 token_bias: bool = False, residual: bool = False):
        super().__init__()
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be positive, got {n_neurons}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_neurons, self.d_model, self.n_heads = int(n_neurons), int(d_model), int(n_heads)
        self.head_dim = self.d_model // self.n_heads
        self.map_size = tuple(int(s) for s in map_size)
        self.dropout = float(dropout)
        self.residual_norm = bool(residual_norm)
        self.residual = bool(residual) or self.residual_norm

        self.token_weight = nn.Parameter(torch.empty(n_neurons, d_model).uniform_(-1.0, 1.0))
        self.token_bias = (nn.Parameter(torch.empty(n_neurons, d_model).uniform_(-1.0, 1.0))
                           if token_bias else None)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model) if self.residual_norm else None
        bound = 1.0 / math.sqrt(d_model)
        self.agg_weight = nn.Parameter(torch.empty(n_neurons, d_model).uniform_(-bound, bound))
        n_out = self.map_size[0] * self.map_size[1]
        self.mlp = nn.Sequential(nn.Linear(n_neurons, mlp_hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_hidden, n_out))

    # -- pieces ---------------------------------------------------------------------------
    def _check(self, responses: torch.Tensor) -> torch.Tensor:
        if responses.ndim != 2 or responses.shape[1] != self.n_neurons:
            raise ValueError(f"expected responses of shape (B, {self.n_neurons}), got {tuple(responses.shape)}")
        return responses if responses.is_floating_point() else responses.float()

    def tokens(self, responses: torch.Tensor) -> torch.Tensor:
        """Neuron tokens E = r_i * w_i + b_i, (B, N, d)."""
        r = self._check(responses)
        e = r.unsqueeze(-1) * self.token_weight
        return e + self.token_bias if self.token_bias is not None else e

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """R^atten (B, N, d) from tokens (B, N, d)."""
        q, k, v = (split_heads(p(tokens), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        p = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, N, d/h)
        o = self.out_proj(merge_heads(o))
        if self.residual:
            o = tokens + o
        return self.norm(o) if self.norm is not None else o

    def aggregate(self, attended: torch.Tensor) -> torch.Tensor:
        """u_i = w^agg_i . r^atten_i, (B, N)."""
        return (attended * self.agg_weight).sum(-1)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        """Neural map (B, H, W) from responses (B, N)."""
        u = self.aggregate(self.attend(self.tokens(responses)))
        return self.mlp(u).reshape(u.shape[0], *self.map_size)

    # -- interpretation -------------------------------------------------------------------
    @torch.no_grad()
    def attention_scores(self, responses: torch.Tensor, chunk_size: int = 1024,
                         reduce: str | None = "mean") -> torch.Tensor:
        """Attention weights of the neuron self-attention for each stimulus.

        reduce="mean": (B, N), entry j = attention neuron j receives, averaged over all N
            query neurons and over heads (A's column means). Computed over query chunks of
            ``chunk_size`` rows, so memory is O(B * heads * chunk_size * N).
        reduce=None: the full weights (B, heads, N, N) (only sensible for small N).
        Dropout is never applied here.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if reduce not in ("mean", None):
            raise ValueError(f"reduce must be 'mean' or None, got {reduce!r}")
        tokens = self.tokens(responses)
        q = split_heads(self.q_proj(tokens), self.n_heads)
        k = split_heads(self.k_proj(tokens), self.n_heads)
        scale = 1.0 / math.sqrt(self.head_dim)
        n = self.n_neurons
        if reduce is None:
            return torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1)
        received = torch.zeros(q.shape[0], n, device=q.device, dtype=torch.float32)
        for start in range(0, n, chunk_size):
            a = torch.softmax((q[:, :, start:start + chunk_size] @ k.transpose(-2, -1)) * scale, dim=-1)
            received += a.float().sum(dim=(1, 2))
        return received / (n * self.n_heads)
