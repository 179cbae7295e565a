"""Score functions of one model, every one oriented higher = more OOD (the name says so).

logits and energy come from the ONNX graph the server runs, so the fitted threshold is on
exactly the numbers users get back; the input-gradient norm needs autograd, so it runs on the
torch weights of the same export, outside any inference mode.
"""

from __future__ import annotations

import numpy as np
import torch

from training.model import EnergyCNN

SCORE_NAMES = ("energy", "neg_max_softmax", "neg_max_logit", "grad_norm")


class OnnxRunner:
    def __init__(self, path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, C], energy [N]) for images [N, 1, 56, 56] in [-1, 1]."""
        out_l, out_e = [], []
        for i in range(0, len(x), batch):
            logits, energy = self.session.run(["logits", "energy"], {"image": np.ascontiguousarray(x[i:i + batch], np.float32)})
            out_l.append(logits)
            out_e.append(energy)
        return np.concatenate(out_l), np.concatenate(out_e)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def grad_norm(net: EnergyCNN, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """||dE/dx||_2 per image. JEM's data sit in flat low-energy basins, so a steep energy
    surface (a large norm) means more OOD."""
    out = []
    net = net.eval()
    with torch.inference_mode(False), torch.enable_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].clone().float().requires_grad_(True)
            (g,) = torch.autograd.grad(net.energy(xb).sum(), xb)
            out.append(g.flatten(1).norm(dim=1).detach().numpy())
    return np.concatenate(out) if out else np.empty(0)


def all_scores(logits: np.ndarray, energy: np.ndarray, grad: np.ndarray | None = None) -> dict[str, np.ndarray]:
    scores = {
        "energy": np.asarray(energy, float),
        "neg_max_softmax": -softmax(logits).max(1),
        "neg_max_logit": -logits.max(1),
    }
    if grad is not None:
        scores["grad_norm"] = np.asarray(grad, float)
    return scores
