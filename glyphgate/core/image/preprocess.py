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

import functools
from collections.abc import Iterator, Sequence
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
    return gray_array(img).astype(np.float32, copy=False)


def gray_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> the grey (H, W) array `prepare_many` takes: uint8 for 8-bit scans (a
    quarter of a float copy), float32 for deeper ones; box-reduced when huge. It never shares
    memory with `img`, so the caller may close it."""
    gray = on_white(img)
    if gray.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = gray.convert("F")
    elif gray.mode not in ("L", "F"):
        gray = gray.convert("L")
    return np.asarray(_box_reduce(gray))


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
    """Tensor / ndarray -> float32 array (N, H, W)."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
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


def _singles(images: Sequence) -> Iterator[np.ndarray]:
    """Each image of `images` (PIL images, arrays or tensors of one or many) on its own, as a
    grey (H, W) array: uint8 for 8-bit scans (never copied to float one by one), else float32."""
    for im in images:
        if isinstance(im, Image.Image):
            yield gray_array(im)
        else:
            yield from _as_batch(im)


def _target(h: int, w: int, size: int) -> tuple[int, int]:
    """The resized (h, w): longer side `size`; the short side rounds down, as torchvision's
    resize(size=None, max_size=size) does."""
    return (size, max(1, int(size * w / h))) if h >= w else (max(1, int(size * h / w)), size)


@functools.lru_cache(maxsize=4096)
def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of Pillow's antialiased bilinear resize along one axis (its
    precompute_coeffs: a triangle filter widened by the scale when shrinking, each row
    normalised). Resizing an image is then two small matrix products, where Pillow's resize
    costs 20-40 us of Python per image. tests/test_preprocess.py holds it to Pillow's and
    torchvision's resize."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    center = (np.arange(n_out) + 0.5) * scale
    first = np.maximum((center - support + 0.5).astype(int), 0)
    stop = np.minimum((center + support + 0.5).astype(int), n_in)
    taps = np.arange(n_in)[None, :]
    k = np.clip(1.0 - np.abs((taps - center[:, None] + 0.5) / support), 0.0, None)
    k[(taps < first[:, None]) | (taps >= stop[:, None])] = 0.0
    weights = (k / k.sum(axis=1, keepdims=True)).astype(np.float32)
    weights.flags.writeable = False
    return weights


def single_threaded_blas():
    """BLAS on one thread while images are prepared beside other work (scan workers and the
    scan's loop, the server's scoring workers, Ray actors), restored when used as a context
    manager. The resize's matrix products are tiny (56 x 60 x 40): OpenBLAS splits them over its
    threads anyway, and beside ONNX Runtime, other workers or the server's decode threads that
    waking costs more than the product (the server's /score_batch: 1,860 images/s with it, 3,647
    without)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _fit_pad_into(out: np.ndarray, a: np.ndarray, size: int) -> None:
    """One grey (H, W) image -> `out` (size, size), raw values: longer side `size` (antialiased
    bilinear), the other side padded symmetrically with the paper colour (the median of the
    resized image's border). Raw values, because resizing and padding are linear and
    order-preserving: min-max scaling afterwards is scaling before, without a float copy first."""
    h, w = a.shape
    nh, nw = _target(h, w, size)
    r = a if (nh, nw) == (h, w) else _resize_weights(h, nh) @ a.astype(np.float32) @ _resize_weights(w, nw).T
    if (nh, nw) != (size, size):
        out[:] = _median(np.concatenate((r[0], r[-1], r[:, 0], r[:, -1])))
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = r


def _median(v: np.ndarray) -> np.float32:
    """np.median of a float vector, without its generic machinery (10 us a call)."""
    v = v.astype(np.float32, copy=False)
    k = len(v) // 2
    if len(v) % 2:
        return np.partition(v, k)[k]
    low, high = np.partition(v, (k - 1, k))[k - 1 : k + 1]
    return (low + high) / np.float32(2)


def _normalised(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Raw (N, size, size) values and each image's (min, max) -> (N, 1, size, size) in [-1, 1],
    in place on `x`."""
    span = hi - lo
    np.subtract(x, lo[:, None, None], out=x)
    np.divide(x, np.where(span > 0, span, 1.0)[:, None, None], out=x)
    # A flat image holds no ink: show it as blank paper rather than dividing by zero.
    x[span <= 0] = 1.0
    np.multiply(x, np.float32(2.0), out=x)
    np.subtract(x, np.float32(1.0), out=x)
    np.clip(x, -1.0, 1.0, out=x)
    return x[:, None]


def prepare(x, size: int = IMAGE_SIZE) -> np.ndarray:
    """Images -> float32 array (N, 1, size, size) in [-1, 1].

    Accepts a PIL image, a numpy array or tensor shaped (H,W), (N,H,W) or (N,1,H,W), any
    numeric dtype. Images of different sizes go through `prepare_many`.
    """
    if not isinstance(x, Image.Image):
        batch = _as_batch(x)
        if batch.shape[1:] == (size, size):  # a training batch: no per-image work, one pass
            return _normalised(batch.copy(), batch.min(axis=(1, 2)), batch.max(axis=(1, 2)))
    return prepare_many([x], size)


def prepare_many(images: Sequence, size: int = IMAGE_SIZE) -> np.ndarray:
    """A sequence of images of any sizes (PIL images, (H,W) arrays, or batches) -> (N, 1, size,
    size). Every model input glyphgate makes goes through here: each image is resized and padded
    into one preallocated batch, which is then scaled in one pass."""
    singles = list(_singles(images))
    out = np.empty((len(singles), size, size), np.float32)
    lo, hi = np.empty(len(singles), np.float32), np.empty(len(singles), np.float32)
    for i, a in enumerate(singles):
        lo[i], hi[i] = a.min(), a.max()
        if a.shape == (size, size):
            out[i] = a
        else:
            _fit_pad_into(out[i], a, size)
    return _normalised(out, lo, hi)


def preprocess(x, size: int = IMAGE_SIZE) -> "torch.Tensor":
    """`prepare` as a float32 tensor, for training and calibration."""
    import torch

    return torch.from_numpy(prepare(x, size))


def preprocess_many(images: Sequence, size: int = IMAGE_SIZE) -> "torch.Tensor":
    """`prepare_many` as a float32 tensor."""
    import torch

    return torch.from_numpy(prepare_many(images, size))
