"""Every setting of the DINA chapter's training, per profile, in ONE place.

The notebooks' parameters default to ``None`` ("the profile's value", resolved here by
:func:`resolve`); ``pipeline.yml`` only names the profile and the mice. Paper values follow Wang et al.
2026 §3-4 and the official code where the paper is silent (see the methods page).
"""
from __future__ import annotations

from typing import Any, Mapping

from alignlib import dryrun
from alignlib.experiments.profiles import DryRunCapped, resolve_settings

__all__ = ["SEEDS", "PROFILES", "PAPER", "LEGACY_QUICK", "resolve", "dina_split", "TEST_FRACTION", "VAL_FRACTION", "MICE",
           "SWITCH_DEFAULTS", "changed_switches", "OFFICIAL_CODE", "TABLE1", "DRY_RUN_CAPS",
           "uses_factored_tower", "FACTORED_MIN_NEURONS", "step_memory_gb", "machine_memory_gb",
           "table1_rows_too_big"]

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

#: what a dry run (:mod:`alignlib.dryrun`) caps in every profile: one epoch (of one batch: the fit
#: loop's cap) and a patience of one; widths, batch size, stem stride and the twin's size are kept
DRY_RUN_CAPS = {"epochs": dryrun.at_most(1), "patience": dryrun.at_most(1)}

#: the training seeds per profile (initialisation and batch order; the split is fixed by the split seed):
#: every comparison between models is made over these seeds (a dry run keeps the first)
SEEDS: DryRunCapped = DryRunCapped({"paper": [0, 1, 2], "quick": [0, 1, 2], "smoke": [0]},
                                   lambda profile, seeds: seeds[:1])

#: the training seeds of the towers whose pathway masking and neuron ablation the interpretability pages
#: average for the paper's relative claims (the figures show the page's ``seed``). The store keeps every
#: seed's towers of the training pages' runs (``workflow.store_contents``); the seed-1/2 towers were
#: retrained with the store off (same configuration: the same epochs, selections and embeddings) and stored
INTERPRET_SEEDS: DryRunCapped = DryRunCapped({"paper": [0, 1, 2], "quick": [0, 1, 2], "smoke": [0]},
                                             lambda profile, seeds: seeds[:1])

#: the quick profile as this book first ran it (before the corrections issue): kept to reproduce it
LEGACY_QUICK: dict[str, Any] = {**PAPER, "twin_size": "quick", "width": "quick", "epochs": 30, "patience": 8,
                                "neural_residual": True, "lr_neural": 1e-3, "stem_stride": 4, "select": "val_loss"}


#: scale of the Table 1 page per profile: mice, seeds, the epochs of its own runs (None: the profile's), and
#: the data-regime grids (training images per mouse, within the profile's twin; neurons). Optional: ``rows``
#: (group -> the rows kept; default all of :data:`alignlib.experiments.dina.table1.ROW_GROUPS`) and
#: ``linear_methods`` (default ridge, rrr, cca).
_TABLE1: dict[str, dict[str, Any]] = {
    "paper": {"mice": list(MICE), "seeds": [0, 1, 2], "epochs": None, "regime_images": [280, 560, 1120, 2240],
              "regime_neurons": [500, 1000, 2500, 10000], "regime_models": ["dina", "vgg16-mlp", "linear"]},
    # quick: only rows trained to convergence and kept in the run store (the book build trains nothing):
    # DINA and the two baselines on the four twin mice x 3 seeds (the profile's patience rule, cap 400); the
    # objective control on M1 x 3 seeds (``row_mice``: a row trained on some mice only; its section compares
    # it with DINA on those mice); the official code's six switches on M1, 3 seeds each (the last-epoch
    # switch and the official configuration, all six at once, train the official code's fixed 400
    # epochs, so their convergence is unknown; 35-90 min per run on one thread here, beside other jobs);
    # the regularised DINA (not the paper's model) on M1, 3 seeds: it stops late at 15-25 s per epoch
    # (97-196 epochs, 29-72 min per seed: attention dropout takes PyTorch's slow CPU path).
    # The data-regime curves: DINA on both
    # axes and VGG-16-MLP on training images, seeds 0-2 (the full sizes are the rows above); the linear
    # curves need no training. Train the rest with the paper profile or table1's command line.
    # Seeds: every row with seeds 0-2 on every mouse (all stored). ``row_seeds`` (row -> seeds) may narrow a
    # row to the seeds the store holds for it; the page then says how many seeds each row has, and each
    # image's hit is averaged over a model's own seeds before two models are compared.
    "quick": {"mice": list(MICE), "seeds": [0, 1, 2], "epochs": None,
              "regime_images": [200, 800],
              "regime_neurons": [150, 600], "regime_models": ["dina", "vgg16-mlp", "linear"],
              "rows": {"DINA": ["DINA"], "baselines": ["VGG-16-MLP", "ViT-MLP"],
                       "objective": ["reconstruction", "classification"],
                       "official code": ["official configuration", "frozen-backbone", "token-bias",
                                         "linear-mlp", "scaling-leak", "minmax-maps", "last-epoch"],
                       "regularisation": ["dropout 0.2 + weight decay 1e-2"]},
              "row_mice": {name: ["M1"] for name in ["official configuration", *OFFICIAL_CODE,
                                                     "reconstruction", "classification",
                                                     "dropout 0.2 + weight decay 1e-2"]}},
    # smoke: a few rows only (the page must run in seconds); "rows" names the rows kept per group
    "smoke": {"mice": ["M1"], "seeds": [0], "epochs": 1, "regime_images": [30, 64], "regime_neurons": [50, 150],
              "regime_models": ["linear"], "linear_methods": ["ridge"],
              "rows": {"DINA": ["DINA"], "baselines": ["VGG-16-MLP"], "official code": ["scaling-leak", "last-epoch"]}},
}




