"""Training objectives for :func:`alignlib.training.loop.fit`.

:class:`ContrastiveObjective` — symmetric InfoNCE between the two towers of a paired model
(DINA §3, "contrastive alignment objective"; VNA's CLIP-style loss), with one optimiser per named
sub-module (DINA: AdamW for the image tower, RMSprop for the neural tower) or one for the whole model
(``"*"``).

The reviewer's objective control of DINA (Table 1 page) swaps the loss and keeps towers, optimisers and the
retrieval read-out: :class:`ReconstructionObjective` (the neural tower regresses the image tower's map,
which is anchored to the stimulus itself) and :class:`ClassificationObjective` (each tower's map predicts
the image class through a linear head).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from alignlib.arrays import model_device
from alignlib.losses.info_nce import info_nce
from alignlib.metrics.retrieval import retrieval_ranks, similarity_matrix, topk_hits
from alignlib.training.loop import Objective

__all__ = ["OptimizerSpec", "make_optimizers", "ContrastiveObjective", "encode_pairs", "ReconstructionObjective",
           "ClassificationObjective", "image_target"]

_OPTIMIZERS = {"adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "sgd": torch.optim.SGD}


@dataclass
class OptimizerSpec:
    """One optimiser over the parameters of ``model.<params>`` (``"*"``: the whole model)."""

    params: str
    kind: str                     # adamw | rmsprop | adam | sgd
    lr: float
    options: dict[str, Any] = field(default_factory=dict)   # e.g. {"weight_decay": 5e-5, "alpha": 0.9}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizers(model: nn.Module, specs: list[OptimizerSpec]) -> list[torch.optim.Optimizer]:
    """One optimiser per spec; every trainable parameter must belong to exactly one spec."""
    opts, seen = [], set()
    for spec in specs:
        if spec.kind not in _OPTIMIZERS:
            raise ValueError(f"unknown optimiser {spec.kind!r}; choose from {', '.join(_OPTIMIZERS)}")
        module = model if spec.params == "*" else getattr(model, spec.params)
        params = [p for p in module.parameters() if p.requires_grad]
        if seen & {id(p) for p in params}:
            raise ValueError(f"parameters of {spec.params!r} already belong to another optimiser")
        seen |= {id(p) for p in params}
        opts.append(_OPTIMIZERS[spec.kind](params, lr=spec.lr, **spec.options))
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if trainable - seen:
        raise ValueError("model has trainable parameters outside the optimisers' modules")
    return opts


@torch.no_grad()
def encode_pairs(model: nn.Module, images: torch.Tensor, responses: torch.Tensor, batch_size: int = 256,
                 device: torch.device | None = None, return_maps: bool = False):
    """Eval-mode ``(z_img, z_neu[, img_maps, neu_maps])`` on the CPU (restores train/eval mode).

    The model needs ``image_maps``, ``response_maps`` and ``normalize`` (see :class:`alignlib.models.dina.DINA`).
    """
    if device is None:
        device = model_device(model)
    was_training = model.training
    model.eval()
    zi, zn, mi, mn = [], [], [], []
    try:
        for s in range(0, images.shape[0], batch_size):
            m_img = model.image_maps(images[s:s + batch_size].to(device, non_blocking=True))
            m_neu = model.response_maps(responses[s:s + batch_size].to(device, non_blocking=True))
            zi.append(model.normalize(m_img).float().cpu())
            zn.append(model.normalize(m_neu).float().cpu())
            if return_maps:
                mi.append(m_img.float().cpu())
                mn.append(m_neu.float().cpu())
    finally:
        model.train(was_training)
    out = (torch.cat(zi), torch.cat(zn))
    return out + (torch.cat(mi), torch.cat(mn)) if return_maps else out


@dataclass
class ContrastiveObjective(Objective):
    """Symmetric InfoNCE at a fixed temperature on batches ``{"images", "responses"}``.

    Validation (every epoch, eval mode): ``val_loss`` is ONE InfoNCE over all validation pairs (the
    literal "validation loss"; about log(n_val) for a model that ignores its input); retrieval of the
    true image from each response among all validation images gives ``val_top1/5/10`` and
    ``val_mean_rank`` (ties count as the expected result of random tie-breaking, as in
    :mod:`alignlib.metrics.retrieval`, so a collapsed model scores chance).
    """

    optimizers: list[OptimizerSpec]
    temperature: float = 0.01
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("temperature must be positive")
        self.optimizers = [o if isinstance(o, OptimizerSpec) else OptimizerSpec(**o) for o in self.optimizers]

    def make_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]:
        return make_optimizers(model, self.optimizers)

    def min_batch(self) -> int:
        return 2

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        z_img, z_neu = model(batch["images"], batch["responses"])
        return info_nce(z_img, z_neu, self.temperature)

    def validate(self, model: nn.Module, data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, float]:
        z_img, z_neu = encode_pairs(model, data["images"], data["responses"], self.eval_batch_size, device)
        sim = similarity_matrix(z_neu, z_img)
        out = {"val_loss": float(info_nce(z_img, z_neu, self.temperature)),
               "val_mean_rank": float(np.mean(retrieval_ranks(sim)))}
        for k in (1, 5, 10):
            out[f"val_top{k}"] = float(np.mean(topk_hits(sim, k)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "contrastive", "temperature": self.temperature,
                "optimizers": [o.to_dict() for o in self.optimizers]}


def image_target(images: torch.Tensor, map_size) -> torch.Tensor:
    """The stimulus averaged down to the map grid, (B, H, W): the reconstruction objective's anchor."""
    x = images.unsqueeze(1) if images.ndim == 3 else images
    return torch.nn.functional.adaptive_avg_pool2d(x.float(), tuple(map_size)).mean(1)


