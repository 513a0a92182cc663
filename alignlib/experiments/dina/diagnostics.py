"""Diagnostics of DINA models that the methods and training pages show."""
from __future__ import annotations

import numpy as np

from alignlib.models.dina import build_dina
from alignlib.repro import seed_everything


def initial_neural_similarity(responses: np.ndarray, width: str = "quick", residual: bool = False,
                              seed: int = 0, n: int = 64) -> float:
    """Mean cosine similarity between the neural embeddings of ``n`` different stimuli at initialisation.

    Values near 1 mean the untrained neural tower maps every stimulus to almost the same embedding,
    which is what makes the paper's (residual-free) tower slow to train.
    """
    import torch

    from alignlib.training import ResponseNormalizer

    seed_everything(seed)
    r = np.asarray(responses[:n], dtype=np.float32)
    model = build_dina(r.shape[1], width, residual=residual).eval()
    with torch.no_grad():
        z = model.encode_responses(ResponseNormalizer().fit(torch.from_numpy(r)).transform(torch.from_numpy(r)))
    sim = (z @ z.T).numpy()
    return float(sim[~np.eye(len(sim), dtype=bool)].mean())
