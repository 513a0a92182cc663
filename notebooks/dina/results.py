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
# column: 280-way retrieval at full size). Ties count as the expected result of breaking them at random,
# so a model that embeds everything alike scores exactly chance. This page reads the saved runs of the
# training pages (the same resolved configuration, found by its hash); it trains nothing.

# %% tags=["parameters"]
profile = "quick"
mice: list | None = None      # default: the natural-image mice M1-M4
source = "auto"               # must match the training pages
twin_seed = 0
seeds: list | None = None     # training seeds; None: the profile's (settings.SEEDS)
split_seed = 0
overrides: dict = {}          # DINA settings to change for every mouse (as on the training pages)
n_queries = 5                 # rows of the top-5 retrieval panel

# %%
import numpy as np
import pandas as pd
from myst_nb import glue

from alignlib import plots
from alignlib.claims import Measurement, published, record
from alignlib.experiments.dina import cast, settings
from alignlib.experiments.dina.workflow import find_run, retrieval_table, run_spec
from alignlib.metrics.retrieval import (
    matched_margin,
    representative_queries,
    retrieval_ranks,
    similarity_matrix,
)
from alignlib.metrics.uncertainty import paired_difference_ci
from alignlib.report import interval_table, save_table, show_provenance

mice = list(mice or settings.MICE)
cfg = settings.resolve(profile, **overrides)
recordings = {
    m: cast.load_mouse(m, source=source, twin_size=cfg["twin_size"], twin_seed=twin_seed)
    for m in mice
}
seeds = [int(s) for s in (seeds if seeds is not None else settings.SEEDS[profile])]
seed_runs = {
    m: [find_run(run_spec(rec, cfg, s, split_seed)) for s in seeds] for m, rec in recordings.items()
}
runs = {m: rs[0] for m, rs in seed_runs.items()}     # the first seed's run: figures below
n_runs = sum(len(rs) for rs in seed_runs.values())
n_conv = sum(r.converged is True for rs in seed_runs.values() for r in rs)
show_provenance(
    profile,
    "; ".join(sorted({r.dataset for r in recordings.values()})),
    {
        "Training seeds": (
            f"{', '.join(map(str, seeds))} per mouse ({n_conv} of {n_runs} runs converged)"
        ),
        "Model selection": cfg["select"],
    },
)

# %% [markdown]
# ## Table 1, DINA column
#
# Accuracy averaged over the training seeds, with a 95 % percentile-bootstrap interval over test queries
# (2,000 resamples; each query's hit averaged over the seeds first), per mouse; the mean over mice has an
# interval from resampling test images within each mouse, so it reflects the sampling of test images for
# these mice and seeds, not the variation between mice. The `converged` column says whether every run
# behind a row stopped by its patience rule (see the training pages). Chance is k / (number of test images).
# The runs of one row must share their whole configuration except the data (checked: mixing runs of
# different settings raises an error naming the difference). Cells read "top-k accuracy [95 % interval]"
# in percent; `results/dina/table1.csv` holds every number in full.

# %%
main = retrieval_table(seed_runs, model="DINA", variant=profile)
literal = retrieval_table(seed_runs, criterion="val_loss", model="DINA", variant=profile)
table = pd.concat([main, literal], ignore_index=True).drop_duplicates(["mouse", "selection", "k"])
interval_table(main, "mouse", "k", "accuracy", digits=1, scale=100, column_label="top-{} (%)")

# %%
save_table(
    table,
    "dina",
    "table1",
    {
        "profile": profile,
        "mice": mice,
        "seeds": seeds,
        "source": source,
        "settings": cfg,
        "runs": {m: [r.name for r in rs] for m, rs in seed_runs.items()},
    },
)

# %%
mean = main[main.mouse == "mean"].set_index("k")
for k in (1, 5, 10):
    glue(f"mean_top{k}", float(mean.loc[k, "accuracy"]), display=False)
    glue(f"chance_top{k}", float(mean.loc[k, "chance"]), display=False)
