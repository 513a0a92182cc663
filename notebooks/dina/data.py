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
# # Data: mouse V1 responses to natural, whitened and 8D images
#
# DINA (Wang et al. 2026, §4.1) trains on the two-photon recordings of Stringer et al. (2019):
# about 10,000 neurons of mouse V1 responding to 2,800 natural images (68 × 270 degrees), each
# shown at least twice, plus mice shown spectrally whitened images and low-dimensional (8D)
# images. This page loads the recordings through `alignlib.data.stringer.load_session`, which
# applies Stringer's preprocessing, and describes them: reliability, eigenspectra, and how close
# each test image is to the training images.

# %% tags=["parameters"]
profile = "quick"
source = "auto"        # "auto": real recordings when present, else the twin; "real"; "twin"
# twin size when the twin is used: smoke | quick | paper (None: the profile's)
twin_size: str | None = None
twin_seed = 0
mice = ["M1", "M2", "M3", "M4", "W1", "W2", "D1", "D2"]
# neurons of the in-memory paper-size twin mouse (not in the paper profile)
paper_check_neurons = 2000

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib import plots
from alignlib.data.stringer import load_class_labels
from alignlib.data.twin import TwinConfig
from alignlib.data.twin.stimuli import MIX_KINDS, PHOTO_SOURCES
from alignlib.claims import Measurement, record
from alignlib.experiments.dina import cast, settings
from alignlib.experiments.dina.stats import (
    PUBLISHED_ALPHA_NATURAL,
    describe_recordings,
    near_duplicates,
    twin_mouse_alpha,
)
from alignlib.paths import data_dir
from alignlib.report import save_table, show_provenance

twin_size = twin_size or settings.resolve(profile)["twin_size"]
recordings = {
    m: cast.load_mouse(m, source=source, twin_size=twin_size, twin_seed=twin_seed) for m in mice
}
sources = sorted({r.source for r in recordings.values()})
twin_manifest = (
    cast.ensure_twin(twin_size, twin_seed, progress=False) if "twin" in sources else None
)
twin_cfg = (
    twin_manifest.config if twin_manifest else cast.twin_config(twin_size, twin_seed).to_dict()
)
glue(
    "n_photographs",
    len(twin_manifest.source_images) if twin_manifest else len(PHOTO_SOURCES),
    display=False,
)
glue(
    "twin_mix",
    Markdown(
        ", ".join(f"{100 * f:.0f} % {k}" for k, f in zip(MIX_KINDS, twin_cfg["stimulus_fractions"]))
        if twin_cfg["stimuli"] == "mixed"
        else "legacy photograph crops"
    ),
    display=False,
)
show_provenance(profile, "; ".join(sorted({r.dataset for r in recordings.values()})),
                {"Mice": ", ".join(f"{m} ({r.source})" for m, r in recordings.items())})

