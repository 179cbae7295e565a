"""Ink on paper, the one definition of each: Otsu's threshold, the ink mask, the crop
conventions a segmenter's box follows, and heavier or lighter strokes. Page import, page scans,
scan augmentation and the sampler's transitions all use these, so a "box crop" or a "thicker
stroke" means the same thing in training as on a real page."""

from __future__ import annotations

import numpy as np

CROPS = ("tight", "box", "line")  # tight ink box; + a margin of its longer side; full line height
CROP_MARGIN = 0.15


def otsu(values: np.ndarray, bins: int = 256, top: float = 256.0) -> float:
    """Otsu's threshold of values in [0, top], from a histogram of `bins` equal bins: the middle
    of the bin that best splits ink from paper (grey pages: 256 bins of 0..255; model inputs
    rescaled to [0, 1]: 64 bins)."""
    if bins == top:  # integer grey levels: a bincount is the histogram, and much faster
        hist = np.bincount(np.clip(values.ravel(), 0, bins - 1).astype(np.int64), minlength=bins)
    else:  # bins of width top / bins; a power-of-two scale (64 bins of [0, 1]) is exact
        idx = np.clip((values.ravel() * (bins / top)).astype(np.int64), 0, bins - 1)
        hist = np.bincount(idx, minlength=bins)
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    omega, mu = np.cumsum(p), np.cumsum(p * np.arange(bins))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return (float(np.argmax(between)) + 0.5) * top / bins


def ink_mask(gray: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Dark ink on light paper: True where the grey value is below the threshold (Otsu's when None)."""
    return gray < (otsu(gray) if threshold is None else threshold)


def convention_box(
    ink: tuple[int, int, int, int],
    crop: str,
    shape: tuple[int, int],
    line_rows: tuple[int, int] | None = None,
    margin: float = CROP_MARGIN,
    min_pad: int = 1,
) -> tuple[int, int, int, int]:
    """The (top, bottom, left, right) box a crop convention cuts around an ink box, clipped to an
    image of `shape`: `tight` the ink box; `box` with a margin (a share of its longer side, CROP_MARGIN by default);
    `line` that margin across and the text line's rows (`line_rows`, default the whole height)."""
    t, b, l, r = ink
    if crop not in CROPS:
        raise ValueError(f"crop {crop!r}: expected one of {', '.join(CROPS)}")
    if crop != "tight":
        pad = max(min_pad, round(margin * max(b - t, r - l)))
        t, b, l, r = t - pad, b + pad, l - pad, r + pad
    if crop == "line":
        lo, hi = line_rows if line_rows is not None else (0, shape[0])
        t, b = min(t, lo), max(b, hi)
    return max(0, t), min(shape[0], b), max(0, l), min(shape[1], r)


def stroke(x, px: int):
    """Heavier (px > 0) or lighter (px < 0) type on model inputs ([C, H, W] or [N, C, H, W] in
    [-1, 1], ink dark): a grey-level dilation or erosion of the ink by px pixels."""
    import torch.nn.functional as F  # torch only where strokes change: pages and uploads need numpy alone

    if px == 0:
        return x
    k = 2 * abs(px) + 1
    if px > 0:  # ink is dark: growing it is a min filter
        return -F.max_pool2d(-x, k, stride=1, padding=abs(px))
    return F.max_pool2d(x, k, stride=1, padding=abs(px))
