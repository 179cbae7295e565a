"""`glyphgate scan --page`: score every glyph of PAGE-XML pages and write the verdicts back.

Glyphs are cut by the importer (Glyph-level Coords, or a Word split into connected components,
kept unlabelled where the split does not match the transcription), encoded as PNG and scored by
the same scorer as `glyphgate scan` (local ONNX or a server's /classify_batch), so a glyph's
verdict is the one the server would give its crop. Out:
- results.csv / results.json: page, line, word and glyph ids, the transcription, the verdict;
- <page>.glyphgate.xml: a copy of each PAGE-XML with every glyph's verdict in PAGE's own places:
  a TextEquiv (index 2, @conf = confidence) holding the label, and Glyph/@custom
  "glyphgate {label:..; confidence:..; energy:..; p_value:..; is_ood:..;}"; glyphs found by a
  word split become Glyph elements of their Word;
- flagged.png / flagged.html: the contact sheet of the flagged glyphs.
"""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET
from PIL import Image

from training.errors import DataError
from training.page_import import PageCuts, page_files
from training.pagexml import PAGE_NS, read_page

from .scan import LocalScorer, RemoteScorer, contact_sheet

FIELDS = ["page", "line", "word", "glyph", "text", "label", "confidence", "energy", "p_value", "is_ood", "error"]


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def annotate(xml: Path, verdicts: dict[str, dict], split: dict[str, list], out: Path) -> None:
    """Write a copy of `xml` with each glyph's verdict; `split` = word id -> [(glyph id, box, text)]
    for glyphs that came from a word split (they become new Glyph elements)."""
    tree = SafeET.parse(str(xml))
    root = tree.getroot()
    ns = PAGE_NS.match(root.tag).group(1)
    ET.register_namespace("", ns)
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731

    def mark(glyph_el, v: dict) -> None:
        custom = (f"glyphgate {{label:{v['label']}; confidence:{v['confidence']:.4f}; energy:{v['energy']:.4f}; "
                  f"p_value:{'' if v['p_value'] is None else format(v['p_value'], '.4f')}; is_ood:{str(v['is_ood']).lower()};}}")
        glyph_el.set("custom", (glyph_el.get("custom", "") + " " + custom).strip())
        te = ET.Element(q("TextEquiv"), {"index": "2", "conf": f"{v['confidence']:.4f}",
                                          "comments": "glyphgate: the model's label; energy, p_value and is_ood in @custom"})
        ET.SubElement(te, q("Unicode")).text = v["label"]
        children = list(glyph_el)
        after = [i for i, c in enumerate(children) if c.tag in (q("Coords"), q("Graphemes"), q("TextEquiv"))]
        glyph_el.insert(after[-1] + 1 if after else 0, te)

    for word_el in root.iter(q("Word")):
        for g in word_el.findall(q("Glyph")):
            if g.get("id") in verdicts:
                mark(g, verdicts[g.get("id")])
        new = split.get(word_el.get("id"), [])
        if new:
            children = list(word_el)
            at = next((i + 1 for i, c in enumerate(children) if c.tag == q("Coords")), 0)
            for k, (gid, box, text) in enumerate(new):
                g = ET.Element(q("Glyph"), {"id": gid})
                t, b, left, r = box
                ET.SubElement(g, q("Coords"), {"points": f"{left},{t} {r - 1},{t} {r - 1},{b - 1} {left},{b - 1}"})
                if text:
                    ET.SubElement(ET.SubElement(g, q("TextEquiv"), {"index": "1"}), q("Unicode")).text = text
                if gid in verdicts:
                    mark(g, verdicts[gid])
                word_el.insert(at + k, g)
    tree.write(out, encoding="utf-8", xml_declaration=True)


