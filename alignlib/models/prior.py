"""The Vi-ST image prior: frozen DINOv2 features of each movie frame on the 16 x 16 patch grid (Vi-ST §3.1).

Each grayscale frame is resized to 224 x 224, replicated to three channels and normalised with the ImageNet
mean/std DINOv2 was trained with; a ViT with 14-pixel patches then gives 16 x 16 patch tokens. ``layer`` picks
which hidden state is the prior: 0 = the patch embedding only ("patchify", with position embeddings),
``k`` = the output of transformer block ``k``. Blocks >= 1 get the backbone's final LayerNorm, as DINOv2's own
``get_intermediate_layers(norm=True)`` does (the paper's extraction code is not public; this is our choice).
CLS and register tokens are dropped.

Three kinds of prior, always named by :attr:`PriorSpec.label` wherever they appear:

* ``"dinov2"``: pretrained weights from a local directory (``from_pretrained(path)``, offline); the paper uses
  ViT-L/14 with registers (``facebook/dinov2-with-registers-large`` in the transformers layout).
* ``"random-dinov2"``: a RANDOMLY INITIALISED DINOv2 of the same code (config ``"small"`` or ``"vitl14-reg"``),
  for machines without the weights: the same shapes and pipeline, none of the pretrained knowledge.
* ``"luminance"``: the mean luminance of each 14 x 14 patch (one channel): a cheap, labelled control prior.

Features are cached under ``alignlib.paths.work_dir()/vist_prior/``, keyed by the frames' content digest, the
prior's identity (kind, layer, config, seed, weights identity) and the preprocessing version, so the two
recordings that saw the same movie share one file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alignlib.paths import temporary_beside, work_dir
from alignlib.repro import get_device, write_json

__all__ = ["PriorSpec", "KINDS", "RANDOM_CONFIGS", "GRID", "INPUT_SIDE", "build_backbone", "preprocess_frames",
           "extract_features", "prior_features", "cache_path", "frames_digest", "weights_identity"]

KINDS = ("dinov2", "random-dinov2", "luminance")
GRID = 16                   # patches per side at 224 px with 14-px patches
INPUT_SIDE = 224
PATCH = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESS_VERSION = 1      # bump when preprocess_frames/extraction changes what a cached file holds

#: configurations of the randomly initialised backbone (transformers Dinov2WithRegistersConfig keywords)
RANDOM_CONFIGS: dict[str, dict[str, Any]] = {
    # the paper's architecture (ViT-L/14 with 4 registers), random weights: as slow as the real one
    "vitl14-reg": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_ratio=4,
                       num_register_tokens=4),
    # a narrow, shallow ViT of the same code for CPU runs
    "small": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, mlp_ratio=2,
                  num_register_tokens=4),
    # tests only
    "tiny": dict(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=1, num_register_tokens=1),
}


@dataclass(frozen=True)
class PriorSpec:
    """Which prior: ``kind`` (one of :data:`KINDS`), ``layer`` (0 = patch embedding), ``weights`` (a local
    directory, for ``"dinov2"``), ``config`` (for ``"random-dinov2"``: a key of :data:`RANDOM_CONFIGS`) and
    ``seed`` (initialisation of the random backbone)."""

    kind: str = "random-dinov2"
    layer: int = 0
    weights: str | None = None
    config: str = "small"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown prior kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "dinov2":
            if not self.weights:
                raise ValueError("prior kind 'dinov2' needs `weights`: a local directory with the pretrained model "
                                 "(transformers layout); without weights use kind='random-dinov2' (labelled as such)")
            if not Path(self.weights).is_dir():
                raise FileNotFoundError(f"DINOv2 weights directory {self.weights} does not exist")
        if self.kind == "random-dinov2" and self.config not in RANDOM_CONFIGS:
            raise ValueError(f"unknown random DINOv2 config {self.config!r}; choose one of {', '.join(RANDOM_CONFIGS)}")
        if self.kind == "luminance" and self.layer != 0:
            raise ValueError("the luminance prior has no layers (use layer=0)")
        if int(self.layer) < 0:
            raise ValueError(f"layer must be >= 0, got {self.layer}")

    @property
    def pretrained(self) -> bool:
        return self.kind == "dinov2"

    def identity(self) -> dict[str, Any]:
        """What the features depend on (hashed into run identities and the cache key)."""
        d = {"kind": self.kind, "layer": int(self.layer), "preprocess": PREPROCESS_VERSION}
        if self.kind == "dinov2":
            d["weights"] = weights_identity(self.weights)
        elif self.kind == "random-dinov2":
            d.update(config=self.config, seed=int(self.seed), architecture=RANDOM_CONFIGS[self.config])
        return d

    @property
    def label(self) -> str:
        """Human-readable name, shown on every page and table that uses the prior."""
        if self.kind == "dinov2":
            return f"DINOv2 (pretrained, {Path(self.weights).name}), layer {self.layer}"
        if self.kind == "random-dinov2":
            return (f"RANDOMLY INITIALISED DINOv2 ({self.config} config, seed {self.seed}; no pretrained weights), "
                    f"layer {self.layer}")
        return "patch-mean luminance (no ViT; control prior)"

    @property
    def short(self) -> str:
        """Compact tag for table cells and run names."""
        if self.kind == "dinov2":
            return f"dinov2-L{self.layer}"
        if self.kind == "random-dinov2":
            return f"randvit-{self.config}-L{self.layer}"
        return "luminance"


def weights_identity(path: str | Path) -> dict[str, Any]:
    """Identity of a local weights directory: its config and the names and sizes of its weight files."""
    p = Path(path)
    cfg = p / "config.json"
    files = sorted(f for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".pt"))
    return {"name": p.name,
            "config_sha256": hashlib.sha256(cfg.read_bytes()).hexdigest()[:16] if cfg.exists() else None,
            "files": {f.name: f.stat().st_size for f in files}}


def build_backbone(spec: PriorSpec) -> torch.nn.Module:
    """The frozen ViT of ``spec`` (eval mode, no gradients). Not used for the luminance prior."""
    if spec.kind == "luminance":
        raise ValueError("the luminance prior has no backbone")
    if spec.kind == "dinov2":
        import os

        from transformers import AutoModel

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = AutoModel.from_pretrained(spec.weights, local_files_only=True)
    else:
        from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

        cfg = Dinov2WithRegistersConfig(image_size=INPUT_SIDE, patch_size=PATCH, **RANDOM_CONFIGS[spec.config])
        torch.manual_seed(spec.seed)
        model = Dinov2WithRegistersModel(cfg)
    n_layers = model.config.num_hidden_layers
    if spec.layer > n_layers:
        raise ValueError(f"layer {spec.layer} does not exist: the backbone has layers 0..{n_layers}")
    model.eval().requires_grad_(False)
    return model


def preprocess_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, H, W) grayscale in [0, 1] -> (T, 3, 224, 224), bilinear (antialiased) resize, ImageNet-normalised."""
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
    if x.ndim != 3:
        raise ValueError(f"frames must be (T, H, W) grayscale, got shape {tuple(x.shape)}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError("frames must lie in [0, 1]")
    x = F.interpolate(x[:, None], size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _luminance_grid(frames: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(np.asarray(frames, dtype=np.float32))[:, None]
    x = F.interpolate(x, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", antialias=True, align_corners=False)
    return F.avg_pool2d(x, PATCH).permute(0, 2, 3, 1).numpy()      # (T, 16, 16, 1)


@torch.no_grad()
def extract_features(frames: np.ndarray, spec: PriorSpec, batch_size: int = 32, device: str = "auto",
                     progress: bool = False) -> np.ndarray:
    """Prior features of every frame: (T, 16, 16, C) float32 (C = the backbone's width; 1 for luminance)."""
    if spec.kind == "luminance":
        return _luminance_grid(frames)
    dev = get_device(device)
    model = build_backbone(spec).to(dev)
    n_reg = int(getattr(model.config, "num_register_tokens", 0) or 0)
    model.encoder.layer = model.encoder.layer[:spec.layer]      # blocks after the chosen layer are never needed
    out = []
    starts = range(0, len(frames), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"prior {spec.short}", leave=False)
    for s in starts:
        x = preprocess_frames(frames[s:s + batch_size]).to(dev)
        if spec.layer == 0:
            hidden = model.embeddings(x)
        else:
            hidden = model.layernorm(model(pixel_values=x, output_hidden_states=True).hidden_states[spec.layer])
        tokens = hidden[:, 1 + n_reg:, :]
        if tokens.shape[1] != GRID * GRID:
            raise RuntimeError(f"expected {GRID * GRID} patch tokens, got {tokens.shape[1]}")
        out.append(tokens.reshape(len(x), GRID, GRID, -1).float().cpu().numpy())
    return np.concatenate(out)


def frames_digest(frames: np.ndarray) -> str:
    """Content digest of a frame stack (the cache key's data part)."""
    a = np.ascontiguousarray(frames, dtype=np.float32)
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def cache_path(frames: np.ndarray, spec: PriorSpec, root: str | Path | None = None) -> Path:
    """Where the features of ``frames`` under ``spec`` are cached."""
    key = hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode()).hexdigest()[:10]
    return Path(root or work_dir() / "vist_prior") / f"{spec.short}-{key}-{frames_digest(frames)}.npy"


def prior_features(frames: np.ndarray, spec: PriorSpec, root: str | Path | None = None, batch_size: int = 32,
                   device: str = "auto", progress: bool = False) -> np.ndarray:
    """Cached :func:`extract_features` (computed once per frame content and prior; float16 on disk,
    float32 returned). A sidecar ``.json`` records the prior's label and identity."""
    path = cache_path(frames, spec, root)
    if path.exists():
        return np.load(path).astype(np.float32)
    feats = extract_features(frames, spec, batch_size=batch_size, device=device, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)          # unique: two pages computing one prior never collide
    try:
        with open(tmp, "wb") as f:
            np.save(f, feats.astype(np.float16))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(path.with_suffix(".json"), {"label": spec.label, "identity": spec.identity(),
                                           "shape": list(feats.shape), "spec": asdict(spec)})
    return np.load(path).astype(np.float32)
