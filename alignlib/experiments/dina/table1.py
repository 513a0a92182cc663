"""DINA's Table 1 in full (issue "DINA Table 1 in full"): every row trained and tested here on the same
mice, splits, seeds and retrieval protocol.

Row groups (:data:`ROW_GROUPS`): the paper's DINA at the table's scale; the paper's baselines (VGG-16-MLP,
ViT-MLP, :mod:`alignlib.models.baselines`); the official code's choices (one row with all of them, then each
alone on this book's DINA, with the training pages' settings:
:data:`alignlib.experiments.dina.settings.OFFICIAL_CODE`); the reviewer's
objective control (reconstruction, classification); a regularised DINA (not the paper's model). Linear
references come from :mod:`alignlib.experiments.dina.linear`; the data regime varies the number of training
images and of neurons.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from alignlib.experiments.dina.cast import MouseRecording
from alignlib.experiments.dina.linear import LinearReference, image_features
from alignlib.experiments.dina.settings import OFFICIAL_CODE, dina_split
from alignlib.experiments.dina.workflow import DinaRun, subset_indices, train_mouse
from alignlib.metrics.retrieval import retrieval_rows, similarity_matrix
from alignlib.metrics.uncertainty import (bootstrap_ci_mean_of_means, paired_difference_ci,
                                         seed_resampled_difference_ci)

__all__ = ["ROW_GROUPS", "MODEL_LABELS", "official_configuration", "train_rows", "run_rows", "linear_rows",
           "summarise", "map_ssim", "map_spectrum", "regime_grid", "LONG_COLUMNS", "HITS",
           "crossings", "hits_difference", "gap_change", "seed_accuracies", "run_costs"]

MODEL_LABELS = {"dina": "DINA", "vgg16-mlp": "VGG-16-MLP", "vit-mlp": "ViT-MLP"}
#: the long format of results/dina/table1_full.csv
LONG_COLUMNS = ["group", "mouse", "model", "variant", "selection", "seed", "k", "accuracy", "ci_low", "ci_high",
                "n_test", "chance", "epoch", "run", "n_train", "n_neurons", "converged"]
#: the column of :func:`run_rows` / :func:`linear_rows` holding each row's per-test-image hits
#: (in the split's test order), which :func:`summarise` needs; not in the saved CSV (LONG_COLUMNS)
HITS = "hits"


def official_configuration() -> dict[str, Any]:
    """All of the official code's choices at once, with its neural tower (no residual) and rate (5e-5)."""
    cfg = {"neural_residual": False, "lr_neural": 5e-5}
    for over in OFFICIAL_CODE.values():
        cfg.update(over)
    return cfg


#: group -> row name -> settings overrides on the table's base settings
ROW_GROUPS: dict[str, dict[str, dict[str, Any]]] = {
    "DINA": {"DINA": {}},
    "baselines": {"VGG-16-MLP": {"model": "vgg16-mlp"}, "ViT-MLP": {"model": "vit-mlp"}},
    "official code": {"official configuration": official_configuration(),
                      **{name: dict(over) for name, over in OFFICIAL_CODE.items()}},
    "objective": {"reconstruction": {"objective": "reconstruction"},
                  "classification": {"objective": "classification"}},
    "regularisation": {"dropout 0.2 + weight decay 1e-2": {"dropout": 0.2, "weight_decay_neural": 1e-2}},
}