# %% [markdown]
# ## Where the data come from
#
# The real recordings (figshare doi:10.25378/janelia.6845348, CC BY-NC 4.0) are hundreds of MB per
# mouse; `alignlib.data.stringer.download` fetches them with checksums. When they are absent, as on the
# machine that built this page if the banner says *twin*, every mouse comes from the **ground-truth
# twin** (`alignlib.data.twin`): synthetic mice written in exactly the Stringer file format, whose
# neurons are Gabor (simple) and energy-model (complex) cells with mouse-like receptive-field sizes and
# spatial frequencies (Niell & Stryker 2008; the exact ranges are in the twin's `twin_manifest.json`),
# log-normal gains (diverse SNR), shared gain
# fluctuations, shared spontaneous fluctuations that also ride on the stimulus responses, and trial
# noise. The same loader reads both, so everything downstream is identical.
#
# The twin's natural images are not the 2,800 ImageNet images. They are a mix
# ({glue:md}`twin_mix`): crops of the {glue:text}`n_photographs` photographs that scikit-image,
# scikit-learn and matplotlib ship, each placed where it overlaps earlier crops of its photograph
# least, with its own rotation, scale and flips, and redrawn when it is mostly a smooth luminance ramp
# (blank sky, a wall); **dead-leaves** images, the occlusion model of natural images of Lee, Mumford &
# Huang (2001): opaque disks and ellipses with random grey levels whose radii follow the
# scale-invariant power law $p(r) \propto r^{-3}$; and **1/f textures with edges**,
# Gaussian textures with a power-law spectrum in regions bounded by the level sets of a smoother
# random field. The whitened set divides each natural image's Fourier transform by the natural set's
# **average** amplitude spectrum (one filter for the whole set: each image keeps its phase, its own
# deviations from the average spectrum and its RMS contrast; `alignlib.data.twin.whiten_images`). How we
# established this: the authors' public code (MouseLand/stringer-pachitariu-et-al-2018b) describes the set
# as "same 2800 natural images were whitened with a degree of 1" (README.md) and labels it "whitened
# (partially)" in its figure code (mainfigs/fig3.m, fig4.m, suppfigs/suppfig_gabors.m): one filter for the
# whole set leaves each image partly unwhitened, whereas dividing each image by its own spectrum (this twin
# before the converged-runs issue) flattens every image completely. The code that made their images is not
# public, so this is our reading of those statements. The 8D set is derived as Stringer et al. describe.
# Earlier versions of the twin cropped 14 scikit-image photographs at random, which
# produced near-duplicate images (see below); that generator is kept as `stimuli="photo-crops"`.
#
# The paper does not say which recordings are its M1–M4; with the real data we use the first four
# natimg2800 sessions of the published list (M1 = MP027, M2 = MP030, M3 = MP031, M4 = MP032
# 2017-08-07). The whitened sessions are not named in the published format notes, so W1–W2 are
# twin-only.

# %%
sessions, spectra, fits, snrs = describe_recordings(recordings.values())
save_table(
    sessions,
    "dina",
    "data_sessions",
    {
        "profile": profile,
        "source": source,
        "twin_size": twin_size,
        "twin_seed": twin_seed,
        "mice": mice,
    },
)
sessions.set_index("mouse").round(3)

# %% [markdown]
# ## Stringer's preprocessing, as applied by the loader
#
# 1. drop gray-screen presentations (the largest stimulus id); set NaN responses to 0 (the count is kept in
#    `session.meta`);
# 2. z-score each neuron by the mean and standard deviation of its spontaneous activity;
# 3. subtract the projection onto the top 32 principal components of spontaneous activity;
# 4. mean-centre each neuron;
# 5. split each image's presentations into two halves in time and average each → images × neurons × 2;
#    drop images seen fewer than twice and red (GAD+) cells when the file marks them.

# %%
meta = pd.DataFrame({m: {k: v for k, v in r.session.meta.items() if not k.endswith("sha256")}
                     for m, r in recordings.items()}).T
meta

# %% [markdown]
# ## Example stimuli

# %%
first = {
    s: next(r for r in recordings.values() if r.stimset == s)
    for s in ("natural", "whitened", "8D")
    if any(r.stimset == s for r in recordings.values())
}
fig = plots.image_rows({f"{s}\n({r.label})": r.session.images[:4] for s, r in first.items()})

# %%
_ = plots.save_figure(fig, "dina", "data_example_stimuli", page="dina/data",
                      caption="Example stimuli: natural, whitened and 8D images")

# %% [markdown]
# ## Near-duplicates: how close is each test image to the training images?
#
# DINA holds out 10 % of the images for testing (and, in this book, 10 % for validation: the split of
# the training pages, `split_indices(n_images, 0.1, 0.1, seed=0)`). A model that memorises its
# training pairs looks good on a test image that nearly repeats a training image. For every test
# image we take its highest Pearson correlation over pixels with any training image
# (`alignlib.interpret.stimuli.nearest_train_correlation`). Two comparison sets have the size of the
# natural set here: the legacy twin stimuli (random crops of 14 scikit-image photographs, which may
# overlap), and a reference for what **distinct photographs** give: the same legacy crops with every
# pair cut from one photograph left out, so that each test image is compared only with crops of
# other photographs. The 8D images are projections onto 8 dimensions, so their test images are close
# to training images by construction, in the real recordings as in the twin.