def scan_pages(src: str | Path, out: str | Path, artifacts: str | Path | None = None, url: str | None = None,
               token: str | None = None, image: str | Path | None = None, crop: str = "box", log=print) -> dict:
    src, out = Path(src), Path(out)
    files = page_files(src)
    score = RemoteScorer(url, token) if url else LocalScorer(Path(artifacts))
    out.mkdir(parents=True, exist_ok=True)
    rows, arrays, errors = [], {}, []
    t0 = time.perf_counter()
    for xml in files:
        try:
            page, warnings = read_page(xml)
            cuts = PageCuts(page, image if image is None or Path(image).is_dir() or len(files) == 1 else None, crop,
                            warnings, keep_unmatched=True)
            words = list(cuts.words())
        except DataError as e:
            errors.append(str(e))
            log(f"glyphgate: error: {e}")
            continue
        glyphs = [(wc, g) for wc in words for g in wc.glyphs if g.crop is not None]
        names = [f"{xml.stem}#{g.id}" for _, g in glyphs]
        if not glyphs:
            got, arr = [], {}
        elif isinstance(score, LocalScorer):
            got, arr = score.crops(names, [g.crop for _, g in glyphs])
        else:  # the server decodes what it is sent: PNG is lossless for these grey crops
            got, arr = score([(n, _png(g.crop)) for n, (_, g) in zip(names, glyphs)])
        by_name = {r["path"]: r for r in got}
        verdicts, split = {}, {}
        for name, (wc, g) in zip(names, glyphs):
            r = by_name.get(name, {"error": "not scored"})
            rows.append({"page": xml.name, "line": wc.line.id, "word": wc.word.id, "glyph": g.id, "text": g.text or "",
                         "path": name, **{k: v for k, v in r.items() if k != "path"}})
            if "error" not in r:
                verdicts[g.id] = r
            if not g.from_glyph_level:
                split.setdefault(wc.word.id, []).append((g.id, g.box, g.text))
        arrays.update({n: a for n, a in arr.items() if by_name.get(n, {}).get("is_ood")})
        annotate(xml, verdicts, split, out / f"{xml.stem}.glyphgate.xml")
        log(f"{xml}: {len(glyphs)} glyphs scored, {sum(bool(v.get('is_ood')) for v in verdicts.values())} flagged"
            + (f"; {len(warnings)} warnings" if warnings else ""))
    seconds = time.perf_counter() - t0
    if not rows and errors:
        raise DataError(errors[0] if len(files) == 1 else f"{src}: no page could be scanned ({len(errors)} errors)")
    summary = {"source": str(src), "pages": len(files) - len(errors), "images": len(rows),
               "scored": sum("error" not in r for r in rows), "flagged": sum(bool(r.get("is_ood")) for r in rows),
               "unreadable": sum("error" in r for r in rows), "errors": errors, "seconds": seconds,
               "scorer": url or str(artifacts), "rule": "energy > threshold"}
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    (out / "results.json").write_text(json.dumps({"summary": summary, "results": rows}, indent=1, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    contact_sheet(out, [r for r in rows if r.get("is_ood")], arrays, summary)
    return summary


def scan_uploaded_page(xml_path: Path, image_path: Path, names: tuple[str, str], scorer, max_pixels: int,
                       crop: str = "box") -> dict:
    """The server's /scan_page: one uploaded page image and its PAGE-XML -> a verdict per glyph and
    the annotated PAGE-XML, scored by the worker's own scorer (the crops never leave memory)."""
    import tempfile

    from training.preprocess import prepare_many

    from .decode import FORMATS, BadImage

    image_name, xml_name = names
    try:
        with Image.open(image_path, formats=FORMATS) as im:
            if im.width * im.height > max_pixels:
                raise BadImage(f"{image_name}: {im.width}x{im.height} pixels, more than the {max_pixels:,} allowed")
    except BadImage:
        raise
    except Exception as e:
        raise BadImage(f"{image_name}: not a page image in a supported format ({', '.join(FORMATS)}): {type(e).__name__}") from None
    try:
        page, warnings = read_page(xml_path)
        cuts = PageCuts(page, image_path, crop, warnings, keep_unmatched=True)
        glyphs = [(wc, g) for wc in cuts.words() for g in wc.glyphs if g.crop is not None]
    except DataError as e:  # the temp file's name means nothing to the client: name its upload
        raise BadImage(str(e).replace(str(xml_path), xml_name).replace(str(image_path), image_name)) from None
    verdicts = scorer.classify(prepare_many([g.crop.astype(np.float32) for _, g in glyphs])) if glyphs else []
    results, by_id, split = [], {}, {}
    for (wc, g), v in zip(glyphs, verdicts):
        results.append({"line": wc.line.id, "word": wc.word.id, "glyph": g.id, "text": g.text, "box": list(g.box),
                        **{k: v[k] for k in ("label", "confidence", "energy", "p_value", "is_ood")}})
        by_id[g.id] = v
        if not g.from_glyph_level:
            split.setdefault(wc.word.id, []).append((g.id, g.box, g.text))
    with tempfile.TemporaryDirectory() as tmp:
        annotate(xml_path, by_id, split, Path(tmp) / "page.xml")
        xml = (Path(tmp) / "page.xml").read_text(encoding="utf-8")
    return {"page": xml_name, "n": len(results), "flagged": sum(r["is_ood"] for r in results),
            "warnings": warnings, "results": results, "page_xml": xml}