def train_rows(recording: MouseRecording, base: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]],
               seeds: Iterable[int], split_seed: int = 0, device: str = "auto",
               reuse_last_epoch: DinaRun | None = None,
               row_seeds: Mapping[str, Iterable[int]] | None = None
               ) -> dict[tuple[str, int], tuple[DinaRun, str | None]]:
    """Train (or load) every row x seed; returns ``{(row, seed): (run, criterion)}`` (criterion None: the
    run's own selection). ``row_seeds`` (row -> seeds) narrows the seeds of named rows to those of ``seeds``
    it lists (:data:`alignlib.experiments.dina.settings.TABLE1`'s ``row_seeds``). With ``reuse_last_epoch``
    (the base run of that seed), a ``last_epoch``-only row reads the base run's last epoch when the base ran
    every epoch (identical training), instead of training."""
    seeds = list(seeds)
    out = {}
    for name, over in tqdm(list(rows.items()), desc=f"{recording.label} rows", leave=False):
        kept = set((row_seeds or {}).get(name, seeds))
        for seed in [s for s in seeds if s in kept]:
            if (reuse_last_epoch is not None and dict(over) == {"last_epoch": True}
                    and reuse_last_epoch.info["epochs_run"] == base["epochs"]):
                out[(name, seed)] = (reuse_last_epoch, "last")
                continue
            variant = f"{recording.label}-t1-{name.replace(' ', '_').replace('+', '')}"[:60]
            variant = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant)
            run = train_mouse(recording, {**base, **over}, seed=seed, split_seed=split_seed, variant=variant,
                              device=device)
            out[(name, seed)] = (run, None)
    return out


def run_rows(runs: Mapping[tuple[str, int], tuple[DinaRun, str | None]], mouse: str, group: str,
             ks: Iterable[int] = (1, 5, 10)) -> pd.DataFrame:
    """Long-format retrieval rows of trained runs (one per run x k), 95 % bootstrap CIs over test
    queries, plus each row's per-query hits (column :data:`HITS`) for :func:`summarise`."""
    rows = []
    for (name, seed), (run, criterion) in runs.items():
        crit = criterion or run.info["selected"]
        emb = run.test_embeddings(crit)
        sw = run.info.get("switches", {})
        model = MODEL_LABELS.get(sw.get("model", "dina"), sw.get("model", "dina"))
        sim = similarity_matrix(emb["z_neu"], emb["z_img"])
        rows += retrieval_rows(sim, ks=ks, seed=seed, keep_hits=True,
                               group=group, mouse=mouse, model=model, variant=name, selection=crit, seed_=seed,
                               epoch=run.info["selections"][crit]["epoch"], run=run.name,
                               n_train=run.info["split_sizes"]["train"], n_neurons=run.info["n_neurons"],
                               converged=run.converged)
    out = pd.DataFrame(rows).rename(columns={"seed_": "seed"})
    return out.reindex(columns=LONG_COLUMNS + [HITS])


def linear_rows(recording: MouseRecording, methods: Iterable[str] = ("ridge", "rrr", "cca"),
                features: Iterable[str] = ("pixels", "gabor"), split_seed: int = 0, n_train: int = 0,
                n_neurons: int = 0, ks: Iterable[int] = (1, 5, 10), group: str = "linear",
                cache: dict | None = None) -> tuple[pd.DataFrame, dict[str, LinearReference]]:
    """Linear references on DINA's split (fitted on the training images only; the validation images are
    not used: CV inside the training split chooses the regularisation). Returns rows (with
    per-query hits, column :data:`HITS`) and fitted models."""
    session = recording.session
    splits = dina_split(session.n_images, split_seed)
    train = splits["train"][subset_indices(len(splits["train"]), n_train, split_seed)] if n_train else splits["train"]
    test = splits["test"]
    neurons = subset_indices(session.n_neurons, n_neurons, split_seed)
    resp = session.mean_response[:, neurons]
    cache = {} if cache is None else cache
    rows, fitted = [], {}
    for feat in features:
        key = (recording.label, recording.identity.get("images_sha256"), feat)
        if key not in cache:
            cache[key] = image_features(session.images, feat)
        F = cache[key]
        for method in methods:
            ref = LinearReference(method, seed=split_seed).fit(F[train], resp[train])
            zi, zn = ref.embed(F[test], resp[test])
            fitted[f"{method}/{feat}"] = ref
            rows += retrieval_rows(similarity_matrix(zn, zi), ks=ks, seed=split_seed, keep_hits=True,
                                   group=group,
                                   mouse=recording.label, model=f"linear {method}", variant=f"{method} on {feat}",
                                   selection=f"CV on training split: {_chosen(ref)}",
                                   seed_=0, epoch=np.nan, run="", n_train=len(train), n_neurons=len(neurons))
    out = pd.DataFrame(rows).rename(columns={"seed_": "seed"})
    return out.reindex(columns=LONG_COLUMNS + [HITS]), fitted


