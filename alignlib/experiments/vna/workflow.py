"""The VNA chapter's protocol (VNA §3-4): train each method on a split, score the held-out pairs, read
discriminative encoding and decoding AUC (and top-1/top-5) per query, and summarise with 95 % CIs.

Methods (:data:`METHODS`): ``vna`` (contrastive, §3.1), ``direct_encoding`` and ``direct_decoding`` (MSE,
§4.2), ``dina`` (DINA's towers, quick width, trained with DINA's objective on the same split; on the twin
the DINA chapter's own run is reused) and ``ridge`` (a linear direct-encoding reference: ridge regression
pixels -> responses, scored like direct encoding). Every method yields one score matrix ``S[i, j]`` (image
i against response j) on the test pairs; encoding reads its rows, decoding its columns
(:func:`alignlib.metrics.discrimination.discrimination_scores`). Distractors: all other test items of the
split (the paper samples distractors without saying how many).

Small test sets make the bootstrap interval over items optimistic (it ignores that the items are also each
other's distractors), so every table row also carries a pairing-permutation null (:func:`pairing_null_rows`,
:func:`alignlib.metrics.discrimination.pairing_null`): the responses are re-paired with the candidates at random
and the row's statistic recomputed, giving ``null_sd`` and a one-sided ``p_pairing``.

Every trained fit is a run (:func:`scored_fit`): ``runs/vna/<dataset>-<method>-s<seed>-<hash>/`` holds its
configuration (method, settings, seed, and the SHA-256 of the exact tensors it was trained, validated and tested
on), its run record (epochs, selected epoch, convergence) and its held-out score matrix; an identical fit is read
back, from ``runs/`` or from the run store shipped with the book, instead of trained again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from alignlib.arrays import model_device
from alignlib.metrics.discrimination import discrimination_scores, pairing_null
from alignlib.metrics.retrieval import retrieval_ranks, topk_hits
from alignlib.metrics.uncertainty import bootstrap_ci
from alignlib.models.vna import build_vna_model, resize_square
from alignlib.repro import seed_everything
from alignlib.training import (ContrastiveObjective, FitConfig, Objective, OptimizerSpec, encode_pairs, fit,
                               prepare_images, prepare_pairs)

__all__ = ["PairedSet", "RegressionObjective", "METHODS", "prepare_set", "fit_method", "score_matrix", "query_rows",
           "ridge_scores", "pairing_null_rows", "evaluate_split", "run_protocol", "summarize", "dina_twin_scores",
           "ridge_fit_status", "NO_FIT", "auc_cells", "paired_differences", "scored_fit", "fit_spec",
           "RUN_FORMAT", "store_contents"]

#: bump when a code change alters what an unchanged configuration computes (stored fits of another format are
#: refused, not reused)
RUN_FORMAT = 1
#: the settings a fit depends on (the rest of the profile chooses data and protocol, which the content hash holds)
_FIT_KEYS = ("latent_dim", "temperature", "lr", "batch_size", "epochs", "patience", "select")

METHODS = ("vna", "direct_encoding", "direct_decoding", "dina", "ridge")


@dataclass
class PairedSet:
    """Images (prepared: ``(x - 128) / 64``, resized to side x side) with their responses (raw, (n, N))."""

    name: str                    # e.g. "Allen (real)" or "twin M1"
    images: torch.Tensor         # (n, 1, S, S) float32
    responses: np.ndarray        # (n, N) float32
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.images.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.responses.shape[1]


def prepare_set(name: str, images, responses, side: int, description: str = "", **meta: Any) -> PairedSet:
    """Standardise 0..255 images and resize them once to ``side`` x ``side`` (the paper's square input)."""
    x = resize_square(prepare_images(images), side).contiguous()
    r = np.asarray(responses, dtype=np.float32)
    if r.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(f"responses must be (n_images, n_neurons) with n_images = {x.shape[0]}, got {r.shape}")
    return PairedSet(name, x, r, description, dict(meta))


def _decoding_ranks(scores: np.ndarray) -> dict[str, float]:
    """Validation retrieval in the decoding direction (response query -> image candidates)."""
    s = scores.T
    out = {"val_mean_rank": float(np.mean(retrieval_ranks(s)))}
    for k in (1, 5, 10):
        out[f"val_top{k}"] = float(np.mean(topk_hits(s, k)))
    return out


@dataclass
class RegressionObjective(Objective):
    """MSE of a direct encoding or decoding model (VNA §4.2), Adam. Validation: ``val_loss`` (MSE over the
    validation pairs) and retrieval of the true image from each response with the model's score matrix."""

    lr: float = 1e-3

    def make_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(model.parameters(), lr=self.lr)]

    def min_batch(self) -> int:
        return 2          # BatchNorm needs two samples

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return model.loss(batch["images"], batch["responses"])

    @torch.no_grad()
    def validate(self, model: nn.Module, data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, float]:
        was = model.training
        model.eval()
        try:
            x, r = data["images"].to(device), data["responses"].to(device)
            out = {"val_loss": float(model.loss(x, r))}
            out.update(_decoding_ranks(model.score_matrix(x, r).cpu().numpy()))
        finally:
            model.train(was)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mse", "optimizer": "adam", "lr": self.lr}


