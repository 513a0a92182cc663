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
# # Data: does the Allen preparation carry stimulus information?
#
# The VNA chapter's real data are {glue:text}`n_scenes` natural scenes of the Allen Brain Observatory at
# {glue:text}`side` × {glue:text}`side` pixels with the mean dF/F (over {glue:text}`n_repeats` repeats) of
# {glue:text}`n_cells` cells of mouse VISp, as prepared in the public repository
# psailamul/Allen_Brain_Observatory. Before training any model, this page asks whether the responses
# carry information about the images at all, with tests that need no deep model: representational
# similarity with a permutation null, linear encoding and decoding in cross-validation, and a search for
# an ordering mistake in the preparation. The same tests on as many images of the ground-truth twin
# ({glue:text}`n_twin_control` in this profile; the responses are known to depend on the images there) show what
# they detect when signal exists.

# %% tags=["parameters"]
profile = "quick"
n_permutations = 1000      # permutations of the RSA null
n_shuffles = 200           # shuffles of the eigenvalue and index-autocorrelation nulls
k_folds = 5                # cross-validation folds of the linear models
twin_mouse = "M1"
twin_seed = 0
seed = 0

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from myst_nb import glue
from skimage.transform import resize

from alignlib.data.allen import FILES, N_REPEATS, SPLIT_SEED, load_allen_ns118
from alignlib.experiments.dina import cast
from alignlib.experiments.vna import settings
from alignlib.experiments.vna import signal as sig
from alignlib.metrics.uncertainty import bootstrap_ci
from alignlib.report import save_table, show_provenance

cfg = settings.resolve(profile)
allen = load_allen_ns118()
twin = cast.load_mouse(twin_mouse, source="twin", twin_size=cfg["twin_size"], twin_seed=twin_seed)
rng = np.random.default_rng(seed)
pick = np.sort(
    rng.choice(
        twin.session.n_images, size=min(allen.n_scenes, twin.session.n_images), replace=False
    )
)
twin_images = np.stack([resize(im, allen.images.shape[1:], anti_aliasing=True, preserve_range=True)
                        for im in twin.session.images[pick]])
twin_responses = twin.session.mean_response[pick]
show_provenance(
    profile,
    f"{allen.meta['dataset']}; control: {twin.dataset}, mouse {twin_mouse}",
    {
        "Split check": allen.meta["split_check"],
        "Shrunk in quick": (
            f"{n_permutations} RSA permutations, {n_shuffles} shuffles, {k_folds}-fold CV "
            "(the same in the paper profile: this page is cheap)"
        ),
    },
)
glue("n_scenes", allen.n_scenes, display=False)
glue("n_cells", allen.n_cells, display=False)
glue("split_seed", SPLIT_SEED, display=False)
glue("n_train", len(allen.split["train"]), display=False)
glue("n_twin_control", len(pick), display=False)
glue("side", allen.images.shape[1], display=False)
glue("n_repeats", N_REPEATS, display=False)
glue("n_permutations", n_permutations, display=False)
glue("n_pixels", int(np.prod(allen.images.shape[1:])), display=False)
glue(
    "n_components",
    inspect.signature(sig.linear_cv_aucs).parameters["n_components"].default,
    display=False,
)
glue("n_cca_pairs", sig.N_CCA_PAIRS, display=False)
grid = inspect.signature(sig.coarse_features).parameters["grid"].default

# %%
glue("feature_grid", grid, display=False)
glue("n_features", 2 * grid ** 2, display=False)

# %% [markdown]
# ## The files and the stated split
#
# The loader (`alignlib.data.allen.load_allen_ns118`) re-derives the preparation's split,
# `np.random.seed(`{glue:text}`split_seed`)`; np.random.permutation(`{glue:text}`n_scenes`)`, first
# {glue:text}`n_train` train, and checks that every
# train and test input equals the scene that permutation names; it then puts the {glue:text}`n_scenes`
# scenes and the {glue:text}`n_cells` response columns back into scene order, so that other splits (the
# k-fold cross-validation of the next page) can be drawn. The check passed (banner). A few scenes and the
# population response they are paired with:

