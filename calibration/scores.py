"""Score functions of one model, every one oriented higher = more OOD (the name says so).

logits and energy come from the ONNX graph the server runs, so the fitted threshold is on
exactly the numbers users get back; the input-gradient norm needs autograd, so it runs on the
torch weights of the same export, outside any inference mode.
"""

from __future__ import annotations

import numpy as np
import torch

from glyphgate.core.model import EnergyCNN
from glyphgate.core.onnx_model import softmax

SCORE_NAMES = ("energy", "neg_max_softmax", "neg_max_logit", "grad_norm")


def grad_norm(net: EnergyCNN, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """||dE/dx||_2 per image. JEM's data sit in flat low-energy basins, so a steep energy
    surface (a large norm) means more OOD."""
    out = []
    net = net.eval()
    with torch.inference_mode(False), torch.enable_grad():
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].clone().float().requires_grad_(True)
            (g,) = torch.autograd.grad(net.energy(xb).sum(), xb)
            out.append(g.flatten(1).norm(dim=1).detach().numpy())
    return np.concatenate(out) if out else np.empty(0)


def all_scores(
    logits: np.ndarray, energy: np.ndarray, grad: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    scores = {
        "energy": np.asarray(energy, float),
        "neg_max_softmax": -softmax(logits).max(1),
        "neg_max_logit": -logits.max(1),
    }
    if grad is not None:
        scores["grad_norm"] = np.asarray(grad, float)
    return scores
