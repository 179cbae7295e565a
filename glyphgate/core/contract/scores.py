"""The score registry: every function of a model that can tell a glyph from a non-glyph, one
entry each, all oriented higher = more OOD. calibration.json's `score` names the entry the
server gates on; the schema's enums, calibrate's tables, the card and the peer table are read
from here, so a new score is one entry (plus, for one that needs gradients or fitting, its
implementation where those live: calibration/scores.py, calibration/peers.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over classes; calibration.json's temperature makes the
    confidence a user reads match how often it is right."""
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


@dataclass(frozen=True)
class Score:
    name: str
    label: str  # how tables name it
    doc: str  # what it measures, said the way higher = more OOD
    # "outputs": a function of the ONNX outputs (logits, energy), so the server can gate on it;
    # "grad": needs input gradients of the torch weights; "fit": fitted on training features
    needs: str = "outputs"
    of_outputs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    compared: bool = False  # a row of calibrate's detector comparison for the model itself
    on_baseline: bool = False  # also a comparison and peer-table row for the classifier baseline
    peer: bool = False  # a row of the peer table (`glyphgate peers`) for each network


SCORES: dict[str, Score] = {}


def register(score: Score) -> Score:
    if score.needs not in ("outputs", "grad", "fit"):
        raise ValueError(f"score {score.name!r}: needs must be outputs, grad or fit, not {score.needs!r}")
    if (score.needs == "outputs") != (score.of_outputs is not None):
        raise ValueError(f"score {score.name!r}: an outputs score needs of_outputs, and only it")
    SCORES[score.name] = score
    return score


register(
    Score(
        "energy",
        "energy",
        "energy = -logsumexp(logits) (the JEM's -log p(x) up to a constant)",
        of_outputs=lambda logits, energy: np.asarray(energy, float),
        compared=True,
        on_baseline=True,
        peer=True,
    )
)
register(
    Score(
        "neg_max_softmax",
        "−max-softmax",
        "-max softmax(logits) (Hendrycks and Gimpel's baseline)",
        of_outputs=lambda logits, energy: -softmax(logits).max(1),
        compared=True,
        on_baseline=True,
        peer=True,
    )
)
register(Score("neg_max_logit", "−max-logit", "-max logit", of_outputs=lambda logits, energy: -logits.max(1)))
register(
    Score(
        "grad_norm",
        "‖∇E‖",
        "||dE/dx||_2, the steepness of the energy at the input",
        needs="grad",
        compared=True,
    )
)


GATE_SCORE = "energy"  # what calibrate fits the shipped threshold on


def gate_scores() -> list[str]:
    """The scores a server can gate on: functions of the ONNX outputs alone."""
    return [n for n, s in SCORES.items() if s.needs == "outputs"]


def output_scores(logits: np.ndarray, energy: np.ndarray) -> dict[str, np.ndarray]:
    """Every outputs score of one batch, in registry order."""
    return {n: SCORES[n].of_outputs(logits, energy) for n in gate_scores()}


def id_vs_ood(s_id, s_ood) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_ood) as float64 arrays: the ID scores first, labelled 0, then the OOD ones, 1;
    the way every AUROC, ROC curve and FPR here is computed (higher score = more OOD).

    Examples
    --------
    >>> id_vs_ood([0.1, 0.2], [0.9])
    (array([0.1, 0.2, 0.9]), array([0., 0., 1.]))
    """
    s_id, s_ood = np.asarray(s_id, np.float64).ravel(), np.asarray(s_ood, np.float64).ravel()
    return np.r_[s_id, s_ood], np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))]
