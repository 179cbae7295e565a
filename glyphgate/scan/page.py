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

import time
from pathlib import Path

from glyphgate.core.errors import DataError
from glyphgate.core.pages.cuts import PageToScore, page_files
from glyphgate.scan.folder import LocalScorer, RemoteScorer, write_reports

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


def scan_pages(
    src: str | Path,
    out: str | Path,
    score: LocalScorer | RemoteScorer,
    image: str | Path | None = None,
    crop: str = "box",
    log=print,
) -> dict:
    src, out = Path(src), Path(out)
    files = page_files(src)
    out.mkdir(parents=True, exist_ok=True)
    rows, arrays, errors = [], {}, []
    t0 = time.perf_counter()
    for xml in files:
        try:
            one = image if image is None or Path(image).is_dir() or len(files) == 1 else None
            page = PageToScore.cut(xml, one, crop)
        except DataError as e:
            errors.append(str(e))
            log(f"glyphgate: error: {e}")
            continue
        names = [f"{xml.stem}#{g.id}" for _, g in page.glyphs]
        got, arr = score.crops(names, page.crops) if page.glyphs else ([], {})
        by_name = {r["path"]: r for r in got}
        got = [by_name.get(name, {"path": name, "error": "not scored"}) for name in names]
        for row in page.rows(got):
            del row["box"]
            rows.append({"page": xml.name, **row, "text": row["text"] or ""})
        verdicts = {g.id: r for (_, g), r in zip(page.glyphs, got) if "error" not in r}
        arrays.update({n: a for n, a in arr.items() if by_name.get(n, {}).get("is_ood")})
        page.annotate(verdicts, out / f"{xml.stem}.glyphgate.xml")
        log(
            f"{xml}: {len(page.glyphs)} glyphs scored, {sum(bool(v.get('is_ood')) for v in verdicts.values())} flagged"
            + (f"; {len(page.warnings)} warnings" if page.warnings else "")
        )
    seconds = time.perf_counter() - t0
    if not rows and errors:
        raise DataError(
            errors[0] if len(files) == 1 else f"{src}: no page could be scanned ({len(errors)} errors)"
        )
    summary = {
        "source": str(src),
        "pages": len(files) - len(errors),
        "images": len(rows),
        "scored": sum("error" not in r for r in rows),
        "flagged": sum(bool(r.get("is_ood")) for r in rows),
        "unreadable": sum("error" in r for r in rows),
        "errors": errors,
        "seconds": seconds,
        "scorer": score.name,
        "rule": "energy > threshold",
    }
    write_reports(out, rows, arrays, summary, fields=FIELDS)
    return summary
