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
# # Training DINA on one mouse
#
# One execution of this notebook trains DINA (image tower + neural tower, symmetric InfoNCE with a
# fixed temperature of 0.01) on one mouse, once per training seed, each run until its validation criterion
# stops improving (convergence, below), and keeps the epoch that criterion selects. The book reads these
# runs from the run store shipped with it (`book/store/`); `-p force=true` trains them again here.
# The run is saved under `runs/dina/<variant>-<hash>/`, where the hash is computed from the fully
# resolved configuration (model, objective, training, data, split): re-running this page with other
# parameters adds a run beside this one instead of overwriting it, and re-running it unchanged loads the
# saved run instead of training again. Training checkpoints every epoch; a killed run resumes.

# %% tags=["parameters"]
profile = "quick"
mouse = "M1"
source = "auto"        # "auto": the real recording when present, else the twin; "real"; "twin"
twin_seed = 0
# training seeds (initialisation and batch order); None: the profile's (settings.SEEDS)
seeds: list | None = None
split_seed = 0         # which images are held out (shared by every model of this mouse)
variant: str | None = None     # readable run name (default: the mouse)
# Settings below default to None = the profile's value (alignlib.experiments.dina.settings)
twin_size: str | None = None
width: str | None = None       # "quick" (narrow towers) or "paper" (the paper's widths)
epochs: int | None = None
patience: int | None = None
batch_size: int | None = None
lr_image: float | None = None
lr_neural: float | None = None
neural_residual: bool | None = None   # residual around the neuron attention (not in the paper)
stem_stride: int | None = None        # 2: the paper's geometry; 4: this book's first geometry
# model-selection criterion: val_mean_rank | val_loss | val_top1 ...
select: str | None = None
temperature: float | None = None
force = False          # retrain even if an identical run exists
device = "auto"        # "auto" picks CUDA when available

# %%
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib import get_device, plots
from alignlib.experiments.dina import cast, settings
from alignlib.experiments.dina.workflow import train_mouse
from alignlib.report import show_provenance
from alignlib.training import store

cfg = settings.resolve(profile, twin_size=twin_size, width=width, epochs=epochs, patience=patience,
                       batch_size=batch_size, lr_image=lr_image, lr_neural=lr_neural,
                       neural_residual=neural_residual, stem_stride=stem_stride, select=select,
                       temperature=temperature)
recording = cast.load_mouse(mouse, source=source, twin_size=cfg["twin_size"], twin_seed=twin_seed)
seeds = [int(s) for s in (seeds if seeds is not None else settings.SEEDS[profile])]
runs = {
    s: train_mouse(
        recording, cfg, seed=s, split_seed=split_seed, variant=variant, device=device, force=force
    )
    for s in seeds
}
run = runs[seeds[0]]    # the run whose curves and files are shown in detail below
show_provenance(
    profile,
    recording.description,
    {
        "Mouse": f"{mouse} ({recording.stimset} images)",
        "Runs": "; ".join(
            f"seed {s}: `{r.name}` ("
            + ("trained now" if r.trained_now else f"read from {store.origin(r.directory)}")
            + ")"
            for s, r in runs.items()
        ),
        "Model": f"width {cfg['width']}, stem stride {cfg['stem_stride']}, neural tower " + (
            "with a residual around the attention (not in the paper)"
            if cfg["neural_residual"]
            else "as in the paper (no residual)"
        ),
        "Training": (
            f"until {cfg['select']} has not improved for {cfg['patience']} epochs (cap"
            f" {cfg['epochs']}), batch {cfg['batch_size']}, lr image {cfg['lr_image']:g} / neural"
            f" {cfg['lr_neural']:g}, device {get_device(device)}"
        ),
    },
)

# %% [markdown]
# ## Convergence
#
# Each seed's validation mean rank of the true image (lower is better; dashed: chance) per epoch. A dot
# marks the epoch the run keeps, and the shaded band the patience window after it: a run has converged when
# its criterion went through the whole window without a new best before the epoch cap. A run that reached
# its cap while still improving is marked not converged here, in every table built from it, and the claims
# ledger gives no verdict from it.

# %%
n_val = run.info["split_sizes"]["val"]
fig = plots.convergence_curves(
    {f"seed {s}": r.history for s, r in runs.items()},
    {f"seed {s}": r.info["selections"][r.info["selected"]]["epoch"] for s, r in runs.items()},
    "val_mean_rank",
    patience=cfg["patience"],
    converged={f"seed {s}": r.converged for s, r in runs.items()},
    chance=(n_val + 1) / 2,
)

