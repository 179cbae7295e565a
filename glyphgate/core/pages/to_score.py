"""A page cut for scanning (`scan --page`, /scan_page, the OCR-D processor): every glyph with ink,
the words' unmatched splits kept unlabelled, and the way its verdicts go back into a copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS
from glyphgate.core.pages.cuts import GlyphCut, PageCuts, WordCut, transform_box
from glyphgate.core.pages.formats import annotate, read_page
from glyphgate.core.pages.model import Page


def scored_glyphs(words) -> list[tuple[WordCut, GlyphCut]]:
    """(word, glyph) for every glyph with ink to score, in page order."""
    return [(wc, g) for wc in words for g in wc.glyphs if g.crop is not None]


def word_splits(glyphs: list[tuple[WordCut, GlyphCut]], to_image: np.ndarray) -> dict[str, list]:
    """Word id -> [(glyph id, box in the XML's coordinates, text)] for the glyphs a word split
    made: `annotate` writes them into the page as new Glyph elements. `to_image` maps the XML's
    coordinates to the image's pixels (a scaled copy, an OCR-D derived image); its inverse takes
    the boxes back to the page's coordinates."""
    to_page = np.linalg.inv(to_image)
    split: dict[str, list] = {}
    for wc, g in glyphs:
        if not g.from_glyph_level:
            split.setdefault(wc.word.id, []).append((g.id, transform_box(to_page, g.box), g.text))
    return split


@dataclass
class PageToScore:
    """A page cut for scanning (`scan --page`, /scan_page): every glyph with ink, the words'
    unmatched splits kept unlabelled, and the way its verdicts go back into a copy of the XML."""

    xml: Path
    warnings: list[str]
    glyphs: list[tuple[WordCut, GlyphCut]]
    to_image: np.ndarray = field(default_factory=lambda: np.eye(3))  # XML coordinates -> image pixels
    data: bytes | None = None  # the XML itself, when it came from memory (an OCR-D page)

    @classmethod
    def cut(
        cls,
        xml: Path,
        image: Path | None,
        crop: str = "box",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        rescale: bool = False,
        glyphs_only: bool = False,
        read: tuple[Page, list[str]] | None = None,
    ) -> "PageToScore":
        """`rescale`: the image is a scaled copy of the page (else a size that differs from the
        XML's is refused, WrongPageImage); `max_pixels`: GLYPHGATE_MAX_PIXELS; `glyphs_only`: the
        page's Glyph elements alone, no word split; `read`: the page as read_page read it, when
        the caller has (so it is not parsed twice)."""
        page, warnings = read or read_page(xml)
        cuts = PageCuts(
            page,
            image,
            crop,
            warnings,
            keep_unmatched=True,
            max_pixels=max_pixels,
            rescale=rescale,
            glyphs_only=glyphs_only,
        )
        return cls(Path(xml), warnings, scored_glyphs(cuts.words()), cuts.to_image)

    @classmethod
    def from_memory(
        cls,
        name: str,
        data: bytes,
        gray: np.ndarray,
        to_image: np.ndarray,
        crop: str = "box",
        glyphs_only: bool = False,
    ) -> "PageToScore":
        """A page whose XML and image a workflow holds (an OCR-D processor): `gray` is the image it
        chose (the original or a derived one), `to_image` maps the XML's coordinates onto it;
        `glyphs_only`: the page's Glyph elements alone, no word split."""
        page, warnings = read_page(name, data)
        cuts = PageCuts(
            page,
            None,
            crop,
            warnings,
            keep_unmatched=True,
            gray=gray,
            to_image=to_image,
            glyphs_only=glyphs_only,
        )
        return cls(Path(name), warnings, scored_glyphs(cuts.words()), cuts.to_image, data)

    @property
    def crops(self) -> list[np.ndarray]:
        return [g.crop for _, g in self.glyphs]

    def rows(self, verdicts: list[dict]) -> list[dict]:
        """One row per glyph: its line, word, glyph id, transcription and box, then its verdict."""
        return [
            {"line": wc.line.id, "word": wc.word.id, "glyph": g.id, "text": g.text, "box": list(g.box), **v}
            for (wc, g), v in zip(self.glyphs, verdicts)
        ]

    def annotate(self, verdicts: dict[str, dict], out) -> None:
        """A copy of the XML with each scored glyph's verdict (glyph id -> verdict) to `out`."""
        source = self.xml if self.data is None else self.data
        annotate(source, verdicts, word_splits(self.glyphs, self.to_image), out)
