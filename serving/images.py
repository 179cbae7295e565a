"""Sample tensors -> PIL images for the HTTP responses (a grid, or one chain as a strip)."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms.functional import to_pil_image
from torchvision.utils import make_grid


def to_png_image(x: torch.Tensor, nrow: int) -> Image.Image:
    grid = make_grid(x.clamp(-1, 1) * 0.5 + 0.5, nrow=nrow, padding=2, pad_value=1.0)
    im = to_pil_image(grid[:1])
    im.format = "PNG"  # BentoML encodes an image response in its .format
    return im
