"""Drawing helpers of the non-glyph generators: ink masks drawn supersampled, blurs, and the
scan through the corpus' own paper and ink degradations."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from corpus.synth import degrade
from corpus.synth.render import WORK


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def mask(draw_fn, size: int = WORK, supersample: int = 2) -> np.ndarray:
    """Ink mask in [0, 1] drawn by `draw_fn(ImageDraw, scale)` at `supersample` x, box-averaged."""
    big = Image.new("L", (size * supersample, size * supersample), 0)
    draw_fn(ImageDraw.Draw(big), supersample)
    return np.asarray(big.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def blur(a: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] float array (through 8 bits: Pillow blurs no float images)."""
    img = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius)
    )
    return np.asarray(img, dtype=np.float32) / 255.0


def grey_scan(rng, ink: np.ndarray, out: int, lo: float, hi: float) -> np.ndarray:
    """Scan of `ink` at an ink density drawn from [lo, hi] (1 = the corpus' full black)."""
    return degrade.scan(rng, np.clip(ink * rng.uniform(lo, hi), 0, 1), out)


def smooth(points: np.ndarray, n: int = 24) -> np.ndarray:
    """Catmull-Rom spline through `points` (k, 2), `n` samples per segment."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    segs = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        segs.append(
            0.5
            * (
                (2 * p1)
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    segs.append(p[-2:-1])
    return np.vstack(segs)
