"""Turn a clean ink mask into something that looks like a scan of early letterpress.

Works on float32 arrays at the working size; `scan` returns the stored uint8 image (dark ink
on light paper). Every random choice comes from the caller's generator, so a sample is a pure
function of its seed.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

BITONAL_SHARE = 0.15
JPEG_SHARE = 0.45


def smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def paper(rng: np.random.Generator, size: int) -> np.ndarray:
    """Aged paper: tone, fibre grain, blotches and uneven illumination, values in [0, 1]."""
    tone = rng.uniform(0.72, 0.96)
    grain = rng.normal(0.0, rng.uniform(0.005, 0.03), (size, size)).astype(np.float32)
    blotch = (smooth_field(rng, size, int(rng.integers(3, 8))) - 0.5) * rng.uniform(0.02, 0.12)
    yy, xx = np.mgrid[-1 : 1 : complex(0, size), -1 : 1 : complex(0, size)].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.18) * (np.cos(angle) * xx + np.sin(angle) * yy)
    light -= rng.uniform(0.0, 0.12) * (xx**2 + yy**2) / 2  # vignetting of a book scanner
    return np.clip((tone + grain + blotch) * light, 0.0, 1.0)


def ink_texture(rng: np.random.Generator, ink: np.ndarray) -> np.ndarray:
    """Bleed or erosion of the type, then uneven inking (pale patches and small dropouts)."""
    size = ink.shape[0]
    img = Image.fromarray((ink * 255).astype(np.uint8))
    r = rng.random()
    if r < 0.3:
        img = img.filter(ImageFilter.MaxFilter(3))  # ink bleed: strokes fatten
    elif r < 0.55:
        img = img.filter(ImageFilter.MinFilter(3))  # worn type / light impression
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    ink = np.asarray(img, dtype=np.float32) / 255.0
    pale = smooth_field(rng, size, int(rng.integers(4, 12)))
    ink = ink * (1.0 - rng.uniform(0.0, 0.35) * pale)
    dropouts = rng.random((size, size)) < rng.uniform(0.0, 0.02)
    ink[dropouts] *= rng.uniform(0.0, 0.5)
    return np.clip(ink, 0.0, 1.0)


def speckle(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Dust and foxing: a few dark specks of 1-3 px."""
    size = img.shape[0]
    for _ in range(int(rng.poisson(rng.uniform(0.0, 6.0)))):
        y, x = rng.integers(0, size, 2)
        r = int(rng.integers(0, 2))
        img[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] *= rng.uniform(0.3, 0.8)
    return img


def finish(rng: np.random.Generator, img: np.ndarray, out: int) -> np.ndarray:
    """Optics and storage: blur, sensor noise, downsample, bitonal or JPEG -> uint8 (out, out)."""
    pil = Image.fromarray((np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    pil = pil.resize((out, out), Image.BOX)
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    arr = arr + rng.normal(0.0, rng.uniform(0.003, 0.025), arr.shape)
    arr8 = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    r = rng.random()
    if r < BITONAL_SHARE:
        # Archive bitonal TIFFs: a global threshold between paper and ink levels.
        lo, hi = np.percentile(arr8, [2, 98])
        thr = lo + (hi - lo) * rng.uniform(0.4, 0.6)
        return np.where(arr8 > thr, 255, 0).astype(np.uint8)
    if r < BITONAL_SHARE + JPEG_SHARE:
        buf = io.BytesIO()
        Image.fromarray(arr8).save(buf, format="JPEG", quality=int(rng.integers(20, 80)))
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("L"), dtype=np.uint8)
    return arr8


def scan(rng: np.random.Generator, ink: np.ndarray, out: int) -> np.ndarray:
    """Clean ink mask (float in [0, 1], 1 = ink) -> degraded uint8 scan (out, out)."""
    size = ink.shape[0]
    ink = ink_texture(rng, ink)
    img = paper(rng, size) * (1.0 - rng.uniform(0.7, 0.97) * ink)
    return finish(rng, speckle(rng, img), out)
