"""Verdicts for model inputs: label, top-k, energy against the threshold, conformal p-value.
The server's workers and `glyphgate scan` both answer with these."""

from __future__ import annotations

import logging

import numpy as np

from glyphgate.core.contract.artifacts import MODEL_ONNX
from glyphgate.core.contract.scores import GATE_SCORE, SCORES, softmax
from glyphgate.core.errors import ArtifactsError
from glyphgate.core.scoring.onnx_session import OnnxModel

log = logging.getLogger("glyphgate")
TOP_K = 5
VERDICT = ("label", "confidence", "energy", "p_value", "is_ood")  # what a verdict row keeps


def p_values(cal_energies: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Conformal p-values: (1 + #{calibration energies >= e}) / (n + 1), the share of real glyphs
    that look at least this unusual. `cal_energies` is sorted ascending."""
    n = len(cal_energies)
    at_least = n - np.searchsorted(cal_energies, np.asarray(energy, np.float64), side="left")
    return (1.0 + at_least) / (n + 1.0)


class Scorer:
    def __init__(
        self,
        artifacts,
        classes: list[str],
        threshold: float,
        threads: int,
        cal_energies=None,
        temperature: float = 1.0,
        score: str = GATE_SCORE,
    ):
        self.model = OnnxModel(artifacts / MODEL_ONNX, threads=threads)
        self.provider = self.model.provider
        self.classes, self.threshold = classes, float(threshold)
        # the registry score the threshold is on; its values are what p-values rank
        self.gate = SCORES[score].of_outputs
        # confidence and top_k only: the label is the same argmax, the energy stays on raw logits
        self.temperature = float(temperature)
        # Sorted energies of the calibration glyphs; older calibrations lack them (no p-values).
        self.cal_energies = np.sort(np.asarray(cal_energies, np.float64)) if cal_energies else None
        log.info(
            "glyphgate scoring on ONNX Runtime %s with %s (%d intra-op threads)",
            self.model.version,
            self.provider,
            threads,
        )

    @classmethod
    def from_calibration(cls, artifacts, cal: dict, threads: int) -> "Scorer":
        """The scorer a calibration.json describes (threshold, temperature, gate score, p-value
        energies), on the artifacts folder's model.onnx."""
        return cls(
            artifacts,
            cal["classes"],
            cal["threshold"],
            threads,
            cal_energies=cal.get("id_energies"),
            temperature=cal.get("temperature", 1.0),
            score=cal.get("score", GATE_SCORE),
        )

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model.run(x)

    def score(self, x: np.ndarray, alpha: float | None = None) -> list[dict]:
        logits, energy = self.run(x)
        return self._verdicts(logits, energy, alpha)

    def _probs_and_verdicts(self, x: np.ndarray, alpha: float | None = None):
        logits, energy = self.run(x)
        return softmax(logits, self.temperature), self._verdicts(logits, energy, alpha)

    def classify(self, x: np.ndarray, alpha: float | None = None) -> list[dict]:
        probs, verdicts = self._probs_and_verdicts(x, alpha)
        out = []
        for p, verdict in zip(probs, verdicts):
            top = np.argsort(-p)[:TOP_K]
            out.append(
                {
                    "label": self.classes[top[0]],
                    "confidence": float(p[top[0]]),
                    "top_k": [{"label": self.classes[i], "p": float(p[i])} for i in top],
                    **verdict,
                }
            )
        return out

    def rows(self, x: np.ndarray) -> list[dict]:
        """The VERDICT fields only (label, confidence, energy, p-value, flag), for batch scans
        that write rows: no top-k lists to build and throw away, one numpy pass a batch."""
        probs, verdicts = self._probs_and_verdicts(x)
        best = probs.argmax(1)
        confidence = probs[np.arange(len(best)), best]
        return [
            {"label": self.classes[b], "confidence": float(c), **v}
            for b, c, v in zip(best, confidence, verdicts)
        ]

    def classify_crops(
        self, crops: list[np.ndarray], alpha: float | None = None
    ) -> tuple[list[dict], np.ndarray]:
        """Grey crops already in memory (cut from a page) -> (verdicts, the model inputs)."""
        from glyphgate.core.image.preprocess import prepare_many

        x = prepare_many([c.astype(np.float32) for c in crops])
        return self.classify(x, alpha), x

    def _verdicts(self, logits: np.ndarray, energy: np.ndarray, alpha: float | None = None) -> list[dict]:
        """The default rule is the shipped threshold; with `alpha` a scan is flagged when its
        p-value is below alpha (that request's own false-alarm rate on real glyphs)."""
        if alpha is not None and self.cal_energies is None:
            raise ArtifactsError("alpha needs a calibration with stored energies: re-run glyphgate calibrate")
        gate = self.gate(logits, energy)
        pv = p_values(self.cal_energies, gate) if self.cal_energies is not None else [None] * len(energy)
        out = []
        for e, g, p in zip(energy, gate, pv):
            v = {"energy": float(e), "threshold": self.threshold, "p_value": None if p is None else float(p)}
            if alpha is None:
                v["is_ood"] = bool(g > self.threshold)
            else:
                v["alpha"], v["is_ood"] = alpha, bool(p < alpha)
            out.append(v)
        return out
