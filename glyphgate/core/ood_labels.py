"""Scores of in-distribution and OOD samples as one scored, labelled set (OOD = 1), the way
every AUROC, ROC curve and FPR here is computed: higher score = more OOD."""

from __future__ import annotations

import numpy as np


def id_vs_ood(s_id, s_ood) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_ood) as float64 arrays: the ID scores first, labelled 0, then the OOD ones, 1.

    Examples
    --------
    >>> id_vs_ood([0.1, 0.2], [0.9])
    (array([0.1, 0.2, 0.9]), array([0., 0., 1.]))
    """
    s_id, s_ood = np.asarray(s_id, np.float64).ravel(), np.asarray(s_ood, np.float64).ravel()
    return np.r_[s_id, s_ood], np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))]
