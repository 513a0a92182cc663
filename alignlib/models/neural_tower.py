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
batch plus O(N^2) per sample instead of O(N^2 d) per sample. The N x N matrices exist only as blocks of
rows (computed from their factors, recomputed in the backward pass), and on CPU the per-sample work runs
in a fused C kernel (:mod:`alignlib.models.factored_kernel`); the benchmark chapter measures it.

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
        #: rows per block of G and H in the factored path (None: sized to a per-device element budget)
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

    def extra_repr(self) -> str:
        """The settings the printed layers do not show (the head count and the residual change the
        computation, not the parameters): part of what identifies a tower
        (:func:`alignlib.interpret.occlusion.tower_sha256`)."""
        return f"n_heads={self.n_heads}, residual={self.residual}"

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
        each sample then costs O(N^2) (:class:`FactoredAttendAggregate`) instead of O(N^2 d). G and H
        are passed as their factors (a, c) and (hq, v) and exist only one block of rows at a time.
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
            s = c[:, part] @ self.q_proj.bias[part]
            a_h, c_h, hq_h, v_h = (x[:, part].contiguous() for x in (a, c, hq, v))
            u = u + FactoredAttendAggregate.apply(r, a_h, c_h, s, hq_h, v_h, 1.0 / math.sqrt(dh),
                                                  self.factored_chunk_rows)
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
#: rows i per block: G and H are computed (forward) and recomputed (backward) one block of
#: rows x N at a time from their factors, about this many elements per block matrix
FACTORED_BLOCK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 25}
#: the torch path's (B, rows, N) temporaries hold about this many elements per row chunk
FACTORED_CHUNK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 27}


