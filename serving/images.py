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


def input_grid(xs: list[np.ndarray], nrow: int = 16, padding: int = 2, captions: list[str] | None = None,
               scale: int = 2) -> Image.Image:
    """Model inputs tiled nrow per row on white (without torch: the scan's contact sheet runs in
    processes that never load it), each `scale` times larger, optionally captioned underneath."""
    from PIL import ImageDraw, ImageFont

    tiles = [input_image(x).resize((x.shape[-1] * scale, x.shape[-2] * scale), Image.NEAREST) for x in xs]
    h, w = tiles[0].height, tiles[0].width
    cap = 12 if captions else 0
    rows = (len(tiles) + nrow - 1) // nrow
    cols = min(nrow, len(tiles))
    grid = Image.new("L", (cols * (w + padding) + padding, rows * (h + cap + padding) + padding), 255)
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i, t in enumerate(tiles):
        x, y = padding + (i % nrow) * (w + padding), padding + (i // nrow) * (h + cap + padding)
        grid.paste(t, (x, y))
        if captions:
            text = captions[i]
            while len(text) > 3 and draw.textlength(text, font=font) > w:  # keep the end: the file name
                text = text[1:]
            draw.text((x, y + h), text if text == captions[i] else "…" + text[1:], fill=0, font=font)
    return grid
