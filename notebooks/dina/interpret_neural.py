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
# # Interpreting the neural tower: which neurons, which interactions (Fig. 6)
#
# Two analyses of the paper's §4.5 on the trained runs of the training pages (nothing is trained here),
# then the chapter's ground-truth check of all interpretability methods (beyond the paper):
#
# * **neuron ablation** (Fig. 6a): per test stimulus, neurons are ranked by their response *magnitude*
#   (the paper's criterion), which we take as the absolute standardised response |z| (the tower's
#   z-scored input; largest first); the map is recomputed from the top p % with every other neuron set to
#   its *training-set mean* (z = 0 in the tower's input: our choice — the paper does not say what the
#   dropped neurons are set to), and compared with the full-population map by SSIM (scikit-image's
#   {glue:text}`abl_win` × {glue:text}`abl_win` window, data range of the full map). Controls: random
#   subsets of the same size, averaged over {glue:text}`abl_n_random` draws, and (a labelled variant, not
#   the paper's) the signed ranking by raw trial-averaged response. The fraction needed for SSIM ≥ 0.9 is
#   read off the mean curve over stimuli by linear interpolation only where the two tried fractions that
#   bracket the crossing are at most {glue:text}`abl_max_bracket` apart; over a wider bracket we report
#   a bound ("> p %") and leave that mouse out of the mean;
# * **attention scores** (Fig. 6b): the entries of the neuron self-attention softmax (eq. 7). At N
#   neurons one stimulus has N² of them, so we *sample rows*: per test stimulus a seeded random set of
#   query neurons, each with its full softmax row over all N keys; log-normal, gamma and exponential fits
#   (location 0, maximum likelihood) to a random subsample, compared by the Kolmogorov–Smirnov statistic
#   and AIC. Control: a randomly initialised (untrained) neural tower of the same architecture, sampled
#   and fitted the same way on the same stimuli.

# %% tags=["parameters"]
profile = "quick"
mice: list | None = None      # default: the natural-image mice M1-M4
source = "auto"
twin_seed = 0
seed = 0                      # training seed of the tower every figure shows
# training seeds of the towers of the neuron ablation's claim
# (None: settings.INTERPRET_SEEDS; `seed` first)
seeds: list | None = None
split_seed = 0
overrides: dict = {}          # DINA settings changed for every mouse (as on the training pages)
n_random = 10                 # random draws per subset size (paper: 10)
# population fractions tried (None: alignlib.interpret.ablation.DEFAULT_FRACTIONS)
fractions: list | None = None
attention_rows = 64           # sampled query rows per stimulus
n_fit = 20000                 # attention values per distribution fit
ssim_window = 7               # SSIM window of the ablation (scikit-image's default)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue
from scipy import stats

from alignlib.claims import Measurement, published_value, record
from alignlib.data.twin import load_groundtruth
from alignlib.experiments.dina import settings
from alignlib.interpret import ablation, attention_scores, groundtruth
from alignlib.interpret.loading import analyse_mouse, analyse_seeds, untrained_neural_tower
from alignlib.report import save_table, show_provenance

mice = list(mice or settings.MICE)
fractions = tuple(fractions or ablation.DEFAULT_FRACTIONS)
cfg = settings.resolve(profile, **overrides)
mouse_data = {m: analyse_mouse(m, cfg, source, twin_seed, seed, split_seed) for m in mice}
# the same mice's towers of every seed (`seed` first; the same test stimuli)
seeds, seed_data = analyse_seeds(
    mouse_data, cfg, seed, seeds if seeds is not None else settings.INTERPRET_SEEDS[profile],
    source, twin_seed, split_seed,
)
first = mouse_data[mice[0]]
show_provenance(
    profile,
    first.recording.dataset,
    {
        "Runs (figures)": ", ".join(f"`{d.run.name}`" for d in mouse_data.values()),
        "Runs (neuron ablation, seeds " + ", ".join(map(str, seeds)) + ")": ", ".join(
            f"`{d.run.name}`" for d in seed_data.values()
        ),
        "Shrunk in quick": (
            "the twin's 600 neurons per mouse instead of ~10,000 and narrow towers (see the"
            f" training pages); every test stimulus is used; {len(fractions)} population fractions"
            f" tried ({min(fractions):g} to {max(fractions):g})"
        ),
        "Attention": (
            f"{attention_rows} sampled query rows per test stimulus; fits on {n_fit} sampled values"
        ),
    },
)

