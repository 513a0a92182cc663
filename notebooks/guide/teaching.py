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
# # Teaching with this book
#
# Every page of this book is a notebook that a student can re-run with other parameters, and most pages
# end with exercises whose solutions are hidden and computed on the page. This page says which pages fit
# a 90-minute class, how long each takes to run in the `quick` profile (measured: the run times below are
# read from the manifests that the runner writes beside every executed page, not typed), how to open one
# page interactively in Jupyter, and how to pin the environment.

# %% tags=["parameters"]
profile = "quick"
class_minutes = 90        # length of one class
# of which kept for reading, discussion and exercises (the rest may run pages)
reading_minutes = 60

# %%
import json

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib.paths import REPO_ROOT, runs_dir
from alignlib.report import save_table, show_provenance
from alignlib.runner.cache import read_manifest
from alignlib.runner.execute import default_executed_dir
from alignlib.runner.pipeline import load_pipeline

pipeline = load_pipeline()
executed = default_executed_dir()
rows = []
for run in [r for r in pipeline.expand(profile) if r.notebook != "guide/teaching"]:  # not this page
    m = read_manifest(executed, run.output) or {}
    rows.append({
        "page": run.output,
        "chapter": run.output.split("/")[0],
        "profile": m.get("components", {}).get("parameters", {}).get("profile", ""),
        "seconds": m.get("duration_s", float("nan")),
        "started": m.get("started", ""),
        "cpus": m.get("machine", {}).get("cpu_count"),
        "status": m.get("status", "not executed yet"),
    })
pages = pd.DataFrame(rows)
measured = pages[pages.profile == profile].dropna(subset=["seconds"])
machines = sorted({int(c) for c in measured.cpus.dropna()})
where = executed.relative_to(REPO_ROOT) if executed.is_relative_to(REPO_ROOT) else executed.name
show_provenance(
    profile,
    f"the runner's manifests in `{where}/` ({len(measured)} of {len(pages)} pages "
    "executed in this profile)",
)
_ = save_table(pages, "guide", "page_times", {"profile": profile, "executed_dir": str(executed)})

# %% [markdown]
# ## How long each page takes (`quick` profile)
#
# The time of each page's last execution, as the runner recorded it (`book/executed/**/*.manifest.json`,
# `duration_s`), on the machine that built this book. A page that trains reuses a run that was already
# trained with the same configuration (runs are cached under `runs/`, keyed by their configuration), so
# its recorded time may be the time to *load* the run; the training time of every cached run is listed
# in the next table, and a student starting from an empty cache pays both.

# %%
glue("n_cpus", ", ".join(map(str, machines)) or "unknown", display=False)
glue("total_minutes", float(measured.seconds.sum() / 60), display=False)
per_chapter = measured.groupby("chapter", sort=False).seconds.agg(["count", "sum"]).rename(
    columns={"count": "pages", "sum": "seconds"})
for chapter, row in per_chapter.iterrows():
    glue(f"minutes_{chapter}", float(row.seconds / 60), display=False)
pages.assign(minutes=(pages.seconds / 60).round(2)).drop(columns=["seconds"]).set_index("page")

# %% [markdown]
# Measured on a machine with {glue:text}`n_cpus` CPU cores: the whole book took
# {glue:text}`total_minutes:.1f` minutes of page execution in this profile.

# %%
trained = []
for spec_file in sorted(runs_dir().glob("*/*/run.json")):
    info = json.loads(spec_file.read_text())
    if "train_seconds" in info:
        trained.append({"chapter": spec_file.parent.parent.name, "run": spec_file.parent.name,
                        "train_seconds": info["train_seconds"], "epochs": info.get("epochs_run"),
                        "threads": info.get("execution", {}).get("threads")})
trained = pd.DataFrame(trained, columns=["chapter", "run", "train_seconds", "epochs", "threads"])
_ = save_table(trained, "guide", "run_times", {"runs_dir": str(runs_dir())})
glue("n_runs", len(trained), display=False)
glue(
    "median_run_minutes",
    float(trained.train_seconds.median() / 60) if len(trained) else float("nan"),
    display=False,
)
(
    trained.groupby("chapter")
    .train_seconds.agg(["count", "median", "sum"])
    .rename(columns={"count": "runs", "median": "median seconds per run", "sum": "total seconds"})
    .round(1)
)

