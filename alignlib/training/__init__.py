"""Training shared by every chapter: splits, response normalisation, a resumable fit loop with early
stopping, objectives (contrastive, ...), checkpoints with a registry of model builders, and run
identity (:mod:`alignlib.training.runs`: a readable variant name plus a hash of the resolved config).
"""
from alignlib.training.checkpoint import (build_model, load_model_checkpoint, register_model,
                                          save_model_checkpoint)
from alignlib.training.config import CRITERIA, FitConfig, FitResult, Selection
from alignlib.training.loop import Objective, fit
from alignlib.training.normalize import ResponseNormalizer
from alignlib.training.objectives import ContrastiveObjective, OptimizerSpec, encode_pairs, make_optimizers
from alignlib.training.paired import embed, prepare_images, prepare_pairs
from alignlib.training.splits import check_splits, split_indices

__all__ = [
    "CRITERIA", "ContrastiveObjective", "FitConfig", "FitResult", "Objective", "OptimizerSpec",
    "ResponseNormalizer", "Selection", "build_model", "check_splits", "embed", "encode_pairs", "fit",
    "load_model_checkpoint", "make_optimizers", "prepare_images", "prepare_pairs", "register_model",
    "save_model_checkpoint", "split_indices",
]