# %% [markdown]
# ## Neuron ablation (Fig. 6a)

# %%
# computed once per run and kept as a derived result (runs/derived, then the run store); the random
# draws use the page's `seed` for every tower
def ablation_of(tower: torch.nn.Module, d, run=None) -> tuple[pd.DataFrame, object]:
    """The page's ablation curves of ``tower`` on mouse data ``d`` (stored derived result)."""
    return ablation.stored_ablation_curves(
        tower, d.z_responses, d.raw_responses, fractions, n_random=n_random, win_size=ssim_window,
        seed=seed, run=run,
    )


stored_curves = {
    key: ablation_of(d.neural_tower, d, d.run.directory) for key, d in seed_data.items()
}
all_curves = pd.concat(
    [c.assign(mouse=m, tower_seed=s) for (m, s), (c, _) in stored_curves.items()],
    ignore_index=True,
)
save_table(
    all_curves,
    "dina",
    "interp_ablation",
    {
        "profile": profile,
        "mice": mice,
        "seeds": seeds,
        "n_random": n_random,
        "runs": {f"{m} seed {s}": d.run.name for (m, s), d in seed_data.items()},
        "derived": {f"{m} seed {s}": where.name for (m, s), (_, where) in stored_curves.items()},
    },
)
# the figures and the per-mouse table: the tower of `seed`; the claim below: every seed
curves = all_curves[all_curves.tower_seed == seed]
estimates = {
    (m, s, sel): ablation.fraction_for_ssim(g, 0.9)
    for (m, s, sel), g in all_curves.groupby(["mouse", "tower_seed", "selection"])
}
needed_all = pd.DataFrame([
    {
        "mouse": m,
        "tower_seed": s,
        "selection": sel,
        "fraction_for_ssim_0.9": e.value,
        "estimate": e.kind,
        "bracket_low": e.low,
        "bracket_high": e.high,
        "percent": e.label(),
    }
    for (m, s, sel), e in estimates.items()
])
save_table(needed_all, "dina", "interp_ablation_fraction", {"profile": profile, "level": 0.9,
                                                             "seeds": seeds,
                                                             "max_bracket": ablation.MAX_BRACKET,
                                                             "fractions": list(fractions)})
needed = needed_all[needed_all.tower_seed == seed].drop(columns="tower_seed")