def _chosen(ref: LinearReference) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in ref.chosen.items()
                     if k != "cv_scores")


def summarise(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Mean over mice (and seeds) per (group, model, variant, k), one interval rule for every row.

    ``df``: rows of :func:`run_rows` / :func:`linear_rows` (they carry the per-query hits, column
    :data:`HITS`). For each mouse, each test image's hits are first averaged over the row's seeds
    (paired: every seed of a mouse is tested on the same images, the split depends on the split seed
    only); the accuracy is the mean over mice of each mouse's mean, and its 95 % interval the
    percentile bootstrap of that mean of means, resampling test images within each mouse
    (:func:`alignlib.metrics.uncertainty.bootstrap_ci_mean_of_means`, as
    :func:`alignlib.experiments.dina.workflow.retrieval_table`). It is an interval over test images
    for these trained models: it does not include the spread between training seeds. ``converged``:
    every trained run behind the row stopped by its patience rule (None for closed-form references)."""
    if HITS not in df.columns:
        raise ValueError(f"summarise needs the per-query hits (column {HITS!r}) that run_rows and "
                         "linear_rows return: concatenate their frames as they are, and select "
                         "LONG_COLUMNS only to save")
    out = []
    for key, g in df.groupby(["group", "model", "variant", "k"], sort=False):
        per_mouse = []
        for mouse, gm in g.groupby("mouse", sort=False):
            hits = [np.asarray(h, dtype=float) for h in gm[HITS]]
            if any(h.ndim != 1 or h.size == 0 for h in hits) or len({h.size for h in hits}) != 1:
                raise ValueError(f"row {key} of mouse {mouse}: per-query hits missing or of different "
                                 "lengths across seeds (every seed of a mouse must be tested on the "
                                 "same images)")
            per_mouse.append(np.mean(hits, axis=0))
        lo, hi = bootstrap_ci_mean_of_means(per_mouse, seed=seed)
        n_seeds = g.seed.nunique()
        how = (f"bootstrap over test images within {len(per_mouse)} mouse/mice (mean of means)"
               + (f", hits averaged over {n_seeds} seeds" if n_seeds > 1 else ", 1 seed"))
        accuracy = float(np.mean([h.mean() for h in per_mouse]))
        trained = g.converged.dropna() if "converged" in g else pd.Series(dtype=object)
        converged = None if trained.empty else bool(all(v is True for v in trained))
        out.append(dict(zip(["group", "model", "variant", "k"], key), accuracy=accuracy,
                        ci_low=lo, ci_high=hi, chance=float(g.chance.mean()),
                        n_mice=len(per_mouse), n_seeds=n_seeds, ci=how, converged=converged))
    return pd.DataFrame(out)


def map_ssim(img_maps: np.ndarray, neu_maps: np.ndarray, win_size: int = 7) -> np.ndarray:
    """SSIM (scikit-image) between each stimulus's image-tower and neural-tower map, after min-max scaling
    each map to [0, 1] (data range 1), as one would compare the maps shown side by side."""
    from skimage.metrics import structural_similarity

    def mm(m):
        lo, hi = m.min(), m.max()
        return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)

    return np.array([structural_similarity(mm(a).astype(np.float64), mm(b).astype(np.float64), data_range=1.0,
                                           win_size=win_size) for a, b in zip(img_maps, neu_maps)])


def map_spectrum(maps: np.ndarray) -> np.ndarray:
    """Variance spectrum of maps across stimuli: PCA eigenvalues of the (n, H*W) maps as fractions of the
    total variance (Fig. 4b style)."""
    x = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    x = x - x.mean(0)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    return s / s.sum() if s.sum() > 0 else s


def regime_grid(values: Iterable[int], key: str, full: int) -> dict[str, dict[str, Any]]:
    """Rows of one data-regime axis (``n_train`` or ``n_neurons``); the full size is the unchanged base (0)."""
    return {f"{key}={v}": ({} if v >= full else {key: int(v)}) for v in values}


def crossings(curves: pd.DataFrame, x: str, a: str, b: str, y: str = "accuracy") -> list[float]:
    """Values of ``x`` where model ``a``'s curve crosses model ``b``'s (linear interpolation in log x).

    ``curves``: one row per (model, x) with column ``y``; only the x values both models have are used."""
    pa = curves[curves.model == a].groupby(x)[y].mean()
    pb = curves[curves.model == b].groupby(x)[y].mean()
    xs = sorted(set(pa.index) & set(pb.index))
    d = [pa[v] - pb[v] for v in xs]
    out = []
    for (x0, d0), (x1, d1) in zip(zip(xs, d), zip(xs[1:], d[1:])):
        if d0 == 0:
            out.append(float(x0))
        elif d0 * d1 < 0:
            t = d0 / (d0 - d1)
            out.append(float(np.exp(np.log(x0) + t * (np.log(x1) - np.log(x0)))))
    if d and d[-1] == 0 and len(xs) > 1:
        out.append(float(xs[-1]))
    return out


def hits_difference(long: pd.DataFrame, a: str, b: str, ks: Iterable[int] = (1, 5, 10),
                    scale: float = 100.0, seed: int = 0) -> pd.DataFrame:
    """Paired differences ``a - b`` of two rows (variants) of one long frame (:func:`run_rows` /
    :func:`linear_rows`, with their per-query hits), per k: each test image's hit averaged over a row's
    seeds, the difference taken image by image, its 95 % interval a percentile bootstrap over the test
    images within each mouse (:func:`alignlib.metrics.uncertainty.paired_difference_ci`), and a second
    interval that also resamples each row's seeds (``seeds_ci_low``/``seeds_ci_high``,
    :func:`alignlib.metrics.uncertainty.seed_resampled_difference_ci`); ``scale`` 100
    gives percentage points. Both rows must cover the same mice and be tested on the same images.
    Columns: k, a, b, difference, ci_low, ci_high, seeds_ci_low, seeds_ci_high, n_items, n_mice, converged (every trained run behind
    either row converged, unknown counting as not; closed-form rows, which name no run, count as
    converged)."""
    if HITS not in long.columns:
        raise ValueError(f"hits_difference needs the per-query hits (column {HITS!r})")
    rows = []
    for k in ks:
        per, per_seed = {}, {}
        for name in (a, b):
            g = long[(long.variant == name) & (long.k == k)]
            if g.empty:
                raise KeyError(f"no row {name!r} at top-{k} in the frame")
            per_seed[name] = {m: np.stack([np.asarray(h, dtype=float) for h in gm[HITS]])
                              for m, gm in g.groupby("mouse", sort=True)}
            per[name] = {m: h.mean(axis=0) for m, h in per_seed[name].items()}
        if set(per[a]) != set(per[b]):
            raise ValueError(f"{a!r} and {b!r} cover other mice: {sorted(per[a])} vs {sorted(per[b])}")
        mice = sorted(per[a])
        if any(per[a][m].shape != per[b][m].shape for m in mice):
            raise ValueError(f"{a!r} and {b!r} were tested on other images: not paired")
        d, lo, hi = paired_difference_ci([scale * per[a][m] for m in mice],
                                         [scale * per[b][m] for m in mice], seed=seed)
        _, slo, shi = seed_resampled_difference_ci([scale * per_seed[a][m] for m in mice],
                                                   [scale * per_seed[b][m] for m in mice], seed=seed)
        # trained rows name their run; a trained run's unknown convergence counts as not converged
        trained = long[long.variant.isin([a, b]) & long.run.fillna("").astype(bool)].converged
        rows.append({"k": k, "a": a, "b": b, "difference": d, "ci_low": lo, "ci_high": hi,
                     "seeds_ci_low": slo, "seeds_ci_high": shi,
                     "n_items": int(sum(per[a][m].size for m in mice)), "n_mice": len(mice),
                     "converged": all(v is True or v == 1 for v in trained)})    # NaN, None: False
    return pd.DataFrame(rows)


def _seed_mean_hits(long: pd.DataFrame, variant: str, k: int) -> np.ndarray:
    """One mouse's per-test-image hits of a row, averaged over its seeds."""
    g = long[(long.variant == variant) & (long.k == k)]
    if g.empty:
        raise KeyError(f"no row {variant!r} at top-{k} in the frame")
    if g.mouse.nunique() != 1:
        raise ValueError("gap_change compares rows of one mouse")
    return np.mean([np.asarray(h, dtype=float) for h in g[HITS]], axis=0)


