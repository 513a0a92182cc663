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
# # The neural tower: time and memory against N
#
# DINA's neural tower runs self-attention over *N* neuron tokens of width *d* = 512, so one
# forward + backward step costs O(B N² d). This page measures it three ways, side by side in one run and
# on the same parameters: **ours** (`attention="sdpa"`, torch's fused scaled-dot-product attention), a
# **straightforward** `softmax(Q Kᵀ / √d) V` that stores the B × N × N attention (`attention="naive"`),
# and the **exact factored** form (`attention="factored"`, below), and compares them with a stand-in of
# the **official code's structure** (one `nn.Linear(1, d)` and one `nn.Linear(d, 1)` per neuron, looped
# in Python). Time is the median wall time of a forward + backward step after one warm-up step; peak
# memory is the resident-memory high-water mark (`ru_maxrss`) of a fresh process per measurement, above
# the same mark right after the imports (on CUDA: `torch.cuda.max_memory_allocated`).
#
# **Quick profile:** small sizes (listed in the banner) measured on this page, so it runs in well under a
# minute. The sizes (N = 1,000 … 10,000; batch 8 and 32) are measured by the command line,
# `python -m alignlib.bench --out results/bench` (CPU) and `--device cuda` (GPU); this page reads their
# CSVs when present and labels every figure with the device, date, commit and command that produced it.
# CUDA figures cannot be recomputed by a CPU build of this book: they are shown as recorded.

# %% tags=["parameters"]
profile = "quick"
sizes = [250, 500, 1000]     # numbers of neurons measured on this page
batch = 8
official_n = 250             # N of the official-structure comparison measured on this page
threads = 2                  # CPU threads of each measurement
device = "cpu"               # "auto": CUDA when available (then measured in-process, bf16 rows too)
isolate = True               # one fresh process per CPU measurement (peak memory); False: time only
repeats = 1                  # timed steps after one warm-up step
# folder (from the repo root) of `python -m alignlib.bench` CSVs shown beside
measured = "book/bench/measured"

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns
from myst_nb import glue
from IPython.display import display
from tqdm.auto import tqdm

from alignlib.bench.analysis import (
    label_of,
    limits_table,
    load_cli_tables,
    projection,
    speedups,
    target_rows,
)
from alignlib.bench.flops import FACTORED_PASSES
from alignlib.bench.suite import default_config, run_suite

#: CSV prefixes of command-line runs this page shows when present: cpu (this kind of machine),
#: devcpu (the
#: CPU of a lent GPU machine, run with --prefix devcpu --threads 2), cuda (--device cuda)
CLI_PREFIXES = {"cpu": "CLI, CPU", "devcpu": "CLI, CPU of the GPU machine", "cuda": "CLI, CUDA"}
from alignlib.paths import REPO_ROOT, results_dir
from alignlib.repro import get_device
from alignlib.report import save_table, show_provenance

show_provenance(
    profile,
    "none (random weights and random responses: speed does not depend on the values)",
    {
        "Sizes measured here": (
            f"N = {', '.join(f'{n:,}' for n in sizes)}, batch {batch}, d_model 512, "
            f"1 head; official structure at N = {official_n:,}"
        ),
        "Threads": threads,
    },
)

# %%
cfg = {**default_config("cpu", quick=True), "sizes": list(sizes), "batches": [int(batch)],
       "official_sizes": [int(official_n)], "official_batch": int(batch), "repeats": int(repeats)}
params = {"profile": profile, **cfg, "threads": threads}
device = str(get_device(device))
page = run_suite(
    None,
    device,
    cfg,
    isolate=isolate,
    prefix="page",
    threads=threads,
    tables=["probe", "tower", "official"],
    command=f"notebooks/bench/neural_tower.py (profile {profile})",
    progress=lambda jobs: tqdm(jobs, desc="measurements"),
)
for name, df in page.items():
    save_table(df, "bench", f"tower_page_{name}", params)
cli = {p: load_cli_tables(REPO_ROOT / measured, p) for p in CLI_PREFIXES}
print({p: sorted(t) for p, t in cli.items()})

# %% [markdown]
# ## Time and memory against N
#
# Each point is one forward + backward step of the whole tower (tokens, attention, aggregation, MLP).
# Rows: this page's run, then the command line's CPU and CUDA runs where their CSVs exist.