fig, axes = plt.subplots(1, len(mice), figsize=(10, 3.2), sharey=True, squeeze=False)
for ax, m in zip(axes[0], mice):
    for sel, style in (("sorted", "-o"), ("random", "--s"), ("signed raw", ":^")):
        c = curves[(curves.mouse == m) & (curves.selection == sel)].groupby("fraction").ssim
        ax.errorbar(100 * c.mean().index, c.mean(), yerr=c.sem(), fmt=style, ms=3, label=sel)
    ax.axhline(0.9, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_title(m)
    ax.set_xlabel("neurons kept (%)")
axes[0, 0].set_ylabel("SSIM to full-population map")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()

# %%
srt = (
    needed[needed.selection == "sorted"]["fraction_for_ssim_0.9"].to_numpy() * 100
)  # NaN where only a bound
rnd = needed[needed.selection == "random"]["fraction_for_ssim_0.9"].to_numpy() * 100
raw_signed = needed[needed.selection == "signed raw"]["fraction_for_ssim_0.9"].to_numpy() * 100
glue("abl_win", ssim_window, display=False)
glue("abl_n_random", n_random, display=False)
glue("abl_max_bracket", ablation.MAX_BRACKET, display=False)
glue("abl_n_sorted_interp", int(np.isfinite(srt).sum()), display=False)
glue(
    "abl_sorted_bounds",
    ", ".join(
        f"{r.mouse}: {r.percent} %"
        for r in needed[
            (needed.selection == "sorted") & (needed.estimate != "interpolated")
        ].itertuples()
    )
    or "none",
    display=False,
)
glue(
    "abl_signed_mean",
    float(np.nanmean(raw_signed)) if np.isfinite(raw_signed).any() else float("nan"),
    display=False,
)
glue("paper_abl_mean", published_value("dina.neuron_ablation.mean"), display=False)
glue("paper_abl_sem", published_value("dina.neuron_ablation.sem"), display=False)
glue(
    "abl_sorted_mean",
    float(np.nanmean(srt)) if np.isfinite(srt).any() else float("nan"),
    display=False,
)
glue(
    "abl_sorted_sem",
    float(stats.sem(srt, nan_policy="omit")) if np.isfinite(srt).sum() > 1 else float("nan"),
    display=False,
)
glue(
    "abl_random_mean",
    float(np.nanmean(rnd)) if np.isfinite(rnd).any() else float("nan"),
    display=False,
)
glue("abl_n_mice", len(mice), display=False)
glue("abl_fig_seed", int(seed), display=False)
glue("abl_n_neurons", int(first.z_responses.shape[1]), display=False)
needed.pivot(index="mouse", columns="selection", values="percent")

# %% [markdown]
# Percentage of neurons needed for SSIM ≥ 0.9 per mouse, by the tower of seed {glue:text}`abl_fig_seed`
# (the figures' tower; every seed's in the next table) ("> p": the crossing lies in a bracket wider than
# {glue:text}`abl_max_bracket` above p %, or is never reached; "<= p": reached at the smallest fraction).
# Keeping the neurons of largest |z|, SSIM ≥ 0.9 is reached with {glue:text}`abl_sorted_mean:.1f` ±
# {glue:text}`abl_sorted_sem:.1f` % (mean ± SEM over the {glue:text}`abl_n_sorted_interp` of
# {glue:text}`abl_n_mice` mice with an interpolated value; bounds only: {glue:text}`abl_sorted_bounds`) of
# the {glue:text}`abl_n_neurons` neurons; random subsets need {glue:text}`abl_random_mean:.1f` % on average
# and the signed raw-response ranking (control variant) {glue:text}`abl_signed_mean:.1f` %. The paper
# reports {glue:text}`paper_abl_mean:.2f` ± {glue:text}`paper_abl_sem:.2f` % with about 10,000 neurons per
# mouse (claims ledger). With hundreds instead of thousands of neurons each neuron is a larger share of
# the population, so percentages are not directly comparable.

# %%
# every seed's tower: the crossing per (mouse, seed), then averaged over each mouse's seeds; a mouse
# with any seed's crossing only bounded stays NaN (skipna=False: no average over the other seeds)
fr_seeds = needed_all.set_index(["mouse", "tower_seed", "selection"])[
    "fraction_for_ssim_0.9"
].unstack()
fr = fr_seeds.groupby(level="mouse").agg(lambda g: g.mean(skipna=False))
srt_seeds = 100 * fr["sorted"].to_numpy()
n_interp = int(np.isfinite(srt_seeds).sum())
bound_note = (
    f"mean over the {n_interp} of {len(mice)} mice with an interpolated crossing for every seed"
    " (others only bounded)"
)
# the paper's relative claim (random subsets need more neurons than ranked ones), paired per
# mouse (random minus sorted, averaged over the mouse's seeds); judged (95 % t interval over
# mice) only when every mouse and seed has an interpolated crossing for both selections
slower = fr["random"] - fr["sorted"]
slower_judged = bool(len(slower) > 1 and np.isfinite(slower).all())
if slower_judged:
    _ci = stats.ttest_1samp(100 * slower.to_numpy(), 0.0).confidence_interval(0.95)
    slower_lo, slower_hi = float(_ci.low), float(_ci.high)
else:
    slower_lo = slower_hi = float("nan")
slower_converged = all(d.run.converged is True for d in seed_data.values())
_seed_list = ", ".join(map(str, seeds))
glue("abl_seeds_text", Markdown(
    f"Over the towers of seeds {_seed_list} (each mouse's crossings averaged over its seeds),"
    f" the |z| ranking reaches SSIM ≥ 0.9 with {np.nanmean(srt_seeds):.1f} % of the neurons"
    f" ({bound_note})"
    + (
        f"; random subsets need {100 * slower.mean():+.1f} percentage points more (95 % t"
        f" interval over the {len(slower)} mice [{slower_lo:+.1f}, {slower_hi:+.1f}]). The"
        " claims ledger judges the paper's claim (random subsets are slower) from this interval."
        if slower_judged
        else ". The paper's relative claim (random subsets are slower) is not judged: fewer than"
        " two mice, or a mouse with a crossing only bounded for some seed."
    )
    if n_interp
    else f"Over the towers of seeds {_seed_list}, no mouse has an interpolated crossing for every"
    " seed, so neither the percentage nor the paper's relative claim is judged."
), display=False)
(100 * fr_seeds).round(1).unstack("tower_seed")

# %% [markdown]
# Percentage of neurons needed for SSIM ≥ 0.9 by each seed's tower (NaN: the crossing is only bounded
# above; "at or below" counts as the smallest fraction tried). {glue:md}`abl_seeds_text`

# %%
# control: the same ablation on untrained neural towers of the same architecture, one per seed of
# the trained towers (drawn from torch.manual_seed(seed): the same tower for every mouse of one
# size), kept as derived results like the trained towers' curves
ctrl_curves = pd.concat(
    [
        ablation_of(untrained_neural_tower(d.z_responses.shape[1], cfg, s), d)[0].assign(
            mouse=m, tower_seed=s)
        for m, d in mouse_data.items() for s in seeds
    ],
    ignore_index=True,
)
ctrl_est = {
    (m, s, sel): ablation.fraction_for_ssim(g, 0.9)
    for (m, s, sel), g in ctrl_curves.groupby(["mouse", "tower_seed", "selection"])
}
ctrl_fr = pd.Series({k: e.value for k, e in ctrl_est.items()}).unstack()
ctrl_pct = pd.Series({k: e.label() for k, e in ctrl_est.items()}).unstack()
ctrl_pct.index.names = ["mouse", "untrained tower seed"]
# each mouse's control gap averaged over the control seeds (as the trained gap over its seeds)
ctrl_slower = (ctrl_fr["random"] - ctrl_fr["sorted"]).groupby(level=0).mean().reindex(mice)
# an input-blind control: every selection reaches the level at the smallest fraction tried
ctrl_blind = all(e.kind == "at or below" for e in ctrl_est.values())
# trained minus untrained gap, paired per mouse (the trained gap averaged over the mouse's seeds),
# only where every control crossing is interpolated (a bound is not a value to subtract)
ctrl_judged = bool(slower_judged and all(e.kind == "interpolated" for e in ctrl_est.values()))
if ctrl_judged:
    _gap = 100 * (slower.reindex(mice) - ctrl_slower).to_numpy()
    _ci = stats.ttest_1samp(_gap, 0.0).confidence_interval(0.95)
    learned_gap, learned_lo, learned_hi = float(_gap.mean()), float(_ci.low), float(_ci.high)
else:
    learned_gap = learned_lo = learned_hi = float("nan")
# the energy control: keeping the top-|z| neurons keeps the most input energy (sum of z squared)
# any subset of that size can keep; read each crossing as the mean energy share its selection
# keeps there
energy = {m: ablation.energy_kept(d.z_responses, fractions) for m, d in mouse_data.items()}
energy_cross = needed_all[needed_all.selection.isin(["sorted", "random"])].assign(
    energy=lambda t: [
        ablation.energy_at_fraction(energy[m], sel, f)
        for m, sel, f in zip(t["mouse"], t["selection"], t["fraction_for_ssim_0.9"])
    ]
)
_e = (
    energy_cross.pivot_table(index=["mouse", "tower_seed"], columns="selection", values="energy",
                             dropna=False)
    .groupby(level="mouse").agg(lambda g: g.mean(skipna=False))
    .reindex(mice)
)
energy_gap = 100 * (_e["random"] - _e["sorted"])
energy_judged = bool(len(energy_gap) > 1 and np.isfinite(energy_gap).all())
if energy_judged:
    _ci = stats.ttest_1samp(energy_gap.to_numpy(), 0.0).confidence_interval(0.95)
    e_gap, e_lo, e_hi = float(energy_gap.mean()), float(_ci.low), float(_ci.high)
else:
    e_gap = e_lo = e_hi = float("nan")
ctrl_pct

# %%
_energy = (
    " Keeping the neurons of largest |z| keeps the largest share of the input's energy (Σ z²) that"
    " a subset of that size can keep, so any tower that responds to its input may show a gap."
    + (
        f" Read at the energy each selection keeps, the trained towers reach SSIM ≥ 0.9 with"
        f" {100 * np.nanmean(_e['sorted']):.1f} % of the energy when ranked and"
        f" {100 * np.nanmean(_e['random']):.1f} % at random: random minus ranked"
        f" {e_gap:+.1f} points of energy [{e_lo:+.1f}, {e_hi:+.1f}] (95 % t interval over mice,"
        " each mouse's crossings averaged over its seeds)."
        + (
            " At equal energy the two selections are indistinguishable, so the ranking's advantage"
            " in neurons is the energy it keeps, not a set of neurons the tower singled out."
            if e_lo <= 0 <= e_hi
            else " Random subsets reach it with slightly less energy than ranked ones, so the"
            " ranking's advantage in neurons is wholly the energy it keeps."
            if e_hi < 0
            else " Ranked subsets need less energy than random ones, so part of the ranking's"
            " advantage goes beyond the energy it keeps."
        )
        if energy_judged
        else " A crossing is only bounded, so the energy at the crossings is not compared."
    )
)
if ctrl_blind:
    ctrl_text = (
        "untrained-tower control: input-blind (SSIM >= 0.9 at the smallest fraction,"
        f" {100 * min(fractions):g} %, for every selection): no gap"
    )
    _ctrl_md = (
        "The untrained tower's map hardly depends on its input: every selection reaches SSIM ≥ 0.9"
        f" at the smallest fraction tried ({100 * min(fractions):g} %) in every mouse, so ranked"
        " and random subsets do not differ on it. The measure therefore gives no gap to a tower"
        " that ignores its input; it does not follow that the trained towers' gap is learned."
        + _energy
    )
elif ctrl_judged:
    ctrl_text = (
        f"untrained-tower control (seeds {', '.join(map(str, seeds))}): random minus ranked"
        f" {100 * ctrl_slower.mean():+.1f} points; trained minus untrained gap {learned_gap:+.1f}"
        f" [{learned_lo:+.1f}, {learned_hi:+.1f}] (95 % t interval over mice)"
        + ("; untrained towers show the larger gap, so the gap is not learned" if learned_hi < 0
           else "")
    )
    _learned_reading = (
        " Untrained towers of the same architecture show a larger gap than the trained ones, so"
        " the ranking's advantage is not something training put into the tower." if learned_hi < 0
        else " Training widens the gap beyond the untrained towers'." if learned_lo > 0
        else " The trained and untrained gaps are not separable, so the gap is not shown to be"
        " learned.")
    _ctrl_md = (
        f"Random minus ranked is {100 * ctrl_slower.mean():+.1f} points on them; the trained"
        " towers'"
        f" gap minus the untrained towers' is {learned_gap:+.1f} points [{learned_lo:+.1f},"
        f" {learned_hi:+.1f}] (paired per mouse, 95 % t interval over mice)." + _learned_reading
        + _energy
    )
else:
    ctrl_text = "untrained-tower control: a crossing only bounded, no comparison"
    _ctrl_md = "Some of its crossings are only bounded, so the two gaps are not compared." + _energy
ctrl_text += (
    f"; energy control: random minus ranked share of the input energy at the crossing {e_gap:+.1f}"
    f" points [{e_lo:+.1f}, {e_hi:+.1f}]" if energy_judged else "; energy control not judged"
)
if energy_judged and e_hi < 0:
    ctrl_text += (": the ranking's advantage is the input energy it keeps, which does not support"
                  " reading it as a small subset of key neurons")
glue("abl_ctrl_text", Markdown(
    "**Control.** The same ablation on untrained neural towers of the same architecture, one per"
    f" seed of the trained towers ({', '.join(map(str, seeds))}"
    + ("; the same towers for every mouse, since the mice have the same number of neurons"
       if len({d.z_responses.shape[1] for d in mouse_data.values()}) == 1 else "")
    + "), each mouse's gap averaged over them. " + _ctrl_md
    + " The ledger judges the claim as the paper states it (ranked against random subsets on the"
    " trained towers) and gives this control beside the verdict."
), display=False)

# %% [markdown]
# Percentage of neurons needed for SSIM ≥ 0.9 by the untrained control towers. {glue:md}`abl_ctrl_text`

# %% [markdown]
# ## Attention scores (Fig. 6b)

# %%
att = {m: attention_scores.sample_attention(d.neural_tower, d.z_responses, attention_rows, seed)
       for m, d in mouse_data.items()}
att_untrained = {m: attention_scores.sample_attention(
    untrained_neural_tower(d.z_responses.shape[1], cfg, seed), d.z_responses, attention_rows, seed)
    for m, d in mouse_data.items()}
fits = pd.concat(
    [
        attention_scores.fit_distributions(a, n_fit, seed).assign(mouse=m, tower="trained")
        for m, a in att.items()
    ]
    + [
        attention_scores.fit_distributions(a, n_fit, seed).assign(
            mouse=m, tower="untrained (control)"
        )
        for m, a in att_untrained.items()
    ],
    ignore_index=True,
)
save_table(
    fits,
    "dina",
    "interp_attention_fits",
    {"profile": profile, "rows_per_stimulus": attention_rows, "n_fit": n_fit},
)
fig, axes = plt.subplots(1, len(mice), figsize=(10, 3.2), squeeze=False)
for ax, m in zip(axes[0], mice):
    v = att[m].ravel()
    v = v[v > 0]
    bins = np.logspace(np.log10(v.min()), np.log10(v.max()), 60)
    ax.hist(v, bins=bins, density=True, color="0.7", label="scores")
    ln = fits[
        (fits.mouse == m) & (fits.distribution == "lognormal") & (fits.tower == "trained")
    ].iloc[0]
    ax.plot(bins, stats.lognorm.pdf(bins, ln.sigma, scale=np.exp(ln.mu)), label="log-normal fit")
    u = att_untrained[m].ravel()
    ax.hist(u[u > 0], bins=bins, density=True, histtype="step", color="C3", label="untrained tower")
    ax.set_xscale("log")
    ax.set_title(m)
    ax.set_xlabel("attention score A_ij")
axes[0, 0].set_ylabel("density")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()

# %%
trained_fits, control_fits = fits[fits.tower == "trained"], fits[fits.tower != "trained"]
best = trained_fits.loc[trained_fits.groupby("mouse").ks.idxmin()].set_index("mouse").distribution
best_ctrl = (
    control_fits.loc[control_fits.groupby("mouse").ks.idxmin()].set_index("mouse").distribution
)
n_lognormal_best = int((best == "lognormal").sum())
ks_ln = trained_fits[trained_fits.distribution == "lognormal"].ks
ln_ctrl = control_fits[control_fits.distribution == "lognormal"]
glue("att_n_lognormal_best", n_lognormal_best, display=False)
glue("att_n_lognormal_best_ctrl", int((best_ctrl == "lognormal").sum()), display=False)
glue("att_ks_lognormal", float(ks_ln.mean()), display=False)
glue("att_ks_lognormal_ctrl", float(ln_ctrl.ks.mean()), display=False)
glue(
    "att_sigma",
    float(trained_fits[trained_fits.distribution == "lognormal"].sigma.mean()),
    display=False,
)
glue("att_sigma_ctrl", float(ln_ctrl.sigma.mean()), display=False)
glue("att_skew", float(np.mean([stats.skew(a.ravel()) for a in att.values()])), display=False)
fits.pivot_table(index=["tower", "mouse"], columns="distribution", values="ks").round(3)

# %% [markdown]
# Kolmogorov–Smirnov statistic per tower, mouse and distribution (lower fits better). In the trained
# towers the log-normal fits best in {glue:text}`att_n_lognormal_best` of the mice (mean KS
# {glue:text}`att_ks_lognormal:.3f`, log-normal σ = {glue:text}`att_sigma:.2f`); in the untrained
# control towers in {glue:text}`att_n_lognormal_best_ctrl` (mean KS {glue:text}`att_ks_lognormal_ctrl:.3f`,
# σ = {glue:text}`att_sigma_ctrl:.2f`). The mean skewness of the trained scores is
# {glue:text}`att_skew:.1f`. **A log-normal shape is expected by construction**: a softmax row is
# exp(logit) / Σ exp(logits), and the logits q·k/√d of many keys are sums of many terms, close to
# Gaussian, so the scores are close to log-normal with σ ≈ the logits' s.d., whatever the tower learned. A
# log-normal fit is therefore not evidence of biological structure by itself; what training changes is
# σ (the spread of interaction strengths), compared above with the untrained control. The rows of a
# softmax sum to one, so scores scale as 1/N: compare shapes, not values, across populations of different
# size.

# %% [markdown]
# ## Ground truth: do the methods recover what the twin planted? (beyond the paper)
#
# The twin stores every neuron's receptive field and its noise-free response. Here: do the neurons the
# ablation keeps first carry the most signal? "Kept first" = mean rank over test stimuli in the ranking
# above; true SNR = variance of the noise-free response over the mouse's images divided by the trial
# variance (independent noise plus shared fluctuations). Control: the same correlation for a ranking by a
# random permutation. The image-tower rows come from the image-tower page.

# %%
rows = []
rng = np.random.default_rng(seed)
for m, d in mouse_data.items():
    if d.recording.source != "twin":
        continue
    gt = load_groundtruth(d.recording.groundtruth_path)
    snr = groundtruth.true_snr(gt)
    rho, p = groundtruth.keep_order_vs_snr(ablation.response_ranking(d.z_responses), snr)
    ctrl, _ = groundtruth.keep_order_vs_snr(
        np.argsort(rng.random(d.raw_responses.shape), axis=1), snr
    )
    rows.append({"mouse": m, "method": "neuron ablation ranking", "planted": "per-neuron SNR",
                 "recovered": "Spearman(kept early, true SNR)", "value": rho, "control": ctrl,
                 "control_kind": "random ranking", "p": p})
gt_neural = pd.DataFrame(rows)
from alignlib.paths import results_dir  # noqa: E402

image_rows = results_dir("dina") / "interp_groundtruth_image.csv"
summary = pd.concat([pd.read_csv(image_rows) if image_rows.exists() else pd.DataFrame(), gt_neural],
                    ignore_index=True)
save_table(summary, "dina", "interp_groundtruth", {"profile": profile, "mice": mice})
if len(gt_neural):
    glue("gt_snr_rho", float(gt_neural.value.mean()), display=False)
    glue("gt_snr_ctrl", float(gt_neural.control.mean()), display=False)
else:
    glue("gt_snr_rho", float("nan"), display=False)
    glue("gt_snr_ctrl", float("nan"), display=False)
summary.groupby(["method", "planted", "recovered", "control_kind"], as_index=False)[
    ["value", "control"]
].mean().round(3)

# %% [markdown]
# One row per method (mean over the mice measured; per-mouse rows in `results/dina/interp_groundtruth.csv`).
# The ablation's early neurons correlate with true SNR at ρ = {glue:text}`gt_snr_rho:.2f` (random
# ranking: {glue:text}`gt_snr_ctrl:.2f`). A ρ near or below the random ranking's means that ranking by
# response magnitude |z| does not keep the most informative neurons first — large responses are not the
# same as informative responses. On the real recordings there is no ground truth, so these rows are absent
# there.

# %%
data_desc = f"{first.recording.dataset}, {first.z_responses.shape[1]} neurons per mouse"
ablation_desc = (
    f"{data_desc}, towers of seeds {_seed_list} (each mouse's crossings averaged over its seeds)"
)
claims = record(
    "dina",
    "interpret_neural",
    [
        Measurement(
            "dina.neuron_ablation.mean",
            float(np.nanmean(srt_seeds)) if n_interp else float("nan"),
            our_data=ablation_desc,
            page="dina/interpret_neural",
            note=f"ranking by |z|; {bound_note}",
        ),
        Measurement(
            "dina.neuron_ablation.sem",
            float(stats.sem(srt_seeds, nan_policy="omit")) if n_interp > 1 else float("nan"),
            our_data=ablation_desc,
            page="dina/interpret_neural",
        ),
        Measurement(
            "dina.random_neurons_slower",
            (
                float(100 * slower.mean()) if slower_judged
                else float(np.nanmean(100 * fr["random"]) - np.nanmean(srt_seeds))
                if n_interp and np.isfinite(fr["random"]).any()
                else float("nan")
            ),
            slower_lo,
            slower_hi,
            rule="paired_difference" if slower_judged else "not_comparable",
            converged=slower_converged,
            our_data=ablation_desc + (
                f": paired per mouse, 95 % t interval over {len(slower)} mice" if slower_judged
                                  else ": not judged (fewer than two mice, or a crossing only "
                                       "bounded)"),
            page="dina/interpret_neural",
            note=(
                "random minus sorted percentage of neurons for SSIM >= 0.9 (positive: random is"
                " slower); " + ctrl_text
            ),
        ),
        Measurement(
            "dina.attention_lognormal",
            float(ks_ln.mean()),
            our_data=f"{data_desc}, tower of seed {seed}",
            page="dina/interpret_neural",
            note=(
                f"mean KS of the log-normal fit; log-normal fits best in {n_lognormal_best} of"
                f" {len(mice)} mice; untrained control:"
                f" {int((best_ctrl == 'lognormal').sum())} (log-normal by construction)"
            ),
        ),
    ],
)
claims[["claim", "published", "value", "verdict"]]

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: dina-ex-ablation-fill
# The dropped neurons are set to their training mean (z = 0). What would setting them to zero raw
# activity do to the tower's input, and why could that make the ablation look worse than it is?
# ```
#
# ```{solution} dina-ex-ablation-fill
# :class: dropdown
# Zero raw activity is a z-score of minus (training mean / training s.d.) for every dropped neuron: a
# large, coordinated input pattern the tower never saw, not an absence of signal. The map would move for
# that reason alone. Keeping the mean isolates what the kept neurons carry. On this page the
# {glue:text}`abl_sorted_mean:.1f` % of largest |z| suffice for SSIM 0.9 with the mean fill (mean over
# the mice with an interpolated crossing).
# ```