def gap_change(long: pd.DataFrame, after: tuple[str, str], before: tuple[str, str],
               ks: Iterable[int] = (1, 5, 10), scale: float = 100.0, seed: int = 0) -> pd.DataFrame:
    """How a gap between two rows changes between two conditions, on one mouse's test images:
    ``(a1 - b1) - (a0 - b0)`` with ``after = (a1, b1)``, ``before = (a0, b0)`` (e.g. DINA vs ridge with
    all training images and with 800), each image's hits averaged over a row's seeds, the 95 % interval
    a percentile bootstrap over test images (it leaves out the spread between training seeds)."""
    rows = []
    for k in ks:
        h = {name: scale * _seed_mean_hits(long, name, k) for name in (*after, *before)}
        if len({v.shape for v in h.values()}) != 1:
            raise ValueError("the four rows were tested on other images: not paired")
        change = (h[after[0]] - h[after[1]]) - (h[before[0]] - h[before[1]])
        d, lo, hi = paired_difference_ci(change, np.zeros_like(change), seed=seed)
        rows.append({"k": k, "after": " − ".join(after), "before": " − ".join(before), "change": d,
                     "ci_low": lo, "ci_high": hi, "n_items": int(change.size)})
    return pd.DataFrame(rows)


def seed_accuracies(long: pd.DataFrame, k: int = 1) -> pd.DataFrame:
    """Each trained row's accuracy per seed at top-``k`` (columns variant, seed, accuracy): the spread
    between training seeds that the bootstrap over test images does not cover."""
    g = long[(long.k == k) & long.converged.notna()]
    return g.groupby(["variant", "seed"], sort=False).accuracy.mean().reset_index()


