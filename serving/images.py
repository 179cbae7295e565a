"""Images for the HTTP responses: sample grids and chain strips (torch, in the generator), and
single model inputs (numpy, in the scoring workers, which never import torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def _png(im: Image.Image) -> Image.Image:
    im.format = "PNG"  # BentoML encodes an image response in its .format
    return im


def to_png_image(x: "torch.Tensor", nrow: int) -> Image.Image:
    from torchvision.transforms.functional import to_pil_image
    from torchvision.utils import make_grid

    grid = make_grid(x.clamp(-1, 1) * 0.5 + 0.5, nrow=nrow, padding=2, pad_value=1.0)
    return _png(to_pil_image(grid[:1]))


def input_image(x: np.ndarray) -> Image.Image:
    """One model input ([1, 1, H, W] or [H, W] in [-1, 1]) -> the grey image the model sees."""
    a = np.asarray(x, dtype=np.float32).reshape(x.shape[-2:])
    return _png(Image.fromarray(np.round((np.clip(a, -1, 1) * 0.5 + 0.5) * 255).astype(np.uint8), mode="L"))


def input_grid(xs: list[np.ndarray], nrow: int = 16, padding: int = 2) -> Image.Image:
    """Model inputs tiled nrow per row on white, as torchvision's make_grid lays them out, without
    torch (the scan's contact sheet runs in processes that never load it)."""
    tiles = [input_image(x) for x in xs]
    h, w = tiles[0].height, tiles[0].width
    rows = (len(tiles) + nrow - 1) // nrow
    cols = min(nrow, len(tiles))
    grid = Image.new("L", (cols * (w + padding) + padding, rows * (h + padding) + padding), 255)
    for i, t in enumerate(tiles):
        grid.paste(t, (padding + (i % nrow) * (w + padding), padding + (i // nrow) * (h + padding)))
    return grid
