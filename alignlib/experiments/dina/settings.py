"""Every setting of the DINA chapter's training, per profile, in ONE place.

The notebooks' parameters default to ``None`` ("the profile's value", resolved here by
:func:`resolve`); ``pipeline.yml`` only names the profile and the mice. Paper values follow Wang et al.
2026 §3-4 and the official code where the paper is silent (see the methods page).
"""
from __future__ import annotations

from typing import Any

from alignlib.experiments.profiles import resolve_settings

__all__ = ["SEEDS", "PROFILES", "PAPER", "LEGACY_QUICK", "resolve", "dina_split", "TEST_FRACTION", "VAL_FRACTION", "MICE",
           "SWITCH_DEFAULTS", "changed_switches", "OFFICIAL_CODE", "TABLE1"]

TEST_FRACTION = 0.1   # paper: 10 % of image-response pairs held out (280-way at 2,800 images)
VAL_FRACTION = 0.1    # our choice: carved from the remaining 90 %, used for model selection only
MICE = ("M1", "M2", "M3", "M4")   # the natural-image mice of Table 1

#: the paper's settings where it states them (widths, batch, optimisers, learning rates, temperature; §3-4),
#: the official code's where the paper is silent (epochs 5,000), and this book's choices where both are
#: silent or unusable: ``patience`` (the paper early-stops "based on validation loss" without a patience;
#: the code does not early-stop) and ``select`` (validation mean rank instead of the literal validation
#: loss; see the methods page). ``stem_stride=2`` is our reading of the paper's geometry.
PAPER: dict[str, Any] = {
    "twin_size": "paper", "width": "paper", "epochs": 5000, "patience": 100, "batch_size": 128,
    "lr_image": 3e-4, "weight_decay_image": 5e-5, "lr_neural": 5e-5, "rmsprop_alpha": 0.9,
    "temperature": 0.01, "neural_residual": False, "token_bias": False, "stem_stride": 2,
    "select": "val_mean_rank",
}

#: Table 1 switches (issue "DINA Table 1 in full"), all off by default. A run's configuration (and so its
#: hash) names a switch only when it differs from this default, so runs made before the switches existed
#: keep their hashes. ``model``: dina | vgg16-mlp | vit-mlp; ``objective``: contrastive | reconstruction |
#: classification; official-code audit: ``frozen_backbone``, ``token_bias`` (above), ``mlp_activation``,
#: ``minmax_maps``, ``scaling_fit`` (train | all: the leak), ``last_epoch``; regularisation (not in the paper):
#: ``dropout``, ``weight_decay_neural``; data regime: ``n_train``, ``n_neurons`` (0 = all);
#: ``image_weights``: local pretrained weights of a baseline's image tower ("" = from scratch).
SWITCH_DEFAULTS: dict[str, Any] = {
    "model": "dina", "objective": "contrastive", "frozen_backbone": False, "mlp_activation": True,
    "minmax_maps": False, "scaling_fit": "train", "last_epoch": False, "dropout": 0.0,
    "weight_decay_neural": 0.0, "n_train": 0, "n_neurons": 0, "image_weights": "",
}
PAPER.update(SWITCH_DEFAULTS)

#: the official code's choices (REFERENCE_NOTES.md), as switches on the paper model
OFFICIAL_CODE: dict[str, dict[str, Any]] = {
    "frozen-backbone": {"frozen_backbone": True},
    "token-bias": {"token_bias": True},
    "linear-mlp": {"mlp_activation": False},
    "minmax-maps": {"minmax_maps": True},
    "scaling-leak": {"scaling_fit": "all"},
    "last-epoch": {"last_epoch": True},
}

PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(PAPER),
    # quick: the controls page measures each departure one switch at a time (on the twin, M1; measured at 20 epochs):
    # at the paper's neural lr neither tower learns; at lr 1e-3 the paper's tower stays near chance on
    # half the mice while the residual learns; the stride-4 stem halves the epoch time.
    # converged-runs issue: trained to convergence (patience 25 epochs on the validation mean rank, a cap of
    # 400 that no stored run reaches) once, kept in the run store (alignlib.training.store) and read by the pages
    "quick": {**PAPER, "twin_size": "quick", "width": "quick", "epochs": 400, "patience": 25,
              "neural_residual": True, "lr_neural": 1e-3, "stem_stride": 4},
    "smoke": {**PAPER, "twin_size": "smoke", "width": "quick", "epochs": 2, "patience": 2, "batch_size": 16,
              "lr_neural": 1e-3, "stem_stride": 4},
}

#: the training seeds per profile (initialisation and batch order; the split is fixed by the split seed):
#: every comparison between models is made over these seeds
SEEDS: dict[str, list[int]] = {"paper": [0, 1, 2], "quick": [0, 1, 2], "smoke": [0]}

#: the quick profile as this book first ran it (before the corrections issue): kept to reproduce it
LEGACY_QUICK: dict[str, Any] = {**PAPER, "twin_size": "quick", "width": "quick", "epochs": 30, "patience": 8,
                                "neural_residual": True, "lr_neural": 1e-3, "stem_stride": 4, "select": "val_loss"}


#: scale of the Table 1 page per profile: mice, seeds, the epochs of its own runs (None: the profile's), and
#: the data-regime grids (training images per mouse, within the profile's twin; neurons). Optional: ``rows``
#: (group -> the rows kept; default all of :data:`alignlib.experiments.dina.table1.ROW_GROUPS`) and
#: ``linear_methods`` (default ridge, rrr, cca).
TABLE1: dict[str, dict[str, Any]] = {
    "paper": {"mice": list(MICE), "seeds": [0, 1, 2], "epochs": None, "regime_images": [280, 560, 1120, 2240],
              "regime_neurons": [500, 1000, 2500, 10000], "regime_models": ["dina", "vgg16-mlp", "linear"]},
    # quick (book budget): 2 epochs per row, two sizes per regime grid (beside the full-size point); VGG curves
    # in paper only
    "quick": {"mice": ["M1"], "seeds": [0], "epochs": 2, "regime_images": [200, 800],
              "regime_neurons": [150, 600], "regime_models": ["dina", "linear"]},
    # smoke: a few rows only (the page must run in seconds); "rows" names the rows kept per group
    "smoke": {"mice": ["M1"], "seeds": [0], "epochs": 1, "regime_images": [30, 64], "regime_neurons": [50, 150],
              "regime_models": ["linear"], "linear_methods": ["ridge"],
              "rows": {"DINA": ["DINA"], "baselines": ["VGG-16-MLP"], "official code": ["scaling-leak", "last-epoch"]}},
}


def changed_switches(settings: dict[str, Any]) -> dict[str, Any]:
    """The Table 1 switches of ``settings`` that differ from :data:`SWITCH_DEFAULTS`."""
    return {k: settings[k] for k, v in SWITCH_DEFAULTS.items() if k in settings and settings[k] != v}


def dina_split(n_images: int, seed: int = 0):
    """DINA's train/validation/test split of ``n_images`` stimuli (shared by every model of a mouse)."""
    from alignlib.training.splits import split_indices

    return split_indices(n_images, TEST_FRACTION, VAL_FRACTION, seed=seed)


def resolve(profile: str, **overrides: Any) -> dict[str, Any]:
    """The profile's settings with every non-None override applied (unknown names are refused)."""
    return resolve_settings(PROFILES, profile, overrides, "DINA")
