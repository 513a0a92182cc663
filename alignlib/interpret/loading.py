"""Load a completed DINA run's trained model, its response normaliser and its split (for the analyses)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alignlib.training.checkpoint import load_model_checkpoint
from alignlib.training.normalize import ResponseNormalizer

__all__ = ["TrainedModel", "load_trained"]


@dataclass
class TrainedModel:
    model: torch.nn.Module            # DINA, eval mode, on CPU
    normalizer: ResponseNormalizer    # fitted on the run's training split
    splits: dict[str, np.ndarray]
    epoch: int
    criterion: str


def load_trained(run: Any) -> TrainedModel:
    """The model of ``run`` (a :class:`alignlib.experiments.dina.workflow.DinaRun`) at its selected epoch."""
    ckpt = load_model_checkpoint(run.directory / "checkpoint.pt")
    norm = ResponseNormalizer()
    norm.mean = ckpt["normalizer"]["mean"].numpy()
    norm.std = ckpt["normalizer"]["std"].numpy()
    model = ckpt["model"].eval()
    return TrainedModel(model, norm, {k: v.numpy() for k, v in ckpt["splits"].items()},
                        int(ckpt.get("epoch", -1)), str(ckpt.get("criterion", "")))


@dataclass
class MouseAnalysis:
    """What the interpretability pages need of one mouse: its recording, run, trained model and test data."""

    label: str
    recording: Any                  # alignlib.experiments.dina.cast.MouseRecording
    run: Any                        # alignlib.experiments.dina.workflow.DinaRun
    trained: TrainedModel
    test_index: np.ndarray
    images: np.ndarray              # test images, 0..255 (n, 68, 270)
    images_std: np.ndarray          # the same, standardised as the image tower sees them
    raw_responses: np.ndarray       # trial-averaged test responses before z-scoring (n, N)
    z_responses: np.ndarray         # the neural tower's input (training-split z-scores)

    @property
    def image_tower(self) -> torch.nn.Module:
        return self.trained.model.image_tower

    @property
    def neural_tower(self) -> torch.nn.Module:
        return self.trained.model.neural_tower


def analyse_mouse(label: str, cfg: dict, source: str = "auto", twin_seed: int = 0, seed: int = 0,
                  split_seed: int = 0, train: bool = False, progress: bool = False) -> MouseAnalysis:
    """Load mouse ``label`` and its completed DINA run of settings ``cfg`` (``train=True``: train it if missing,
    with :func:`alignlib.experiments.dina.workflow.train_mouse`), with its held-out test data."""
    from alignlib.experiments.dina import cast
    from alignlib.experiments.dina.workflow import find_run, run_spec, train_mouse
    from alignlib.models.dsnet import standardize_images

    if cfg.get("model", "dina") != "dina" or cfg.get("n_neurons") or cfg.get("scaling_fit", "train") != "train":
        raise ValueError("the interpretability analyses need DINA runs on all neurons with training-split scaling "
                         f"(got model={cfg.get('model')!r}, n_neurons={cfg.get('n_neurons')!r}, "
                         f"scaling_fit={cfg.get('scaling_fit')!r})")
    rec = cast.load_mouse(label, source=source, twin_size=cfg["twin_size"], twin_seed=twin_seed)
    if train:
        run = train_mouse(rec, cfg, seed=seed, split_seed=split_seed, progress=progress)
    else:
        run = find_run(run_spec(rec, cfg, seed, split_seed))
    tm = load_trained(run)
    test = tm.splits["test"]
    images = rec.session.images[test]
    raw = rec.session.mean_response[test]
    return MouseAnalysis(label, rec, run, tm, test, images, standardize_images(images), raw,
                         tm.normalizer.transform(raw))


def analyse_seeds(mouse_data: dict, cfg: dict, seed: int, seeds, source: str = "auto", twin_seed: int = 0,
                  split_seed: int = 0) -> tuple[list[int], dict]:
    """The towers of several training seeds for the mice of ``mouse_data`` (:func:`analyse_mouse` of
    ``seed``, reused): the seeds, ``seed`` first and without repeats, and ``{(mouse, seed): analysis}``.
    The test split depends on ``split_seed`` only, so every seed's towers see the same stimuli."""
    seeds = list(dict.fromkeys(int(s) for s in [seed, *seeds]))
    data = {(m, s): d if s == seed else analyse_mouse(m, cfg, source, twin_seed, s, split_seed)
            for m, d in mouse_data.items() for s in seeds}
    return seeds, data


def untrained_model(n_neurons: int, cfg: dict, seed: int = 0) -> torch.nn.Module:
    """The model the runs of settings ``cfg`` train (every architecture switch: widths, stem stride,
    residual neural tower, token bias, ...; :func:`alignlib.experiments.dina.workflow.build_run_model`)
    at its random initialisation, drawn from ``torch.manual_seed(seed)`` (so the same seed gives the
    same model, whatever ran before), in eval mode: the controls of the interpretation pages."""
    from alignlib.experiments.dina.workflow import build_run_model

    torch.manual_seed(seed)
    return build_run_model(cfg, n_neurons).eval()


def untrained_image_tower(n_neurons: int, cfg: dict, seed: int = 0) -> torch.nn.Module:
    """The control of the occlusion analyses: the image tower of :func:`untrained_model`."""
    return untrained_model(n_neurons, cfg, seed).image_tower


def untrained_neural_tower(n_neurons: int, cfg: dict, seed: int = 0) -> torch.nn.Module:
    """The control of the neuron ablation and the attention scores: the neural tower of
    :func:`untrained_model`."""
    return untrained_model(n_neurons, cfg, seed).neural_tower


__all__ += ["MouseAnalysis", "analyse_mouse", "analyse_seeds", "untrained_model",
            "untrained_image_tower", "untrained_neural_tower"]
