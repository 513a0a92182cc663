# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Methods: DINA as implemented
#
# This page describes the model this book trains, following §3 of Wang et al. (2026) and, where the
# paper is silent, the published DS-Net design (Mao et al. 2021). Every choice the paper leaves open is
# listed below. Shapes and parameter counts are computed by building the models on this page.

# %% tags=["parameters"]
profile = "quick"
n_neurons_probe = 10000   # neurons for the parameter count (the real recordings have ~10,000)

# %%
import pandas as pd
import torch
from myst_nb import glue

from alignlib.models.dina import WIDTH_PROFILES, build_dina, count_parameters
from alignlib.report import save_table, show_provenance

show_provenance(profile, f"none (models built with random weights for {n_neurons_probe} neurons)")

# %% [markdown]
# ## Image tower: DS-Net stages 1–2
#
# A 68 × 270 grayscale image (1 pixel per degree) is standardised with fixed constants, `(x − 128) / 64`,
# bilinearly resized to 64 × 256, and passed through a non-overlapping 4 × 4 stem (16 × 64 grid) and two
# DS-Net stages. Each **MixBlock** adds a depth-wise convolutional position encoding, splits the channels
# into a **local stream** (3 × 3 depth-wise convolution, full resolution) and a **global stream**
# (multi-head self-attention on a copy downsampled by r = 8 in stage 1 and r = 4 in stage 2), lets each
# stream attend to the other (**inter-scale co-attention**, both ways), merges them with a 1 × 1
# convolution, and ends with a convolutional feed-forward layer. The stage-2 output is 128 × 16 × 64, as
# the paper states; a 1 × 1-convolution head (128 → 64, GELU, 64 → 1) projects it to the 16 × 64 image map.
#
# ## Neural tower: attention over neurons
#
# Each neuron *i* becomes a token $e_i = r_i w_i + b_i$ (eqs. 4–5; $w_i, b_i \in \mathbb{R}^d$ learned
# per neuron, so the token carries both the response and the neuron's identity). Scaled dot-product
# self-attention runs over the *N* tokens (eqs. 6–7, `torch.nn.functional.scaled_dot_product_attention`,
# whose fused kernels never hold the N × N matrix), each neuron is aggregated to a scalar
# $u_i = w^{agg}_i \cdot r^{atten}_i$ (eq. 8), and an MLP maps $u \in \mathbb{R}^N$ to the 16 × 64 neural map.
#
# ## Objective and training
#
# Both maps are flattened (1,024-d) and L2-normalised; the loss is the symmetric InfoNCE with a fixed
# temperature τ = 0.01 (the equation on the chapter's first page). AdamW (lr 3·10⁻⁴, weight decay 5·10⁻⁵) trains
# the image tower and RMSprop (lr 5·10⁻⁵, α = 0.9) the neural tower, batch 128.

# %%
shapes = []
for width in ("quick", "paper"):
    model = build_dina(n_neurons_probe, width).eval()
    with torch.no_grad():
        x = torch.zeros(2, 1, 68, 270)
        feats = model.image_tower.features(x)
        img_map = model.image_tower(x)
        neu_map = model.neural_tower(torch.zeros(2, n_neurons_probe))
    shapes.append({"width": width,
                   "stage-2 features": "x".join(map(str, feats.shape[1:])),
                   "image map": "x".join(map(str, img_map.shape[1:])),
                   "neural map": "x".join(map(str, neu_map.shape[1:])),
                   "image tower params": count_parameters(model.image_tower),
                   "neural tower params": count_parameters(model.neural_tower),
                   **{k: str(v) for k, v in WIDTH_PROFILES[width].items()}})
    del model
params = pd.DataFrame(shapes)
save_table(params, "dina", "methods_parameters", {"n_neurons": n_neurons_probe})
for row in shapes:
    glue(f"params_image_{row['width']}", f"{row['image tower params']:,}", display=False)
    glue(f"params_neural_{row['width']}", f"{row['neural tower params']:,}", display=False)
glue("n_neurons_probe_text", f"{n_neurons_probe:,}", display=False)
params.set_index("width").T

# %% [markdown]
# At the paper's width the image tower has {glue:text}`params_image_paper` trainable parameters and the
# neural tower {glue:text}`params_neural_paper` for {glue:text}`n_neurons_probe_text` neurons (most of them in
# the first MLP layer, N × 2,048). The `quick` profile trains the narrow variant
# ({glue:text}`params_image_quick` and {glue:text}`params_neural_quick` parameters) so that a mouse trains
# in about a minute on a laptop CPU: the architecture is the same, only widths and depths shrink.

# %% [markdown]
# ## Choices where the paper is silent (or differs from its code)
#
# | topic | this book | paper / official code |
# |---|---|---|
# | feature geometry | resize input to 64 × 256, stem stride 4, stage transition 3 × 3 stride 1 → 128 × 16 × 64 | paper: 128 × 16 × 64; code: stride-2 transition (8 × 33) then bilinear resize |
# | backbone training | end to end | code: stage-2 output detached, only a 1 × 1 conv trains on frozen random features |
# | co-attention residuals | kept (DS-Net design) | code: dropped |
# | image projection | 1 × 1 conv 128 → 64, GELU, 64 → 1 | paper: "MLP"; code: 1 × 1 conv 128 → 1 |
# | neural tower MLP | N → 2,048 → GELU → 1,024 | paper: "MLP"; code: three linears without activation |
# | neuron token | $e_i = r_i w_i$, no bias (option `token_bias`) | paper eqs. 4–5: $r_i w_i$; code: `Linear(1, d)` with bias |
# | residual / LayerNorm around neuron attention | none in the `paper` profile; the `quick` profile adds a residual (tokens + attention) because without it the untrained tower maps all stimuli to nearly one embedding and does not learn in a laptop budget (see the training pages) | paper: none |
# | neural tower learning rate | 5·10⁻⁵ (`paper`); 10⁻³ in `quick` | 5·10⁻⁵ |
# | heads in neuron attention | 1 | code: 1 |
# | response normalisation | per-neuron z-score fitted on training images only | code: min-max over all data (test leakage) |
# | image normalisation | fixed `(x − 128) / 64` | code: per-sample min-max of the maps |
# | splits | 10 % test (held out), 10 % validation for early stopping, 80 % training | code: one 90/10 split as validation and test |
# | stopping | early stopping on validation loss, best epoch restored | code: 5,000 epochs, last epoch saved |
# | validation loss | one InfoNCE over all validation pairs | — |
# | learning-rate schedule | none | code: ReduceLROnPlateau (factor 0.5, patience 50) |
# | responses used | mean of the two repeats | paper: averaged over repeats |
