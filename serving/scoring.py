"""Scoring on ONNX Runtime: one session, CUDA first when present, threads set deliberately."""

from __future__ import annotations

import logging

import numpy as np

from training.artifacts import MODEL_ONNX

log = logging.getLogger("glyphgate")
TOP_K = 5


class Scorer:
    def __init__(self, artifacts, classes: list[str], threshold: float, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(artifacts / MODEL_ONNX), opts, providers=wanted)
        self.provider = self.session.get_providers()[0]
        self.classes, self.threshold = classes, float(threshold)
        log.warning("glyphgate scoring on ONNX Runtime %s with %s (%d intra-op threads)", ort.__version__, self.provider, threads)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, energy = self.session.run(["logits", "energy"], {"image": np.ascontiguousarray(x, np.float32)})
        return logits, energy

    def score(self, x: np.ndarray) -> list[dict]:
        _, energy = self.run(x)
        return [self._verdict(float(e)) for e in energy]

    def classify(self, x: np.ndarray) -> list[dict]:
        logits, energy = self.run(x)
        z = logits - logits.max(1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        out = []
        for p, e in zip(probs, energy):
            top = np.argsort(-p)[:TOP_K]
            out.append({"label": self.classes[top[0]], "confidence": float(p[top[0]]),
                        "top_k": [{"label": self.classes[i], "p": float(p[i])} for i in top], **self._verdict(float(e))})
        return out

    def _verdict(self, energy: float) -> dict:
        return {"energy": energy, "threshold": self.threshold, "is_ood": bool(energy > self.threshold)}
