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
# # Training cost: image tower and DINA epochs
#
# What one DINA training step costs: the image tower (DS-Net stages 1–2) alone, in images per second
# (forward + backward), and a full training step (both towers, symmetric InfoNCE, AdamW on the image tower
# and RMSprop on the neural tower, as the DINA chapter trains) with the neural tower's attention computed by
# SDPA (ours), the straightforward `softmax(Q Kᵀ) V`, or the exact factored form. An epoch's time is
# **extrapolated** from the measured step: `ceil(n_train / batch)` steps (n_train = 81 % of the twin's
# images: 810 in quick, 2,268 at paper size), without data loading or validation.
#
# **Quick profile:** the quick width only (600 neurons, batch 128), on this page. The paper width
# (d_model 512, DS-Net 64/128 channels, N = 10,000) and the bf16 / fused-attention CUDA runs come from the
# command line's CSVs (`python -m alignlib.bench`) when present, labelled with the device and command; CUDA
# figures cannot be recomputed by a CPU build of this book.

# %% tags=["parameters"]
profile = "quick"
widths = ["quick"]           # DINA widths measured on this page
dina_batch = 128
dina_neurons = 600           # DINA N at the quick width
paper_neurons = 10_000       # DINA N at the paper width (when widths holds "paper")
image_batch = 32
threads = 2                  # CPU threads of each measurement
repeats = 1
device = "cpu"               # "auto": CUDA when available (then measured in-process, bf16 rows too)
isolate = True               # one fresh process per CPU measurement (peak memory); False: time only
# folder (from the repo root) of `python -m alignlib.bench` CSVs shown beside
measured = "book/bench/measured"

# %%
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns
from myst_nb import glue
from tqdm.auto import tqdm

from alignlib.bench.analysis import label_of, load_cli_tables, target_rows
from alignlib.bench.suite import default_config, run_suite

#: CSV prefixes of command-line runs this page shows when present: cpu (this kind of machine),
#: devcpu (the CPU of a lent GPU machine, run with --prefix devcpu --threads 2),
#: cuda (--device cuda)
CLI_PREFIXES = {"cpu": "CLI, CPU", "devcpu": "CLI, CPU of the GPU machine", "cuda": "CLI, CUDA"}
from alignlib.paths import REPO_ROOT, results_dir
from alignlib.repro import get_device
from alignlib.report import save_table, show_provenance

show_provenance(
    profile,
    "none (random weights, images and responses: speed does not depend on the values)",
    {
        "Measured here": (
            f"widths {', '.join(widths)}; DINA N = {dina_neurons:,} (quick width), "
            f"{paper_neurons:,} (paper width), batch {dina_batch}; "
            f"image tower batch {image_batch}"
        ),
        "Threads": threads,
    },
)

# %%
if "quick" not in widths:
    raise ValueError(
        f"widths must include 'quick' (the page compares the attentions there), got {widths}"
    )
cfg = {
    **default_config("cpu", quick=True),
    "image_widths": list(widths),
    "image_batch": int(image_batch),
    "dina": [
        (w, int(dina_neurons if w == "quick" else paper_neurons), int(dina_batch)) for w in widths
    ],
    "repeats": int(repeats),
}
params = {"profile": profile, **cfg, "threads": threads}
device = str(get_device(device))
page = run_suite(
    None,
    device,
    cfg,
    isolate=isolate,
    prefix="page",
    threads=threads,
    tables=["image", "dina"],
    command=f"notebooks/bench/training.py (profile {profile})",
    progress=lambda jobs: tqdm(jobs, desc="measurements"),
)
for name, df in page.items():
    save_table(df, "bench", f"training_page_{name}", {k: str(v) for k, v in params.items()})
cli = {p: load_cli_tables(REPO_ROOT / measured, p) for p in CLI_PREFIXES}

# %% [markdown]
# ## Image tower throughput

# %%
rows = [page["image"].assign(source="this page")]
for p in CLI_PREFIXES:
    if "image" in cli[p]:
        rows.append(cli[p]["image"].assign(source=f"CLI {p}"))
image = pd.concat(rows, ignore_index=True)
image = image[image.status == "ok"]
image["amp"] = image["amp"].astype(bool) if "amp" in image else False
save_table(image, "bench", "training_image", {k: str(v) for k, v in params.items()})
glue("img_per_s_quick", float(page["image"].images_per_s.iloc[0]), display=False)
image[["source", "device_name", "width", "batch", "amp", "median_s", "images_per_s", "peak_mb"]]

# %% [markdown]
# ## A DINA training step and epoch

# %%
rows = [page["dina"].assign(source="this page")]
for p in CLI_PREFIXES:
    if "dina" in cli[p]:
        rows.append(cli[p]["dina"].assign(source=f"CLI {p}: {label_of(cli[p]['dina'])}"))
dina = pd.concat(rows, ignore_index=True)
dina["amp"] = dina["amp"].astype(bool) if "amp" in dina else False
save_table(dina, "bench", "training_dina", {k: str(v) for k, v in params.items()})
ok = dina[dina.status == "ok"]
fig, ax = plt.subplots(figsize=(10, 4))
ok = ok.assign(
    run=ok.source.str.slice(0, 9)
    + ", "
    + ok.width
    + " width, N="
    + ok.n_neurons.map("{:,}".format)
    + ok.amp.map({True: ", bf16", False: ""})
)
sns.barplot(data=ok, y="run", x="epoch_s", hue="attention", palette="colorblind", ax=ax,
            hue_order=["sdpa", "naive", "factored"])
