"""Model inputs as pictures: one image, or a grid of many with optional captions, on numpy
and Pillow only, so the scoring workers and the scanner draw them without importing torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _as_images(x) -> np.ndarray:
    """A tensor or array [N, 1, H, W] / [N, H, W] / [H, W], or a list of such, in [-1, 1] (or already
    uint8) -> uint8 [N, H, W]."""
    if isinstance(x, (list, tuple)):
        x = np.stack([_as_images(a)[0] for a in x]) if len(x) else np.empty((0, 1, 1), np.uint8)
        return x
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:
        return x.reshape((-1,) + x.shape[-2:])
    a = np.asarray(x, np.float32)
    a = a.reshape((-1,) + a.shape[-2:])
    return np.floor((np.clip(a, -1, 1) * 0.5 + 0.5) * 255 + 0.5).astype(np.uint8)


def png(im: Image.Image) -> Image.Image:
    im.format = "PNG"  # BentoML encodes an image response in its .format
    return im


def input_image(x) -> Image.Image:
    """One model input ([1, 1, H, W] or [H, W] in [-1, 1]) -> the grey image the model sees."""
    return png(Image.fromarray(_as_images(x)[0], mode="L"))


def grid_image(
    x, nrow: int = 8, padding: int = 2, scale: int = 1, captions: list[str] | None = None
) -> Image.Image:
    """Images in [-1, 1] tiled `nrow` per row on white, each `scale` times larger, optionally
    captioned underneath (a long caption keeps its end: that is where a file name differs).

    Examples
    --------
    >>> import numpy as np
    >>> grid_image(np.zeros((5, 1, 56, 56)), nrow=4).size
    (234, 118)
    """
    from PIL import ImageDraw, ImageFont

    tiles = _as_images(x)
    if not len(tiles):
        raise ValueError("no images to draw")
    h, w = tiles.shape[1] * scale, tiles.shape[2] * scale
    cap = 12 if captions else 0
    rows, cols = (len(tiles) + nrow - 1) // nrow, min(nrow, len(tiles))
    grid = Image.new("L", (cols * (w + padding) + padding, rows * (h + cap + padding) + padding), 255)
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i, t in enumerate(tiles):
        x0, y0 = padding + (i % nrow) * (w + padding), padding + (i // nrow) * (h + cap + padding)
        grid.paste(Image.fromarray(t, mode="L").resize((w, h), Image.NEAREST), (x0, y0))
        if captions:
            text = captions[i]
            while len(text) > 3 and draw.textlength(text, font=font) > w:
                text = text[1:]
            draw.text((x0, y0 + h), text if text == captions[i] else "…" + text[1:], fill=0, font=font)
    return png(grid)


def save_grid(x, path: str | Path, nrow: int | None = None, limit: int | None = None, **kw) -> None:
    """`grid_image` written as a PNG (`nrow` defaults to a square; `limit` keeps the first ones)."""
    tiles = _as_images(x)[:limit]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(tiles, nrow=nrow or max(1, int(np.ceil(np.sqrt(len(tiles))))), **kw).save(path)
