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
# fixed temperature of 0.01) on one mouse, restores the epoch with the lowest validation loss, and
# saves the run — resolved configuration, data identity, checkpoint, loss history and the held-out
# test embeddings — under `runs/dina/<profile>/<mouse>/seed<seed>/`. The results page reads those.

# %% tags=["parameters"]
profile = "quick"
mouse = "M1"
source = "auto"        # "auto": the real recording when present, else the twin; "real"; "twin"
twin_size = "quick"
twin_seed = 0
width = "quick"        # "quick" (narrow towers) or "paper" (the paper's widths)
epochs = 30
batch_size = 128
patience = 8           # early stopping on the validation loss
seed = 0               # initialisation and batch order
split_seed = 0         # which images are held out (shared by every model of this mouse)
device = "auto"        # "auto" picks CUDA when available

# %%
import json

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib import get_device, plots
from alignlib.data import catalog
from alignlib.experiments.dina import TEST_FRACTION, VAL_FRACTION, run_dir_for, train_mouse
from alignlib.report import show_provenance
from alignlib.train import TrainConfig

recording = catalog.load_mouse(mouse, source=source, twin_size=twin_size, twin_seed=twin_seed)
config = TrainConfig(epochs=epochs, batch_size=batch_size, patience=patience, seed=seed, device=device,
                     progress=False)
show_provenance(profile, recording.description,
                {"Mouse": f"{mouse} ({recording.stimset} images)", "Model width": width,
                 "Training": f"up to {epochs} epochs, batch {batch_size}, patience {patience}, seed {seed}, "
                             f"device {get_device(device)}"})

# %%
run_dir = run_dir_for(profile, mouse, seed)
result = train_mouse(recording, run_dir, width=width, config=config, split_seed=split_seed)
run = json.loads((run_dir / "run.json").read_text())
history = pd.DataFrame(result.history)

# %% [markdown]
# ## Loss curves
#
# Training loss is the mean batch InfoNCE (batches of up to 128 pairs); validation loss is one InfoNCE
# over all validation pairs, so the two are on different scales (an untrained model scores about
# log(batch size) and log(number of validation pairs)). The dotted line marks the restored epoch.

# %%
fig = plots.loss_curves(history, result.best_epoch)

# %%
glue("best_epoch", int(result.best_epoch), display=False)
glue("epochs_run", int(result.epochs_run), display=False)
glue("train_minutes", result.train_seconds / 60, display=False)
glue("n_train", run["split_sizes"]["train"], display=False)
glue("n_val", run["split_sizes"]["val"], display=False)
glue("n_test", run["split_sizes"]["test"], display=False)
glue("best_val_top1", float(history.loc[history.epoch == result.best_epoch, "val_top1"].iloc[0]), display=False)

# %% [markdown]
# Training ran {glue:text}`epochs_run` epochs in {glue:text}`train_minutes:.1f` minutes and restored epoch
# {glue:text}`best_epoch`, whose validation top-1 retrieval is {glue:text}`best_val_top1:.2f` over
# {glue:text}`n_val` validation images. Split: {glue:text}`n_train` training, {glue:text}`n_val` validation
# and {glue:text}`n_test` held-out test images (the test images are never seen during training or early
# stopping; response z-scoring uses training images only).

# %%
display(Markdown(f"Run saved to `{run_dir}`: " + ", ".join(f"`{p.name}`" for p in sorted(run_dir.iterdir()))))
pd.Series({"image tower parameters": run["n_parameters"]["image_tower"],
           "neural tower parameters": run["n_parameters"]["neural_tower"],
           "neurons": run["n_neurons"], "images": run["n_images"],
           "test fraction": TEST_FRACTION, "validation fraction": VAL_FRACTION}).to_frame("value")
