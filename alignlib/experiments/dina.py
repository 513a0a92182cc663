"""The DINA chapter's workflow (Wang et al. 2026 §3-4): train one mouse, save the run, tabulate retrieval.

A run directory ``runs/dina/<profile>/<mouse>/seed<seed>/`` holds ``config.json`` (resolved
parameters, code version), ``run.json`` (data identity: source, files, checksums, twin seed),
``checkpoint.pt`` (best epoch, loads with ``weights_only=True``), ``history.csv`` and
``test_embeddings.npz`` (held-out embeddings and maps), so that the results page needs no retraining.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from alignlib.data.catalog import MouseRecording
from alignlib.metrics.retrieval import chance_topk, retrieval_ranks, similarity_matrix
from alignlib.metrics.uncertainty import bootstrap_ci
from alignlib.models.dina import build_dina, count_parameters
from alignlib.paths import runs_dir
from alignlib.repro import seed_everything, write_json
from alignlib.train import TrainConfig, TrainResult, embed, split_indices, train_dina

TEST_FRACTION = 0.1   # paper: 10 % of image-response pairs held out (280-way at 2,800 images)
VAL_FRACTION = 0.1    # our choice: carved from the remaining 90 %, used for early stopping only


def run_dir_for(profile: str, mouse: str, seed: int) -> Path:
    return runs_dir() / "dina" / profile / mouse / f"seed{seed}"


def train_mouse(recording: MouseRecording, run_dir: str | Path, *, width: str = "quick",
                config: TrainConfig | None = None, split_seed: int = 0,
                model_overrides: dict[str, Any] | None = None) -> TrainResult:
    """Train DINA on one mouse (responses averaged over the two repeats) and save everything.

    The split depends only on ``split_seed`` and the number of images, so every model trained on
    this mouse is tested on the same held-out images; ``config.seed`` sets the initialisation and
    batch order.
    """
    config = config or TrainConfig()
    run_dir = Path(run_dir)
    session = recording.session
    seed_everything(config.seed)
    splits = split_indices(session.n_images, TEST_FRACTION, VAL_FRACTION, seed=split_seed)
    model = build_dina(session.n_neurons, width, **(model_overrides or {}))
    result = train_dina(model, session.images, session.mean_response, splits, config, run_dir=run_dir)
    test = splits["test"]
    z_img, z_neu, img_maps, neu_maps = embed(model, session.images[test], session.mean_response[test],
                                             normalizer=result.normalizer, return_maps=True)
    np.savez_compressed(run_dir / "test_embeddings.npz", z_img=z_img, z_neu=z_neu, img_maps=img_maps,
                        neu_maps=neu_maps, test_index=test, image_ids=session.image_ids[test])
    write_json(run_dir / "run.json", {
        "mouse": recording.label, "stimset": recording.stimset, "source": recording.source,
        "data": recording.description, "data_identity": recording.identity,
        "n_images": session.n_images, "n_neurons": session.n_neurons, "width": width,
        "split_seed": split_seed, "split_sizes": {k: len(v) for k, v in splits.items()},
        "n_parameters": {"image_tower": count_parameters(model.image_tower),
                         "neural_tower": count_parameters(model.neural_tower)},
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early, "train_seconds": result.train_seconds,
    })
    return result


def load_test_embeddings(run_dir: str | Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / "test_embeddings.npz"
    if not path.exists():
        raise FileNotFoundError(f"no saved run at {run_dir} (missing {path.name}); run the dina/train notebook first")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def retrieval_rows(mouse: str, seed: int, z_neu: np.ndarray, z_img: np.ndarray, ks: Iterable[int] = (1, 5, 10),
                   model: str = "DINA", n_resamples: int = 2000) -> list[dict[str, Any]]:
    """Long-format rows (mouse, model, seed, k, accuracy, 95 % bootstrap CI over queries, chance)."""
    ranks = retrieval_ranks(similarity_matrix(z_neu, z_img))
    n = len(ranks)
    rows = []
    for k in ks:
        hits = ranks <= k
        lo, hi = bootstrap_ci(hits, n_resamples=n_resamples, seed=seed)
        rows.append({"mouse": mouse, "model": model, "seed": seed, "k": int(k), "accuracy": float(hits.mean()),
                     "ci_low": lo, "ci_high": hi, "n_test": n, "chance": chance_topk(n, k)})
    return rows


def retrieval_table(profile: str, mice: Iterable[str], seed: int = 0, ks: Iterable[int] = (1, 5, 10)) -> pd.DataFrame:
    """Table 1's DINA column from saved runs: one row per mouse x k, plus the mean over mice."""
    rows = []
    for mouse in mice:
        emb = load_test_embeddings(run_dir_for(profile, mouse, seed))
        rows += retrieval_rows(mouse, seed, emb["z_neu"], emb["z_img"], ks)
    df = pd.DataFrame(rows)
    mean = (df.groupby(["model", "seed", "k"], as_index=False)[["accuracy", "chance"]].mean()
            .assign(mouse="mean", ci_low=np.nan, ci_high=np.nan, n_test=np.nan))
    return pd.concat([df, mean[df.columns]], ignore_index=True)


PUBLISHED_ALPHA_NATURAL = 1.04  # Stringer et al. 2019, Nature: cvPCA power-law exponent, natural images


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


def check_run_data(run_dir: str | Path, recording: MouseRecording) -> None:
    """Refuse to evaluate a run against data other than what it was trained on."""
    import json

    run = json.loads((Path(run_dir) / "run.json").read_text())
    trained, given = run["data_identity"].get("session_sha256"), recording.identity.get("session_sha256")
    if trained != given:
        raise ValueError(f"run {run_dir} was trained on {run['data']} (sha256 {trained[:12]}...), "
                         f"not on {recording.description} (sha256 {given[:12]}...): pass the same source/twin "
                         f"parameters as the training notebook")


def representative_queries(similarity: np.ndarray, n: int = 5, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Queries spread evenly over the rank distribution (best to worst), and each one's top-k candidates.

    Returns ``(query_index, topk_candidates)`` with shapes (n,) and (n, k).
    """
    ranks = retrieval_ranks(similarity)
    order = np.argsort(ranks, kind="stable")
    picks = order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]
    topk = np.argsort(-similarity[picks], axis=1, kind="stable")[:, :k]
    return picks, topk


def initial_neural_similarity(responses: np.ndarray, width: str = "quick", residual: bool = False,
                              seed: int = 0, n: int = 64) -> float:
    """Mean cosine similarity between the neural embeddings of ``n`` different stimuli at initialisation.

    Values near 1 mean the untrained neural tower maps every stimulus to almost the same embedding,
    which is what makes the paper's (residual-free) tower slow to train.
    """
    import torch

    from alignlib.train import ResponseNormalizer

    seed_everything(seed)
    r = np.asarray(responses[:n], dtype=np.float32)
    model = build_dina(r.shape[1], width, residual=residual).eval()
    with torch.no_grad():
        z = model.encode_responses(ResponseNormalizer().fit(torch.from_numpy(r)).transform(torch.from_numpy(r)))
    sim = (z @ z.T).numpy()
    return float(sim[~np.eye(len(sim), dtype=bool)].mean())