# %% [markdown]
# The {glue:text}`n_runs` training runs cached in `runs/` took a median of
# {glue:text}`median_run_minutes:.1f` minutes each to train (all runs, including those of earlier
# configurations that the current pages no longer use).

# %% [markdown]
# ## Which pages fit a 90-minute class
#
# Our rule (a choice, stated here): a page, or a group of pages, fits a class when running it in the
# `quick` profile leaves the class's reading time free, i.e. when it runs in at most
# {glue:text}`run_minutes` minutes (a {glue:text}`class_minutes`-minute class minus
# {glue:text}`reading_minutes` minutes for reading, discussion and exercises). Pages that fail the rule
# can still be taught from the book as built, with students re-running only the cheap variants the
# exercises ask for, or can be run before the class.

# %%
budget_s = 60 * (class_minutes - reading_minutes)
glue("run_minutes", class_minutes - reading_minutes, display=False)
glue("class_minutes", class_minutes, display=False)
glue("reading_minutes", reading_minutes, display=False)
plan = per_chapter.assign(minutes=lambda d: (d.seconds / 60).round(1),
                          fits=lambda d: d.seconds <= budget_s).drop(columns="seconds")
fitting_pages = measured[measured.seconds <= budget_s].page.tolist()
glue("n_fitting", len(fitting_pages), display=False)
glue("n_measured", len(measured), display=False)
_ = save_table(
    plan.reset_index(), "guide", "class_plan", {"profile": profile, "budget_s": budget_s}
)
plan

# %% [markdown]
# In this build {glue:text}`n_fitting` of the {glue:text}`n_measured` executed pages fit the rule on their
# own (the chapter table above says whether a whole chapter does). Suggested classes, by content:
#
# 1. **Data and what a population code looks like**: the DINA data page (reliability, eigenspectra,
#    near-duplicates) and its exercises on the power law and on neuron counts.
# 2. **The model and its objective**: the methods page (shapes, parameter counts, the InfoNCE objective)
#    and its exercises on chance levels and temperature.
# 3. **Training and judging a result**: one training page (a single mouse), the results page and the claims
#    ledger: what is compared with what, and why a number on the twin is "not comparable".
#
# ## Opening a page in Jupyter
#
# The notebook sources are plain Python files in the jupytext `py:percent` format
# (`notebooks/<chapter>/<page>.py`). To work on one interactively:
#
# ```bash
# make install                                   # or: conda env create -f environment.yml (below)
# export ALIGNLIB_DATA_DIR=/path/to/data         # real recordings; without them pages use the twin
# .venv/bin/jupytext --set-formats ipynb,py:percent notebooks/dina/data.py   # pair: writes data.ipynb
# .venv/bin/jupyter lab notebooks/dina/data.ipynb
# ```
#
# Jupytext keeps the two files in sync on every save (the `.ipynb` copy is ignored by git; the `.py` file
# is the source). Change parameters in the cell tagged `parameters` (its first line is
# `profile = "quick"`), and run the page as the book does, with its outputs saved, with
# `alignlib run dina/data -p paper_check_neurons=500`. A run with other parameters writes its tables to
# `results/` like the book's own run, so re-run the page without `-p` before building the book again.
#
# ## Pinning the environment
#
# `environment.yml` creates a conda environment with the book's dependencies (`conda env create -f
# environment.yml && conda activate alignlib`); `make install` does the same with pip into `.venv`. For a
# class, freeze what you tested once and hand it out: `pip freeze > requirements-class.txt`, then
# `pip install -r requirements-class.txt` on the students' machines. The versions that executed this book
# are recorded in every page's manifest:

# %%
versions = {}
for run in pipeline.expand(profile):
    versions.update((read_manifest(executed, run.output) or {}).get("versions", {}))
pd.Series(versions, name="version").rename_axis("package").to_frame()