def _maps(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return model.image_maps(batch["images"]), model.response_maps(batch["responses"])


@dataclass
class ReconstructionObjective(ContrastiveObjective):
    """Reconstruction instead of contrast (reviewer's control):
    ``L = MSE(m_img, pool(x)) + MSE(m_neu, sg(m_img))``: the image tower's map is anchored to the stimulus
    averaged onto the 16 x 64 grid (so it cannot collapse) and the neural tower regresses that map from the
    response (``sg``: no gradient into the target). Validation as for InfoNCE, with ``val_loss`` this loss.
    ``temperature`` is unused (kept for one interface)."""

    def min_batch(self) -> int:
        return 1

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        m_img, m_neu = _maps(model, batch)
        target = image_target(batch["images"], m_img.shape[-2:])
        return torch.nn.functional.mse_loss(m_img, target) + torch.nn.functional.mse_loss(m_neu, m_img.detach())

    def validate(self, model: nn.Module, data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, float]:
        z_img, z_neu, m_img, m_neu = encode_pairs(model, data["images"], data["responses"], self.eval_batch_size,
                                                  device, return_maps=True)
        out = _retrieval(z_img, z_neu)
        target = image_target(data["images"].cpu(), m_img.shape[-2:])
        out["val_loss"] = float(torch.nn.functional.mse_loss(m_img, target) + torch.nn.functional.mse_loss(m_neu, m_img))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "reconstruction", "loss": "mse(img_map, pool(image)) + mse(neu_map, sg(img_map))",
                "optimizers": [o.to_dict() for o in self.optimizers]}


@dataclass
class ClassificationObjective(ContrastiveObjective):
    """Classification instead of contrast (reviewer's control): ``L = CE(h_img(m_img), y) + CE(h_neu(m_neu), y)``
    with linear heads ``model.class_heads["image"|"neural"]`` on the flattened maps and ``batch["labels"]``
    the image classes. The maps are never asked to agree; retrieval reads them out as for InfoNCE."""

    def min_batch(self) -> int:
        return 1

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        m_img, m_neu = _maps(model, batch)
        ce = torch.nn.functional.cross_entropy
        return (ce(model.class_heads["image"](m_img.flatten(1)), batch["labels"])
                + ce(model.class_heads["neural"](m_neu.flatten(1)), batch["labels"]))

    @torch.no_grad()
    def validate(self, model: nn.Module, data: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, float]:
        z_img, z_neu, m_img, m_neu = encode_pairs(model, data["images"], data["responses"], self.eval_batch_size,
                                                  device, return_maps=True)
        out = _retrieval(z_img, z_neu)
        y = data["labels"].cpu()
        logit_img = model.class_heads["image"](m_img.flatten(1).to(device)).float().cpu()
        logit_neu = model.class_heads["neural"](m_neu.flatten(1).to(device)).float().cpu()
        ce = torch.nn.functional.cross_entropy
        out["val_loss"] = float(ce(logit_img, y) + ce(logit_neu, y))
        out["val_class_acc_neural"] = float((logit_neu.argmax(1) == y).float().mean())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "classification", "loss": "ce(head_img(img_map), y) + ce(head_neu(neu_map), y)",
                "optimizers": [o.to_dict() for o in self.optimizers]}


def _retrieval(z_img: torch.Tensor, z_neu: torch.Tensor) -> dict[str, float]:
    sim = similarity_matrix(z_neu, z_img)
    out = {"val_mean_rank": float(np.mean(retrieval_ranks(sim)))}
    for k in (1, 5, 10):
        out[f"val_top{k}"] = float(np.mean(topk_hits(sim, k)))
    return out
