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
# # Results: retrieving the image from the neural response
#
# For every held-out test image, the neural tower embeds the population response and the image tower
# embeds all test images; the response *retrieves* the images ranked by cosine similarity. Top-k accuracy
# is the fraction of responses whose own image is among the k most similar (Table 1 of the paper, DINA
# column: 280-way retrieval at full size). This page reads the saved runs; it trains nothing.

# %% tags=["parameters"]
profile = "quick"
mice = ["M1", "M2", "M3", "M4"]
seed = 0
source = "auto"       # must match the training notebooks (checked against the saved runs)
twin_size = "quick"
twin_seed = 0
n_queries = 5         # rows of the top-5 retrieval panel

# %%
import numpy as np
from myst_nb import glue

from alignlib import plots
from alignlib.data import catalog
from alignlib.experiments.dina import (check_run_data, load_test_embeddings, representative_queries,
                                       retrieval_table, run_dir_for)
from alignlib.metrics.retrieval import retrieval_ranks, similarity_matrix
from alignlib.report import save_table, show_provenance

recordings = {m: catalog.load_mouse(m, source=source, twin_size=twin_size, twin_seed=twin_seed) for m in mice}
for m, rec in recordings.items():
    check_run_data(run_dir_for(profile, m, seed), rec)
show_provenance(profile, "; ".join(sorted({r.dataset for r in recordings.values()})),
                {"Runs": f"runs/dina/{profile}/<mouse>/seed{seed} for {', '.join(mice)}"})

# %% [markdown]
# ## Table 1, DINA column
#
# Accuracy with a 95 % percentile-bootstrap interval over test queries (2,000 resamples), per mouse, and
# the mean over mice. Chance is k / (number of test images).

# %%
table = retrieval_table(profile, mice, seed=seed)
save_table(table, "dina", "table1", {"profile": profile, "mice": mice, "seed": seed, "source": source,
                                      "twin_size": twin_size, "twin_seed": twin_seed})
view = table.assign(cell=[f"{a:.3f}" + ("" if np.isnan(lo) else f" [{lo:.3f}, {hi:.3f}]")
                          for a, lo, hi in zip(table.accuracy, table.ci_low, table.ci_high)])
view.pivot(index="mouse", columns="k", values="cell").rename(columns=lambda k: f"top-{k}")

# %%
mean = table[table.mouse == "mean"].set_index("k")
for k in (1, 5, 10):
    glue(f"mean_top{k}", float(mean.loc[k, "accuracy"]), display=False)
    glue(f"chance_top{k}", float(mean.loc[k, "chance"]), display=False)
glue("n_test", int(table.n_test.dropna().iloc[0]), display=False)
glue("top1_over_chance", float(mean.loc[1, "accuracy"] / mean.loc[1, "chance"]), display=False)

# %% [markdown]
# Averaged over mice, DINA retrieves the right image first in {glue:text}`mean_top1:.3f` of
# {glue:text}`n_test`-way queries (chance {glue:text}`chance_top1:.3f`, a factor
# {glue:text}`top1_over_chance:.1f` above chance), within the top 5 in {glue:text}`mean_top5:.3f` (chance
# {glue:text}`chance_top5:.3f`) and within the top 10 in {glue:text}`mean_top10:.3f` (chance
# {glue:text}`chance_top10:.3f`). These numbers come from this page's profile and data (see the banner):
# with the quick twin the test set is much smaller than the paper's 280 images, so chance is higher and
# the numbers are not comparable to the paper's Table 1 on real recordings.

# %% [markdown]
# ## Top-5 retrievals for representative neural queries (Fig. 3 style)
#
# Rows are responses chosen evenly along the rank distribution of the first mouse (best to worst);
# the first column is the image that evoked the response, then the five most similar test images;
# green frames mark the correct image.

# %%
first = mice[0]
emb = load_test_embeddings(run_dir_for(profile, first, seed))
sim = similarity_matrix(emb["z_neu"], emb["z_img"])
queries, topk = representative_queries(sim, n=n_queries, k=5)
test_images = recordings[first].session.images[emb["test_index"]]
ranks = retrieval_ranks(sim)
fig = plots.retrieval_panel(test_images[queries], test_images[topk], topk == queries[:, None],
                            [f"{first} query {q}\nrank {ranks[q]}" for q in queries])

# %% [markdown]
# ## Image–neural similarity matrices (Fig. A.1 style)
#
# Cosine similarity between every test response (rows) and every test image (columns); a bright diagonal
# means each response is closest to its own image.

# %%
mats = {}
for m in mice:
    e = load_test_embeddings(run_dir_for(profile, m, seed))
    mats[m] = similarity_matrix(e["z_neu"], e["z_img"])
fig = plots.similarity_matrices(mats)