# %%
fig, axes = plt.subplots(2, 6, figsize=(10, 3.6), gridspec_kw={"height_ratios": [3, 1]})
for col, k in enumerate(np.linspace(0, allen.n_scenes - 1, 6).astype(int)):
    axes[0, col].imshow(allen.images[k], cmap="gray", vmin=0, vmax=255)
    axes[0, col].set_title(f"scene {k}", fontsize=9)
    axes[0, col].axis("off")
    axes[1, col].bar(np.arange(allen.n_cells), allen.responses[k], width=1.0, color="0.3")
    axes[1, col].set_ylim(np.percentile(allen.responses, 0.5), np.percentile(allen.responses, 99.5))
    axes[1, col].set_xticks([])
    axes[1, col].set_xlabel("cell", fontsize=8)
axes[1, 0].set_ylabel("dF/F (%)", fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## Representational similarity with a permutation null
#
# Image features: the mean luminance and the s.d. (local contrast) of each block of a
# {glue:text}`feature_grid` × {glue:text}`feature_grid` grid ({glue:text}`n_features` features). Dissimilarities: Euclidean between z-scored features, correlation distance between z-scored
# population responses. The RSA statistic is the Spearman correlation of the two dissimilarity matrices;
# the null permutes the scenes' labels of the responses ({glue:text}`n_permutations` times). "Shift s" pairs
# image k with the response stored for scene k + s (an off-by-one in the scene index, e.g. the blank-sweep
# row counted as a scene, would show up as a peak at s = ±1).

# %%
sets = {
    "Allen (real)": (allen.images, allen.responses),
    f"twin {twin_mouse} (control)": (twin_images, twin_responses),
}
rsa_rows, nulls = [], {}
for name, (imgs, resp) in sets.items():
    feats = sig.coarse_features(imgs)
    obs, null, p = sig.rsa_permutation_test(feats, resp, n_permutations, seed)
    nulls[name] = (obs, null)
    rsa_rows.append({
        "data": name,
        "shift": 0,
        "rsa": obs,
        "null_sd": null.std(),
        "null_q95": np.quantile(null, 0.95),
        "p_value": p,
    })
    for s in (-2, -1, 1, 2):
        rsa_rows.append({
            "data": name,
            "shift": s,
            "rsa": sig.rsa(feats, resp, s),
            "null_sd": null.std(),
            "null_q95": np.quantile(null, 0.95),
            "p_value": np.nan,
        })
rsa_table = pd.DataFrame(rsa_rows)
save_table(
    rsa_table,
    "vna",
    "signal_rsa",
    {"n_permutations": n_permutations, "seed": seed, "features": "4x4 block mean + s.d."},
)
a0 = rsa_table[(rsa_table.data == "Allen (real)") & (rsa_table["shift"] == 0)].iloc[0]
t0 = rsa_table[(rsa_table.data != "Allen (real)") & (rsa_table["shift"] == 0)].iloc[0]
glue("rsa_allen", float(a0.rsa), display=False)
glue("rsa_allen_null_sd", float(a0.null_sd), display=False)
glue("rsa_allen_p", float(a0.p_value), display=False)
glue("rsa_allen_q95", float(a0.null_q95), display=False)
glue("rsa_twin", float(t0.rsa), display=False)
glue("rsa_twin_p", float(t0.p_value), display=False)
glue(
    "rsa_allen_max_shift",
    float(rsa_table[rsa_table.data == "Allen (real)"].rsa.abs().max()),
    display=False,
)
rsa_table.pivot(index="shift", columns="data", values="rsa").round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for ax, (name, (obs, null)) in zip(axes, nulls.items()):
    ax.hist(
        null, bins=40, color=sns.color_palette("colorblind")[0], alpha=0.8, label="permutation null"
    )
    ax.axvline(obs, color=sns.color_palette("colorblind")[3], lw=2, label=f"observed {obs:.3f}")
    ax.set(title=name, xlabel="RSA (Spearman of dissimilarities)", ylabel="permutations")
    ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()

# %% [markdown]
# On the Allen preparation the RSA is {glue:text}`rsa_allen:.4f` against a null of s.d.
# {glue:text}`rsa_allen_null_sd:.4f` (one-sided p = {glue:text}`rsa_allen_p:.3f`; the null's 95th percentile is
# {glue:text}`rsa_allen_q95:.4f`), and no shift of one or two scenes does better (largest |RSA| over shifts
# {glue:text}`rsa_allen_max_shift:.4f`). On the twin the same statistic is {glue:text}`rsa_twin:.3f`
# (p = {glue:text}`rsa_twin_p:.3f`): the test detects image-driven structure of this kind when it exists.

# %% [markdown]
# ## Linear encoding and decoding in cross-validation
#
# Ridge regression (regularisation chosen by leave-one-out CV inside the training folds) from the
# {glue:text}`n_pixels` pixels to the {glue:text}`n_cells` z-scored responses (encoding) and back (decoding), and
# CCA between the first {glue:text}`n_components` principal components of each side ({glue:text}`n_cca_pairs`
# canonical pairs), in {glue:text}`k_folds`-fold cross-validation. Every
# test scene is scored as on the next page: discriminative encoding (image query, the fold's responses as
# candidates) and decoding (response query, images as candidates), ROC AUC per query (chance 0.5), mean
# over the {glue:text}`n_scenes` scenes with a 95 % bootstrap interval over scenes.

# %%
glue("k_folds", k_folds, display=False)
lin_rows = []
for name, (imgs, resp) in sets.items():
    res = sig.linear_cv_aucs(imgs, resp, k=k_folds, seed=seed)
    for method, tasks in res.items():
        for task, v in {**tasks, "average": (tasks["encoding"] + tasks["decoding"]) / 2}.items():
            lo, hi = bootstrap_ci(v, seed=seed)
            lin_rows.append({
                "data": name,
                "method": method,
                "task": task,
                "auc": v.mean(),
                "ci_low": lo,
                "ci_high": hi,
            })
linear = pd.DataFrame(lin_rows)
save_table(linear, "vna", "signal_linear", {"k_folds": k_folds, "seed": seed})
al = linear[(linear.data == "Allen (real)") & (linear.task == "average")]
tw = linear[(linear.data != "Allen (real)") & (linear.task == "average")]
glue("lin_allen_min", float(al.auc.min()), display=False)
glue("lin_allen_max", float(al.auc.max()), display=False)
glue("lin_allen_cimax", float(al.ci_high.max()), display=False)
glue("lin_allen_cimin", float(al.ci_low.min()), display=False)
best_tw = tw.sort_values("auc").iloc[-1]
glue("lin_twin_best", float(best_tw.auc), display=False)
glue("lin_twin_best_low", float(best_tw.ci_low), display=False)
glue("lin_twin_best_high", float(best_tw.ci_high), display=False)
glue("lin_twin_best_method", best_tw.method.replace("_", " "), display=False)
linear.assign(
    value=[
        f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
        for a, lo, hi in zip(linear.auc, linear.ci_low, linear.ci_high)
    ]
).pivot_table(index=["data", "method"], columns="task", values="value", aggfunc="first")[
    ["encoding", "decoding", "average"]
]

# %% [markdown]
# On Allen, the linear models' average AUC lies between {glue:text}`lin_allen_min:.3f` and
# {glue:text}`lin_allen_max:.3f` (every 95 % interval within [{glue:text}`lin_allen_cimin:.3f`,
# {glue:text}`lin_allen_cimax:.3f`]). On the twin control the best linear model ({glue:text}`lin_twin_best_method`)
# reaches {glue:text}`lin_twin_best:.3f` [{glue:text}`lin_twin_best_low:.3f`, {glue:text}`lin_twin_best_high:.3f`]:
# a modest effect ({glue:text}`n_twin_control` scenes and hundreds of noisy cells are little for a linear map of
# {glue:text}`n_pixels` pixels), so
# this test has less power than the RSA; on Allen it finds nothing either. An exact 0.5 for ridge encoding's encoding AUC (or ridge decoding's decoding
# AUC) means the leave-one-out CV chose the largest regularisation, i.e. a constant prediction: the ranking
# of candidates is then the same for every query and the mean AUC is exactly one half.

# %% [markdown]
# ## Is there any reproducible structure in the responses? (the noise-ceiling question)
#
# A noise ceiling needs trial-level responses; the shared folder holds only the means over
# {glue:text}`n_repeats` repeats (the
# repository's trial-level file is not part of it), so no split-half ceiling can be computed here. What can
# be tested is whether the {glue:text}`n_scenes` × {glue:text}`n_cells` matrix is more than independent noise: if it were, the largest
# eigenvalue of the cells' correlation matrix would match the null with each cell's responses shuffled
# across scenes. And because the Allen protocol shows the scenes in random order, responses to scenes with
# neighbouring template indices should be no more alike than any other pair.

# %%
ev, ev_null = sig.shared_structure_test(allen.responses, n_shuffles, seed)
lags = np.arange(1, 11)
ac_resp, ac_null = sig.index_autocorrelation(allen.responses, lags, n_shuffles, seed)
ac_img, _ = sig.index_autocorrelation(allen.images, lags, 2, seed)
ac_twin, _ = sig.index_autocorrelation(twin_responses, lags, 2, seed)
structure = pd.DataFrame({
    "lag": lags,
    "responses (Allen)": ac_resp,
    "images (Allen)": ac_img,
    "responses (twin, random order)": ac_twin,
    "null mean": ac_null.mean(0),
    "null q2.5": np.quantile(ac_null, 0.025, axis=0),
    "null q97.5": np.quantile(ac_null, 0.975, axis=0),
})
save_table(
    structure, "vna", "signal_index_autocorrelation", {"n_shuffles": n_shuffles, "seed": seed}
)
glue("ev1", float(ev[0]), display=False)
glue("ev1_null_max", float(ev_null.max()), display=False)
glue("ev1_frac", float(ev[0] / ev.sum()), display=False)
glue("ac1_resp", float(ac_resp[0]), display=False)
glue("ac1_img", float(ac_img[0]), display=False)
glue("ac_null_sd", float(ac_null[:, 0].std()), display=False)
glue("ac_min_lag", int(lags[np.argmin(ac_resp)]), display=False)
glue("ac_min", float(ac_resp.min()), display=False)
glue("ac2_resp", float(ac_resp[1]), display=False)
below = (
    ac_resp < structure["null q2.5"].to_numpy()
)  # lags below the random-order null's 2.5 % quantile
first_neg = int(np.argmax(below & (lags > 2)))  # first such lag beyond distance 2 (index into lags)
last_neg = first_neg
while last_neg + 1 < len(lags) and below[last_neg + 1]:
    last_neg += 1
glue("ac_neg_first", int(lags[first_neg]), display=False)
glue("ac_neg_last", int(lags[last_neg]), display=False)

# the last response column (hypothesis: running speed dx) beside the cells
resp = np.asarray(allen.responses, dtype=float)
last = resp[:, -1]
cell_ac1 = np.array([np.corrcoef(c[:-1], c[1:])[0, 1] for c in resp.T])
r_last = np.corrcoef(resp.T)[-1, :-1]
last_col = pd.DataFrame({
    "statistic": [
        "mean",
        "min",
        "max",
        "fraction < 0",
        "s.d.",
        "median s.d. of the others",
        "lag-1 autocorrelation",
        "median lag-1 of the others",
        "max |r| with another column",
    ],
    "value": [
        last.mean(),
        last.min(),
        last.max(),
        (last < 0).mean(),
        last.std(ddof=1),
        np.median(resp[:, :-1].std(0, ddof=1)),
        cell_ac1[-1],
        np.median(cell_ac1[:-1]),
        np.abs(r_last).max(),
    ],
})
save_table(
    last_col, "vna", "signal_last_column", {"note": "hypothesis: last column = running speed dx"}
)
for key, v in zip(
    [
        "last_mean",
        "last_min",
        "last_max",
        "last_neg",
        "last_sd",
        "cell_sd_median",
        "last_ac1",
        "cell_ac1_median",
        "last_rmax",
    ],
    last_col.value,
):
    glue(key, float(v), display=False)
last_col.round(3)

# %%
z = sig.zscore(allen.responses)
u, s, _ = np.linalg.svd(z, full_matrices=False)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
axes[0].plot(np.arange(1, 21), ev[:20], "o-", ms=3, label="Allen responses")
axes[0].axhline(ev_null.max(), color="0.5", ls="--", label="largest, shuffled null")
axes[0].set(xlabel="component", ylabel="eigenvalue", title="cell-correlation spectrum")
axes[0].legend(fontsize=8, loc="upper right")
pal = sns.color_palette("colorblind")
axes[1].fill_between(
    lags, structure["null q2.5"], structure["null q97.5"], color="0.85", label="null (random order)"
)
axes[1].plot(lags, ac_resp, "o-", color=pal[3], label="Allen responses")
axes[1].plot(lags, ac_img, "s-", color=pal[0], label="Allen images")
axes[1].plot(lags, ac_twin, "^-", color=pal[2], label="twin responses")
axes[1].set(
    xlabel="distance in scene index",
    ylabel="mean correlation",
    title="neighbours in the template order",
)
axes[1].legend(fontsize=7, loc="lower right")
axes[2].plot(u[:, 0] * s[0], color=pal[3])
axes[2].set(
    xlabel="scene index (template order)",
    ylabel="score",
    title="first principal component of responses",
)
fig.tight_layout()

# %% [markdown]
# The responses are far from noise: the first eigenvalue of the cells' correlation matrix is
# {glue:text}`ev1:.1f` ({glue:text}`ev1_frac:.2f` of the total), against at most {glue:text}`ev1_null_max:.1f` with each
# cell shuffled across scenes. But that shared structure follows the **scene index**: responses to
# neighbouring scenes correlate by {glue:text}`ac1_resp:.2f` on average (null s.d.
# {glue:text}`ac_null_sd:.3f`), turning negative around {glue:text}`ac_min_lag` scenes apart
# ({glue:text}`ac_min:.2f`), while the images at neighbouring indices do not resemble each other
# ({glue:text}`ac1_img:.3f`). The profile is not smooth: it is large at distance 1 only (distance 2:
# {glue:text}`ac2_resp:.2f`), below the null at distances {glue:text}`ac_neg_first`–{glue:text}`ac_neg_last` and
# near zero beyond (table above). With scenes shown in
# random order, genuine scene responses should not correlate with their template-index neighbours at all. Our reading: the response rows are
# not the responses to the images they are stored with, and no shift of the index repairs the pairing
# (RSA above). We cannot say from these files what the rows are.
#
# Were the stored outputs shuffled with the same seed-{glue:text}`split_seed` permutation as the inputs? If so,
# adjacent rows of each stored file (file order = permutation order) should not correlate, and putting the rows
# back into scene order should bring the neighbour correlation back:

# %%
storage_rows = []
for name in ("train", "test"):
    stored = np.load(allen.folder / FILES[f"{name}_output"], allow_pickle=False)
    storage_rows.append({
        "file": FILES[f"{name}_output"],
        **sig.storage_order_lag1(stored, allen.split[name], n_shuffles, seed),
    })
storage_rows.append({
    "file": "both, in scene order (the loader's responses)",
    **sig.storage_order_lag1(allen.responses, np.arange(allen.n_scenes), n_shuffles, seed),
})
storage = pd.DataFrame(storage_rows)
storage.loc[storage.index[-1], "lag1_file_order"] = (
    np.nan
)  # the loader's array is already in scene order
save_table(
    storage,
    "vna",
    "signal_storage_order",
    {"n_shuffles": n_shuffles, "seed": seed, "split_seed": SPLIT_SEED},
)
tr, te, both = storage.iloc[0], storage.iloc[1], storage.iloc[2]
glue("lag1_train_file", float(tr.lag1_file_order), display=False)
glue("lag1_train_scene", float(tr.lag1_scene_order), display=False)
glue("lag1_train_null_sd", float(tr.null_sd), display=False)
glue("train_adjacent_frac", float(tr.adjacent_scene_fraction), display=False)
glue("lag1_test_file", float(te.lag1_file_order), display=False)
glue("lag1_test_scene", float(te.lag1_scene_order), display=False)
glue("lag1_test_null_sd", float(te.null_sd), display=False)
glue("test_adjacent_frac", float(te.adjacent_scene_fraction), display=False)
glue("n_test", int(te.n_rows), display=False)
glue("lag1_all_scene", float(both.lag1_scene_order), display=False)
storage.round(3)

# %% [markdown]
# In file order, adjacent rows of the train file correlate by {glue:text}`lag1_train_file:.3f` (random-order
# null s.d. {glue:text}`lag1_train_null_sd:.3f`) and those of the test file by {glue:text}`lag1_test_file:.3f`
# (null s.d. {glue:text}`lag1_test_null_sd:.3f`). Sorted by the scene each row belongs to under the
# seed-{glue:text}`split_seed` permutation, the train rows' neighbour correlation rises to
# {glue:text}`lag1_train_scene:.2f` ({glue:text}`train_adjacent_frac:.0%` of the sorted neighbours are consecutive
# scenes), and all rows of both files in scene order give {glue:text}`lag1_all_scene:.2f`. The test file alone
# ({glue:text}`n_test` rows, {glue:text}`test_adjacent_frac:.0%` consecutive neighbours after sorting:
# {glue:text}`lag1_test_scene:.3f`) is too sparse to show it. So the outputs were stored in the same permuted
# order as the inputs, and the structure sits in the scene (template) index, not in the files' order.
#
# The preparation script of the repository (`encode_datasets.py`, read in the stored public copy) also
# shows two smaller problems. It takes `NS_response[1:119, 1:213, 0]` from allensdk's
# `NaturalScenes.get_response`, whose first row is the blank sweep (so `1:119` is right for the scenes) but
# whose cell axis (in allensdk's layout of the mean-sweep-response table) may end with the running speed
# `dx` — an **unverified hypothesis** about the script: if so, `1:213` would drop cell 0 and keep `dx` as the
# last "cell". The last column's statistics below do not support it: it looks like a cell (mean
# {glue:text}`last_mean:.2f`, range {glue:text}`last_min:.1f` to {glue:text}`last_max:.1f`, negative for
# {glue:text}`last_neg:.0%` of scenes, s.d. {glue:text}`last_sd:.2f` against a median cell s.d. of
# {glue:text}`cell_sd_median:.2f`, lag-1 autocorrelation {glue:text}`last_ac1:.2f` against the cells' median
# {glue:text}`cell_ac1_median:.2f`, and correlation {glue:text}`last_rmax:.2f` with another column), whereas a
# running speed would be non-negative and unrelated to single cells. And in its stored version it downloads experiment 514422179
# while loading the natural-scenes analysis of experiment 501498760. Neither explains the index structure
# above; together they say the preparation was not checked against the stimuli.
#
# **Conclusion.** No test detects stimulus information in the Allen preparation, while the same tests find
# it in a twin of the same size. The next page still trains and scores every method on these data, as
# honest chance-level rows with their intervals (no model is tuned on them), and lets the twin carry the
# comparison between methods.

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: vna-ex-rsa-power
# With {glue:text}`n_scenes` scenes, how large would a true RSA have to be for this page's permutation test to call it
# significant at the 5 % level, and how does that compare with what the twin shows?
# ```
#
# ```{solution} vna-ex-rsa-power
# :class: dropdown
# About the null's 95th percentile, {glue:text}`rsa_allen_q95:.4f` (an RSA above it has p < 0.05). The twin's
# RSA is {glue:text}`rsa_twin:.3f`, many times larger; the Allen value, {glue:text}`rsa_allen:.4f`, is inside the null.
# ```
#
# ```{exercise}
# :label: vna-ex-index
# Why does the lag-1 correlation of the *twin's* responses (in the order of the {glue:text}`n_twin_control` drawn images) stay near
# zero, and what would it look like if the twin's responses were stored in a smoothed time order?
# ```
#
# ```{solution} vna-ex-index
# :class: dropdown
# The twin's images are independent draws, so neighbours in the index share nothing: lag-1 correlation
# {glue:text}`twin_ac1:.3f`, inside the random-order null (s.d. {glue:text}`ac_null_sd:.3f`). Responses stored in
# time order would correlate with their neighbours like the Allen rows do ({glue:text}`ac1_resp:.2f`).
# ```
#
# ```{exercise}
# :label: vna-ex-drop-dx
# One hypothesis about the preparation script is that the last response column is the running speed
# rather than a cell (its statistics above do not support it). Drop it anyway and recompute the RSA. Does the
# conclusion change?
# ```
#
# ```{solution} vna-ex-drop-dx
# :class: dropdown
# Without the last column the RSA is {glue:text}`rsa_no_dx:.4f` (null s.d. {glue:text}`rsa_allen_null_sd:.4f`):
# no change — one column among {glue:text}`n_cells` cannot hide or create population structure.
# ```

# %%
glue("twin_ac1", float(ac_twin[0]), display=False)
glue(
    "rsa_no_dx", sig.rsa(sig.coarse_features(allen.images), allen.responses[:, :-1]), display=False
)
glue("page_cpu_seconds", time.process_time(), display=False)   # kernel CPU time (for the budget)
