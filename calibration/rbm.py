"""The lecture's RBM as a baseline detector: scikit-learn's BernoulliRBM (persistent
contrastive divergence) on binarised scans, scored by its free energy (higher = more OOD)."""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import BernoulliRBM


def binarise(x: np.ndarray) -> np.ndarray:
    """Ink (darker than mid-grey) -> 1, paper -> 0, flattened; inputs in [-1, 1], dark ink."""
    return (np.asarray(x).reshape(len(x), -1) < 0).astype(np.float64)


def fit_rbm(x_train: np.ndarray, hidden: int = 256, epochs: int = 15, seed: int = 0) -> BernoulliRBM:
    rbm = BernoulliRBM(
        n_components=hidden, learning_rate=0.02, batch_size=64, n_iter=epochs, random_state=seed
    )
    return rbm.fit(binarise(x_train))


def free_energy(rbm: BernoulliRBM, x: np.ndarray) -> np.ndarray:
    """F(v) = -b.v - sum_j softplus(c_j + W_j.v), from the fitted public parameters.

    (score_samples is a stochastic pseudo-likelihood: it flips one random pixel per call, so
    two calls disagree; the free energy is exact and deterministic.)"""
    v = binarise(x)
    pre = v @ rbm.components_.T + rbm.intercept_hidden_
    softplus = np.logaddexp(0.0, pre)
    return -(v @ rbm.intercept_visible_) - softplus.sum(1)
