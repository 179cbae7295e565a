"""A PAGE-XML page cut into glyph crops, word by word: what the importer writes as training
data, and what `glyphgate scan --page` and the server's /scan_page score."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from glyphgate.core.errors import DataError
from glyphgate.core.pages.pagexml import CROPS, Line, Page, Word, cut, find_image, graphemes, otsu, split_word


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
    transcription (or that has none), unlabelled: what scanning an OCR'd page needs."""

    def __init__(
        self, page: Page, image: Path | None, crop: str, warnings: list[str], keep_unmatched: bool = False
    ):
        self.page, self.crop, self.warnings, self.keep_unmatched = page, crop, warnings, keep_unmatched
        self.image = find_image(page, image)
        try:
            with Image.open(self.image) as im:
                im.load()
                self.gray = np.asarray(im.convert("L"), dtype=np.uint8)
        except Exception as e:
            raise DataError(f"{self.image}: unreadable page image ({type(e).__name__}: {e})") from None
        h, w = self.gray.shape
        if page.size and page.size != (h, w):
            warnings.append(
                f"image {w}x{h} differs from the XML's {page.size[1]}x{page.size[0]}; coordinates scaled"
            )
        self.sy, self.sx = (h / page.size[0], w / page.size[1]) if page.size else (1.0, 1.0)
        self.counts: Counter = Counter()
        self.heights: list[int] = []

    def scale(self, b):
        return (
            int(b[0] * self.sy),
            int(np.ceil(b[1] * self.sy)),
            int(b[2] * self.sx),
            int(np.ceil(b[3] * self.sx)),
        )

    def _inside(self, b, what) -> bool:
        h, w = self.gray.shape
        if b[0] < -2 or b[2] < -2 or b[1] > h + 2 or b[3] > w + 2 or b[1] <= b[0] or b[3] <= b[2]:
            self.warnings.append(f"{what}: polygon outside the image ({w}x{h}), skipped")
            return False
        return True

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
                word.box, word.polygon = wbox, word.polygon * [self.sx, self.sy]
                if word.glyphs:
                    counts["words with glyph level"] += 1
                    parts = [(g.id, g.text, self.scale(g.box)) for g in word.glyphs]
                else:
                    texts = graphemes(word.text)
                    if not texts and not self.keep_unmatched:
                        self.warnings.append(f"Word {word.id}: empty transcription, skipped")
                        counts["words empty"] += 1
                        continue
                    counts["words split"] += 1
                    boxes = split_word(self.gray, word, thr)
                    if len(boxes) != len(texts):
                        counts["words skipped (components != letters)"] += 1
                        if not self.keep_unmatched:
                            continue
                        texts = [None] * len(boxes)
                    else:
                        counts["words kept"] += 1
                    parts = [(f"{word.id}_g{i}", t, b) for i, (t, b) in enumerate(zip(texts, boxes))]
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
                    glyphs.append(GlyphCut(gid, text or None, box, crop, bool(word.glyphs)))
                yield WordCut(line, word, wbox, lbox, thr, glyphs)


def scored_glyphs(words) -> list[tuple[WordCut, GlyphCut]]:
    """(word, glyph) for every glyph with ink to score, in page order."""
    return [(wc, g) for wc in words for g in wc.glyphs if g.crop is not None]


def word_splits(glyphs: list[tuple[WordCut, GlyphCut]]) -> dict[str, list]:
    """Word id -> [(glyph id, box, text)] for the glyphs a word split made: `annotate` writes
    them into the PAGE-XML as new Glyph elements."""
    split: dict[str, list] = {}
    for wc, g in glyphs:
        if not g.from_glyph_level:
            split.setdefault(wc.word.id, []).append((g.id, g.box, g.text))
    return split


def is_page_xml(path: Path) -> bool:
    """A cheap look for the PcGts root, so METS files and other XML in a workspace are passed over
    (a damaged PAGE file is still read, and reported)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return bool(re.search(r"<(?:\w+:)?PcGts\b", head))


def page_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DataError(f"{src}: no such PAGE-XML file or folder")
    files = [p for p in sorted(src.rglob("*.xml")) if is_page_xml(p)]
    if not files:
        raise DataError(f"{src}: no PAGE-XML files under it")
    return files


def add_page_arguments(parser, note: str = "") -> None:
    """--image and --crop, the options of every command that cuts glyphs from PAGE-XML pages."""
    parser.add_argument(
        "--image",
        default=None,
        help=f"{note}the page image, or a folder of page images matched by page number "
        "(default: Page/@imageFilename next to the XML, any image suffix)",
    )
    parser.add_argument(
        "--crop",
        choices=CROPS,
        default="box",
        help=f"{note}tight: ink box; box: ink box + 15%% margin (default); line: the text line's height",
    )