def _table1_dry_run(profile: str, scale: dict[str, Any]) -> dict[str, Any]:
    """Table 1 in a dry run: one mouse, one seed, the first point of each data-regime grid with
    DINA and the linear reference (the baselines' own rows are trained; their regime curves repeat
    those code paths), and every row whose training step fits this machine's memory at the
    profile's batch size (:func:`step_memory_gb`; the others are named, with their need, by
    :func:`table1_rows_too_big`)."""
    too_big = {name for name, _ in table1_rows_too_big(profile)}
    from alignlib.experiments.dina.table1 import ROW_GROUPS

    kept = scale.get("rows")
    rows = {g: [n for n in names if (kept is None or n in kept.get(g, [])) and n not in too_big]
            for g, names in ROW_GROUPS.items()}
    return {**scale, "mice": scale["mice"][:1], "seeds": scale["seeds"][:1],
            "regime_images": scale["regime_images"][:1],
            "regime_neurons": scale["regime_neurons"][:1],
            "regime_models": [m for m in scale["regime_models"] if m in ("dina", "linear")],
            "rows": rows}


#: scale of the Table 1 page per profile (read as ``TABLE1[profile]``; capped in a dry run)
TABLE1: DryRunCapped = DryRunCapped(_TABLE1, _table1_dry_run)


#: from this many neurons on, DINA's neural tower is trained in its exact factored form
#: (``NeuralTower(attention="factored")``: same parameters, same results up to rounding) wherever
#: that form is exact (no LayerNorm, no token bias, no attention dropout): SDPA keeps several
#: (batch, N, d) tensors (a paper step at N = 10,000, d = 512, batch 128 needs ~35 GB on the CPU,
#: 37 GB measured on an H200), the factored form 13.8 GB on the CPU (15.8 GB on the H200, where it
#: is 3x faster). Below it (the quick and smoke twins) SDPA is as fast and the stored runs used it.
FACTORED_MIN_NEURONS = 1000


def uses_factored_tower(settings: Mapping[str, Any], n_neurons: int) -> bool:
    """Whether DINA runs of ``settings`` train their neural tower in its factored form (see
    :data:`FACTORED_MIN_NEURONS`); False for the baselines, which have no attention over neurons."""
    return (settings.get("model", "dina") == "dina" and int(n_neurons) >= FACTORED_MIN_NEURONS
            and not settings.get("token_bias") and not settings.get("residual_norm")
            and not float(settings.get("dropout", 0.0)))


#: peak memory of one training step on the CPU, GB per sample of the batch, measured with torch
#: 2.13 on one thread (a paper-width DS-Net at stem stride 2: 13.8 GB peak at batch 128 with the
#: factored tower; SDPA neural tower at N = 10,000, d = 512: 177 MB per sample; VGG-16-MLP and
#: ViT-MLP at paper width: 45 and 600 MB per sample at batch 16). Other sizes are scaled from these.
_PER_SAMPLE_GB = {"dsnet-paper-stride2": 0.102, "vgg16-mlp": 0.045, "vit-mlp": 0.600}
_SDPA_BYTES_PER_TOKEN_DIM = 34.7      # SDPA tower: bytes per sample per neuron per token dimension
_PROCESS_GB = 0.5                     # torch, the data, the model