# %%
near, near_values = near_duplicates(recordings.values(), twin_size, twin_seed)
save_table(
    near,
    "dina",
    "data_near_duplicates",
    {
        "profile": profile,
        "source": source,
        "twin_size": twin_size,
        "twin_seed": twin_seed,
        "mice": mice,
        "split": "split_indices(n_images, 0.1, 0.1, seed=0): test vs train",
    },
)
natural_rows = near[near.stimset.eq("natural") & near.set.isin(mice)]
legacy_row = near[near.set == "legacy photo crops (twin v1)"].iloc[0]
reference_row = near[near.set == "reference: distinct photographs"].iloc[0]
for name, value in {
    "near07_natural": natural_rows["frac_above_0.7"].mean(),
    "near09_natural": natural_rows["frac_above_0.9"].mean(),
    "near07_legacy": legacy_row["frac_above_0.7"],
    "near09_legacy": legacy_row["frac_above_0.9"],
    "near07_reference": reference_row["frac_above_0.7"],
    "near09_reference": reference_row["frac_above_0.9"],
}.items():
    glue(name, float(100 * value), display=False)
glue("near_n_test", int(legacy_row["n_test"]), display=False)
glue("natural_source", Markdown(", ".join(sorted(set(natural_rows.source)))), display=False)
near.set_index("set").round(3)

# %%
shown = {
    f"{m} ({recordings[m].stimset})": near_values[m]
    for m in [
        next((m for m in mice if recordings[m].stimset == s), None)
        for s in ("natural", "whitened", "8D")
    ]
    if m
}
shown.update({"legacy photo crops": near_values["legacy photo crops (twin v1)"],
              "distinct photographs (reference)": near_values["reference: distinct photographs"]})
fig = plots.histograms(shown, "highest pixel correlation of a test image with any training image",
                       bins=np.linspace(-0.1, 1.0, 45))

# %% [markdown]
# Of the test images of the natural-image mice ({glue:md}`natural_source`), {glue:text}`near07_natural:.1f` %
# have a training image correlated above 0.7 and {glue:text}`near09_natural:.1f` % above 0.9. The legacy
# twin stimuli gave {glue:text}`near07_legacy:.1f` % and {glue:text}`near09_legacy:.1f` %; distinct photographs
# (the reference) give {glue:text}`near07_reference:.1f` % and {glue:text}`near09_reference:.1f` %
# ({glue:text}`near_n_test` test images each). Pixel correlation is a strict criterion: two crops that
# share a smooth luminance ramp correlate highly although they show different things.

# %% [markdown]
# ## Reliability: signal-to-noise ratio of each neuron
#
# From the two repeats, signal variance is the covariance across images between repeats and noise
# variance half the variance of their difference (`alignlib.metrics.reliability`). Real neurons span a
# broad range of SNR; the twin draws log-normal gains to produce such a spread.

# %%
fig = plots.histograms({m: np.clip(s, 1e-3, None) for m, s in snrs.items() if m.startswith("M")},
                       "SNR (signal variance / noise variance), clipped at 1e-3", log_x=True)

# %%
natural = sessions[sessions.stimset == "natural"]
glue("median_snr_natural", float(natural.median_snr.median()), display=False)
glue("frac_snr_natural", float(100 * natural["frac_snr_above_0.1"].mean()), display=False)

# %% [markdown]
# Across the natural-image mice, the median neuron has SNR {glue:text}`median_snr_natural:.3f`, and
# {glue:text}`frac_snr_natural:.0f` % of neurons have SNR above 0.1.

# %% [markdown]
# ## Eigenspectra: cross-validated PCA (Stringer et al. 2019)
#
# Principal directions come from repeat 1, variances from the covariance of both repeats' projections,
# so trial noise cancels. Stringer et al. found the spectrum for natural images decays as a power law
# $\lambda_k \propto k^{-\alpha}$ with $\alpha$ = {glue:text}`alpha_published:.2f` (fit over ranks 11–500), flatter for whitened
# images and steeper (low-dimensional) for 8D images.

