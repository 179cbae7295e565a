"""`glyphgate data import-page`: PAGE-XML pages and their images -> the image-folder layout.

out/<class>/*.png          glyphs of the model's classes
out/ood/other_symbols/     digits, punctuation, ligatures, capitals and letters outside the classes
out/ood/words/             whole words of >= 3 glyphs (a segmenter that failed to split)
out/ood/fragments/         the right half of one glyph and the left half of the next (a mis-cut)
out/ood/blank/             squares of blank margin, one line high
out/import.json            per page: what was cut, what was skipped and why

Only ground truth labels a glyph. A copy that `glyphgate scan --page` annotated imports as the
page itself: its verdicts are predictions (they never become labels, flagged or not) and the
Glyphs its word split made are left out, so the words are split again as on the original.
`accept_predictions` opts in to pseudo-labels: a glyph without ground truth then takes the
predicted label of a verdict that was not flagged (import.json records the choice).

With a split file ({"train": [works], "val": [...], "test": [...]}) the pages of each work
folder go to out/<split>/ instead, so real data is split by work, never by page.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS
from glyphgate.core.image.ink import CROPS
from glyphgate.core.pages.cuts import PageCuts, cut
from glyphgate.core.pages.formats import page_files, read_page
from glyphgate.core.pages.model import Page, class_of

WORD_MIN_GLYPHS = 3
# The fixed split of OCR-D-GT-VD-SBB by work (its test works are never trained or tuned on).
VD_SBB_SPLITS = Path(__file__).with_name("vd_sbb_splits.json")
BLANK_PER_PAGE = 12


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


class PageImporter:
    def __init__(
        self,
        out: Path,
        classes: list[str],
        crop: str = "box",
        splits: dict[str, list[str]] | None = None,
        source: Path | None = None,
        rescale: bool = False,
        accept_predictions: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        if crop not in CROPS:
            raise DataError(f"--crop {crop!r}: expected one of {', '.join(CROPS)}")
        self.out, self.classes, self.crop = out, set(classes), crop
        self.split_of = {work: split for split, works in (splits or {}).items() for work in works}
        self.source = source
        self.rescale, self.accept_predictions, self.max_pixels = rescale, accept_predictions, max_pixels

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
        cut_page = PageCuts(
            page,
            image,
            self.crop,
            warnings,
            max_pixels=self.max_pixels,
            rescale=self.rescale,
            accept_predictions=self.accept_predictions,
        )
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
                    crop = cut(
                        cut_page.gray,
                        (min(a[0], b[0]), max(a[1], b[1]), mid[0], mid[1]),
                        self.crop,
                        wc.line_box,
                        wc.threshold,
                    )
                    if crop is not None:
                        self._write(dest / "ood" / "fragments", _safe(f"{stem}_{wc.word.id}_pair"), crop)
                        counts["fragments"] += 1
        counts["blank"] = self._blanks(
            cut_page.gray, page, cut_page.scale, cut_page.heights, dest / "ood" / "blank", stem
        )
        return {"page": str(xml), "image": str(cut_page.image), **dict(counts), "warnings": warnings}

    def _blanks(self, gray, page, scale, heights, folder: Path, stem: str) -> int:
        """Squares one line high that touch no text region or line: margins, gutters, page edges."""
        if not heights:
            return 0
        side = int(np.median(heights))
        h, w = gray.shape
        # One flag per square of the grid, not per pixel: a page of 150 Mpx would need 150 MB.
        taken = np.zeros((len(range(0, h - side, side)), len(range(0, w - side, side))), bool)
        for t, b, left, r in [scale(r) for r in page.regions] + [scale(line.box) for line in page.lines]:
            t, b, left, r = max(0, t), max(0, b), max(0, left), max(0, r)
            if b > t and r > left:
                taken[t // side : (b - 1) // side + 1, left // side : (r - 1) // side + 1] = True
        spots = [(k * side, j * side) for k, j in zip(*np.nonzero(~taken))]
        if not spots:
            return 0
        pick = np.linspace(0, len(spots) - 1, min(BLANK_PER_PAGE, len(spots))).round().astype(int)
        for k in sorted(set(pick.tolist())):
            y, x = spots[k]
            self._write(folder, f"{stem}_blank{k}", gray[y : y + side, x : x + side])
        return len(set(pick.tolist()))


def import_pages(
    src: str | Path,
    out: str | Path,
    classes: list[str],
    image: str | Path | None = None,
    crop: str = "box",
    splits: dict[str, list[str]] | None = None,
    log=tqdm.write,
    rescale: bool = False,
    accept_predictions: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> dict:
    """Import every PAGE-XML page under `src`; a bad page is reported in one line and skipped,
    and DataError when no page could be imported."""
    src, out = Path(src), Path(out)
    files = page_files(src)
    importer = PageImporter(
        out, classes, crop, splits, src if src.is_dir() else None, rescale, accept_predictions, max_pixels
    )
    pages, errors = [], []
    # A bar for a folder of pages; one page says all in its own line (and its error stays one line).
    bar = tqdm(
        files, desc="import-page", unit="page", disable=not progress or len(files) < 2, file=sys.stderr
    )
    for xml in bar:
        try:
            info = importer.import_page(xml, image)
        except DataError as e:
            errors.append(str(e))
            if len(files) > 1:
                tqdm.write(f"glyphgate: error: {e}", file=sys.stderr)
            continue
        pages.append(info)
        if "skipped" not in info:
            log(_page_line(xml, info))
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "source": str(src),
        "crop": crop,
        "rescale": rescale,
        "accept_predictions": accept_predictions,
        "splits": splits or None,
        "pages": pages,
        "errors": errors,
        "totals": dict(
            sum((Counter({k: v for k, v in p.items() if isinstance(v, int)}) for p in pages), Counter())
        ),
    }
    (out / "import.json").write_text(
        json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if not any("skipped" not in p for p in pages):
        raise DataError(
            errors[0]
            if len(files) == 1 and errors
            else f"{src}: no page could be imported ({len(errors)} errors)"
        )
    return summary


def _page_line(xml: Path, info: dict) -> str:
    split_share = info.get("words skipped (components != letters)", 0) / max(info.get("words split", 0), 1)
    return (
        f"{xml}: {info.get('glyphs', 0)} glyphs, {info.get('other symbols', 0)} other symbols, "
        f"{info.get('words', 0)} words, {info.get('fragments', 0)} fragments, {info.get('blank', 0)} blank"
        + (
            f"; split {info['words split']} words, skipped {split_share:.0%}"
            if info.get("words split")
            else ""
        )
        + (f"; {info['predictions as labels']} predicted labels" if info.get("predictions as labels") else "")
        + (f"; {len(info['warnings'])} warnings" if info["warnings"] else "")
    )
