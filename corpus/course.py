"""The course layout: train/val/test.npy (images, then labels, as two np.save arrays) + OOD arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from glyphgate.core.errors import DataError
from glyphgate.core.image.preprocess import preprocess, preprocess_many


def _load(f, path: Path, what: str) -> np.ndarray:
    try:
        # Object arrays hold images of different sizes; these are the user's own files.
        return np.load(f, allow_pickle=True)
    except EOFError:
        raise DataError(
            f"{path}: holds no {what} array (expected images, then labels, as two consecutive np.save arrays)"
        ) from None
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npy array for the {what} ({e})") from None


def _images(path: Path, x: np.ndarray) -> torch.Tensor:
    if x.dtype == object:
        for i, im in enumerate(x):
            if np.ndim(im) != 2:
                raise DataError(
                    f"{path}: image {i} is not 2-D (shape {np.shape(im)}); expected grayscale (H, W) images"
                )
        return preprocess_many(list(x))
    # A singleton channel axis, (N,1,H,W) or (N,H,W,1), still holds 2-D images.
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(f"{path}: images are not 2-D: array shape {x.shape}, expected (N, H, W)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{path}: images have dtype {x.dtype}, expected numbers")
    if len(x) == 0:
        raise DataError(f"{path}: holds no images")
    return torch.cat([preprocess(x[i : i + 4096]) for i in range(0, len(x), 4096)])


def _labels(path: Path, y: np.ndarray, n: int) -> torch.Tensor:
    if y.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D array, got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: {n} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{path}: labels have dtype {y.dtype}, expected integers")
    return torch.from_numpy(y.astype(np.int64))


def read_split(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One split file -> (images (N,1,56,56) in [-1,1], labels (N,))."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        x = _load(f, path, "images")
        y = _load(f, path, "labels")
    return _images(path, x), _labels(path, y, len(x))


def read_images(path: Path) -> torch.Tensor:
    """An images-only file (OOD sets) -> (N,1,56,56)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        return _images(path, _load(f, path, "images"))