# %%
fig = plots.eigenspectra(
    {f"{m} ({recordings[m].stimset})": spectra[m] for m in spectra},
    {f"{m} ({recordings[m].stimset})": fits[m][:2] for m in spectra},
    fit_range=next(iter(fits.values()))[2],
    reference_alpha=PUBLISHED_ALPHA_NATURAL,
)

# %%
_ = plots.save_figure(fig, "dina", "data_eigenspectra", page="dina/data",
                      caption="cvPCA eigenspectra of every mouse, with power-law fits")
_ = save_table(
    pd.concat([
        pd.DataFrame({"mouse": m, "rank": np.arange(1, len(sp) + 1), "variance": sp})
        for m, sp in spectra.items()
    ]),
    "dina",
    "data_eigenspectra",
    {"profile": profile},
)

# %%
alpha_by_set = sessions.groupby("stimset").cvpca_alpha.mean()
spectra_table = pd.DataFrame({
    "stimset": alpha_by_set.index,
    "alpha_measured": alpha_by_set.values,
    "alpha_published": [
        PUBLISHED_ALPHA_NATURAL if s == "natural" else np.nan for s in alpha_by_set.index
    ],
    "source": ", ".join(sources),
})
save_table(
    spectra_table,
    "dina",
    "data_spectra",
    {"profile": profile, "fit_ranks": sorted(set(sessions.fit_ranks))},
)
for s, a in alpha_by_set.items():
    glue(f"alpha_{s}", float(a), display=False)
glue("alpha_published", PUBLISHED_ALPHA_NATURAL, display=False)
glue(
    "alpha_order",
    Markdown(" < ".join(f"{s} ({a:.2f})" for s, a in alpha_by_set.sort_values().items())),
    display=False,
)
spectra_table.round(3)

# %% [markdown]
# Measured here: natural images α = {glue:text}`alpha_natural:.2f` (mean over the natural-image mice)
# against the published {glue:text}`alpha_published:.2f`. Stringer et al. found whitened < natural < 8D;
# here the order of the mean exponents is {glue:md}`alpha_order`. Stringer et al. fit ranks 11–500 of 2,800 images ×
# ~10,000 neurons; we cap the upper rank at half the smaller dimension of the data (our choice: beyond it
# the estimate is noise), so a small population is fitted over fewer ranks — the `fit_ranks` column of the
# table above. Small populations also bias the exponent, so the exponent of a small twin is not the
# exponent of the recordings' size. Where the twin and the published value disagree, the twin is what it
# is: it is not tuned toward the paper's number.
#
# ### The exponent at the paper's number of images
#
# The paper-size twin (2,800 images × 10,000 neurons, 8 mice) takes minutes and gigabytes to write, too
# much for this profile. Unless the mice above are that twin, one natural-image mouse of the paper-size
# twin is simulated in memory instead, without writing files (`stats.twin_mouse_alpha`): the same natural
# images and the same model, but fewer neurons (`paper_check_neurons`), preprocessed as the loader does.

# %%
natural_twin = [r for r in recordings.values() if r.stimset == "natural" and r.source == "twin"]
if twin_size == "paper" and natural_twin:
    check = {
        "alpha": float(sessions[sessions.stimset == "natural"].cvpca_alpha.mean()),
        "n_images": natural_twin[0].session.n_images,
        "n_neurons": natural_twin[0].session.n_neurons,
        "fit_range": fits[natural_twin[0].label][2],
        "seconds": np.nan,
        "how": "the mice above (mean over the natural-image mice)",
    }
else:
    check_cfg = cast.twin_config("smoke" if twin_size == "smoke" else "paper", twin_seed)
    check_cfg = TwinConfig.from_dict({**check_cfg.to_dict(),
                                     "n_neurons": min(paper_check_neurons, check_cfg.n_neurons)})
    check = {
        **twin_mouse_alpha(check_cfg, "M1"),
        "how": "one natural mouse (M1) simulated in memory",
    }
