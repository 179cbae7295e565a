"""Out-of-distribution suites: scans that are not one of the 42 glyph classes.

far  - not a glyph at all: noise, blank paper, ink blots and stains, photo patches, and (ood_page)
       solid shapes, rules and lines, gutter shadow and page edges.
near - printed matter that is close to a glyph but not one of the classes, and (ood_page)
       handwriting, library stamps, printers' ornaments, bleed-through.
Each generator maps a seeded generator to one uint8 (OUT, OUT) scan; degradations are the
same as the glyph corpus wherever paper and ink are involved, so the detector cannot win by
spotting the synthesis instead of the content.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from corpus.synth import degrade, ood_page
from corpus.synth.faces import CLASSES, DIGITS_PUNCT, FOREIGN_CAPITALS, GREEK_CYRILLIC, faces_for
from corpus.synth.render import WORK, Setting, compose

COURSE_FAR = ["uniform_noise", "gaussian_noise", "blank_paper", "ink_blots", "photo_patches"]
COURSE_NEAR = [
    "foreign_capitals",
    "digits_punct",
    "greek_cyrillic",
    "rotated_mirrored",
    "touching_pairs",
    "half_glyphs",
]
# The course's kinds (mixed into ood_ta / ood_tb) first, then what page segmenters cut besides type.
FAR = COURSE_FAR + ood_page.FAR
NEAR = COURSE_NEAR + ood_page.NEAR
STREAM_ORDER = COURSE_FAR + COURSE_NEAR + ood_page.FAR + ood_page.NEAR  # seeds stay put as kinds are added
KIND = {**{k: "far" for k in FAR}, **{k: "near" for k in NEAR}}

# Transforms that would turn a class into itself or into another class are left out.
_SYMMETRIC = set("ilosxzIoōSNHMAvwbdpqnuēāī")


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _glyph(rng, symbols, out, modern=False, setting: Setting | None = None, count=1):
    symbol_list = [_pick(rng, symbols) for _ in range(count)]
    faces = [f for f in faces_for(symbol_list[0], modern) if all(f.char_for(s) for s in symbol_list)]
    if not faces:
        faces = list(faces_for(symbol_list[0], modern))
        symbol_list = symbol_list[:1]
    face = _pick(rng, faces)
    ink = compose(rng, face, [face.char_for(s) for s in symbol_list], setting)
    return degrade.scan(rng, ink, out)


def uniform_noise(rng, out):
    lo = rng.uniform(0, 128)
    hi = rng.uniform(lo + 32, 256)
    cells = int(_pick(rng, [out, out // 2, out // 4, out // 8]))
    img = rng.uniform(lo, hi, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(img).resize((out, out), Image.NEAREST), dtype=np.float32).astype(
        np.uint8
    )


def gaussian_noise(rng, out):
    img = rng.normal(rng.uniform(60, 200), rng.uniform(10, 70), (out, out)).astype(np.float32)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        from PIL import ImageFilter

        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    return np.asarray(pil, dtype=np.uint8)


def blank_paper(rng, out):
    return degrade.finish(rng, degrade.speckle(rng, degrade.paper(rng, WORK)), out)


def ink_blots(rng, out):
    """Blots, smudges and water stains on paper."""
    ink = Image.new("L", (WORK, WORK), 0)
    d = ImageDraw.Draw(ink)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, WORK, 2)
        rx, ry = rng.uniform(4, WORK * 0.35, 2)
        if rng.random() < 0.35:  # stain: a ring with a pale centre
            d.ellipse(
                [cx - rx, cy - ry, cx + rx, cy + ry],
                outline=int(rng.integers(90, 200)),
                width=int(rng.integers(2, 6)),
            )
        else:
            d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    field = degrade.smooth_field(rng, WORK, int(rng.integers(5, 14)))
    mask = np.asarray(ink, dtype=np.float32) / 255.0 * (field > rng.uniform(0.2, 0.5))
    return degrade.scan(rng, np.clip(mask + (field > 0.8) * rng.uniform(0.0, 1.0), 0, 1), out)


@functools.lru_cache(maxsize=1)
def _photos() -> list[np.ndarray]:
    from sklearn.datasets import (
        load_sample_images,  # bundled with scikit-learn, no download
    )

    return [
        np.asarray(Image.fromarray(im).convert("L"), dtype=np.uint8) for im in load_sample_images().images
    ]


def photo_patches(rng, out):
    photo = _pick(rng, _photos())
    h, w = photo.shape
    side = int(rng.integers(out, min(h, w) // 2))
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    patch = Image.fromarray(photo[y : y + side, x : x + side]).resize((out, out), Image.BOX)
    return np.asarray(patch, dtype=np.uint8)


def foreign_capitals(rng, out):
    return _glyph(rng, FOREIGN_CAPITALS, out)


def digits_punct(rng, out):
    return _glyph(rng, DIGITS_PUNCT, out)


def greek_cyrillic(rng, out):
    return _glyph(rng, GREEK_CYRILLIC, out, modern=True)


def rotated_mirrored(rng, out):
    symbols = [c for c in CLASSES if c not in _SYMMETRIC]
    how = _pick(rng, ["rot90", "rot270", "rot180", "mirror", "flip"])
    return _glyph(rng, symbols, out, setting=Setting(transform=how))


def touching_pairs(rng, out):
    return _glyph(rng, CLASSES, out, setting=Setting(pair_overlap=rng.uniform(0.05, 0.2)), count=2)


def half_glyphs(rng, out):
    return _glyph(rng, CLASSES, out, setting=Setting(half=True, neighbours=rng.random() < 0.5))


GENERATORS = {**{name: globals()[name] for name in COURSE_FAR + COURSE_NEAR}, **ood_page.GENERATORS}
