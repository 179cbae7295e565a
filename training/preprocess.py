"""The one preprocessing function shared by training, calibration, serving and scanning.

Per-image min-max scale to [0, 1], antialiased resize of the shorter side to 56, centre
crop 56x56, normalise to [-1, 1]. Dark ink on light paper stays dark (-1) on light (+1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

IMAGE_SIZE = 56


def pil_to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode (1, L, P, RGB, RGBA, LA, I;16, I, F, CMYK) -> float32 (H, W) array.

    Transparency is composited onto white, since a transparent region of a scan is paper,
    not ink. Bit depth does not matter: min-max scaling follows.
    """
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba).convert("L")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return np.asarray(img, dtype=np.float32)
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, dtype=np.float32)


def _as_batch(x) -> torch.Tensor:
    """Tensor / ndarray / PIL image / list of those -> float32 tensor (N, 1, H, W)."""
    if isinstance(x, Image.Image):
        x = pil_to_gray(x)
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x, dtype=np.float32)
        x = torch.from_numpy(x if x.flags.writeable else x.copy())
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"cannot preprocess an object of type {type(x).__name__}")
    x = x.to(torch.float32)
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[:, None]
    elif x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images shaped (H,W), (N,H,W) or (N,1,H,W), got {tuple(x.shape)}")
    return x


def preprocess(x, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Images of one size -> float32 tensor (N, 1, size, size) in [-1, 1].

    Accepts a PIL image, a numpy array or tensor shaped (H,W), (N,H,W) or (N,1,H,W), any
    numeric dtype. Images of different sizes go through `preprocess_many`.
    """
    x = _as_batch(x)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    span = hi - lo
    # A flat image holds no ink: show it as blank paper rather than dividing by zero.
    x = torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.ones_like(x))
    x = TF.resize(x, [size], antialias=True)
    x = TF.center_crop(x, [size, size])
    return (x * 2.0 - 1.0).clamp_(-1.0, 1.0).contiguous()


def preprocess_many(images: Sequence, size: int = IMAGE_SIZE) -> torch.Tensor:
    """A sequence of single images of any sizes -> (N, 1, size, size); equal sizes are batched."""
    if len(images) == 0:
        return torch.empty(0, 1, size, size)
    batches = [_as_batch(im) for im in images]
    out = torch.empty(sum(b.shape[0] for b in batches), 1, size, size)
    by_shape: dict[tuple, list[int]] = {}
    for i, b in enumerate(batches):
        by_shape.setdefault(tuple(b.shape[2:]), []).append(i)
    offsets = np.cumsum([0] + [b.shape[0] for b in batches])
    for idx in by_shape.values():
        y = preprocess(torch.cat([batches[i] for i in idx]), size)
        k = 0
        for i in idx:
            n = batches[i].shape[0]
            out[offsets[i] : offsets[i] + n] = y[k : k + n]
            k += n
    return out