# %%
convergence = pd.DataFrame(
    [
        {
            "seed": s,
            "run": r.name,
            "read from": "trained now" if r.trained_now else store.origin(r.directory),
            "epochs run": r.info["epochs_run"],
            "selected epoch": r.info["selections"][r.info["selected"]]["epoch"],
            "converged": r.converged,
            "train minutes": round(r.info["train_seconds"] / 60, 1),
        }
        for s, r in runs.items()
    ]
)
convergence

# %%
glue("n_seeds", len(runs), display=False)
glue("n_converged", int(sum(r.converged is True for r in runs.values())), display=False)
glue("mean_epochs_run", float(convergence["epochs run"].mean()), display=False)
glue("patience", int(cfg["patience"]), display=False)
glue("epoch_cap", int(cfg["epochs"]), display=False)

# %% [markdown]
# {glue:text}`n_converged` of {glue:text}`n_seeds` runs converged (patience {glue:text}`patience` epochs,
# cap {glue:text}`epoch_cap`); they ran {glue:text}`mean_epochs_run:.0f` epochs on average.

# %% [markdown]
# ## Training curves of the first seed
#
# Left: the training loss (mean batch InfoNCE over batches of up to 128 pairs) and the literal validation
# loss (one InfoNCE over all validation pairs, so an untrained model scores about log(number of
# validation pairs), more than log(batch size)). Middle and right: retrieval of each validation image
# from its response among all validation images, which is what the paper reports on the test set (dashed:
# chance). Vertical lines mark the epoch each criterion selects; the run keeps the one named in the banner
# and stores the others' test embeddings too (the results page compares them).

# %%
history = run.history
info = run.info
sel = {c: s["epoch"] for c, s in info["selections"].items() if c in ("val_mean_rank", "val_loss")}
fig = plots.loss_curves(
    history,
    sel,
    chance={
        "val_top1": 1 / n_val,
        "val_top5": 5 / n_val,
        "val_top10": 10 / n_val,
        "val_mean_rank": (n_val + 1) / 2,
    },
)

# %%
chosen = info["selected"]
best = history.set_index("epoch").loc[info["selections"][chosen]["epoch"]]
legacy = history.set_index("epoch").loc[max(info["selections"]["val_loss"]["epoch"], 1)]
glue("selected_criterion", chosen.replace("_", " "), display=False)
glue("best_epoch", int(info["selections"][chosen]["epoch"]), display=False)
glue("loss_epoch", int(info["selections"]["val_loss"]["epoch"]), display=False)
glue("epochs_run", int(info["epochs_run"]), display=False)
glue("train_minutes", info["train_seconds"] / 60, display=False)
glue("best_val_top1", float(best["val_top1"]), display=False)
glue("loss_val_top1", float(legacy["val_top1"]), display=False)
glue("n_train", info["split_sizes"]["train"], display=False)
glue("n_val", n_val, display=False)
glue("n_test", info["split_sizes"]["test"], display=False)
glue("chance_val_top1", 1 / n_val, display=False)

# %% [markdown]
# The first seed's run trained {glue:text}`epochs_run` epochs ({glue:text}`train_minutes:.1f` minutes when it
# was trained).
# Selecting on {glue:text}`selected_criterion` keeps epoch {glue:text}`best_epoch`, whose validation top-1
# is {glue:text}`best_val_top1:.2f` (chance {glue:text}`chance_val_top1:.3f`); the paper's literal
# "validation loss" would have kept epoch {glue:text}`loss_epoch` (validation top-1
# {glue:text}`loss_val_top1:.2f`). Split: {glue:text}`n_train` training, {glue:text}`n_val` validation and
# {glue:text}`n_test` held-out test images (test images are never seen during training or model
# selection; response z-scoring uses training images only).

# %%
display(
    Markdown(
        f"Run directory `{run.directory}`: "
        + ", ".join(f"`{p.name}`" for p in sorted(run.directory.iterdir()))
    )
)
pd.DataFrame({c: {"epoch": s["epoch"], "validation value": s["value"],
                  "complete (own patience ran out or all epochs ran)": s["complete"]}
              for c, s in info["selections"].items()}).T