def _dina_parts(n_neurons: int, side: int):
    from alignlib.experiments.dina import settings as dina_settings
    from alignlib.experiments.dina.workflow import model_kwargs, objective_for
    from alignlib.models.dina import build_dina

    cfg = dina_settings.resolve("quick")
    kw = model_kwargs(cfg)
    width = kw.pop("width")
    return build_dina(n_neurons, width, input_size=(side, side), **kw), objective_for(cfg)


def fit_method(method: str, train: Mapping[str, torch.Tensor], val: Mapping[str, torch.Tensor], n_neurons: int,
               cfg: Mapping[str, Any], side: int, seed: int, device: str = "auto",
               return_result: bool = False):
    """Train one method (not ``ridge``) on prepared tensors; the model ends with its selected epoch's weights.
    With ``return_result``: ``(model, FitResult)`` (its ``stopped_early`` says whether the patience rule
    stopped it before the epoch cap: converged)."""
    seed_everything(seed)
    if method == "dina":
        model, objective = _dina_parts(n_neurons, side)
    else:
        model = build_vna_model(method, n_neurons, latent_dim=int(cfg["latent_dim"]), side=side)
        objective = (ContrastiveObjective([OptimizerSpec("*", "adam", float(cfg["lr"]))], float(cfg["temperature"]))
                     if method == "vna" else RegressionObjective(float(cfg["lr"])))
    config = FitConfig(epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), patience=int(cfg["patience"]),
                       select=cfg["select"], track=(), seed=int(seed), device=device, progress=False)
    result = fit(model, objective, train, val, config)
    return (model, result) if return_result else model


