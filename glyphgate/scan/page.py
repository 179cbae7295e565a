"""`glyphgate scan --page`: score every glyph of PAGE-XML pages and write the verdicts back.

Glyphs are cut by the importer (Glyph-level Coords, or a Word split into connected components,
kept unlabelled where the split does not match the transcription) and scored by the same
scorer as `glyphgate scan`: locally as arrays, through a server as lossless PNGs to its
/classify_batch, so a glyph's verdict is the one the server would give its crop. Out:
- results.csv / results.json: page, line, word and glyph ids, the transcription, the verdict;
- <page>.glyphgate.xml: a copy of each PAGE-XML with every glyph's verdict in PAGE's own places:
  a TextEquiv (index 2, @conf = confidence) holding the label, and Glyph/@custom
  "glyphgate {label:..; confidence:..; energy:..; p_value:..; is_ood:..;}"; glyphs found by a
  word split become Glyph elements of their Word;
- flagged.png / flagged.html: the contact sheet of the flagged glyphs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import ConfigError, DataError
from glyphgate.core.image.preprocess import prepare_many
from glyphgate.core.pages.formats import page_files
from glyphgate.core.pages.to_score import PageToScore
from glyphgate.scan.folder import LocalScorer, RemoteScorer
from glyphgate.scan.results import SHEET_MAX, ResultsFile, TopK, write_reports
from glyphgate.scan.stop import StopBetweenChunks

FIELDS = [
    "page",
    "line",
    "word",
    "glyph",
    "text",
    "label",
    "confidence",
    "energy",
    "p_value",
    "is_ood",
    "error",
]


def glyph_name(page: str, glyph: str) -> str:
    """How a glyph is named on the contact sheet: <page stem>#<glyph id>."""
    return f"{Path(page).stem}#{glyph}"


class PageCutter:
    """Cuts a page as every page of this scan is cut: the same --image, --crop and --rescale."""

    def __init__(self, files: list[Path], image, crop: str, rescale: bool):
        self.files, self.image, self.crop, self.rescale = files, image, crop, rescale
        self.max_pixels = load_settings().max_pixels

    def __call__(self, xml: Path) -> PageToScore:
        image = self.image
        one = image if image is None or Path(image).is_dir() or len(self.files) == 1 else None
        return PageToScore.cut(xml, one, self.crop, max_pixels=self.max_pixels, rescale=self.rescale)

    def arrays(self, entries: list) -> dict[str, np.ndarray]:
        """The sheet's glyphs of pages scored by an earlier, resumed run: those pages cut again."""
        by_name = {x.name: x for x in self.files}
        wanted = {}
        for e in entries:
            wanted.setdefault(e.row["page"], set()).add(e.row["glyph"])
        arrays = {}
        for page, glyphs in wanted.items():
            try:
                cut = self(by_name[page])
            except (KeyError, DataError):  # gone or changed since: the sheet goes without it
                continue
            crops = [(g.id, g.crop) for _, g in cut.glyphs if g.id in glyphs]
            if crops:
                x = prepare_many([c.astype(np.float32) for _, c in crops])
                arrays.update({glyph_name(page, gid): x[i : i + 1] for i, (gid, _) in enumerate(crops)})
        return arrays


def scan_pages(
    src: str | Path,
    out: str | Path,
    score: LocalScorer | RemoteScorer,
    image: str | Path | None = None,
    crop: str = "box",
    log=print,
    resume: bool = False,
    overwrite: bool = False,
    rescale: bool = False,
) -> dict:
    """Score every glyph of the pages of `src`; rows are written page by page, so `--resume`
    skips the pages results.csv holds (the last of them is scanned again: a kill may have cut
    its rows short)."""
    src, out = Path(src), Path(out)
    files = page_files(src)
    if resume:
        twice = [name for name, n in Counter(x.name for x in files).items() if n > 1]
        if twice:
            raise ConfigError(
                f"{src}: --resume tells pages apart by file name, and {twice[0]} is there twice"
            )
    results, done = ResultsFile.start(out, FIELDS, resume, overwrite, key="page", redo_last=True)
    todo = [x for x in files if x.name not in done]
    cutter = PageCutter(files, image, crop, rescale)
    seen, errors, scanned = TopK(SHEET_MAX), [], 0
    t0 = time.perf_counter()
    with results, StopBetweenChunks() as stop:
        for xml in todo:
            scanned += 1
            try:
                page = cutter(xml)
            except DataError as e:
                errors.append(str(e))
                if len(files) > 1:  # one page alone: its error is the scan's error, said once
                    print(f"glyphgate: error: {e}", file=sys.stderr)
                continue
            scan_page(xml, page, score, results, seen, out, log)
            if stop.signum:
                break
    remaining = len(todo) - scanned
    if errors and not any(True for _ in results.rows()):
        raise DataError(
            errors[0] if len(files) == 1 else f"{src}: no page could be scanned ({len(errors)} errors)"
        )
    summary = {
        "source": str(src),
        "pages": len(done) + scanned - len(errors),
        "images": None,  # every glyph row: counted from results.csv
        "errors": errors,
        "complete": remaining == 0,
        "remaining": remaining,
        "stopped_by": stop.name if remaining else None,
        "seconds": time.perf_counter() - t0,
        "scorer": score.name,
        "rule": "energy > threshold",
    }
    return write_reports(
        out, results, summary, lambda r: glyph_name(r["page"], r["glyph"]), seen, cutter.arrays
    )


def scan_page(xml: Path, page: PageToScore, score, results: ResultsFile, seen: TopK, out: Path, log) -> None:
    """One page: its glyphs scored, their rows on disk, its annotated copy written."""
    names = [glyph_name(xml.name, g.id) for _, g in page.glyphs]
    got, arrays = score.crops(names, page.crops) if page.glyphs else ([], {})
    by_name = {r["path"]: r for r in got}
    got = [by_name.get(name, {"path": name, "error": "not scored"}) for name in names]
    rows = []
    for row in page.rows(got):
        del row["box"]
        rows.append({"page": xml.name, **row, "text": row["text"] or ""})
    results.append(rows)
    for name, r in zip(names, got):
        if r.get("is_ood"):
            seen.offer(name, r, arrays.get(name))
    verdicts = {g.id: r for (_, g), r in zip(page.glyphs, got) if "error" not in r}
    page.annotate(verdicts, out / f"{xml.stem}.glyphgate.xml")
    log(
        f"{xml}: {len(page.glyphs)} glyphs scored, {sum(bool(v.get('is_ood')) for v in verdicts.values())} flagged"
        + (f"; {len(page.warnings)} warnings" if page.warnings else "")
    )