check_table = pd.DataFrame([{
    "twin": f"{'smoke' if twin_size == 'smoke' else 'paper'} size",
    "how": check["how"],
    "n_images": check["n_images"],
    "n_neurons": check["n_neurons"],
    "fit_ranks": f"{check['fit_range'][0]}-{check['fit_range'][1]}",
    "alpha": check["alpha"],
    "alpha_published": PUBLISHED_ALPHA_NATURAL,
    "seconds": check["seconds"],
}])
save_table(check_table, "dina", "data_spectra_paper_size",
           {"profile": profile, "twin_size": twin_size, "twin_seed": twin_seed,
            "paper_check_neurons": paper_check_neurons})
glue("alpha_check", float(check["alpha"]), display=False)
glue(
    "check_size",
    Markdown(f"{check['n_images']:,} images × {check['n_neurons']:,} neurons"),
    display=False,
)
glue("check_how", Markdown(check["how"]), display=False)
glue(
    "check_note",
    Markdown(
        "These are the paper-size mice themselves."
        if check["n_neurons"] >= 10000
        else (
            f"With {check['n_neurons']:,} neurons instead of the recordings' ~10,000 this is still"
            " a small-population estimate, not the exponent at the recordings' size; the `paper`"
            " profile measures all eight full-size mice."
        )
    ),
    display=False,
)
check_table.round(3)

# %% [markdown]
# At {glue:md}`check_size` ({glue:md}`check_how`) the exponent is α = {glue:text}`alpha_check:.2f`
# (published {glue:text}`alpha_published:.2f`). {glue:md}`check_note`

# %%
record(
    "dina",
    "data",
    [
        Measurement(
            "stringer2019.cvpca_alpha.natural",
            float(alpha_by_set.get("natural", np.nan)),
            rule="not_comparable",
            page="dina/data",
            our_data=(
                f"{', '.join(sources)}: mean over the natural-image mice"
                f" ({sessions.n_images.iloc[0]} images x {sessions.n_neurons.iloc[0]} neurons);"
                f" {check['n_images']} x {check['n_neurons']}: {check['alpha']:.2f}"
            ),
        )
    ],
)

# %% [markdown]
# ## Real image classes of the natimg2800 set
#
# The class labels of the 2,800 real images (Stringer et al. 2019, `stimuli_class_assignment_confident.mat`)
# are read from the real file when it is present; they are used by later chapters (class-level analyses).

# %%
label_file = data_dir() / "stringer2019" / "stimuli_class_assignment_confident.mat"
if label_file.exists():
    labels, names = load_class_labels(label_file)
    counts = pd.Series(np.bincount(labels, minlength=len(names)), index=names, name="images")
    save_table(
        counts.rename_axis("class").reset_index(), "dina", "data_classes", {"file": label_file.name}
    )
    display(
        Markdown(f"Read from `{label_file.name}` ({len(labels)} images, {len(names)} classes).")
    )
    ax = counts.plot.barh(figsize=(5, 3.2))
    ax.set_xlabel("images")
else:
    display(Markdown(f"`{label_file}` is not present: class labels skipped."))

# %% [markdown]
# ## Exercises

# %%
# Variants for the exercises, computed on one natural-image mouse with the same functions as above.
from alignlib.experiments.dina.stats import powerlaw_fit_range
from alignlib.interpret.spectra import cvpca_spectrum, powerlaw_exponent


def exponent(neurons: np.ndarray) -> tuple[float, str]:
    """cvPCA exponent of the chosen neurons of ``ex_mouse``, and its fit ranks (NaN if too few
    neurons)."""
    rep1, rep2 = (ex_resp[:, neurons, i] for i in (0, 1))
    if len(neurons) < 30:
        return float("nan"), "too few neurons"
    fit = powerlaw_fit_range(*rep1.shape)
    return powerlaw_exponent(cvpca_spectrum(rep1, rep2), fit)[0], f"{fit[0]}-{fit[1]}"


