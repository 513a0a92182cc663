"""Attention scores of the neural tower and their distribution (Wang et al. 2026 §4.5, Fig. 6b).

The scores are the entries A_ij of the neuron self-attention softmax(Q K^T / sqrt(d)) (eq. 7), read as
functional interaction strengths. At N neurons one stimulus has N^2 of them (10^8 at N = 10,000), so
:func:`sample_attention` computes, per stimulus, only ``n_rows`` randomly chosen query rows (each row is a
full softmax over all N keys; seeded) and averages over heads. :func:`fit_distributions` fits a
log-normal, a gamma and an exponential (location fixed at 0, maximum likelihood, :mod:`scipy.stats`) to
a random subsample and compares them by the Kolmogorov-Smirnov statistic and AIC.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import stats

from alignlib.arrays import model_device
from alignlib.models.attention import split_heads

__all__ = ["sample_attention", "fit_distributions", "DISTRIBUTIONS"]

DISTRIBUTIONS = {"lognormal": stats.lognorm, "gamma": stats.gamma, "exponential": stats.expon}


@torch.no_grad()
def sample_attention(neural_tower: torch.nn.Module, z_responses: np.ndarray, n_rows: int = 64, seed: int = 0
                     ) -> np.ndarray:
    """Attention weights of ``n_rows`` random query neurons per stimulus, (n_stimuli, n_rows, N), head-averaged."""
    tower = neural_tower.eval()
    z = torch.as_tensor(np.asarray(z_responses), dtype=torch.float32, device=model_device(tower))
    n_rows = min(int(n_rows), tower.n_neurons)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b in range(len(z)):
        tokens = tower.tokens(z[b:b + 1])
        rows = torch.randperm(tower.n_neurons, generator=gen)[:n_rows].to(z.device)
        q = split_heads(tower.q_proj(tokens[:, rows]), tower.n_heads)
        k = split_heads(tower.k_proj(tokens), tower.n_heads)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(tower.head_dim), dim=-1)
        out.append(a.mean(1)[0].float().cpu())
    return torch.stack(out).numpy()


def fit_distributions(values: np.ndarray, n_fit: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Fit each of :data:`DISTRIBUTIONS` (loc = 0) to up to ``n_fit`` random positive values; one row each with
    the parameters, log-likelihood, AIC and KS statistic (lower = better), sorted by KS."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    if x.size < 10:
        raise ValueError(f"need at least 10 positive values to fit, got {x.size}")
    rng = np.random.default_rng(seed)
    if x.size > n_fit:
        x = rng.choice(x, n_fit, replace=False)
    rows = []
    for name, dist in DISTRIBUTIONS.items():
        params = dist.fit(x, floc=0)
        ll = float(np.sum(dist.logpdf(x, *params)))
        k = len(params) - 1                       # loc is fixed
        ks = stats.kstest(x, dist.cdf, args=params).statistic
        row = {"distribution": name, "ks": float(ks), "aic": 2 * k - 2 * ll, "loglik": ll, "n": int(x.size)}
        if name == "lognormal":
            row.update(mu=float(np.log(params[2])), sigma=float(params[0]))
        elif name == "gamma":
            row.update(shape=float(params[0]), scale=float(params[2]))
        else:
            row.update(scale=float(params[1]))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("ks", ignore_index=True)
