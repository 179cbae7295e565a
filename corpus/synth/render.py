"""Set glyphs in type on a canvas and cut them out the way a segmenter crops a glyph scan."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from corpus.synth.faces import LOWER, Face

CANVAS = 256
WORK = 96  # degradations run at this size, then the scan is stored smaller


@functools.lru_cache(maxsize=2048)
def get_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass
class Setting:
    """How one crop is composed; the defaults make an ordinary in-distribution glyph."""

    neighbours: bool = True
    transform: str | None = None  # rot90 / rot180 / rot270 / mirror / flip
    half: bool = False  # erase half of the centre glyph (broken or badly segmented type)
    pair_overlap: float = 0.12  # how far glyphs of a multi-glyph centre overlap, in em


@functools.lru_cache(maxsize=4096)
def line_band(face: Face, size: int) -> tuple[float, float]:
    """(top, bottom) of the face's text line relative to the baseline: ascender to descender.

    Cropping every glyph to this band, not to its own box, keeps the relative size and height
    of letters (s sits in the x-height, S reaches the cap height), as a line segmenter does;
    otherwise case pairs such as s/S or c/C become the same picture.
    """
    font = get_font(str(face.path), size)
    tops, bottoms = [], []
    for symbol in ("d", "l", "b", "A", "p", "q"):
        glyph = face.char_for(symbol)
        if glyph is not None:
            _, t, _, b = font.getbbox(glyph[0], anchor="ls")
            tops.append(t)
            bottoms.append(b)
    if not tops:
        return -0.75 * size, 0.25 * size
    return float(min(tops)), float(max(max(bottoms), 0))


def _draw(draw: ImageDraw.ImageDraw, font, x: float, baseline: float, text: str, macron: bool, size: int):
    draw.text((x, baseline), text, font=font, fill=255, anchor="ls")
    if macron:
        l, t, r, _ = draw.textbbox((x, baseline), text, font=font, anchor="ls")
        w = r - l
        thick = max(2, round(size * 0.06))
        top = t - thick - max(2, round(size * 0.07))
        draw.rectangle([l + 0.12 * w, top, r - 0.12 * w, top + thick], fill=255)


def _transform(layer: Image.Image, how: str) -> Image.Image:
    box = layer.getbbox()
    if box is None:
        return layer
    piece = layer.crop(box)
    op = {
        "rot90": Image.Transpose.ROTATE_90,
        "rot180": Image.Transpose.ROTATE_180,
        "rot270": Image.Transpose.ROTATE_270,
        "mirror": Image.Transpose.FLIP_LEFT_RIGHT,
        "flip": Image.Transpose.FLIP_TOP_BOTTOM,
    }[how]
    piece = piece.transpose(op)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    out = Image.new("L", layer.size, 0)
    out.paste(piece, (round(cx - piece.width / 2), round(cy - piece.height / 2)))
    return out


def compose(
    rng: np.random.Generator, face: Face, centre: list[tuple[str, bool]], setting: Setting | None = None
) -> np.ndarray:
    """Ink mask (float32, WORK x WORK, 1 = ink) of `centre` set in `face`, cropped like a scan."""
    setting = setting or Setting()
    size = int(rng.integers(56, 90))
    font = get_font(str(face.path), size)
    baseline = CANVAS * 0.62

    widths = [font.getlength(t) for t, _ in centre]
    overlap = setting.pair_overlap * size
    total = sum(widths) - overlap * (len(centre) - 1)
    x = CANVAS / 2 - total / 2
    centre_layer = Image.new("L", (CANVAS, CANVAS), 0)
    d = ImageDraw.Draw(centre_layer)
    for (text, macron), w in zip(centre, widths):
        _draw(d, font, x, baseline, text, macron, size)
        x += w - overlap
    if setting.transform:
        centre_layer = _transform(centre_layer, setting.transform)
    box = centre_layer.getbbox() or (CANVAS // 3, CANVAS // 3, 2 * CANVAS // 3, 2 * CANVAS // 3)
    if setting.half:
        l, t, r, b = box
        keep = Image.new("L", centre_layer.size, 0)
        side = rng.integers(4)
        cut = [
            (l, t, (l + r) // 2, b),
            ((l + r) // 2, t, r, b),
            (l, t, r, (t + b) // 2),
            (l, (t + b) // 2, r, b),
        ][side]
        keep.paste(centre_layer.crop(cut), cut[:2])
        centre_layer = keep

    ink = np.asarray(centre_layer, dtype=np.float32)
    if setting.neighbours:
        ctx = Image.new("L", (CANVAS, CANVAS), 0)
        dc = ImageDraw.Draw(ctx)
        left_edge = CANVAS / 2 - total / 2
        for side in (-1, 1):
            if rng.random() < 0.3:
                continue  # word boundary: no neighbour on this side
            letter = face.char_for(LOWER[rng.integers(len(LOWER))]) or (" ", False)
            gap = rng.uniform(0.02, 0.14) * size
            lw = font.getlength(letter[0])
            nx = left_edge - lw - gap if side < 0 else left_edge + total + gap
            _draw(dc, font, nx, baseline, letter[0], letter[1], size)
        ink = np.maximum(ink, np.asarray(ctx, dtype=np.float32))

    band_top, band_bottom = line_band(face, size)
    l, r = box[0], box[2]
    t, b = min(box[1], baseline + band_top), max(box[3], baseline + band_bottom)
    bw, bh = r - l, b - t
    # The crop spans the line band (or more, for a macron or a rotated glyph); narrow glyphs
    # (i, l, f) keep a minimum width so they are not swamped by their neighbours.
    margin = rng.uniform(1.04, 1.2)
    ch = bh * margin * rng.uniform(0.97, 1.03)
    cw = max(bw * margin, 0.6 * ch) * rng.uniform(0.95, 1.05)
    side = max(cw, ch)
    cx = (l + r) / 2 + rng.uniform(-0.08, 0.08) * cw
    cy = (t + b) / 2 + rng.uniform(-0.04, 0.04) * side
    img = Image.fromarray((ink / 255.0).astype(np.float32))
    img = img.rotate(rng.uniform(-5.0, 5.0), resample=Image.BILINEAR, center=(cx, cy))
    crop = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
    img = img.resize((WORK, WORK), Image.BILINEAR, box=crop)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