ex_mouse = next(m for m in mice if recordings[m].stimset == "natural")
ex_resp = recordings[ex_mouse].session.responses
n_all = ex_resp.shape[1]
subsets = {
    "all neurons": np.arange(n_all),
    "random half (seed 0)": np.sort(
        np.random.default_rng(0).choice(n_all, n_all // 2, replace=False)
    ),
    "SNR > 0.1": np.flatnonzero(snrs[ex_mouse] > 0.1),
}
ex_table = pd.DataFrame([
    {"neurons": name, "n": len(idx), **dict(zip(("alpha", "fit_ranks"), exponent(idx)))}
    for name, idx in subsets.items()
])
save_table(ex_table, "dina", "data_exercises", {"profile": profile, "mouse": ex_mouse, "seed": 0})
glue("ex_mouse", ex_mouse, display=False)
for key, name in (("all", "all neurons"), ("half", "random half (seed 0)"), ("snr", "SNR > 0.1")):
    row = ex_table.set_index("neurons").loc[name]
    glue(f"ex_alpha_{key}", float(row.alpha), display=False)
    glue(f"ex_n_{key}", int(row.n), display=False)
    glue(f"ex_fit_{key}", row.fit_ranks, display=False)
for s in ("natural", "whitened", "8D"):
    glue(f"ex_alpha_set_{s}", float(alpha_by_set.get(s, np.nan)), display=False)
ex_table.round(3)

# %% [markdown]
# ```{exercise}
# :label: dina-data-ex-neurons
# Halve the number of neurons: does the cvPCA exponent of a natural-image mouse go up or down, and why?
# Try it on the paper-size twin too: `alignlib run dina/data -p paper_check_neurons=500`.
# ```
#
# ```{solution} dina-data-ex-neurons
# :class: dropdown
# For {glue:text}`ex_mouse` (table above): α = {glue:text}`ex_alpha_all:.2f` with all
# {glue:text}`ex_n_all` neurons (fit ranks {glue:text}`ex_fit_all`), α = {glue:text}`ex_alpha_half:.2f` with a
# random half (fit ranks {glue:text}`ex_fit_half`). Fewer neurons estimate fewer dimensions, and the fit
# range shrinks with them (at most half the smaller dimension): the exponent of a small population is not
# the exponent of the recording, which is why this page also reports it at the paper's number of images.
# ```
#
# ```{exercise}
# :label: dina-data-ex-snr
# Keep only the reliable neurons (SNR > 0.1, the histogram above). How many are left, and how does the
# exponent change? Is selecting neurons by SNR a neutral choice for a dimensionality estimate?
# ```
#
# ```{solution} dina-data-ex-snr
# :class: dropdown
# {glue:text}`ex_n_snr` of {glue:text}`ex_n_all` neurons of {glue:text}`ex_mouse` have SNR above 0.1; their
# exponent is {glue:text}`ex_alpha_snr:.2f` (fit ranks {glue:text}`ex_fit_snr`) against
# {glue:text}`ex_alpha_all:.2f` for all neurons. cvPCA already cancels trial noise, so unreliable neurons
# mostly add noise rather than bias; selecting by SNR keeps the neurons driven most strongly by the
# stimulus, which changes both the population size and which stimulus dimensions it represents.
# ```
#
# ```{exercise}
# :label: dina-data-ex-whitening
# Before looking at the table of exponents: should whitened images give a flatter or a steeper spectrum
# than natural images, and 8D images? Explain, then check.
# ```
#
# ```{solution} dina-data-ex-whitening
# :class: dropdown
# Stringer et al.'s reasoning: whitening equalises the images' power across spatial frequencies, so the
# stimulus drives many response dimensions more equally, a flatter spectrum (smaller α); 8D images vary
# along only eight dimensions, a steeper one. Measured here: whitened α = {glue:text}`ex_alpha_set_whitened:.2f`,
# natural α = {glue:text}`ex_alpha_set_natural:.2f`, 8D α = {glue:text}`ex_alpha_set_8D:.2f` (NaN when this
# build has no mouse of that set). Compare this order with theirs: where it differs, the exponents section
# above says why a small population over a short fit range need not reproduce it.
# ```