def run_costs(runs: Mapping[tuple[str, int], tuple[DinaRun, str | None]]) -> pd.DataFrame:
    """What each trained run cost, from its run record: row, seed, training images, epochs run, the
    selected epoch, converged, the longest stall of its selection criterion before the selected epoch
    (:func:`alignlib.training.store.longest_stall`; NaN when the history lacks the criterion),
    training seconds, seconds per epoch, threads/device, machine."""
    from alignlib.training.store import longest_stall

    rows = []
    for (name, seed), (run, criterion) in runs.items():
        info = run.info
        crit = criterion or info["selected"]
        execution = info.get("execution", {})
        min_delta = float(run.spec.config.get("fit", {}).get("min_delta", 0.0))
        stall = (longest_stall(run.history[crit], crit, min_delta) if crit in run.history.columns
                 else np.nan)
        rows.append({"row": name, "seed": seed, "n_train": info["split_sizes"]["train"],
                     "n_neurons": info["n_neurons"], "epochs_run": info["epochs_run"],
                     "selected_epoch": info["selections"][crit]["epoch"], "converged": run.converged,
                     "longest_stall_before_best": stall,
                     "train_seconds": info.get("train_seconds", np.nan),
                     "seconds_per_epoch": info.get("train_seconds", np.nan) / max(info["epochs_run"], 1),
                     "threads": execution.get("threads"), "device": execution.get("device"),
                     "machine": info.get("machine_description", ""), "run": run.name})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """Train (or find) Table 1 rows with the page's settings, outside the page: the runs the page then
    reads from ``runs/`` (or, after ``alignlib store add``, from the store). Seeds outer, mice inner, so
    the first seed of every mouse is done first.

    ``python -m alignlib.experiments.dina.table1 --profile quick --rows VGG-16-MLP ViT-MLP --mice M1 M2 --seeds 0 1``
    """
    import argparse

    from alignlib.experiments.dina import cast, settings

    names = {n: g for g, rows in ROW_GROUPS.items() for n in rows}
    ap = argparse.ArgumentParser(prog="python -m alignlib.experiments.dina.table1", description=main.__doc__)
    ap.add_argument("--profile", default="quick", choices=sorted(settings.PROFILES))
    ap.add_argument("--rows", nargs="+", required=True, choices=sorted(names), metavar="ROW",
                    help=f"rows of Table 1: {', '.join(names)}")
    ap.add_argument("--mice", nargs="+", default=None, choices=list(settings.MICE) + ["W1", "W2", "D1", "D2"],
                    help="twin mice (default: the page's); the row DINA on W1-W2, D1-D2 gives the stimulus "
                         "controls' runs (notebooks/dina/interpret_stimuli.py trains them with the same settings)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None)
    ap.add_argument("--source", default="auto", choices=["auto", "real", "twin"])
    ap.add_argument("--twin-size", default=None, choices=list(cast.TWIN_SIZES),
                    help="the twin's size (default: the profile's); paper-images is the data-regime question "
                         "at the recordings' image count (M1 only)")
    ap.add_argument("--n-train", type=int, default=0,
                    help="train on a random subset of this many training images (the data-regime rows; 0: all)")
    ap.add_argument("--n-neurons", type=int, default=0,
                    help="train on a random subset of this many neurons (the data-regime rows; 0: all)")
    ap.add_argument("--twin-seed", type=int, default=0)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    scale = settings.TABLE1[args.profile]
    base = settings.resolve(args.profile, epochs=scale["epochs"],     # the page's base (notebooks/dina/table1.py)
                            twin_size=args.twin_size)
    weights = {"vgg16-mlp": "", "vit-mlp": ""}                         # the page's defaults: from scratch
    rows = {}
    for n in args.rows:
        over = dict(ROW_GROUPS[names[n]][n])
        if over.get("model") in weights:
            over["image_weights"] = weights[over["model"]]
        if args.n_train:
            over["n_train"] = args.n_train
        if args.n_neurons:
            over["n_neurons"] = args.n_neurons
        rows[n] = over
    mice = args.mice or scale["mice"]
    if args.twin_size:
        have = [f"M{i + 1}" for i in range(cast.twin_config(args.twin_size).n_natural_mice)]
        have += [f"W{i + 1}" for i in range(cast.twin_config(args.twin_size).n_whitened_mice)]
        have += [f"D{i + 1}" for i in range(cast.twin_config(args.twin_size).n_8d_mice)]
        if args.mice is None:
            mice = [m for m in mice if m in have]
        elif set(mice) - set(have):
            ap.error(f"the {args.twin_size} twin has mice {', '.join(have)} only")
    for seed in args.seeds if args.seeds is not None else scale["seeds"]:
        for mouse in mice:
            rec = cast.load_mouse(mouse, source=args.source, twin_size=base["twin_size"], twin_seed=args.twin_seed)
            for (name, s), (run, _) in train_rows(rec, base, rows, [seed], args.split_seed, args.device).items():
                print(f"[table1] {mouse} {name} seed {s}: {run.name} converged={run.converged}", flush=True)


if __name__ == "__main__":
    main()