glue("mean_top1_low", float(mean.loc[1, "ci_low"]), display=False)
glue("mean_top1_high", float(mean.loc[1, "ci_high"]), display=False)
glue("n_test", int(main.n_test.dropna().iloc[0]), display=False)
glue("top1_over_chance", float(mean.loc[1, "accuracy"] / mean.loc[1, "chance"]), display=False)
glue("paper_top1", float(published("dina.table1.DINA.mean.1").value.iloc[0]), display=False)
real = all(r.source == "real" for r in recordings.values())
glue(
    "data_difference",
    (
        "These runs use the real recordings, but the quick profile shrinks the models and training,"
        " so the numbers are shown side by side in the claims ledger rather than compared."
        if real
        else (
            "These runs use the ground-truth twin, not the recordings, and a smaller test set"
            " (chance is higher), so the two numbers are shown side by side in the claims ledger,"
            " not compared."
        )
    ),
    display=False,
)

# %% [markdown]
# Averaged over mice, DINA retrieves the right image first in {glue:text}`mean_top1:.3f`
# [{glue:text}`mean_top1_low:.3f`, {glue:text}`mean_top1_high:.3f`] of {glue:text}`n_test`-way queries
# (chance {glue:text}`chance_top1:.3f`, a factor {glue:text}`top1_over_chance:.1f` above chance), within the
# top 5 in {glue:text}`mean_top5:.3f` (chance {glue:text}`chance_top5:.3f`) and within the top 10 in
# {glue:text}`mean_top10:.3f` (chance {glue:text}`chance_top10:.3f`). The paper reports
# {glue:text}`paper_top1:.2f` % mean top-1 in 280-way retrieval on the real recordings.
# {glue:text}`data_difference`

# %% [markdown]
# ## Which epoch to test: model selection
#
# The paper selects on the "validation loss". Taken literally (one InfoNCE at τ = 0.01 over all
# validation pairs) that loss can rise while validation retrieval still improves (the training pages plot
# both), and then keeps earlier epochs. This book selects on the validation mean rank of the true image (see
# the methods page); both selections come from the same training runs, so the difference below is due to
# the selection alone. A literal-loss selection marked incomplete below means training stopped (on the
# mean rank) before the loss's own patience ran out, so a run selecting on the loss might have gone on.

# %%
interval_table(
    table[table.k.isin([1, 10])],
    "mouse",
    ["selection", "k"],
    "accuracy",
    digits=1,
    scale=100,
    column_label=lambda c: f"top-{c} (%)" if isinstance(c, (int, np.integer)) else c,
)

# %%
epochs = pd.DataFrame({
    m: {
        **{c: s["epoch"] for c, s in r.info["selections"].items()},
        "val_loss selection complete": r.info["selections"]["val_loss"]["complete"],
    }
    for m, r in runs.items()
}).T
epochs.rename(columns=lambda c: c if "complete" in c else f"epoch selected by {c}")

# %%
lit_mean = literal[(literal.mouse == "mean") & (literal.k == 1)].accuracy.iloc[0]
glue("literal_top1", float(lit_mean), display=False)

# %% [markdown]
# With the literal validation loss the mean top-1 would be {glue:text}`literal_top1:.3f` instead of
# {glue:text}`mean_top1:.3f`.

# %%
rows = []
for _, r in main.iterrows():
    data = (
        f"{recordings[mice[0]].dataset},"
        f" {int(r.n_test) if r.mouse != 'mean' else int(main.n_test.dropna().iloc[0])}-way"
    )
    rows.append(
        Measurement(
            f"dina.table1.DINA.{r.mouse}.{int(r.k)}",
            100 * r.accuracy,
            100 * r.ci_low,
            100 * r.ci_high,
            rule="not_comparable",
            chance=100 * r.chance,
            our_data=data,
            page="dina/results",
            converged=bool(r.converged),
        )
    )
