"""Handwriting a segmenter boxes on a printed page: marginalia, underlining, annotations,
flourishes and hand-written digits, drawn with a broad-nib pen model."""

from __future__ import annotations

import numpy as np

from corpus.synth.marks import grey_scan, mask, pick, smooth
from corpus.synth.render import WORK

# -- handwriting: a broad-nib pen model ----------------------------------------------------------
# Digits as written by hand: strokes of (x, y) control points in a unit box (y down).
_HAND_DIGITS = {
    "0": [[(0.5, 0), (0.15, 0.3), (0.2, 0.8), (0.5, 1), (0.85, 0.7), (0.8, 0.2), (0.5, 0)]],
    "1": [[(0.3, 0.2), (0.55, 0), (0.5, 1)]],
    "2": [[(0.15, 0.25), (0.5, 0), (0.85, 0.3), (0.15, 1), (0.9, 1)]],
    "3": [[(0.2, 0.1), (0.75, 0.1), (0.4, 0.45), (0.85, 0.7), (0.5, 1), (0.15, 0.85)]],
    "4": [[(0.7, 1), (0.65, 0), (0.1, 0.7), (0.9, 0.7)]],
    "5": [[(0.8, 0), (0.25, 0), (0.2, 0.45), (0.75, 0.5), (0.7, 0.95), (0.15, 0.9)]],
    "6": [[(0.75, 0.05), (0.25, 0.4), (0.25, 0.95), (0.75, 0.85), (0.7, 0.5), (0.25, 0.6)]],
    "7": [[(0.1, 0.05), (0.9, 0.05), (0.4, 1)]],
    "8": [[(0.5, 0.5), (0.2, 0.25), (0.5, 0), (0.8, 0.25), (0.2, 0.75), (0.5, 1), (0.8, 0.75), (0.5, 0.5)]],
    "9": [[(0.75, 0.4), (0.3, 0.45), (0.3, 0.05), (0.75, 0.1), (0.7, 0.6), (0.4, 1)]],
}


def _pen(d, path: np.ndarray, nib: float, angle: float, thin: float):
    """Broad-nib stroke: the width follows the angle between the stroke and the nib."""
    for a, b in zip(path[:-1], path[1:]):
        direction = np.arctan2(b[1] - a[1], b[0] - a[0])
        w = max(thin, nib * abs(np.sin(direction - angle)))
        d.line([tuple(a), tuple(b)], fill=255, width=max(1, round(w)))
        r = w / 2
        d.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=255)


def _cursive(rng, n: float) -> np.ndarray:
    """A line of cursive: a forward drift with loops of varying height (a pen-model sketch)."""
    k = int(rng.integers(4, 14))
    t = np.linspace(0, 1, k * 12)
    freq = rng.uniform(2.5, 6.0) * np.pi * 2
    amp = n * rng.uniform(0.08, 0.25) * (1 + 0.6 * np.sin(t * rng.uniform(3, 9) + rng.uniform(0, 6)))
    x = n * (rng.uniform(-0.3, 0.1) + t * rng.uniform(0.9, 1.6)) + n * 0.05 * np.cos(t * freq)
    y = (
        n * rng.uniform(0.3, 0.7)
        + amp * np.sin(t * freq + rng.uniform(0, 6))
        + n * rng.uniform(-0.1, 0.1) * t
    )
    return np.c_[x, y]


def handwriting(rng, out):
    how = pick(rng, ["marginalia", "underlining", "annotation", "flourish", "digit", "digit"])
    nib, angle = float(rng.uniform(2.0, 7.0)), float(rng.uniform(0.3, 1.2))
    thin = float(rng.uniform(0.8, 2.0))

    def draw(d, s):
        n = WORK * s
        paths = []
        if how == "marginalia":
            paths = [_cursive(rng, n) for _ in range(int(rng.integers(1, 3)))]
            if len(paths) == 2:
                paths[1][:, 1] += n * rng.uniform(0.3, 0.45)
        elif how == "underlining":
            x = np.linspace(-0.1, 1.1, 30) * n
            y = n * rng.uniform(0.3, 0.8) + n * rng.uniform(0.01, 0.06) * np.sin(x / n * rng.uniform(2, 9))
            paths = [np.c_[x, y + np.linspace(0, n * rng.uniform(-0.15, 0.15), 30)]]
        elif how == "annotation":  # a few loose letters: loops and ascenders
            paths = [_cursive(rng, n)[: int(rng.integers(15, 40))]]
            paths[0][:, 0] = paths[0][:, 0] - paths[0][:, 0].min() + n * rng.uniform(0.05, 0.3)
        elif how == "flourish":
            t = np.linspace(0, rng.uniform(2, 5) * np.pi, 120)
            r = n * rng.uniform(0.1, 0.45) * np.linspace(1.0, rng.uniform(0.2, 0.7), len(t))
            cx, cy = n * rng.uniform(0.35, 0.65, 2)
            paths = [np.c_[cx + r * np.cos(t), cy + r * np.sin(t) * rng.uniform(0.4, 1.0)]]
        else:
            digits = [pick(rng, list(_HAND_DIGITS)) for _ in range(int(rng.integers(1, 3)))]
            h = n * rng.uniform(0.5, 0.8)
            w = h * rng.uniform(0.45, 0.7)
            x0 = (n - w * len(digits)) / 2
            slant = rng.uniform(-0.3, 0.1)
            for i, ch in enumerate(digits):
                for stroke in _HAND_DIGITS[ch]:
                    p = np.asarray(stroke, np.float64) + rng.normal(0, 0.05, (len(stroke), 2))
                    xy = np.c_[
                        x0 + i * w + p[:, 0] * w + slant * (p[:, 1] - 0.5) * h, (n - h) / 2 + p[:, 1] * h
                    ]
                    paths.append(smooth(xy))
        for p in paths:
            _pen(d, p, nib * s, angle, thin * s)

    # iron-gall and other inks come out in many greys
    return grey_scan(rng, mask(draw), out, 0.35, 1.0)
