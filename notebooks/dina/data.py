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
# applies Stringer's preprocessing, and describes them.

# %% tags=["parameters"]
profile = "quick"
source = "auto"        # "auto": real recordings when present, else the twin; "real"; "twin"
twin_size = "quick"    # twin size when the twin is used: smoke | quick | paper
twin_seed = 0
mice = ["M1", "M2", "M3", "M4", "W1", "W2", "D1", "D2"]

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from alignlib import plots
from alignlib.data import catalog
from alignlib.data.stringer import load_class_labels
from alignlib.experiments.dina import PUBLISHED_ALPHA_NATURAL, describe_recordings
from alignlib.paths import data_dir
from alignlib.report import save_table, show_provenance

recordings = {m: catalog.load_mouse(m, source=source, twin_size=twin_size, twin_seed=twin_seed) for m in mice}
sources = sorted({r.source for r in recordings.values()})
show_provenance(profile, "; ".join(sorted({r.dataset for r in recordings.values()})),
                {"Mice": ", ".join(f"{m} ({r.source})" for m, r in recordings.items())})

# %% [markdown]
# ## Where the data come from
#
# The real recordings (figshare doi:10.25378/janelia.6845348, CC BY-NC 4.0) are hundreds of MB per
# mouse; `alignlib.data.download` fetches them with checksums. When they are absent, as on the
# machine that built this page if the banner says *twin*, every mouse comes from the **ground-truth
# twin** (`alignlib.data.twin`): synthetic mice written in exactly the Stringer file format, whose
# neurons are Gabor (simple) and energy-model (complex) cells with mouse-like receptive-field sizes and
# spatial frequencies (Niell & Stryker 2008; the exact ranges are in the twin's `twin_manifest.json`),
# log-normal gains (diverse SNR), shared gain
# fluctuations, shared spontaneous fluctuations that also ride on the stimulus responses, and trial
# noise. Its images are crops of the photographs bundled with scikit-image, not the 2,800 ImageNet
# images. The same loader reads both, so everything downstream is identical.
#
# The paper does not say which recordings are its M1–M4; with the real data we use the first four
# natimg2800 sessions of the published list (M1 = MP027, M2 = MP030, M3 = MP031, M4 = MP032
# 2017-08-07). The whitened sessions are not named in the published format notes, so W1–W2 are
# twin-only.

# %%
sessions, spectra, fits, snrs = describe_recordings(recordings.values())
save_table(sessions, "dina", "data_sessions",
           {"profile": profile, "source": source, "twin_size": twin_size, "twin_seed": twin_seed, "mice": mice})
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
first = {s: next(r for r in recordings.values() if r.stimset == s) for s in ("natural", "whitened", "8D")
         if any(r.stimset == s for r in recordings.values())}
fig = plots.image_rows({f"{s}\n({r.label})": r.session.images[:4] for s, r in first.items()})

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
# $\lambda_k \propto k^{-\alpha}$ with $\alpha \approx 1.04$ (fit over ranks 11–500), flatter for whitened
# images and steeper (low-dimensional) for 8D images.

# %%
fig = plots.eigenspectra({f"{m} ({recordings[m].stimset})": spectra[m] for m in spectra},
                         {f"{m} ({recordings[m].stimset})": fits[m][:2] for m in spectra},
                         fit_range=next(iter(fits.values()))[2], reference_alpha=PUBLISHED_ALPHA_NATURAL)

# %%
alpha_by_set = sessions.groupby("stimset").cvpca_alpha.mean()
spectra_table = pd.DataFrame({"stimset": alpha_by_set.index, "alpha_measured": alpha_by_set.values,
                              "alpha_published": [PUBLISHED_ALPHA_NATURAL if s == "natural" else np.nan
                                                  for s in alpha_by_set.index],
                              "source": ", ".join(sources)})
save_table(spectra_table, "dina", "data_spectra", {"profile": profile, "fit_ranks": sorted(set(sessions.fit_ranks))})
for s, a in alpha_by_set.items():
    glue(f"alpha_{s}", float(a), display=False)
glue("alpha_published", PUBLISHED_ALPHA_NATURAL, display=False)
glue("alpha_order", Markdown(" < ".join(f"{s} ({a:.2f})" for s, a in alpha_by_set.sort_values().items())), display=False)
spectra_table.round(3)

# %% [markdown]
# Measured here: natural images α = {glue:text}`alpha_natural:.2f` (mean over the natural-image mice)
# against the published {glue:text}`alpha_published:.2f`. Stringer et al. found whitened < natural < 8D;
# here the order of the mean exponents is {glue:md}`alpha_order`. Stringer et al. fit ranks 11–500 of 2,800 images ×
# ~10,000 neurons; we cap the upper rank at half the smaller dimension of the data (our choice: beyond it
# the estimate is noise), so a small population is fitted over fewer ranks — the `fit_ranks` column of the
# table above. Small populations also bias the exponent: the `quick` twin (hundreds of neurons and
# images) is for checking the pipeline, not the exponent; run this page with the `paper` profile to
# compute the exponent of the full-size twin. Where the twin and the published value disagree, the twin is what it is: it is
# not tuned toward the paper's number.

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
    save_table(counts.rename_axis("class").reset_index(), "dina", "data_classes", {"file": label_file.name})
    display(Markdown(f"Read from `{label_file.name}` ({len(labels)} images, {len(names)} classes)."))
    ax = counts.plot.barh(figsize=(5, 3.2))
    ax.set_xlabel("images")
else:
    display(Markdown(f"`{label_file}` is not present: class labels skipped."))