m1 = mean.loc[1]
rows.append(
    Measurement(
        "dina.retrieval_above_chance",
        100 * m1.accuracy,
        100 * m1.ci_low,
        100 * m1.ci_high,
        rule="above_chance" if real else "not_comparable",
        chance=100 * m1.chance,
        our_data=f"{recordings[mice[0]].dataset}, mean top-1 over {len(mice)} mice",
        page="dina/results",
        converged=bool(m1.converged),
    )
)
# App. A (Fig. A.1): "corresponding image-neural pairs consistently achieve higher similarity than
# non-matching pairs". Per test response: its matched cosine minus its mean unmatched cosine,
# averaged over the seeds; the mean over mice with a bootstrap over test images within each mouse
# (paired_difference).
margins = {
    m: np.mean([
        matched_margin(
            similarity_matrix(r.test_embeddings()["z_neu"], r.test_embeddings()["z_img"])
        )
        for r in rs
    ], axis=0)
    for m, rs in seed_runs.items()
}
margin, margin_low, margin_high = paired_difference_ci(
    list(margins.values()), [np.zeros_like(v) for v in margins.values()])
glue("matched_margin", margin, display=False)
glue("matched_margin_ci", f"[{margin_low:.3f}, {margin_high:.3f}]", display=False)
glue("matched_margin_min_mouse", float(min(v.mean() for v in margins.values())), display=False)
all_margins = np.concatenate(list(margins.values()))
glue("matched_share_positive", float(np.mean(all_margins > 0)), display=False)
rows.append(
    Measurement(
        "dina.matched_above_unmatched",
        margin,
        margin_low,
        margin_high,
        rule="paired_difference" if (real or set(mice) == set(settings.MICE)) else "not_comparable",
        our_data=(
            f"{recordings[mice[0]].dataset}, mean over {len(mice)} mice of the matched minus mean"
            f" unmatched cosine per test response ({len(seeds)} seed(s) averaged)"
        ),
        page="dina/results",
        converged=all(r.converged is True for rs in seed_runs.values() for r in rs),
    )
)
claims = record("dina", "results", rows)
claims[["claim", "published", "value", "ci_low", "ci_high", "verdict"]].round(2).tail(6)

# %% [markdown]
# ## Top-5 retrievals for representative neural queries (Fig. 3 style)
#
# Rows are responses chosen evenly along the rank distribution of the first mouse (best to worst);
# the first column is the image that evoked the response, then the five most similar test images;
# green frames mark the correct image.

# %%
first = mice[0]
emb = runs[first].test_embeddings()
sim = similarity_matrix(emb["z_neu"], emb["z_img"])
queries, topk = representative_queries(sim, n=n_queries, k=5)
test_images = recordings[first].session.images[emb["test_index"]]
ranks = retrieval_ranks(sim)
fig = plots.retrieval_panel(test_images[queries], test_images[topk], topk == queries[:, None],
                            [f"{first} query {q}\nrank {ranks[q]:g}" for q in queries])

# %% [markdown]
# ## Image–neural similarity matrices (Fig. A.1 style)
#
# Cosine similarity between every test response (rows) and every test image (columns); a bright diagonal
# means each response is closest to its own image. In numbers: a response's cosine to its own image exceeds
# its mean cosine to the other test images by {glue:text}`matched_margin:.3f`
# {glue:text}`matched_margin_ci` (mean over mice and seeds, 95 % interval over test images within mice;
# the smallest mouse mean is {glue:text}`matched_margin_min_mouse:.3f`). A collapsed model would score 0.
# The paper says "consistently": here {glue:text}`matched_share_positive:.0%` of the test responses are
# closer to their own image than to the others on average. The ledger judges only the side of the mean
# margin (claim `dina.matched_above_unmatched`); it follows from any above-chance retrieval, so it says
# that the towers align, not that they align well.

# %%
mats = {
    m: similarity_matrix(r.test_embeddings()["z_neu"], r.test_embeddings()["z_img"])
    for m, r in runs.items()
}
fig = plots.similarity_matrices(mats)
