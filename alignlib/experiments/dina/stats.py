"""Statistics of the DINA chapter's recordings for the data page: cvPCA and SNR (Stringer et al. 2019),
and how close each test image is to the training images."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from alignlib.claims import published_value
from alignlib.experiments.dina.cast import MouseRecording

#: Stringer et al. 2019 (Nature): cvPCA power-law exponent for natural images, from the claims file
PUBLISHED_ALPHA_NATURAL = published_value("stringer2019.cvpca_alpha.natural")


def powerlaw_fit_range(n_images: int, n_neurons: int) -> tuple[int, int]:
    """Ranks for the power-law fit: Stringer et al.'s 11-500, with the upper end capped at half the
    smaller dimension of the data (a choice: with few images or neurons the last ranks are noise)."""
    return 11, max(14, min(500, min(n_images, n_neurons) // 2))


def describe_recordings(recordings: Iterable[MouseRecording]):
    """Per-mouse statistics for the data page.

    Returns ``(sessions, spectra, fits, snrs)``: a table with one row per mouse (source, sizes, median
    SNR, split-half reliability, cvPCA power-law exponent), the cvPCA eigenspectra, their power-law
    fits ``(alpha, intercept, fit_range)`` and per-neuron SNRs.
    """
    from alignlib.interpret.spectra import cvpca_spectrum, powerlaw_exponent
    from alignlib.metrics.reliability import snr, split_half_reliability

    rows, spectra, fits, snrs = [], {}, {}, {}
    for rec in recordings:
        rep1, rep2 = rec.session.responses[..., 0], rec.session.responses[..., 1]
        spectrum = cvpca_spectrum(rep1, rep2)
        fit_range = powerlaw_fit_range(*rep1.shape)
        alpha, intercept = powerlaw_exponent(spectrum, fit_range)
        s = snr(rep1, rep2)
        spectra[rec.label], fits[rec.label], snrs[rec.label] = spectrum, (alpha, intercept, fit_range), s
        rows.append({"mouse": rec.label, "stimset": rec.stimset, "source": rec.source,
                     "n_images": rec.session.n_images, "n_neurons": rec.session.n_neurons,
                     "median_snr": float(np.nanmedian(s)), "frac_snr_above_0.1": float(np.nanmean(s > 0.1)),
                     "median_split_half_r": float(np.nanmedian(split_half_reliability(rep1, rep2))),
                     "cvpca_alpha": alpha, "fit_ranks": f"{fit_range[0]}-{fit_range[1]}",
                     "published_alpha": PUBLISHED_ALPHA_NATURAL if rec.stimset == "natural" else np.nan,
                     "session_file": Path(rec.session.session_path).name})
    return pd.DataFrame(rows), spectra, fits, snrs




def twin_mouse_alpha(config, label: str = "M1") -> dict:
    """cvPCA exponent of one twin mouse simulated in memory (no files), preprocessed as the loader does.

    ``config`` is a :class:`~alignlib.data.twin.TwinConfig` (e.g. the paper size with fewer neurons).
    Returns the exponent, its fit range, the spectrum and the time taken.
    """
    import time

    from alignlib.data.stringer import responses_by_image
    from alignlib.data.twin.stimuli import natural_stimuli
    from alignlib.data.twin.stringer2019 import image_stream, simulate_mouse
    from alignlib.interpret.spectra import cvpca_spectrum, powerlaw_exponent

    start = time.perf_counter()
    natural, _, _ = natural_stimuli(config, image_stream(config))
    sim = simulate_mouse(config, label, natural)
    halves, _, _ = responses_by_image(sim.resp, sim.spont, sim.istim)
    del sim
    spectrum = cvpca_spectrum(halves[..., 0], halves[..., 1])
    fit_range = powerlaw_fit_range(*halves.shape[:2])
    alpha, _ = powerlaw_exponent(spectrum, fit_range)
    return {"alpha": alpha, "fit_range": fit_range, "spectrum": spectrum, "n_images": halves.shape[0],
            "n_neurons": halves.shape[1], "seconds": time.perf_counter() - start}


def near_duplicates(recordings: Iterable[MouseRecording], twin_size: str = "quick", twin_seed: int = 0,
                    thresholds: tuple[float, ...] = (0.7, 0.9)):
    """Each test image's highest pixel correlation with a training image (DINA's split), per mouse.

    Besides the mice, two comparison sets are computed at the size of the natural set: the legacy
    twin stimuli (``stimuli="photo-crops"``, all pairs) and the distinct-photograph reference (the
    same crops, pairs cut from the same photograph left out); for a twin generated with per-image
    sources, also its natural set with same-source pairs left out. Returns ``(table, values)``: one row
    per set (fractions above each threshold, median, 95th percentile) and the correlations per set.
    """
    from alignlib.data.twin import TwinConfig
    from alignlib.data.twin.stimuli import natural_stimuli
    from alignlib.data.twin.stringer2019 import image_stream
    from alignlib.experiments.dina.cast import ensure_twin, twin_config
    from alignlib.experiments.dina.settings import dina_split
    from alignlib.interpret.stimuli import near_duplicate_summary, nearest_train_correlation

    rows, values, cache = [], {}, {}

    def add(name: str, kind: str, source: str, r: np.ndarray, mice: str = "") -> None:
        values[name] = r
        rows.append({"set": name, "stimset": kind, "source": source, "mice": mice,
                     **near_duplicate_summary(r, thresholds)})

    recordings = list(recordings)
    for rec in recordings:
        key = rec.identity.get("images_sha256") or rec.session.images_path
        if key not in cache:
            split = dina_split(rec.session.n_images)
            cache[key] = nearest_train_correlation(rec.session.images, split["train"], split["test"])
        add(rec.label, rec.stimset, rec.source, cache[key], rec.label)
    n_images = max((r.session.n_images for r in recordings if r.stimset == "natural"), default=None)
    twin = [r for r in recordings if r.source == "twin" and r.stimset == "natural"]
    if twin:
        manifest = ensure_twin(twin_size, twin_seed, progress=False)
        sources = np.asarray(manifest.image_sources, dtype=object)
        if sources.size:
            rec = twin[0]
            split = dina_split(rec.session.n_images)
            add("twin natural set, different-source pairs only", "natural", "twin",
                nearest_train_correlation(rec.session.images, split["train"], split["test"],
                                          groups=sources[rec.session.image_ids]),
                ", ".join(r.label for r in twin))
        base = TwinConfig.from_dict(manifest.config)
    else:
        base = twin_config(twin_size, twin_seed)
    legacy = TwinConfig.from_dict({**base.to_dict(), "stimuli": "photo-crops",
                                   "n_images": n_images or base.n_images})
    images, per_image, _ = natural_stimuli(legacy, image_stream(legacy))
    split = dina_split(len(images))
    add("legacy photo crops (twin v1)", "natural", "twin (legacy)",
        nearest_train_correlation(images, split["train"], split["test"]))
    add("reference: distinct photographs", "natural", "twin (legacy)",
        nearest_train_correlation(images, split["train"], split["test"], groups=per_image))
    return pd.DataFrame(rows), values
