"""The training modes a model can come from: training picks one, the card reads a run's
config by them, and the generator knows an ebm-mode model has no classes."""

from __future__ import annotations

MODES = ("jem", "icd", "ebm", "classifier")
JOINT = ("jem", "icd")  # modes that learn p(x) and p(y|x) together


def uses_exposure(mode: str, oe_weight: float) -> bool:
    """Whether a run sees outlier-exposure negatives: only the joint modes, with a weight."""
    return oe_weight > 0 and mode in JOINT
