"""`glyphgate data import-page`: PAGE-XML pages and their images -> the image-folder layout.

out/<class>/*.png          glyphs of the model's classes
out/ood/other_symbols/     digits, punctuation, ligatures, capitals and letters outside the classes
out/ood/words/             whole words of >= 3 glyphs (a segmenter that failed to split)
out/ood/fragments/         the right half of one glyph and the left half of the next (a mis-cut)
out/ood/blank/             squares of blank margin, one line high
out/import.json            per page: what was cut, what was skipped and why

With a split file ({"train": [works], "val": [...], "test": [...]}) the pages of each work
folder go to out/<split>/ instead, so real data is split by work, never by page.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError
from .pagexml import CROPS, Line, Page, Word, class_of, cut, find_image, graphemes, otsu, read_page, split_word

WORD_MIN_GLYPHS = 3
# The fixed split of OCR-D-GT-VD-SBB by work (its test works are never trained or tuned on).
VD_SBB_SPLITS = Path(__file__).with_name("vd_sbb_splits.json")
BLANK_PER_PAGE = 12


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


class PageImporter:
    def __init__(self, out: Path, classes: list[str], crop: str = "box", splits: dict[str, list[str]] | None = None,
                 source: Path | None = None):
        if crop not in CROPS:
            raise DataError(f"--crop {crop!r}: expected one of {', '.join(CROPS)}")
        self.out, self.classes, self.crop = out, set(classes), crop
        self.split_of = {work: split for split, works in (splits or {}).items() for work in works}
        self.source = source

    def _dest(self, page: Page) -> Path | None:
        if not self.split_of:
            return self.out
        rel = page.xml.resolve().relative_to(self.source.resolve()) if self.source else page.xml
        split = self.split_of.get(rel.parts[0]) if len(rel.parts) > 1 else None
        return self.out / split if split else None

    def _write(self, folder: Path, name: str, crop: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(folder / f"{name}.png")

    def import_page(self, xml: Path, image: Path | None = None) -> dict:
        page, warnings = read_page(xml)
        dest = self._dest(page)
        if dest is None:
            return {"page": str(xml), "skipped": "work not in the split file"}
        cut_page = PageCuts(page, image, self.crop, warnings)
        stem = _safe(xml.stem)
        counts = cut_page.counts
        for wc in cut_page.words():
            kept = []
            for g in wc.glyphs:
                if g.crop is None:
                    continue
                label = class_of(g.text, self.classes)
                folder = dest / label if label else dest / "ood" / "other_symbols"
                self._write(folder, _safe(f"{stem}_{g.id}"), g.crop)
                counts["glyphs" if label else "other symbols"] += 1
                kept.append(g.box)
            if len(kept) >= WORD_MIN_GLYPHS:
                crop = cut(cut_page.gray, wc.box, "box", wc.line_box, wc.threshold)
                if crop is not None:
                    self._write(dest / "ood" / "words", _safe(f"{stem}_{wc.word.id}"), crop)
                    counts["words"] += 1
            if len(kept) >= 2:
                i = len(kept) // 2 - 1  # the middle pair of the word
                a, b = kept[i], kept[i + 1]
                mid = ((a[2] + a[3]) // 2, (b[2] + b[3]) // 2)
                if mid[1] - mid[0] >= 2:
                    crop = cut(cut_page.gray, (min(a[0], b[0]), max(a[1], b[1]), mid[0], mid[1]), self.crop, wc.line_box,
                               wc.threshold)
                    if crop is not None:
                        self._write(dest / "ood" / "fragments", _safe(f"{stem}_{wc.word.id}_pair"), crop)
                        counts["fragments"] += 1
        counts["blank"] = self._blanks(cut_page.gray, page, cut_page.scale, cut_page.heights, dest / "ood" / "blank", stem)
        return {"page": str(xml), "image": str(cut_page.image), **dict(counts), "warnings": warnings}

    def _blanks(self, gray, page, scale, heights, folder: Path, stem: str) -> int:
        """Squares one line high that touch no text region or line: margins, gutters, page edges."""
        if not heights:
            return 0
        side = int(np.median(heights))
        h, w = gray.shape
        taken = np.zeros((h, w), bool)
        for b in [scale(r) for r in page.regions] + [scale(line.box) for line in page.lines]:
            taken[max(0, b[0]):max(0, b[1]), max(0, b[2]):max(0, b[3])] = True
        spots = [(y, x) for y in range(0, h - side, side) for x in range(0, w - side, side)
                 if not taken[y:y + side, x:x + side].any()]
        if not spots:
            return 0
        pick = np.linspace(0, len(spots) - 1, min(BLANK_PER_PAGE, len(spots))).round().astype(int)
        for k in sorted(set(pick.tolist())):
            y, x = spots[k]
            self._write(folder, f"{stem}_blank{k}", gray[y:y + side, x:x + side])
        return len(set(pick.tolist()))


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

    def __init__(self, page: Page, image: Path | None, crop: str, warnings: list[str], keep_unmatched: bool = False):
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
            warnings.append(f"image {w}x{h} differs from the XML's {page.size[1]}x{page.size[0]}; coordinates scaled")
        self.sy, self.sx = (h / page.size[0], w / page.size[1]) if page.size else (1.0, 1.0)
        self.counts: Counter = Counter()
        self.heights: list[int] = []

    def scale(self, b):
        return (int(b[0] * self.sy), int(np.ceil(b[1] * self.sy)), int(b[2] * self.sx), int(np.ceil(b[3] * self.sx)))

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
            band = self.gray[max(0, lbox[0]):lbox[1], max(0, lbox[2]):lbox[3]]
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


def import_pages(src: str | Path, out: str | Path, classes: list[str], image: str | Path | None = None,
                 crop: str = "box", splits: dict[str, list[str]] | None = None, log=print) -> dict:
    """Import every PAGE-XML page under `src`; a bad page is reported in one line and skipped."""
    src, out = Path(src), Path(out)
    files = page_files(src)
    importer = PageImporter(out, classes, crop, splits, src if src.is_dir() else None)
    pages, errors = [], []
    for xml in files:
        try:
            info = importer.import_page(xml, image)
        except DataError as e:
            errors.append(str(e))
            if len(files) > 1:
                print(f"glyphgate: error: {e}", file=sys.stderr)
            continue
        pages.append(info)
        if "skipped" not in info:
            split_share = info.get("words skipped (components != letters)", 0) / max(info.get("words split", 0), 1)
            log(f"{xml}: {info.get('glyphs', 0)} glyphs, {info.get('other symbols', 0)} other symbols, "
                f"{info.get('words', 0)} words, {info.get('fragments', 0)} fragments, {info.get('blank', 0)} blank"
                + (f"; split {info['words split']} words, skipped {split_share:.0%}" if info.get("words split") else "")
                + (f"; {len(info['warnings'])} warnings" if info["warnings"] else ""))
    out.mkdir(parents=True, exist_ok=True)
    summary = {"source": str(src), "crop": crop, "splits": splits or None, "pages": pages, "errors": errors,
               "totals": dict(sum((Counter({k: v for k, v in p.items() if isinstance(v, int)}) for p in pages), Counter()))}
    (out / "import.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if not any("skipped" not in p for p in pages):
        raise DataError(errors[0] if len(files) == 1 and errors else f"{src}: no page could be imported ({len(errors)} errors)")
    return summary
