"""The one preprocessing function shared by training, calibration, serving and scanning.

Per-image min-max scale to [0, 1], antialiased resize of the longer side to 56, pad the
shorter side to 56 with the paper colour (the median of the image's border), normalise to
[-1, 1]. Dark ink on light paper stays dark (-1) on light (+1).

Padding, not a centre crop: segmenters emit tall glyph boxes (l, f, b, h, long s), and a
centre crop cut their ascenders and descenders off, which is what made a real page's tight
crops unrecognisable.

It runs on numpy and Pillow (whose antialiased bilinear resize is the one torchvision's
`resize(antialias=True)` reproduces), so the scoring workers never import torch: that is
seconds of start-up and a thread pool per worker saved. `preprocess`/`preprocess_many` wrap
the result in a tensor for training and calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

IMAGE_SIZE = 56
SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)  # one model input: grey, 56 x 56; ONNX, sampler and server share it


def pil_to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode (1, L, P, RGB, RGBA, LA, I;16, I, F, CMYK) -> float32 (H, W) array.

    Transparency is composited onto white, since a transparent region of a scan is paper,
    not ink. Bit depth does not matter: min-max scaling follows.
    """
    img = on_white(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.convert("F")
    elif img.mode not in ("L", "F"):
        img = img.convert("L")
    return np.asarray(_box_reduce(img), dtype=np.float32)


def on_white(img: Image.Image) -> Image.Image:
    """Palette and transparent images -> grey "L" composited onto white (a transparent region of a
    scan is paper, not ink); any other image as it is."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba).convert("L")
    return img


# Longer sides above this are box-averaged by a whole factor first (down to at least 8x the
# model's input side), before any float copy: the antialiased resize to 56 averages those
# pixels anyway, and a 6000x6000 scan then costs 36 MB of work instead of ~600 MB of float
# temporaries. No crop a segmenter or our corpus makes comes near it.
REDUCE_ABOVE = 8 * IMAGE_SIZE


def _box_reduce(img: Image.Image) -> Image.Image:
    factor = max(img.size) // REDUCE_ABOVE
    return img.reduce(factor) if factor >= 2 else img


def _as_batch(x) -> np.ndarray:
    """Tensor / ndarray / PIL image -> float32 array (N, H, W)."""
    if isinstance(x, Image.Image):
        x = pil_to_gray(x)
    elif hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"cannot preprocess an object of type {type(x).__name__}")
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim != 3:
        raise ValueError(f"expected images shaped (H,W), (N,H,W) or (N,1,H,W), got {tuple(x.shape)}")
    return x


def _fit_pad(img: np.ndarray, size: int) -> np.ndarray:
    """One (H, W) image in [0, 1] -> longer side `size` (antialiased bilinear), the other side
    padded symmetrically to `size` with the paper colour."""
    h, w = img.shape
    if (h, w) == (size, size):
        return img
    if max(h, w) != size:
        # The short side rounds down, as torchvision's resize(size=None, max_size=size) does.
        nh, nw = (size, max(1, int(size * w / h))) if h >= w else (max(1, int(size * h / w)), size)
        img = np.asarray(
            Image.fromarray(np.ascontiguousarray(img), mode="F").resize((nw, nh), Image.BILINEAR)
        )
        h, w = nh, nw
    paper = np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]))
    out = np.full((size, size), paper, np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = img
    return out


def prepare(x, size: int = IMAGE_SIZE) -> np.ndarray:
    """Images of one size -> float32 array (N, 1, size, size) in [-1, 1].

    Accepts a PIL image, a numpy array or tensor shaped (H,W), (N,H,W) or (N,1,H,W), any
    numeric dtype. Images of different sizes go through `prepare_many`.
    """
    x = _as_batch(x)
    lo = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - lo
    # A flat image holds no ink: show it as blank paper rather than dividing by zero.
    x = np.where(span > 0, (x - lo) / np.maximum(span, 1e-12), np.float32(1.0)).astype(np.float32)
    if x.shape[1:] != (size, size):
        x = np.stack([_fit_pad(im, size) for im in x]) if len(x) else np.empty((0, size, size), np.float32)
    return np.clip(x * np.float32(2.0) - np.float32(1.0), -1.0, 1.0)[:, None].astype(np.float32)


def prepare_many(images: Sequence, size: int = IMAGE_SIZE) -> np.ndarray:
    """A sequence of single images of any sizes -> (N, 1, size, size); equal sizes are batched."""
    batches = [_as_batch(im) for im in images]
    out = np.empty((sum(len(b) for b in batches), 1, size, size), np.float32)
    by_shape: dict[tuple, list[int]] = {}
    for i, b in enumerate(batches):
        by_shape.setdefault(b.shape[1:], []).append(i)
    offsets = np.cumsum([0] + [len(b) for b in batches])
    for idx in by_shape.values():
        y = prepare(np.concatenate([batches[i] for i in idx]), size)
        k = 0
        for i in idx:
            n = len(batches[i])
            out[offsets[i] : offsets[i] + n] = y[k : k + n]
            k += n
    return out


def preprocess(x, size: int = IMAGE_SIZE) -> "torch.Tensor":
    """`prepare` as a float32 tensor, for training and calibration."""
    import torch

    return torch.from_numpy(prepare(x, size))


def preprocess_many(images: Sequence, size: int = IMAGE_SIZE) -> "torch.Tensor":
    """`prepare_many` as a float32 tensor."""
    import torch

    return torch.from_numpy(prepare_many(images, size))
