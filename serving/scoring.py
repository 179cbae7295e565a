"""Scoring on ONNX Runtime: one session, CUDA first when present, threads set deliberately."""

from __future__ import annotations

import logging

import numpy as np

from training.artifacts import MODEL_ONNX

log = logging.getLogger("glyphgate")
TOP_K = 5


def p_values(cal_energies: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Conformal p-values: (1 + #{calibration energies >= e}) / (n + 1), the share of real glyphs
    that look at least this unusual. `cal_energies` is sorted ascending."""
    n = len(cal_energies)
    at_least = n - np.searchsorted(cal_energies, np.asarray(energy, np.float64), side="left")
    return (1.0 + at_least) / (n + 1.0)


class Scorer:
    def __init__(self, artifacts, classes: list[str], threshold: float, threads: int, cal_energies=None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(artifacts / MODEL_ONNX), opts, providers=wanted)
        self.provider = self.session.get_providers()[0]
        self.classes, self.threshold = classes, float(threshold)
        # Sorted energies of the calibration glyphs; older calibrations lack them (no p-values).
        self.cal_energies = np.sort(np.asarray(cal_energies, np.float64)) if cal_energies else None
        log.info("glyphgate scoring on ONNX Runtime %s with %s (%d intra-op threads)", ort.__version__, self.provider, threads)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, energy = self.session.run(["logits", "energy"], {"image": np.ascontiguousarray(x, np.float32)})
        return logits, energy

    def score(self, x: np.ndarray, alpha: float | None = None) -> list[dict]:
        _, energy = self.run(x)
        return self._verdicts(energy, alpha)

    def classify(self, x: np.ndarray, alpha: float | None = None) -> list[dict]:
        logits, energy = self.run(x)
        z = logits - logits.max(1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        out = []
        for p, verdict in zip(probs, self._verdicts(energy, alpha)):
            top = np.argsort(-p)[:TOP_K]
            out.append({"label": self.classes[top[0]], "confidence": float(p[top[0]]),
                        "top_k": [{"label": self.classes[i], "p": float(p[i])} for i in top], **verdict})
        return out

    def _verdicts(self, energy: np.ndarray, alpha: float | None = None) -> list[dict]:
        """The default rule is the shipped threshold; with `alpha` a scan is flagged when its
        p-value is below alpha (that request's own false-alarm rate on real glyphs)."""
        if alpha is not None and self.cal_energies is None:
            raise ValueError("alpha needs a calibration with stored energies: re-run glyphgate calibrate")
        pv = p_values(self.cal_energies, energy) if self.cal_energies is not None else [None] * len(energy)
        out = []
        for e, p in zip(energy, pv):
            v = {"energy": float(e), "threshold": self.threshold, "p_value": None if p is None else float(p)}
            if alpha is None:
                v["is_ood"] = bool(e > self.threshold)
            else:
                v["alpha"], v["is_ood"] = alpha, bool(p < alpha)
            out.append(v)
        return out