def dina_step_memory_gb(width: str, stem_stride: int, batch: int, n_neurons: int,
                        factored: bool) -> tuple[float, float]:
    """Estimated peak memory (GB) of one DINA training step on the CPU, as (image tower, neural
    tower): the image tower's activations scale with the batch, the width's last stage and the stem
    stride; the SDPA neural tower keeps several (batch, N, d) tensors, the factored one N x N
    matrices (the measurements behind it: :data:`_PER_SAMPLE_GB`). Add :data:`_PROCESS_GB` for the
    process."""
    from alignlib.models.dina import WIDTH_PROFILES

    dims = WIDTH_PROFILES[width]["dims"]
    image = batch * _PER_SAMPLE_GB["dsnet-paper-stride2"] * dims[-1] / 128 * (2 / int(stem_stride)) ** 2
    if factored:
        return image, 3e-9 * n_neurons ** 2
    return image, batch * _SDPA_BYTES_PER_TOKEN_DIM * n_neurons * WIDTH_PROFILES[width]["d_model"] / 1e9


def step_memory_gb(settings: Mapping[str, Any], n_neurons: int) -> tuple[float, str]:
    """Estimated peak memory (GB) of one training step of ``settings`` on the CPU at its batch
    size, and what dominates it (:func:`dina_step_memory_gb` for DINA)."""
    from alignlib.models.dina import WIDTH_PROFILES

    batch, width = int(settings["batch_size"]), settings["width"]
    model = settings.get("model", "dina")
    if model != "dina":
        per = _PER_SAMPLE_GB[model] * (1.0 if width == "paper" else 1 / 16)
        return (_PROCESS_GB + batch * per,
                f"{model} ({width} width) activations, {per * 1e3:.0f} MB per sample")
    factored = uses_factored_tower(settings, n_neurons)
    image, neural = dina_step_memory_gb(width, int(settings["stem_stride"]), batch, n_neurons, factored)
    if factored:
        how = "factored neural tower"
    else:
        d = WIDTH_PROFILES[width]["d_model"]
        why = ("token bias" if settings.get("token_bias") else "attention dropout"
               if settings.get("dropout") else "LayerNorm" if settings.get("residual_norm")
               else "N below the factored threshold")
        how = f"SDPA neural tower ({why}: {batch} x {n_neurons:,} x {d} tensors)"
    return _PROCESS_GB + image + neural, f"image tower {image:.1f} GB, {how} {neural:.1f} GB"


def machine_memory_gb() -> float:
    """This machine's physical memory in GB."""
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def table1_rows_too_big(profile: str, limit_gb: float | None = None) -> list[tuple[str, str]]:
    """The Table 1 rows whose training step at ``profile``'s batch size needs more than
    ``limit_gb`` (default: 90 % of this machine's memory): ``[(row, "needs X GB: why")]``. A dry
    run leaves them out and says so before it starts (``alignlib book --dry-run``)."""
    from alignlib.experiments.dina.cast import twin_config
    from alignlib.experiments.dina.table1 import ROW_GROUPS

    limit = 0.9 * machine_memory_gb() if limit_gb is None else float(limit_gb)
    where = "90 % of this machine's memory" if limit_gb is None else "the limit"
    base = PROFILES[profile]
    n_neurons = twin_config(base["twin_size"]).n_neurons
    out = []
    for rows in ROW_GROUPS.values():
        for name, over in rows.items():
            gb, why = step_memory_gb({**base, **over}, n_neurons)
            if gb > limit:
                out.append((name, f"needs ~{gb:.0f} GB at batch {base['batch_size']} ({why}), "
                                  f"more than {where} ({limit:.0f} GB)"))
    return out


def changed_switches(settings: dict[str, Any]) -> dict[str, Any]:
    """The Table 1 switches of ``settings`` that differ from :data:`SWITCH_DEFAULTS`."""
    return {k: settings[k] for k, v in SWITCH_DEFAULTS.items() if k in settings and settings[k] != v}


def dina_split(n_images: int, seed: int = 0):
    """DINA's train/validation/test split of ``n_images`` stimuli (shared by every model of a mouse)."""
    from alignlib.training.splits import split_indices

    splits = split_indices(n_images, TEST_FRACTION, VAL_FRACTION, seed=seed)
    if dryrun.active():        # a dry run evaluates on a few held-out images (training set kept)
        splits = {k: v if k == "train" else v[:dryrun.eval_items(len(v))]
                  for k, v in splits.items()}
    return splits


def resolve(profile: str, **overrides: Any) -> dict[str, Any]:
    """The profile's settings with every non-None override applied (unknown names are refused)."""
    return resolve_settings(PROFILES, profile, overrides, "DINA", DRY_RUN_CAPS)