ax.set(xscale="log", xlabel="one epoch, extrapolated from measured steps (s)", ylabel="")
plt.show()
# the summary is at the quick width (the paper width may also have run)
q = page["dina"][page["dina"].width == "quick"].set_index("attention")
glue("dina_quick_epoch_sdpa", float(q.loc["sdpa", "epoch_s"]), display=False)
glue(
    "dina_quick_ratio_naive",
    float(q.loc["naive", "median_s"] / q.loc["sdpa", "median_s"]),
    display=False,
)
glue(
    "dina_quick_ratio_factored",
    float(q.loc["sdpa", "median_s"] / q.loc["factored", "median_s"]),
    display=False,
)
ok[[
    "source",
    "width",
    "n_neurons",
    "batch",
    "amp",
    "attention",
    "median_s",
    "epoch_s",
    "peak_mb",
    "status",
]]

# %% [markdown]
# At the quick width one epoch takes {glue:text}`dina_quick_epoch_sdpa:.1f` s with SDPA on this page's
# machine (extrapolated). The straightforward attention makes a step {glue:text}`dina_quick_ratio_naive:.2f`×
# as long (target: ours ≥ 1.5× faster), and the factored tower makes it {glue:text}`dina_quick_ratio_factored:.2f`×
# faster. At 600 neurons and d_model 32 the neural attention is a small part of the step (the image tower
# dominates), so neither can change it much; at the paper width (N = 10,000, d_model 512) attention
# dominates the neural tower and the command line's rows show the difference.
#
# ## Against the targets

# %%
targets = pd.DataFrame(
    target_rows("this page", None, None, page["dina"])
    + sum(
        (
            target_rows(
                f"{CLI_PREFIXES[p]}: {next(iter(t.values())).device_name.iloc[0]}",
                None,
                None,
                t.get("dina"),
            )
            for p, t in cli.items()
            if t
        ),
        [],
    )
)
save_table(targets, "bench", "training_targets", {k: str(v) for k, v in params.items()})
glue("cuda_status", label_of(cli["cuda"].get("dina")) if "dina" in cli["cuda"] else
     "not measured (no results/bench/cuda_dina.csv in this build)", display=False)
targets

# %% [markdown]
# CUDA (bf16 autocast, fused attention): {glue:text}`cuda_status`.
#
# ## The paper profile, dry run on this kind of CPU
#
# `alignlib book --profile paper --dry-run` executes every page of the paper profile at the paper's
# shapes (2,800 images × 10,000 neurons per mouse, paper widths, batch 128, the paper's occlusion
# grids and Vi-ST windows) with every training capped to one batch per epoch and every evaluation to
# a few items, then builds its book. It shows that the paper profile runs end to end before anyone
# spends GPU hours on it; its numbers mean nothing. What it cost, as the command recorded it
# (`cpu_dryrun.csv` in the measured folder; not re-run by this page):

# %%
from alignlib import dryrun

dry = dryrun.read_measurement(REPO_ROOT / measured)
if dry is None:
    glue("dry_status", "not measured (no cpu_dryrun.csv in the measured folder)", display=False)
    glue("dry_slowest", "not measured", display=False)
    glue("dry_command", "none", display=False)
else:
    head = dryrun.summary(dry)
    glue("dry_status", (
        f"{head['minutes']:.1f} min for {head['n_pages']} pages and the HTML build "
        f"({head['build_minutes']:.1f} min), peak memory {head['peak_gb']:.1f} GB "
        "(largest process); "
        f"goal under {dryrun.GOAL_MINUTES} min: {'met' if head['goal_met'] else 'NOT met'}. "
        f"Machine: {head['machine']}, {head['threads']} threads, commit {head['commit']}, "
        f"{head['date'][:10]}"), display=False)
    glue("dry_slowest", f"{head['slowest_page']} ({head['slowest_minutes']:.1f} min)",
         display=False)
    glue("dry_command", head["command"], display=False)

# %%
if dry is not None:
    pages = dry[dry.kind != "total"].assign(minutes=lambda d: d.seconds / 60)
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(pages) + 1))
    sns.barplot(data=pages, y="page", x="minutes", color="tab:blue", ax=ax)
    ax.axvline(0, color="k", lw=0.5)
    ax.set(xlabel="minutes (dry run, paper profile, this kind of CPU)", ylabel="")
    plt.show()

# %% [markdown]
# Dry run: {glue:text}`dry_status`. The slowest page: {glue:text}`dry_slowest`.
# Command(s) as recorded: {glue:text}`dry_command`.
#
# ## Exercises
#
# ```{exercise}
# :label: bench-ex-epoch
# Which tower dominates a quick-width training step? Compare the image tower's throughput with the DINA step.
# ```
#
# ```{solution} bench-ex-epoch
# :class: dropdown
# The image tower alone processes {glue:text}`img_per_s_quick:.0f` images per second (forward + backward,
# this page), and a whole DINA epoch takes {glue:text}`dina_quick_epoch_sdpa:.1f` s with SDPA. Replacing the
# attention changes the step only by {glue:text}`dina_quick_ratio_naive:.2f`× (straightforward) or
# {glue:text}`dina_quick_ratio_factored:.2f`× (factored): at 600 neurons the image tower and the optimiser
# steps dominate, so making the quick profile faster means a narrower or lower-resolution image tower, not
# faster neuron attention.
# ```
