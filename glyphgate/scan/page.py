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

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from glyphgate.core.errors import DataError
from glyphgate.core.pages.cuts import PageCuts, page_files, scored_glyphs, word_splits
from glyphgate.core.pages.pagexml import annotate, read_page
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


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def scan_pages(
    src: str | Path,
    out: str | Path,
    artifacts: str | Path | None = None,
    url: str | None = None,
    token: str | None = None,
    image: str | Path | None = None,
    crop: str = "box",
    log=print,
) -> dict:
    src, out = Path(src), Path(out)
    files = page_files(src)
    score = RemoteScorer(url, token) if url else LocalScorer(Path(artifacts))
    out.mkdir(parents=True, exist_ok=True)
    rows, arrays, errors = [], {}, []
    t0 = time.perf_counter()
    for xml in files:
        try:
            page, warnings = read_page(xml)
            cuts = PageCuts(
                page,
                image if image is None or Path(image).is_dir() or len(files) == 1 else None,
                crop,
                warnings,
                keep_unmatched=True,
            )
            words = list(cuts.words())
        except DataError as e:
            errors.append(str(e))
            log(f"glyphgate: error: {e}")
            continue
        glyphs = scored_glyphs(words)
        names = [f"{xml.stem}#{g.id}" for _, g in glyphs]
        if not glyphs:
            got, arr = [], {}
        elif isinstance(score, LocalScorer):
            got, arr = score.crops(names, [g.crop for _, g in glyphs])
        else:  # the server decodes what it is sent: PNG is lossless for these grey crops
            got, arr = score([(n, _png(g.crop)) for n, (_, g) in zip(names, glyphs)])
        by_name = {r["path"]: r for r in got}
        verdicts = {}
        for name, (wc, g) in zip(names, glyphs):
            r = by_name.get(name, {"error": "not scored"})
            rows.append(
                {
                    "page": xml.name,
                    "line": wc.line.id,
                    "word": wc.word.id,
                    "glyph": g.id,
                    "text": g.text or "",
                    "path": name,
                    **{k: v for k, v in r.items() if k != "path"},
                }
            )
            if "error" not in r:
                verdicts[g.id] = r
        arrays.update({n: a for n, a in arr.items() if by_name.get(n, {}).get("is_ood")})
        annotate(xml, verdicts, word_splits(glyphs), out / f"{xml.stem}.glyphgate.xml")
        log(
            f"{xml}: {len(glyphs)} glyphs scored, {sum(bool(v.get('is_ood')) for v in verdicts.values())} flagged"
            + (f"; {len(warnings)} warnings" if warnings else "")
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
        "scorer": url or str(artifacts),
        "rule": "energy > threshold",
    }
    write_reports(out, rows, arrays, summary, fields=FIELDS)
    return summary