def _content_sha256(data: Mapping[str, Mapping[str, torch.Tensor]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for part in ("train", "val", "test"):
        for key in sorted(data[part]):
            a = np.ascontiguousarray(data[part][key].detach().cpu().numpy())
            h.update(f"{part}/{key}/{a.dtype}/{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def fit_spec(method: str, data: Mapping[str, Mapping[str, torch.Tensor]], n_neurons: int, cfg: Mapping[str, Any],
             side: int, seed: int, dataset: str):
    """The run identity of one trained fit: method, the settings it depends on, seed, image side, and the
    content hash of the exact train/val/test tensors (so a fit on other data, a fold or a split is another run)."""
    from alignlib.training.runs import RunSpec

    if method == "ridge":
        raise ValueError("ridge is closed-form and not a stored run")
    config = {"format": RUN_FORMAT, "method": method, "side": int(side), "n_neurons": int(n_neurons),
              "fit": {**{k: cfg[k] for k in _FIT_KEYS}, "epochs": int(cfg["epochs"]),
                      "patience": int(cfg["patience"]), "seed": int(seed)},
              "data": {"dataset": dataset, "content_sha256": _content_sha256(data),
                       "n": {k: int(len(v["responses"])) for k, v in data.items()}}}
    if method == "dina":
        from alignlib.experiments.dina import settings as dina_settings
        from alignlib.experiments.dina.workflow import model_kwargs

        from alignlib.experiments.dina.workflow import objective_for

        dina_cfg = dina_settings.resolve("quick")
        config["dina_model"] = model_kwargs(dina_cfg)
        config["dina_objective"] = objective_for(dina_cfg).to_dict()
    slug = "".join(c if c.isalnum() else "-" for c in dataset).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return RunSpec("vna", f"{slug}-{method}-s{int(seed)}", config)


def _read_fit(directory) -> tuple[np.ndarray, dict[str, Any]]:
    import json
    from pathlib import Path

    d = Path(directory)
    info = json.loads((d / "run.json").read_text())
    with np.load(d / "predictions.npz") as z:
        # float32 as trained, in runs/ and in the store (store_contents: exact), the same numbers either way
        scores = z["scores"].astype(np.float64)
    return scores, {"converged": bool(info["converged"]), "epochs_run": int(info["epochs_run"]),
                    "epoch": int(info["selections"][info["selected"]]["epoch"])}


def scored_fit(method: str, data: Mapping[str, Mapping[str, torch.Tensor]], n_neurons: int, cfg: Mapping[str, Any],
               side: int, seed: int, dataset: str, device: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """The held-out score matrix of one trained fit and its convergence (``converged``, ``epochs_run``, selected
    ``epoch``): read back when an identical fit is in ``runs/`` or the run store, else trained now
    (:func:`fit_method`) and kept as a run. The run directory is locked while it trains."""
    from alignlib.repro import provenance, write_json
    from alignlib.training.runs import run_lock
    from alignlib.training.store import convergence, made_by, record_run_read

    spec = fit_spec(method, data, n_neurons, cfg, side, seed, dataset)
    with run_lock(spec.directory()):
        found = spec.find()
        if found is not None:
            record_run_read(found)
            return _read_fit(found)
        directory = spec.directory()
        if directory.exists():          # an interrupted fit (these take seconds): start again
            import shutil

            shutil.rmtree(directory)
        spec.write(directory)
        model, result = fit_method(method, data["train"], data["val"], n_neurons, cfg, side, seed, device,
                                   return_result=True)
        scores = score_matrix(model, data["test"]["images"], data["test"]["responses"])
        np.savez_compressed(directory / "predictions.npz", scores=scores.astype(np.float32))
        pd.DataFrame(result.history).to_csv(directory / "history.csv", index=False)
        selections = {c: {"epoch": sel.epoch, "value": sel.value, "complete": sel.complete}
                      for c, sel in result.selections.items()}
        write_json(directory / "run.json", {
            "dataset": dataset, "method": method, "selected": result.selected, "selections": selections,
            "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds, "execution": result.execution,
            **convergence({"selected": result.selected, "epochs_run": result.epochs_run,
                           "selections": selections}, spec.config["fit"]),
            "provenance": provenance(), **made_by()})
        record_run_read(directory)
        return _read_fit(directory)


def store_contents(directory) -> dict[str, bool]:
    """What the run store keeps of a VNA fit: its score matrix, exactly (float32: rounding it to float16 ties
    near-constant scores and moves per-query AUCs by up to 0.09), no weights."""
    return {"maps": False, "weights": False, "exact_predictions": True}


@torch.no_grad()
def score_matrix(model: nn.Module, images: torch.Tensor, responses: torch.Tensor) -> np.ndarray:
    """Eval-mode (n_images x n_responses) scores: cosine similarity for contrastive models, minus the
    Euclidean distance of the prediction for direct models (VNA §4.2)."""
    was = model.training
    model.eval()
    try:
        if hasattr(model, "score_matrix"):
            dev = model_device(model)
            return model.score_matrix(images.to(dev), responses.to(dev)).cpu().double().numpy()
        z_img, z_neu = encode_pairs(model, images, responses)
        return (F.normalize(z_img.double(), dim=-1) @ F.normalize(z_neu.double(), dim=-1).T).numpy()
    finally:
        model.train(was)


#: RidgeCV's grid (1e-1 .. 1e9; the earlier top, 1e6, was chosen on Allen, so the grid was extended)
RIDGE_ALPHAS = np.logspace(-1, 9, 21)


#: the ``fit`` status of a summary row whose fit failed (its numbers are not measurements)
NO_FIT = "no fit"


def ridge_fit_status(alpha: float, predictions: np.ndarray, grid=RIDGE_ALPHAS,
                     rtol: float = 1e-6) -> str:
    """``"ok"``, or why the ridge fit is no fit: its chosen penalty is the top of ``grid`` (the fit
    shrinks towards the training mean, and a larger penalty might have been chosen: no optimum was
    found), or its predictions are constant over the test items (s.d. over items below ``rtol`` x
    their mean magnitude): every image then scores the candidates alike and the encoding AUC is 0.5
    by construction."""
    pred = np.asarray(predictions, dtype=np.float64)
    if alpha >= np.max(grid):
        return f"{NO_FIT}: penalty at the top of the grid ({alpha:.0e})"
    if len(pred) < 2 or pred.std(axis=0).max() <= rtol * max(float(np.abs(pred).mean()), 1e-300):
        return f"{NO_FIT}: constant predictions"
    return "ok"


def ridge_scores(train: Mapping[str, torch.Tensor], test: Mapping[str, torch.Tensor],
                 return_alpha: bool = False, return_info: bool = False):
    """Linear direct encoding: ridge (alpha by leave-one-out RidgeCV) from pixels to z-scored responses;
    score = minus the Euclidean distance between prediction and candidate response. With ``return_alpha``:
    ``(scores, chosen alpha)`` (the grid is :data:`RIDGE_ALPHAS`); with ``return_info``: ``(scores,
    {"ridge_alpha": alpha, "fit": status})`` (:func:`ridge_fit_status`)."""
    from scipy.spatial.distance import cdist
    from sklearn.linear_model import RidgeCV

    x_tr = train["images"].flatten(1).numpy().astype(np.float64)
    x_te = test["images"].flatten(1).numpy().astype(np.float64)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x_tr, train["responses"].numpy())
    pred = ridge.predict(x_te)
    s = -cdist(pred, test["responses"].numpy().astype(np.float64))
    if return_info:
        alpha = float(ridge.alpha_)
        return s, {"ridge_alpha": alpha, "fit": ridge_fit_status(alpha, pred)}
    return (s, float(ridge.alpha_)) if return_alpha else s


def query_rows(scores: np.ndarray, test_index: np.ndarray, **labels) -> list[dict]:
    """Per-query rows (labels, task, item = test_index[q], n_candidates, auc, top1, top5) of one score matrix."""
    per = discrimination_scores(scores)
    rows = []
    for task, d in per.items():
        for q in range(len(test_index)):
            rows.append({**labels, "task": task, "item": int(test_index[q]), "n_candidates": scores.shape[1],
                         "auc": float(d["auc"][q]), "top1": float(d["top1"][q]), "top5": float(d["top5"][q])})
    return rows


def pairing_null_rows(score_matrices, n_permutations: int = 1000, seed: int = 0, **labels) -> pd.DataFrame:
    """Long table (labels, task, perm, auc_sum, n_items) of :func:`pairing_null` over one split's seeds."""
    null = pairing_null(score_matrices, n_permutations, seed)
    n = np.asarray(score_matrices[0]).shape[0]
    return pd.concat([pd.DataFrame({**labels, "task": t, "perm": np.arange(n_permutations), "auc_sum": v,
                                    "n_items": n}) for t, v in null.items()], ignore_index=True)


def evaluate_split(pset: PairedSet, split: Mapping[str, np.ndarray], methods: Iterable[str], seeds: Iterable[int],
                   cfg: Mapping[str, Any], *, protocol: str, fold: int = 0, side: int | None = None,
                   device: str = "auto", keep_scores: bool = False, n_permutations: int = 1000,
                   dina_side: int | None = None):
    """Train every method x seed on ``split`` (train/val/test scene indices) and score its test pairs.

    Returns ``(rows, scores, null)``: per-query rows (dataset, protocol, fold, method, seed, task, item,
    n_candidates, auc, top1, top5, converged: the patience rule stopped the fit before the epoch cap (ridge:
    True, closed form), and for trained methods epochs_run and the selected epoch), with ``keep_scores`` ``{(method, seed): S}``, and the pairing-permutation
    null of every method (:func:`pairing_null_rows`; the same permutations for every method of this fold).
    ``dina_side``: DINA's image input side (its images are resized to it; default: the set's side)."""
    side = int(side or pset.images.shape[-1])
    data, _, split = prepare_pairs(pset.images, pset.responses, dict(split), standardize=False)
    test = split["test"]
    rows, kept, nulls = [], {}, []
    for method in methods:
        mats = []
        for seed in ([0] if method == "ridge" else seeds):
            extra = {}
            if method == "ridge":
                s, extra = ridge_scores(data["train"], data["test"], return_info=True)
                extra["converged"] = True                 # closed form: nothing to converge
            else:
                m_side = int(dina_side) if method == "dina" and dina_side else side
                d = data if m_side == side else {k: {**v, "images": resize_square(v["images"], m_side).contiguous()}
                                                 for k, v in data.items()}
                s, extra = scored_fit(method, d, pset.n_neurons, cfg, m_side, seed, pset.name, device)
            rows += query_rows(s, test, dataset=pset.name, protocol=protocol, fold=fold, method=method, seed=seed,
                               **extra)
            mats.append(s)
            if keep_scores:
                kept[(method, seed)] = s
        if n_permutations:
            nulls.append(pairing_null_rows(mats, n_permutations, 1000 + fold, dataset=pset.name, protocol=protocol,
                                           fold=fold, method=method))
    return rows, kept, (pd.concat(nulls, ignore_index=True) if nulls else pd.DataFrame())


def run_protocol(pset: PairedSet, splits: list[Mapping[str, np.ndarray]], methods: Iterable[str],
                 cfg: Mapping[str, Any], *, protocol: str, device: str = "auto", progress: bool = True,
                 n_permutations: int = 1000):
    """:func:`evaluate_split` over several splits (e.g. k folds); scores kept for the first split only.
    Returns ``(per_query, first_split_scores, pairing_null)``."""
    from tqdm.auto import tqdm

    rows, first, nulls = [], {}, []
    for fold, split in enumerate(tqdm(splits, desc=f"{pset.name}: {protocol}", disable=not progress)):
        r, kept, null = evaluate_split(pset, split, methods, cfg["seeds"], cfg, protocol=protocol, fold=fold,
                                       device=device, keep_scores=fold == 0, n_permutations=n_permutations,
                                       dina_side=cfg.get("dina_side_allen"))
        rows += r
        nulls.append(null)
        first = first or kept
    return pd.DataFrame(rows), first, pd.concat(nulls, ignore_index=True)


def dina_twin_scores(recording, seed: int = 0, split_seed: int = 0):
    """The DINA chapter's run on this twin mouse (the profile's settings): its held-out embeddings as a
    score matrix.

    Returns ``(S, test_index, run)`` (a :class:`alignlib.experiments.dina.workflow.DinaRun`: its ``name``
    and ``converged``); raises FileNotFoundError when neither ``runs/`` nor the store holds it."""
    from alignlib.experiments.dina import settings as dina_settings
    from alignlib.experiments.dina.workflow import find_run, run_spec

    profile = {"quick": "quick", "smoke": "smoke", "paper": "paper"}[recording.identity["twin_size"]]
    run = find_run(run_spec(recording, dina_settings.resolve(profile), seed, split_seed))
    emb = run.test_embeddings()
    s = F.normalize(torch.from_numpy(emb["z_img"]).double(), dim=-1) @ F.normalize(
        torch.from_numpy(emb["z_neu"]).double(), dim=-1).T
    return s.numpy(), emb["test_index"], run


def summarize(per_query: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
              null: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table rows: dataset x protocol x method x task (encoding, decoding, average).

    Per query item, the AUC is averaged over seeds (and "average" is the item's mean of its encoding and
    decoding AUC); ``auc`` is the mean over items with a 95 % percentile-bootstrap CI over items (test
    scenes). ``seed_sd`` is the s.d. over seeds of the per-seed mean; top-1/top-5 are means over items and
    seeds; ``chance_top1`` = mean of 1 / n_candidates; chance AUC is 0.5.

    With ``null`` (the pairing-permutation rows of :func:`run_protocol`), each row also gets ``null_mean``,
    ``null_sd`` (of the row's mean AUC when the pairing is shuffled; folds add up per permutation) and the
    one-sided ``p_pairing`` = (1 + #null >= auc) / (1 + n_permutations); rows without a null get NaN.

    ``converged``: every fit behind the row converged (per-query column ``converged``; rows without the
    column: None, unknown).

    ``fit``: ``"ok"``, or :data:`NO_FIT` when every fit of the row (fold x seed) is no fit
    (per-query column ``fit``, e.g. :func:`ridge_fit_status`), or ``"no fit in k of n fits"`` when
    some are; the numbers stay in the table (a CSV keeps them), :func:`auc_cells` shows "no fit" in
    their place.
    """
    null_stats = {}
    if null is not None and len(null):
        agg = null.groupby(["dataset", "protocol", "method", "task", "perm"], sort=False)[
            ["auc_sum", "n_items"]].sum()
        for (d, p, m, t), g in (agg.auc_sum / agg.n_items).groupby(level=[0, 1, 2, 3], sort=False):
            null_stats[(d, p, m, t)] = g.to_numpy()
    keys = ["dataset", "protocol", "method"]
    out = []
    for key, g in per_query.groupby(keys, sort=False):
        fit = _row_fit(g)
        converged = (bool(g.converged.fillna(False).astype(bool).all())
                     if "converged" in g.columns and g.converged.notna().any() else None)
        item = g.groupby(["task", "item"]).agg(auc=("auc", "mean"), top1=("top1", "mean"), top5=("top5", "mean"),
                                               inv=("n_candidates", lambda n: float(np.mean(1.0 / n))))
        per_seed = g.groupby(["task", "seed"]).auc.mean().unstack("task")
        tasks = {t: item.loc[t] for t in ("encoding", "decoding")}
        tasks["average"] = (tasks["encoding"] + tasks["decoding"]) / 2
        per_seed["average"] = (per_seed["encoding"] + per_seed["decoding"]) / 2
        for task, t in tasks.items():
            lo, hi = bootstrap_ci(t.auc.to_numpy(), n_resamples=n_resamples, seed=seed)
            nv = null_stats.get((*key, task))
            obs = float(t.auc.mean())
            pnull = ({"null_mean": float(nv.mean()), "null_sd": float(nv.std(ddof=1)),
                      "p_pairing": float((1 + np.sum(nv >= obs - 1e-12)) / (1 + len(nv)))} if nv is not None
                     else {"null_mean": np.nan, "null_sd": np.nan, "p_pairing": np.nan})
            out.append({**dict(zip(keys, key)), "task": task, "auc": float(t.auc.mean()), "ci_low": lo, "ci_high": hi,
                        "seed_sd": float(per_seed[task].std(ddof=1)) if len(per_seed) > 1 else np.nan,
                        "n_seeds": int(len(per_seed)), "n_queries": int(len(t)),
                        "top1": float(t.top1.mean()), "top5": float(t.top5.mean()), "chance_top1": float(t.inv.mean()), **pnull,
                        "fit": fit, "converged": converged})
    return pd.DataFrame(out)


def paired_differences(per_query: pd.DataFrame, a: str, b: str, n_resamples: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Method ``a`` minus method ``b``, AUC per task, paired over test items within each dataset x protocol
    (for VNA's relative claims, the ledger's ``paired_difference`` rule).

    Each item's AUC is averaged over the seeds (and folds: under k-fold CV each scene is tested in one fold)
    of each method, as in :func:`summarize`; "average" is the item's mean of encoding and decoding; the
    difference is taken item by item and its 95 % interval is a percentile bootstrap over the items
    (:func:`alignlib.metrics.uncertainty.paired_difference_ci`). Columns: dataset, protocol, a, b, task,
    difference, ci_low, ci_high, n_items, n_seeds_a, n_seeds_b, converged (every fit of both methods),
    fit_ok (neither method's row is :data:`NO_FIT`)."""
    from alignlib.metrics.uncertainty import paired_difference_ci

    rows = []
    for (dataset, protocol), g in per_query.groupby(["dataset", "protocol"], sort=False):
        ga, gb = g[g.method == a], g[g.method == b]
        if ga.empty or gb.empty:
            continue
        item = {}
        for name, gm in ((a, ga), (b, gb)):
            t = gm.groupby(["task", "item"]).auc.mean()
            item[name] = {"encoding": t.loc["encoding"], "decoding": t.loc["decoding"]}
            item[name]["average"] = (item[name]["encoding"] + item[name]["decoding"]) / 2
        conv = [gm.converged if "converged" in gm.columns else pd.Series([None]) for gm in (ga, gb)]
        converged = all(c.notna().all() and c.astype(bool).all() for c in conv)
        fit_ok = _row_fit(ga) != NO_FIT and _row_fit(gb) != NO_FIT
        for task in ("encoding", "decoding", "average"):
            xa, xb = item[a][task], item[b][task]
            if not xa.index.equals(xb.index):
                raise ValueError(f"{dataset}, {protocol}: {a} and {b} were tested on other items: not paired")
            d, lo, hi = paired_difference_ci(xa.to_numpy(), xb.to_numpy(), n_resamples=n_resamples, seed=seed)
            rows.append({"dataset": dataset, "protocol": protocol, "a": a, "b": b, "task": task,
                         "difference": d, "ci_low": lo, "ci_high": hi, "n_items": len(xa),
                         "n_seeds_a": int(ga.seed.nunique()), "n_seeds_b": int(gb.seed.nunique()),
                         "converged": converged, "fit_ok": fit_ok})
    return pd.DataFrame(rows)


def _row_fit(g: pd.DataFrame) -> str:
    """The ``fit`` status of one summary row from its per-query rows (see :func:`summarize`)."""
    if "fit" not in g.columns or g.fit.isna().all():
        return "ok"
    per_fit = g.groupby([c for c in ("fold", "seed") if c in g.columns], sort=False).fit.first()
    bad = int(per_fit.fillna("ok").ne("ok").sum())
    if bad == 0:
        return "ok"
    return NO_FIT if bad == len(per_fit) else f"{NO_FIT} in {bad} of {len(per_fit)} fits"


def auc_cells(table: pd.DataFrame, index: Sequence[str] = ("dataset", "protocol", "label"),
              tasks: Sequence[str] = ("encoding", "decoding", "average"),
              digits: int = 3) -> pd.DataFrame:
    """The display form of :func:`summarize`'s table: one row per ``index``, one column per task,
    each cell "auc [ci_low, ci_high]", or "no fit" where the row's ``fit`` is :data:`NO_FIT` (its
    AUC is not a measurement); a partly failed row keeps its numbers, marked with its status."""
    fit = table["fit"] if "fit" in table.columns else pd.Series("ok", index=table.index)
    from alignlib.report import interval_text

    cell = [NO_FIT if f == NO_FIT else interval_text(a, lo, hi, digits) + ("" if f == "ok" else f" ({f})")
            for a, lo, hi, f in zip(table.auc, table.ci_low, table.ci_high, fit)]
    return table.assign(cell=cell).pivot_table(index=list(index), columns="task", values="cell",
                                               aggfunc="first", sort=False)[list(tasks)]