# %%
def panel_data():
    out = [("this page, " + label_of(page["tower"]), page["tower"])]
    for p, title in CLI_PREFIXES.items():
        if "tower" in cli[p]:
            out.append((f"{title}: " + label_of(cli[p]["tower"]), cli[p]["tower"]))
    return out


panels = panel_data()
palette = dict(zip(["sdpa", "naive", "factored"], sns.color_palette("colorblind", 3)))
fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.6 * len(panels)), squeeze=False)
for (title, df), (ax_t, ax_m) in zip(panels, axes):
    ok = df[df.status == "ok"].copy()
    ok["amp"] = ok["amp"].astype(bool) if "amp" in ok else False
    for (impl, b, amp), g in ok.groupby(["attention", "batch", "amp"]):
        style = dict(color=palette[impl], marker="o", ls="-" if b == ok.batch.min() else "--")
        lab = f"{impl}, batch {b}{', bf16' if amp else ''}"
        ax_t.plot(g.n_neurons, g.median_s, label=lab, alpha=0.5 if amp else 1, **style)
        ax_m.plot(g.n_neurons, g.peak_mb, label=lab, alpha=0.5 if amp else 1, **style)
    for ax, ylab in ((ax_t, "forward + backward (s)"), (ax_m, "peak memory (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="neurons N", ylabel=ylab)
    ax_m.axhline(1024, color="grey", lw=0.8, ls=":")
    ax_t.set_title(title[:90], fontsize=8, loc="left")
    ax_m.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %%
sp = speedups(page["tower"])
save_table(sp, "bench", "tower_page_speedups", params)
big = sp[sp.n_neurons == max(sizes)].set_index("attention")
glue("page_n_max", f"{max(sizes):,}", display=False)
glue("page_factored_speedup", float(big.loc["factored", "speedup_vs_sdpa"]), display=False)
glue(
    "page_naive_speedup",
    float(big.loc["naive", "speedup_vs_sdpa"]) if "naive" in big.index else float("nan"),
    display=False,
)
glue("page_factored_mem_ratio", float(big.loc["factored", "memory_ratio_vs_sdpa"]), display=False)
sp

# %% [markdown]
# At N = {glue:text}`page_n_max` (batch as in the banner) the factored tower is
# {glue:text}`page_factored_speedup:.1f`× as fast as SDPA with {glue:text}`page_factored_mem_ratio:.2f`× its
# peak memory; the straightforward implementation runs at {glue:text}`page_naive_speedup:.2f`× SDPA's speed.
# The straightforward version's memory grows as B N² (it keeps the softmax for the backward pass); the
# command line skips sizes where that would exceed its memory limit and says so in the CSV's `status`.
#
# ## An exact, cheaper neural tower
#
# The tokens are rank one in the response, $e_i = r_i w_i$, and nothing nonlinear stands between the
# attention and the per-neuron aggregation except the softmax. With $a_i = W_Q w_i$, $c_j = W_K w_j$,
# $v_j = W_V w_j$ and $h_i = W_O^\top w^{agg}_i$ (per head, scale $1/\sqrt{d_h}$), exactly:
#
# $$\ell_{ij} = \tfrac{1}{\sqrt{d_h}}\, r_j\,(r_i G_{ij} + s_j) + \text{const}_j,\quad G = A C^\top,\ s_j = b_Q\cdot c_j;
# \qquad u_i = \sum_j p_{ij}\, r_j H_{ij} + \beta_i\ (+\, r_i\, w^{agg}_i\cdot w_i),\quad H = \mathcal{H} V^\top,$$
#
# with $\beta_i = w^{agg}_i\cdot(W_O b_V + b_O)$; the key bias drops out (constant along *j*). *G* and *H*
# are N × N and do not depend on the stimulus: they cost O(N² d) once per batch, and each sample then costs
# O(N²) instead of O(N² d). `NeuralTower(attention="factored")` computes it with the same parameters and
# checkpoints (the default stays SDPA); it is tested equal to the direct computation to 10⁻¹² in float64 and
# within float32 tolerance, gradients included, with and without the residual. It refuses LayerNorm
# (`residual_norm=True`), the official code's token bias and attention dropout, where the identity fails.
#
# **Fastest and leanest.** *G* and *H* are never stored whole: a custom `torch.autograd.Function`
# computes them one block of rows at a time from their factors ($G_{i_0:i_1} = A_{i_0:i_1} C^\top$), uses
# and drops each block, and recomputes it in the backward pass, where the gradients of the factors are
# accumulated block by block ($dA = dG\,C$, $dC = dG^\top A$); memory holds O(rows × N), never N × N,
# at the price of one more pair of O(N² d) products. The per-sample work over B × N × N runs on CPU in
# a fused C kernel (`alignlib.models.factored_kernel`, compiled on first use and cached): per row *i* and
# sample, one sweep for the softmax's maximum and one for its exponentials and the weighted sum forward,
# a single sweep backward that recomputes *p* from the saved log-sum-exp and accumulates every gradient,
# instead of about {glue:text}`factored_passes` passes of torch ops over (B, rows, N) temporaries. Where
# no C compiler exists, and on CUDA, the same blocks run through those torch ops (the tests check both
# paths against the direct computation in float64, gradients included).
#
# ## Against the targets

# %%
targets = pd.DataFrame(
    target_rows("this page", page["tower"], page["official"], None)
    + sum(
        (
            target_rows(
                f"{CLI_PREFIXES[p]}: {next(iter(t.values())).device_name.iloc[0]}",
                t.get("tower"),
                t.get("official"),
                t.get("dina"),
            )
            for p, t in cli.items()
            if t
        ),
        [],
    )
)
save_table(targets, "bench", "tower_targets", params)
off = page["official"]
o_t = float(off[off.case == "official_step"].median_s.iloc[0])
glue("page_official_n", f"{official_n:,}", display=False)
glue("page_official_s", o_t, display=False)
for impl in ("sdpa", "factored"):
    t = float(off[(off.case == "tower_step") & (off.attention == impl)].median_s.iloc[0])
    glue(f"page_official_speedup_{impl}", o_t / t, display=False)
have_cpu_10k = [
    p
    for p in ("cpu", "devcpu")
    if "tower" in cli[p]
    and ((cli[p]["tower"].n_neurons == 10_000) & (cli[p]["tower"].status == "ok")).any()
]
glue(
    "cli_cpu_status",
    (
        f"measured by {' and '.join(CLI_PREFIXES[p] for p in have_cpu_10k)} (rows labelled "
        "CLI in the table above, with their machine)"
        if have_cpu_10k
        else (
            "not present in this build: run `python -m alignlib.bench --out results/bench` on the"
            " CPU to fill it"
        )
    ),
    display=False,
)
targets

# %% [markdown]
# **Memory of the paper step on a GPU**, from the memory model of the factored path
# (`factored_memory_model`, its terms counted from the code) and the step measured on the lent GPU:
# {glue:text}`paper_step_estimate`

# %%
from alignlib.bench.flops import factored_memory_model

model_rows = []
for dev, b, thr in (("cpu", 8, threads), ("cpu", 32, threads), ("cuda", 128, 1)):
    m = factored_memory_model(10_000, b, device=dev, threads=thr)
    model_rows.append({"device": dev, "n_neurons": 10_000, "batch": b,
                       "block_rows": m["block_rows"],
                       **{f"{k}_mib": m[k] / 2**20
                          for k in ("factors_and_grads", "blocks", "per_sample", "temporaries",
                                    "total", "nxn_stored_before")}})
memory_model = pd.DataFrame(model_rows)
save_table(memory_model, "bench", "tower_memory_model", params)
cuda_dina = cli["cuda"].get("dina")
paper = None if cuda_dina is None else cuda_dina[
    (cuda_dina.width == "paper") & (cuda_dina.attention == "factored") & (cuda_dina.status == "ok")
    & ~cuda_dina["amp"].astype(bool)]
if paper is not None and not paper.empty:
    g = memory_model[memory_model.device == "cuda"].iloc[0]
    before = float(paper.peak_mb.iloc[0])
    estimate = before - g.nxn_stored_before_mib + g.blocks_mib
    glue("paper_step_estimate",
         f"the paper DINA step (batch {int(paper.batch.iloc[0])}, N = 10,000, factored, fp32) "
         "peaked at "
         f"{before / 1024:.1f} GiB on {paper.device_name.iloc[0]} with the previous code (commit "
         f"{str(paper.git_commit.iloc[0])[:10]}), which held G, H, dG and dH whole "
         f"({g.nxn_stored_before_mib / 1024:.2f} GiB); the blocked code holds "
         f"{g.blocks_mib / 1024:.2f} GiB of blocks instead, so the step needs about "
         f"{estimate / 1024:.1f} GiB, well inside an 80 GB GPU (not re-measured on a GPU here).",
         display=False)
else:
    glue("paper_step_estimate", "no CUDA DINA CSV in this build, so no paper-step estimate.",
         display=False)
memory_model

# %% [markdown]
# The official structure costs {glue:text}`page_official_s:.2f` s per step at N = {glue:text}`page_official_n`
# here; ours with SDPA is {glue:text}`page_official_speedup_sdpa:.1f`× faster and the factored tower
# {glue:text}`page_official_speedup_factored:.1f`× (target ≥ 10× at N = 2,500, batch 8, measured by the command
# line). Most of the official structure's time is Python: 2N module calls forward and their autograd nodes
# backward, each a tiny matmul. The N = 10,000 targets need the command line's CPU run:
# {glue:text}`cli_cpu_status`. A stand-in, not the official module, unless `--official-checkout` points to a
# local checkout of small-blingbling/DINA (the table's `implementation` column says which).
#
# ## What limits speed
#
# FLOPs of each step (matmuls, counted by torch's `FlopCounterMode` on the meta device) against this
# machine's measured matmul throughput; for the factored tower also the bytes its element-wise work moves
# through memory against the measured memory bandwidth: with the fused C kernel only the G and H blocks
# (its B × N × N sweeps stay in cache), with torch ops {glue:text}`factored_passes` passes of 4 bytes over
# B × N × N elements, forward and backward, counted from its code.

# %%
glue("factored_passes", sum(FACTORED_PASSES.values()), display=False)
probe = page["probe"]
lim = limits_table(page["tower"], probe)
save_table(lim, "bench", "tower_page_limits", params)
glue("probe_gflops", float(probe.matmul_gflops_fp32.iloc[0]), display=False)
glue("probe_gbps", float(probe.bandwidth_gbps.iloc[0]), display=False)
s_big = lim[(lim.n_neurons == max(sizes)) & (lim.attention == "sdpa")].iloc[0]
glue("sdpa_fraction", float(s_big.fraction_of_matmul_peak), display=False)
lim

# %%
fig, ax = plt.subplots(figsize=(10, 4))
for impl, g in lim.groupby("attention"):
    ax.plot(g.n_neurons, g.median_s, "o-", color=palette[impl], label=f"{impl}: measured")
    ax.plot(
        g.n_neurons,
        g.matmul_bound_s + g.bandwidth_bound_s,
        "x:",
        color=palette[impl],
        label=f"{impl}: FLOPs / matmul throughput"
        + (" + bytes / bandwidth" if impl == "factored" else ""),
    )
ax.set(xscale="log", yscale="log", xlabel="neurons N", ylabel="forward + backward (s)",
       title=f"this machine: {probe.matmul_gflops_fp32.iloc[0]:.0f} GFLOP/s matmul, "
             f"{probe.bandwidth_gbps.iloc[0]:.1f} GB/s copy")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# This machine multiplies float32 matrices at {glue:text}`probe_gflops:.0f` GFLOP/s and copies memory at
# {glue:text}`probe_gbps:.1f` GB/s (measured above, under whatever load the machine had). At N =
# {glue:text}`page_n_max` SDPA reaches {glue:text}`sdpa_fraction:.2f` of that matmul throughput: it is
# compute-bound, and only fewer FLOPs make it faster. The factored tower removes the O(B N² d) matmuls;
# what remains is element-wise work over B × N × N, swept in cache by the fused kernel on CPU, and the
# 8 products of O(N² d) (G and H forward, again backward, and four for the factors' gradients).
#
# **Projection for a GPU.** There SDPA runs at tensor-core speed while the factored tower's element-wise
# passes stream through memory unless fused into one kernel. The table below bounds both from their counts,
# with this page's CPU probe and, where the CUDA CSV exists, the GPU's measured probe.

# %%
proj = [
    projection(
        10_000, 32, float(probe.matmul_gflops_fp32.iloc[0]), float(probe.bandwidth_gbps.iloc[0])
    ).assign(machine="this CPU (measured probe)")
]
if "probe" in cli["cuda"]:
    cp = cli["cuda"]["probe"].iloc[0]
    proj.append(
        projection(
            10_000,
            32,
            float(cp.get("matmul_gflops_bf16", cp.matmul_gflops_fp32)),
            float(cp.bandwidth_gbps),
        ).assign(machine=f"{cp.device_name} (measured probe, bf16)")
    )
proj = pd.concat(proj, ignore_index=True)
save_table(proj, "bench", "tower_projection", params)
glue("cuda_probe_status", "the GPU row uses the CUDA CSV's probe" if "probe" in cli["cuda"] else
     "no CUDA CSV in this build, so the GPU row is missing (not measured)", display=False)
proj

# %%
cuda_tower = cli["cuda"].get("tower")
if cuda_tower is not None:
    cs = speedups(cuda_tower)
    cs = cs[(cs.n_neurons == 10_000) & (cs.batch == 32)]
    save_table(cs, "bench", "tower_cuda_n10000", params)
    for amp, g in cs.groupby("amp"):
        g = g.set_index("attention")
        tag = "bf16" if amp else "fp32"
        for impl in g.index:
            glue(f"cuda_{tag}_{impl}_s", float(g.loc[impl, "median_s"]), display=False)
    glue("cuda_label", label_of(cuda_tower), display=False)
    display(cs)
else:
    for tag in ("bf16", "fp32"):
        for impl in ("sdpa", "naive", "factored"):
            glue(f"cuda_{tag}_{impl}_s", float("nan"), display=False)
    glue(
        "cuda_label", "not measured (no results/bench/cuda_tower.csv in this build)", display=False
    )

# %% [markdown]
# Measured on the GPU ({glue:text}`cuda_label`), at N = 10,000 and batch 32, forward + backward: SDPA
# {glue:text}`cuda_fp32_sdpa_s:.3f` s, straightforward {glue:text}`cuda_fp32_naive_s:.3f` s, factored
# {glue:text}`cuda_fp32_factored_s:.3f` s in float32; under bf16 autocast {glue:text}`cuda_bf16_sdpa_s:.3f`,
# {glue:text}`cuda_bf16_naive_s:.3f` and {glue:text}`cuda_bf16_factored_s:.3f` s (NaN: not measured in this
# build). With one head of width 512, PyTorch's flash kernel (head width ≤ 256) does not apply, so SDPA
# falls back to a slower fused kernel and the straightforward version, two large cuBLAS matmuls, can beat it
# when memory allows (its peak memory is in the table). The factored tower's element-wise passes stream
# through GPU memory in this implementation (the fused kernel is CPU code); fused into one kernel that keeps
# a chunk of rows on chip (a Triton kernel, not written here), its bound above would drop by the number of
# passes.
#
# ## Exercises
#
# ```{exercise}
# :label: bench-ex-scaling
# From the table of speed-ups, how does the factored tower's advantage over SDPA change as N grows at fixed
# batch, and why does the batch size matter for it?
# ```
#
# ```{solution} bench-ex-scaling
# :class: dropdown
# At N = {glue:text}`page_n_max` it is {glue:text}`page_factored_speedup:.1f`× (this page). SDPA costs about
# 12 B N² d FLOPs per step; the factored tower costs about 16 N² d (eight N × N × d products: *G* and *H*,
# again in the backward pass, and the factors' gradients), once per batch, plus element-wise work over
# B N² elements (two sweeps forward and one backward in the fused kernel). The ratio therefore
# grows with the batch (the N² d part is shared by the batch) and approaches a constant set by d against the
# element-wise cost per element as N grows.
# ```
#
# ```{exercise}
# :label: bench-ex-official
# Why is the official structure so much slower than ours at the same size, although both run the same
# attention? Which part of its step would you time to check?
# ```
#
# ```{solution} bench-ex-official
# :class: dropdown
# Here the official structure takes {glue:text}`page_official_s:.2f` s per step against
# {glue:text}`page_official_speedup_sdpa:.1f`× less for ours. Its 2N per-neuron modules are called one by one
# from Python, and autograd records 2N small nodes; ours does the same arithmetic as one broadcast multiply
# and one row-wise dot product. Worse, the aggregation loop reads `x[:, i, :]` for each neuron, and the
# backward of each such selection builds a zero tensor of the whole (B, N, d) input: N of them, so the
# backward moves O(B N² d) bytes, and peak memory grows with it. Timing the embedding and aggregation loops
# alone (`model.embed`, `model.unembed`) with the profiler shows both.
# ```
