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

``attention="factored"`` computes attention + aggregation exactly from two stimulus-independent N x N
matrices (:meth:`NeuralTower.factored_aggregate`, :class:`FactoredAttendAggregate`): O(N^2 d) once per
batch plus O(N^2) per sample instead of O(N^2 d) per sample; the benchmark chapter measures it.

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

__all__ = ["NeuralTower", "FactoredAttendAggregate", "ATTENTION_IMPLS"]

#: how :class:`NeuralTower` computes attention + aggregation (same parameters, same result)
ATTENTION_IMPLS = ("sdpa", "naive", "factored")


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
    mlp_activation : GELU between the map MLP's layers (off: the official code's activation-free
        MLP, a single linear map; an audit switch of the DINA Table 1 page).
    attention : how attention + aggregation are computed (not a model parameter: checkpoints and
        results are the same, up to rounding). ``"sdpa"`` (default) uses torch SDPA; ``"naive"``
        the straightforward ``softmax(Q K^T / sqrt(d_h)) V`` that stores B x heads x N x N (for the
        benchmark); ``"factored"`` the exact factored form of :meth:`factored_aggregate`, which
        refuses LayerNorm, token biases and attention dropout (the identity needs rank-one tokens
        and nothing nonlinear but the softmax). Can be changed on a built model.
    """

    def __init__(self, n_neurons: int, d_model: int = 512, n_heads: int = 1, mlp_hidden: int = 2048,
                 map_size: Sequence[int] = (16, 64), dropout: float = 0.0, residual_norm: bool = False,
                 token_bias: bool = False, residual: bool = False, attention: str = "sdpa",
                 mlp_activation: bool = True):
        super().__init__()
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be positive, got {n_neurons}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
        self.attention = attention
        #: rows per chunk of the factored path (None: sized to a per-device element budget)
        self.factored_chunk_rows: int | None = None
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
        self.mlp_activation = bool(mlp_activation)
        self.mlp = nn.Sequential(nn.Linear(n_neurons, mlp_hidden), nn.GELU() if mlp_activation else nn.Identity(),
                                 nn.Dropout(dropout),
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
        if self.attention == "naive":
            a = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim), dim=-1)
            o = F.dropout(a, p) @ v if p else a @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, N, d/h)
        o = self.out_proj(merge_heads(o))
        if self.residual:
            o = tokens + o
        return self.norm(o) if self.norm is not None else o

    def aggregate(self, attended: torch.Tensor) -> torch.Tensor:
        """u_i = w^agg_i . r^atten_i, (B, N)."""
        return (attended * self.agg_weight).sum(-1)

    def factored_aggregate(self, responses: torch.Tensor) -> torch.Tensor:
        """u (B, N) equal to ``aggregate(attend(tokens(r)))``, computed without any (B, N, d) tensor.

        Tokens are rank one in the response (e_i = r_i w_i), so per head h (scale 1/sqrt(d_h)):
        logits_ij = scale * r_j (r_i G_ij + s_j) + terms constant along j, with G = A C^T,
        a_i = W_q w_i, c_j = W_k w_j, s_j = b_q . c_j; and u_i = sum_h sum_j p_ij r_j H_ij + beta_i
        (+ r_i w^agg_i . w_i with the residual), with H = Hq V^T, hq_i = W_o^T w^agg_i,
        v_j = W_v w_j, beta_i = w^agg_i . (W_o b_v + b_o). G and H cost O(N^2 d) once per batch;
        each sample then costs O(N^2) (:class:`FactoredAttendAggregate`) instead of O(N^2 d).
        """
        if self.norm is not None:
            raise ValueError("attention='factored' is exact only without LayerNorm (residual_norm=True "
                             "puts a nonlinearity between attention and aggregation); use 'sdpa'")
        if self.token_bias is not None:
            raise ValueError("attention='factored' needs rank-one tokens e_i = r_i w_i; token_bias=True "
                             "breaks that; use 'sdpa'")
        if self.training and self.dropout > 0:
            raise ValueError("attention='factored' has no attention dropout; use dropout=0 or 'sdpa'")
        r = self._check(responses).to(self.token_weight.dtype)
        w, dh = self.token_weight, self.head_dim
        a = F.linear(w, self.q_proj.weight)                     # a_i = W_q w_i, (N, d)
        c = F.linear(w, self.k_proj.weight)                     # c_j = W_k w_j
        v = F.linear(w, self.v_proj.weight)                     # v_j = W_v w_j
        hq = self.agg_weight @ self.out_proj.weight             # hq_i = W_o^T w^agg_i
        beta = self.agg_weight @ (self.out_proj.weight @ self.v_proj.bias + self.out_proj.bias)
        u = beta.expand_as(r)
        if self.residual:
            u = u + r * (self.agg_weight * w).sum(-1)
        for h in range(self.n_heads):
            part = slice(h * dh, (h + 1) * dh)
            G = a[:, part] @ c[:, part].T
            s = c[:, part] @ self.q_proj.bias[part]
            H = hq[:, part] @ v[:, part].T
            u = u + FactoredAttendAggregate.apply(r, G, s, H, 1.0 / math.sqrt(dh), self.factored_chunk_rows)
        return u

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        """Neural map (B, H, W) from responses (B, N)."""
        if self.attention == "factored":
            u = self.factored_aggregate(responses)
        else:
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


# -- the exact factored attention + aggregation (attention="factored") ---------------------------
#: the factored path's temporaries hold about this many elements (B x rows x N) per row chunk
FACTORED_CHUNK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 27}


def _row_chunk(batch: int, n: int, device: torch.device, chunk_rows: int | None) -> int:
    """Rows i per chunk: ``chunk_rows`` if given, else as many as fit the device's element budget."""
    if chunk_rows is not None:
        return max(1, min(n, int(chunk_rows)))
    budget = FACTORED_CHUNK_ELEMENTS.get(device.type, 1 << 24)
    return max(1, min(n, budget // max(1, batch * n)))


class FactoredAttendAggregate(torch.autograd.Function):
    """``u_bi = sum_j softmax_j(scale * r_bj (r_bi G_ij + s_j)) r_bj H_ij`` for one head.

    Inputs: responses ``r`` (B, N), ``G`` (N, N), ``s`` (N,), ``H`` (N, N), ``scale`` (float),
    ``chunk_rows`` (int or None). Rows i run in chunks, so only (B, rows, N) temporaries exist;
    the backward recomputes each chunk's softmax instead of storing B x N x N. Gradients:
    with ``e_bij = scale * dL/dz_bij = scale * g_bi p_bij (r_bj H_ij - u_bi)`` (softmax backward),
    dH_ij = sum_b g_bi p_bij r_bj, dG_ij = sum_b e_bij r_bi r_bj, ds_j = sum_bi e_bij r_bj,
    dr_bj gets sum_i g_bi p_bij H_ij + sum_i e_bij (r_bi G_ij + s_j), dr_bi gets sum_j e_bij r_bj G_ij.
    """

    @staticmethod
    def forward(ctx, r, G, s, H, scale, chunk_rows):
        b, n = r.shape
        rows = _row_chunk(b, n, r.device, chunk_rows)
        rs = (r * scale).unsqueeze(1)             # (B, 1, N)
        rj = r.unsqueeze(1)
        u = torch.empty_like(r)
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            z = r[:, i0:i1, None] * G[i0:i1]      # (B, c, N)
            p = torch.softmax(z.add_(s).mul_(rs), dim=-1)
            del z
            u[:, i0:i1] = p.mul_(rj).mul_(H[i0:i1]).sum(-1)
        ctx.save_for_backward(r, G, s, H, u)
        ctx.scale, ctx.rows = scale, rows
        return u

    @staticmethod
    def backward(ctx, gu):
        r, G, s, H, u = ctx.saved_tensors
        scale, rows = ctx.scale, ctx.rows
        need_r, need_g, need_s, need_h = ctx.needs_input_grad[:4]
        n = r.shape[1]
        gu = gu.contiguous()
        dr = torch.zeros_like(r)
        dG = torch.empty_like(G) if need_g else None
        dH = torch.empty_like(H) if need_h else None
        ds = torch.zeros_like(s)
        rs = (r * scale).unsqueeze(1)
        rj = r.unsqueeze(1)
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            ri, gi, Gi, Hi = r[:, i0:i1], gu[:, i0:i1], G[i0:i1], H[i0:i1]
            z0 = ri[:, :, None] * Gi
            z0.add_(s)                            # r_bi G_ij + s_j, (B, c, N)
            pg = torch.softmax(z0 * rs, dim=-1)   # recomputed
            pg.mul_(gi[:, :, None])               # g_bi p_bij
            if need_h:
                dH[i0:i1] = (pg * rj).sum(0)
            if need_r:
                dr += (pg * Hi).sum(1)
            e = rj * Hi
            e.sub_(u[:, i0:i1, None]).mul_(pg).mul_(scale)
            del pg
            if need_r:
                dr += z0.mul_(e).sum(dim=1)
            del z0
            e.mul_(rj)                             # e_bij r_bj
            if need_g:
                dG[i0:i1] = (e * ri[:, :, None]).sum(0)
            if need_s:
                ds += e.sum(dim=(0, 1))
            if need_r:
                dr[:, i0:i1] += e.mul_(Gi).sum(-1)
        return (dr if need_r else None), dG, (ds if need_s else None), dH, None, None
