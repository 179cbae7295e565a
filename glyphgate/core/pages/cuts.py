"""A PAGE-XML or ALTO page cut into glyph crops, word by word: what the importer writes as training
data, and what `glyphgate scan --page` and the server's /scan_page score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS, gray8, open_image
from glyphgate.core.image.ink import convention_box, ink_mask, otsu
from glyphgate.core.pages.model import (
    Glyph,
    Line,
    Page,
    Word,
    find_image,
    graphemes,
)

RESCALE_HINT = "pass --rescale if the image is a scaled copy"


class WrongPageImage(DataError):
    """A page image whose size is not the one its PAGE-XML declares: another page's image, or a
    scaled copy that nobody said was one. `with_hint` words the message for a caller that declares
    a scaled copy in another way than --rescale (the server's form field)."""

    def __init__(self, image: Path, size: tuple[int, int], xml: Path, declared: tuple[int, int]):
        self.image, self.size, self.xml, self.declared = image, size, xml, declared
        super().__init__(self.with_hint(RESCALE_HINT))

    def with_hint(self, hint: str) -> str:
        (w, h), (dw, dh) = self.size, self.declared
        return f"{self.image} is {w} × {h} but {self.xml}'s Page says {dw} × {dh}; {hint}"


def transform_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(K, 2) x, y points through a 3x3 affine transform."""
    pts = np.asarray(pts, np.float64)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def transform_box(matrix: np.ndarray, box, nearest: bool = False) -> tuple[int, int, int, int]:
    """A (top, bottom, left, right) box through an affine transform: the box around its corners
    (for a pure scaling, the box scaled; for a rotation, the rotated box's bounding box), grown
    outward to whole pixels, or with `nearest` to the nearest ones (a box measured in mm10 or
    inch1200: its edges are pixel edges written in another unit, with the unit's rounding)."""
    t, b, left, r = box
    # rounded first: a scaling and its inverse must not turn 200 into 199.99999999 and floor it
    corners = np.round(transform_points(matrix, [[left, t], [r, t], [left, b], [r, b]]), 6)
    low, high = (np.rint, np.rint) if nearest else (np.floor, np.ceil)
    return (
        int(low(corners[:, 1].min())),
        int(high(corners[:, 1].max())),
        int(low(corners[:, 0].min())),
        int(high(corners[:, 0].max())),
    )


def split_word(gray: np.ndarray, word: Word, threshold: float) -> list[tuple[int, int, int, int]]:
    """Connected components of a word's ink -> glyph boxes left to right (page pixels).

    Specks smaller than 1 % of the word's height squared are dust; a component lying mostly
    inside another's columns (a dot, a macron, a tilde, two dots of an umlaut, a broken stroke)
    merges into it, so `i`, `ā` and `ä` stay one glyph each.
    """
    t, b, l, r = word.box
    crop = gray[t:b, l:r]
    mask = ink_mask(crop, threshold)
    # Only the word's own polygon: neighbours' ascenders often reach into its box.
    poly = Image.new("1", (crop.shape[1], crop.shape[0]), 0)
    ImageDraw.Draw(poly).polygon([(x - l, y - t) for x, y in word.polygon], fill=1)
    mask &= np.asarray(poly, bool)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return []
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    comps = [
        [s[0].start, s[0].stop, s[1].start, s[1].stop]
        for s, a in zip(ndimage.find_objects(labels), sizes)
        if a >= 0.01 * (b - t) ** 2
    ]
    comps.sort(key=lambda c: -(c[1] - c[0]) * (c[3] - c[2]))  # biggest first: stems absorb marks
    merged: list[list[int]] = []
    for c in comps:
        for m in merged:
            overlap = min(c[3], m[3]) - max(c[2], m[2])
            if overlap >= 0.5 * (c[3] - c[2]):
                m[:] = [min(c[0], m[0]), max(c[1], m[1]), min(c[2], m[2]), max(c[3], m[3])]
                break
        else:
            merged.append(list(c))
    merged.sort(key=lambda c: c[2])
    return [(t + c[0], t + c[1], l + c[2], l + c[3]) for c in merged]


def cut(
    gray: np.ndarray,
    box: tuple[int, int, int, int],
    crop: str,
    line_box: tuple[int, int, int, int],
    threshold: float,
) -> np.ndarray | None:
    """One glyph crop from the page by the crop convention; None when the box holds no ink.

    The conventions are glyphgate.core.image.ink's: the ink inside the glyph's box, cut tight,
    with a margin, or at the text line's height.
    """
    t, b, l, r = box
    region = gray[t:b, l:r]
    if region.size == 0:
        return None
    ink = ink_mask(region, threshold)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows) == 0:
        return None
    ink_box = (t + rows[0], t + rows[-1] + 1, l + cols[0], l + cols[-1] + 1)
    t, b, l, r = convention_box(ink_box, crop, gray.shape, line_rows=line_box[:2])
    return gray[t:b, l:r]


@dataclass
class GlyphCut:
    id: str
    text: str | None  # the transcription, None when a word split does not match it
    box: tuple[int, int, int, int]  # page pixels (top, bottom, left, right)
    crop: np.ndarray | None  # None when the box holds no ink
    from_glyph_level: bool


@dataclass
class WordCut:
    line: Line
    word: Word
    box: tuple[int, int, int, int]
    line_box: tuple[int, int, int, int]
    threshold: float
    glyphs: list[GlyphCut]


class PageCuts:
    """One page's glyph crops, word by word: Glyph-level boxes as they are, or a word's connected
    components. `keep_unmatched` keeps the components of a word whose count differs from its
    transcription (or that has none), unlabelled: what scanning an OCR'd page needs.

    The image must be the size the XML declares, unless `rescale` says it is a scaled copy (then
    coordinates are scaled, and a JPEG larger than the page is decoded reduced toward its size).
    It is held once, as 8-bit grey. Only ground truth labels a glyph: the verdicts `scan --page`
    wrote into a copy are predictions, and the Glyphs its word split made are left out (the word
    is split again, as on the original page), unless `accept_predictions`: then a glyph without
    ground truth takes the predicted label of a verdict that was not flagged."""

    def __init__(
        self,
        page: Page,
        image: Path | None,
        crop: str,
        warnings: list[str],
        keep_unmatched: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        rescale: bool = False,
        accept_predictions: bool = False,
        gray: np.ndarray | None = None,
        to_image: np.ndarray | None = None,
        glyphs_only: bool = False,
    ):
        self.page, self.crop, self.warnings, self.keep_unmatched = page, crop, warnings, keep_unmatched
        self.glyphs_only = glyphs_only
        self.rescale, self.accept_predictions = rescale, accept_predictions
        self.counts: Counter = Counter()
        self.heights: list[int] = []
        if gray is not None:  # an image a workflow derived (OCR-D): its own transform says where
            self.image, self.gray = image, gray
            self.to_image = np.eye(3) if to_image is None else np.asarray(to_image, np.float64)
            return
        self.image = find_image(page, image)
        with open_image(
            self.image,
            str(self.image),
            max_pixels,
            error=DataError,
            what="a page image",
            before_load=self._fit,
        ) as im:
            self.gray = gray8(im)
        h, w = self.gray.shape
        if page.size and page.size != (h, w) and page.units == "pixel":  # mm10 never is the image's size
            warnings.append(
                f"image {w}x{h} differs from the XML's {page.size[1]}x{page.size[0]}; coordinates scaled"
            )
        sy, sx = (h / page.size[0], w / page.size[1]) if page.size else (1.0, 1.0)
        self.to_image = np.diag([sx, sy, 1.0])

    def _fit(self, im: Image.Image) -> None:
        """Before a pixel is decoded: refuse an image of the wrong size, and ask the decoder for
        grey (a colour JPEG page then never exists in RGB), reduced when a larger copy is declared.
        An ALTO page measured in mm10 or inch1200 fits any image: its size says only how its
        units meet the image's pixels."""
        w, h = im.size
        declared = self.page.size
        if declared is None or declared == (h, w) or self.page.units != "pixel":
            im.draft("L", None)
            return
        if not self.rescale:
            raise WrongPageImage(self.image, (w, h), self.page.xml, (declared[1], declared[0]))
        im.draft("L", (declared[1], declared[0]))

    def scale(self, b):
        """A box in the XML's coordinates -> the box in the image's pixels."""
        return transform_box(self.to_image, b, nearest=self.page.units != "pixel")

    def _labelled(self, glyphs: list[Glyph]) -> list[tuple[str, str, tuple]]:
        """(id, label, box) of a word's Glyph elements: the ground truth; with accept_predictions,
        the predictions that were not flagged where there is none."""
        if not self.accept_predictions:
            return [(g.id, g.text, self.scale(g.box)) for g in glyphs if not g.ours]
        out = []
        for g in glyphs:
            text = g.text
            if not text and g.predicted:
                text = "" if g.flagged else g.predicted
                self.counts["predictions flagged, not labels" if g.flagged else "predictions as labels"] += 1
            out.append((g.id, text, self.scale(g.box)))
        return out

    def _inside(self, b, what) -> bool:
        h, w = self.gray.shape
        if b[0] < -2 or b[2] < -2 or b[1] > h + 2 or b[3] > w + 2 or b[1] <= b[0] or b[3] <= b[2]:
            self.warnings.append(f"{what}: polygon outside the image ({w}x{h}), skipped")
            return False
        return True

    def _split(self, word: Word, threshold: float) -> list[tuple[str, str | None, tuple]] | None:
        """(id, label, box) of a word's connected components, labelled by its transcription when
        the counts agree; None when the word is skipped."""
        counts = self.counts
        texts = graphemes(word.text)
        if not texts and not self.keep_unmatched:
            self.warnings.append(f"Word {word.id}: empty transcription, skipped")
            counts["words empty"] += 1
            return None
        counts["words split"] += 1
        boxes = split_word(self.gray, word, threshold)
        if len(boxes) != len(texts):
            counts["words skipped (components != letters)"] += 1
            if not self.keep_unmatched:
                return None
            texts = [None] * len(boxes)
        else:
            counts["words kept"] += 1
        return [(f"{word.id}_g{i}", t, b) for i, (t, b) in enumerate(zip(texts, boxes))]

    def words(self) -> Iterator[WordCut]:
        counts = self.counts
        for line in self.page.lines:
            lbox = self.scale(line.box)
            if not self._inside(lbox, f"TextLine {line.id}"):
                continue
            self.heights.append(lbox[1] - lbox[0])
            band = self.gray[max(0, lbox[0]) : lbox[1], max(0, lbox[2]) : lbox[3]]
            thr = otsu(band) if band.size else 128.0
            for word in line.words:
                wbox = self.scale(word.box)
                if not self._inside(wbox, f"Word {word.id}"):
                    counts["words outside"] += 1
                    continue
                word.box, word.polygon = wbox, transform_points(self.to_image, word.polygon)
                parts = self._labelled(word.glyphs)
                glyph_level = bool(parts)
                if glyph_level:
                    counts["words with glyph level"] += 1
                elif self.glyphs_only:
                    counts["words without glyphs (not split)"] += 1
                    continue
                else:
                    parts = self._split(word, thr)
                    if parts is None:
                        continue
                glyphs = []
                for gid, text, box in parts:
                    if text == "" and not self.keep_unmatched:
                        self.warnings.append(f"Glyph {gid}: no transcription, skipped")
                        continue
                    if not self._inside(box, f"Glyph {gid}"):
                        continue
                    crop = cut(self.gray, box, self.crop, lbox, thr)
                    if crop is None:
                        counts["glyphs without ink"] += 1
                    glyphs.append(GlyphCut(gid, text or None, box, crop, glyph_level))
                yield WordCut(line, word, wbox, lbox, thr, glyphs)
