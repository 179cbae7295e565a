"""The scores that need more than the ONNX outputs, computed for the registry's entries
(glyphgate/core/contract/scores.py): every one oriented higher = more OOD.

logits and energy come from the ONNX graph the server runs, so the fitted threshold is on
exactly the numbers users get back; the input-gradient norm needs autograd, so it runs on the
torch weights of the same export, outside any inference mode.
"""

from __future__ import annotations

import numpy as np
import torch

from glyphgate.core.contract.scores import SCORES, output_scores
from glyphgate.core.model.net import EnergyCNN


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


GRADIENT_SCORES = {"grad_norm": grad_norm}  # the registry's needs="grad" entries


def all_scores(
    logits: np.ndarray, energy: np.ndarray, net: EnergyCNN | None = None, x=None
) -> dict[str, np.ndarray]:
    """Every registry score of one set: the outputs scores, and with `net` and its inputs `x`
    the gradient ones."""
    scores = output_scores(logits, energy)
    if net is not None:
        x = torch.as_tensor(x)
        for name, s in SCORES.items():
            if s.needs == "grad":
                scores[name] = np.asarray(GRADIENT_SCORES[name](net, x), float)
    return scores