def _rows_for(budget: dict[str, int], per_row: int, n: int, device: torch.device) -> int:
    return max(1, min(n, budget.get(device.type, 1 << 24) // max(1, per_row)))


class FactoredAttendAggregate(torch.autograd.Function):
    """``u_bi = sum_j softmax_j(scale * r_bj (r_bi G_ij + s_j)) r_bj H_ij`` for one head,
    with ``G = a c^T`` and ``H = hq v^T`` never stored whole.

    Inputs: responses ``r`` (B, N); the factors ``a``, ``c``, ``hq``, ``v`` (N, d_h); ``s`` (N,);
    ``scale`` (float); ``block_rows`` (int or None: sized to :data:`FACTORED_BLOCK_ELEMENTS`).
    Rows i run in blocks: each block's ``G[i0:i1] = a[i0:i1] c^T`` and ``H[i0:i1] = hq[i0:i1] v^T``
    are computed, used and dropped, in the forward and again in the backward, so memory holds
    O(block x N), never N x N (the recomputation costs one more pair of the O(N^2 d) products).
    The per-sample work runs in the fused C kernel of :mod:`alignlib.models.factored_kernel` on CPU
    where it is built, otherwise in torch ops over (B, rows, N) chunks (any device). The forward
    saves the log-sum-exp of each softmax row, so the backward recomputes p without a max pass.

    Gradients, with ``e_bij = scale * g_bi p_bij (r_bj H_ij - u_bi)`` (softmax backward):
    dH_ij = sum_b g_bi p_bij r_bj, dG_ij = sum_b e_bij r_bi r_bj, ds_j = sum_bi e_bij r_bj,
    dr_bj gets sum_i g_bi p_bij H_ij + sum_i e_bij (r_bi G_ij + s_j), dr_bi gets sum_j e_bij r_bj G_ij;
    then da = dG c, dc = dG^T a, dhq = dH v, dv = dH^T hq, one block at a time.
    """

    @staticmethod
    def forward(ctx, r, a, c, s, hq, v, scale, block_rows=None):
        from alignlib.models import factored_kernel

        r, s = r.contiguous(), s.contiguous()
        b, n = r.shape
        rows = (max(1, min(n, int(block_rows))) if block_rows is not None
                else _rows_for(FACTORED_BLOCK_ELEMENTS, n, n, r.device))
        kernel = factored_kernel.available(r)
        rs = r * scale
        u = torch.empty_like(r)
        lse = torch.empty_like(r)
        # one buffer per block matrix, reused by every block (no allocator churn of rows x N tensors)
        G_buf, H_buf = r.new_empty(rows, n), r.new_empty(rows, n)
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            G = torch.mm(a[i0:i1], c.T, out=G_buf[:i1 - i0])
            H = torch.mm(hq[i0:i1], v.T, out=H_buf[:i1 - i0])
            if kernel:
                factored_kernel.forward_block(r, rs, G, s, H, i0, u, lse)
            else:
                _torch_forward_block(r, rs, G, s, H, i0, u, lse)
        ctx.save_for_backward(r, a, c, s, hq, v, u, lse)
        ctx.scale, ctx.rows, ctx.kernel = scale, rows, kernel
        return u

    @staticmethod
    def backward(ctx, gu):
        from alignlib.models import factored_kernel

        r, a, c, s, hq, v, u, lse = ctx.saved_tensors
        scale, rows, kernel = ctx.scale, ctx.rows, ctx.kernel
        need_r, need_a, need_c, need_s, need_hq, need_v = ctx.needs_input_grad[:6]
        b, n = r.shape
        gu = gu.contiguous()
        rs = r * scale
        da = torch.zeros_like(a) if need_a else None
        dc = torch.zeros_like(c) if need_c else None
        dhq = torch.zeros_like(hq) if need_hq else None
        dv = torch.zeros_like(v) if need_v else None
        if kernel:
            threads = max(1, min(torch.get_num_threads(), rows))
            dr_parts = torch.zeros(threads, b, n, dtype=r.dtype)
            ds_parts = torch.zeros(threads, n, dtype=r.dtype)
        else:
            dr, ds = torch.zeros_like(r), torch.zeros_like(s)
        G_buf, H_buf, dG_buf, dH_buf = (r.new_empty(rows, n) for _ in range(4))
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            G = torch.mm(a[i0:i1], c.T, out=G_buf[:i1 - i0])
            H = torch.mm(hq[i0:i1], v.T, out=H_buf[:i1 - i0])
            dG, dH = dG_buf[:i1 - i0].zero_(), dH_buf[:i1 - i0].zero_()
            if kernel:
                factored_kernel.backward_block(r, rs, G, s, H, gu, u, lse, scale, i0, dG, dH,
                                               dr_parts, ds_parts)
            else:
                _torch_backward_block(r, rs, G, s, H, gu, u, lse, scale, i0, dG, dH, dr, ds)
            if need_a:
                torch.mm(dG, c, out=da[i0:i1])
            if need_c:
                dc.addmm_(dG.T, a[i0:i1])
            if need_hq:
                torch.mm(dH, v, out=dhq[i0:i1])
            if need_v:
                dv.addmm_(dH.T, hq[i0:i1])
        if kernel:
            dr, ds = dr_parts.sum(0), ds_parts.sum(0)
        return ((dr if need_r else None), da, dc, (ds if need_s else None), dhq, dv, None, None)


def _torch_forward_block(r, rs, G, s, H, i0, u, lse):
    """The forward of one row block in torch ops, over (B, rows, N) chunks (any device)."""
    b, n = r.shape
    step = _rows_for(FACTORED_CHUNK_ELEMENTS, b * n, G.shape[0], r.device)
    rj = r.unsqueeze(1)
    for k0 in range(0, G.shape[0], step):
        k1 = min(G.shape[0], k0 + step)
        z = r[:, i0 + k0:i0 + k1, None] * G[k0:k1]          # (B, c, N)
        z.add_(s).mul_(rs.unsqueeze(1))                       # z_bij
        m = torch.logsumexp(z, dim=-1)
        lse[:, i0 + k0:i0 + k1] = m
        p = z.sub_(m.unsqueeze(-1)).exp_()
        u[:, i0 + k0:i0 + k1] = p.mul_(rj).mul_(H[k0:k1]).sum(-1)


def _torch_backward_block(r, rs, G, s, H, gu, u, lse, scale, i0, dG, dH, dr, ds):
    """The backward of one row block in torch ops; accumulates into dG, dH, dr, ds."""
    b, n = r.shape
    step = _rows_for(FACTORED_CHUNK_ELEMENTS, b * n, G.shape[0], r.device)
    rj = r.unsqueeze(1)
    for k0 in range(0, G.shape[0], step):
        k1 = min(G.shape[0], k0 + step)
        sl = slice(i0 + k0, i0 + k1)
        ri, gi, Gi, Hi = r[:, sl], gu[:, sl], G[k0:k1], H[k0:k1]
        t = ri[:, :, None] * Gi
        t.add_(s)                                              # r_bi G_ij + s_j, (B, c, N)
        pg = (t * rs.unsqueeze(1)).sub_(lse[:, sl, None]).exp_()   # p recomputed from the lse
        pg.mul_(gi[:, :, None])                                # g_bi p_bij
        dH[k0:k1] += (pg * rj).sum(0)
        dr += (pg * Hi).sum(1)
        e = rj * Hi
        e.sub_(u[:, sl, None]).mul_(pg).mul_(scale)
        del pg
        dr += t.mul_(e).sum(dim=1)
        del t
        e.mul_(rj)                                             # e_bij r_bj
        dG[k0:k1] += (e * ri[:, :, None]).sum(0)
        ds += e.sum(dim=(0, 1))
        dr[:, sl] += e.mul_(Gi).sum(-1)
