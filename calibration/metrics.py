"""OOD and calibration metrics on scikit-learn. Every score is oriented higher = more OOD.

Conventions (as in the OOD literature): for AUROC and AUPR-out the OOD images are the
positives; for AUPR-in and TPR the in-distribution glyphs are. FPR at 95% TPR = the share of
OOD images still accepted as glyphs when the threshold keeps 95% of real glyphs.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from glyphgate.core.contract.scores import id_vs_ood


def fpr_at_tpr(s_id, s_ood, tpr: float = 0.95) -> float:
    """Share of OOD scoring below the lowest threshold that keeps >= `tpr` of ID (ID = positive)."""
    scores, is_ood = id_vs_ood(s_id, s_ood)
    fpr, tprs, _ = roc_curve(1 - is_ood, -scores)
    return float(fpr[np.searchsorted(tprs, tpr, side="left")])


def ood_metrics(s_id, s_ood) -> dict[str, float]:
    scores, is_ood = id_vs_ood(s_id, s_ood)
    unit = lambda v: float(np.clip(v, 0.0, 1.0))  # noqa: E731  (average precision can round to 1 + 2e-16)
    return {
        "auroc": unit(roc_auc_score(is_ood, scores)),
        "aupr_in": unit(average_precision_score(1 - is_ood, -scores)),
        "aupr_out": unit(average_precision_score(is_ood, scores)),
        "fpr95": fpr_at_tpr(s_id, s_ood, 0.95),
    }


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, np.ndarray]:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence, accuracy."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    return {
        "edges": np.linspace(0, 1, bins + 1),
        "count": count,
        "confidence": np.bincount(which, weights=conf, minlength=bins) / safe,
        "accuracy": np.bincount(which, weights=correct, minlength=bins) / safe,
    }


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """sum over bins of (bin share) * |accuracy - mean confidence|."""
    r = reliability(probs, labels, bins)
    return float(np.sum(r["count"] / len(labels) * np.abs(r["accuracy"] - r["confidence"])))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising the negative log-likelihood
    of softmax(logits / T) on labelled glyphs. One scalar, so the ranking, the labels and the
    energy gate (on the raw logits) are untouched; only the confidence moves."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("fit_temperature needs labelled glyphs")

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def fit_threshold(s_id, target_tpr: float = 0.95) -> tuple[float, float]:
    """Threshold t with flag = score > t keeping at least `target_tpr` of ID; returns (t, measured TPR).

    t is the ceil(target * N)-th smallest ID score, so the measured TPR lies in
    [target, target + 1/N) (ties in the scores can only raise it)."""
    s = np.sort(np.asarray(s_id, float))
    if not 0 < target_tpr <= 1 or len(s) == 0:
        raise ValueError(f"target_tpr {target_tpr} needs to be in (0, 1] with a non-empty ID set")
    k = int(np.ceil(target_tpr * len(s) - 1e-9))
    t = float(s[max(k, 1) - 1])
    return t, float(np.mean(s <= t))


def caught(e, threshold: float) -> float:
    """Share of a set flagged at the threshold (energy > threshold): for OOD sets, the share caught."""
    e = np.asarray(e)
    return float(np.mean(e > threshold)) if len(e) else float("nan")
