"""PAGE-XML pages (2013-07-15 and 2019-07-15) read into glyphgate.core.pages.model's Page, and
the verdicts written back into a copy (glyphgate.core.pages.formats chooses PAGE or ALTO).

A page is read into lines of words of glyphs, each with its polygon. Glyph-level `Coords` are
used as they are; a word without glyphs is split into connected components of its ink, with
dots, macrons and other marks above or below a stem merged into it, and kept only where the
component count equals the transcription's length (in graphemes: a base letter and its
combining marks are one glyph, as `aͤ` is one printed sort).

The importer is read-only on the page: every crop is cut from the image given (grey stays grey,
binarised stays binarised) and written by `import_pages` in the image-folder layout.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from glyphgate.core.errors import DataError
from glyphgate.core.pages.model import (
    OUR_CUSTOM,
    Glyph,
    Line,
    Page,
    Word,
    box_of_points,
    our_block,
    our_fields,
    verdict_fields,
)

PAGE_NS = re.compile(r"^\{(http://schema\.primaresearch\.org/PAGE/gts/pagecontent/\d{4}-\d{2}-\d{2})\}PcGts$")


# How `annotate` marks the model's verdict in PAGE's own terms: a TextEquiv whose dataType is
# "other" (the schema's value for a custom type) with dataTypeDetails naming it a prediction, and
# the Glyph's @custom "glyphgate {...}" (with "source:split" on the Glyphs a word split made).
PREDICTION = "glyphgate-prediction"


PREDICTION_COMMENT = "glyphgate: the model's label; energy, p_value and is_ood in @custom"


def is_prediction(te) -> bool:
    """A TextEquiv glyphgate wrote: marked by dataTypeDetails, or (copies annotated before the
    marking) by its comment."""
    return te.get("dataTypeDetails") == PREDICTION or (te.get("comments") or "").startswith("glyphgate:")


def is_ours(glyph_el, word_id: str) -> bool:
    """A Glyph glyphgate's word split made: "source:split" in its block, or (copies annotated
    before that field) a block on a Glyph named as the split names them, <word id>_g<n>."""
    fields = our_fields(glyph_el.get("custom"))
    if fields is None:
        return False
    legacy = re.fullmatch(rf"{re.escape(word_id)}_g\d+", glyph_el.get("id", "")) is not None
    return fields.get("source") == "split" or legacy


def _points(el, ns: str, where: str) -> np.ndarray:
    coords = el.find(f"{{{ns}}}Coords")
    if coords is None or not coords.get("points", "").strip():
        raise ValueError(f"{where}: no Coords/@points")
    try:
        pts = np.array(
            [[float(v) for v in p.split(",")] for p in coords.get("points").split()], dtype=np.float64
        )
    except ValueError:
        raise ValueError(f"{where}: unreadable Coords/@points") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 1:
        raise ValueError(f"{where}: unreadable Coords/@points")
    return pts


def _equivs(el, ns: str, predictions: bool) -> list:
    """The element's own TextEquivs (not its children's), ground truth or glyphgate's, by index."""
    equivs = [e for e in el.findall(f"{{{ns}}}TextEquiv") if is_prediction(e) == predictions]
    equivs.sort(key=_index)
    return equivs


def _index(te) -> int:
    value = te.get("index", "1")
    return int(value) if value.lstrip("-").isdigit() else 1


def _unicode(te, ns: str) -> str:
    uni = te.find(f"{{{ns}}}Unicode")
    return (uni.text or "") if uni is not None else ""


def _text(el, ns: str) -> str:
    """The element's ground truth: its own TextEquiv of lowest index that glyphgate did not write."""
    equivs = _equivs(el, ns, predictions=False)
    return _unicode(equivs[0], ns) if equivs else ""


def _glyph(el, ns: str, word_id: str) -> Glyph:
    gid = el.get("id", "?")
    fields = our_fields(el.get("custom")) or {}
    ours = _equivs(el, ns, predictions=True)
    return Glyph(
        gid,
        _text(el, ns).strip(),
        box_of_points(_points(el, ns, f"Glyph {gid}")),
        predicted=(_unicode(ours[0], ns) if ours else fields.get("label")) or None,
        flagged=fields.get("is_ood") != "false",
        ours=is_ours(el, word_id),
    )


def read_pagexml(root, ns: str, xml: Path) -> tuple[Page, list[str]]:
    """One parsed PAGE-XML file -> (page, warnings about elements it skipped)."""
    page_el = root.find(f"{{{ns}}}Page")
    if page_el is None:
        raise DataError(f"{xml}: no Page element")
    size = None
    if page_el.get("imageHeight", "").isdigit() and page_el.get("imageWidth", "").isdigit():
        size = (int(page_el.get("imageHeight")), int(page_el.get("imageWidth")))
    warnings: list[str] = []
    lines: list[Line] = []
    regions = []
    for region in page_el.iter(f"{{{ns}}}TextRegion"):
        try:
            regions.append(box_of_points(_points(region, ns, f"TextRegion {region.get('id')}")))
        except ValueError as e:
            warnings.append(str(e))
    for line_el in page_el.iter(f"{{{ns}}}TextLine"):
        lid = line_el.get("id", "?")
        try:
            line = Line(lid, box_of_points(_points(line_el, ns, f"TextLine {lid}")))
        except ValueError as e:
            warnings.append(str(e))
            continue
        for word_el in line_el.findall(f"{{{ns}}}Word"):
            wid = word_el.get("id", "?")
            try:
                poly = _points(word_el, ns, f"Word {wid}")
                word = Word(wid, _text(word_el, ns).strip(), box_of_points(poly), poly)
                word.glyphs.extend(_glyph(g, ns, wid) for g in word_el.findall(f"{{{ns}}}Glyph"))
            except ValueError as e:
                warnings.append(str(e))
                continue
            line.words.append(word)
        lines.append(line)
    return Page(xml, page_el.get("imageFilename", ""), size, lines, regions), warnings


def annotate_pagexml(
    tree: ET.ElementTree, ns: str, verdicts: dict[str, dict], split: dict[str, list], out
) -> None:
    """A copy of the parsed PAGE-XML with each glyph's verdict to `out` (see formats.annotate)."""
    root = tree.getroot()
    ET.register_namespace("", ns)
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731
    for word_el in list(root.iter(q("Word"))):
        wid = word_el.get("id")
        for g in word_el.findall(q("Glyph")):
            if is_ours(g, wid):
                word_el.remove(g)
                continue
            _unmark(g, ns)
            if g.get("id") in verdicts:
                _mark(g, ns, verdicts[g.get("id")])
        children = list(word_el)
        at = next((i + 1 for i, c in enumerate(children) if c.tag == q("Coords")), 0)
        for k, (gid, box, text) in enumerate(split.get(wid, [])):
            g = ET.Element(q("Glyph"), {"id": gid})
            t, b, left, r = box
            ET.SubElement(
                g, q("Coords"), {"points": f"{left},{t} {r - 1},{t} {r - 1},{b - 1} {left},{b - 1}"}
            )
            if text:
                ET.SubElement(ET.SubElement(g, q("TextEquiv"), {"index": "1"}), q("Unicode")).text = text
            _mark(g, ns, verdicts.get(gid), source="split")
            word_el.insert(at + k, g)
    tree.write(out, encoding="utf-8", xml_declaration=True)


def _unmark(glyph_el, ns: str) -> None:
    """Take off what an earlier annotation put on a Glyph of the page: its verdict and TextEquiv."""
    for te in _equivs(glyph_el, ns, predictions=True):
        glyph_el.remove(te)
    custom = OUR_CUSTOM.sub("", glyph_el.get("custom", "")).strip()
    if custom:
        glyph_el.set("custom", custom)
    else:
        glyph_el.attrib.pop("custom", None)


def _mark(glyph_el, ns: str, v: dict | None, source: str | None = None) -> None:
    """The verdict `v` (None: not scored) into the Glyph's @custom and a prediction TextEquiv."""
    fields = verdict_fields(v)
    if source:
        fields["source"] = source
    if not fields:
        return
    block = our_block(fields)
    glyph_el.set("custom", (glyph_el.get("custom", "") + " " + block).strip())
    if v is None:
        return
    truth = _equivs(glyph_el, ns, predictions=False)
    if truth and not any(e.get("index") for e in truth):
        # OCR-D reads a Glyph's text as its lowest-indexed TextEquiv and passes over those without
        # an index: the page's own text is made index 1 explicitly, so it stays the text
        truth[0].set("index", "1")
    te = ET.Element(
        f"{{{ns}}}TextEquiv",
        {
            # after the ground truth: the lowest index is a page's main text
            "index": str(max((_index(e) for e in truth), default=1) + 1),
            "conf": f"{v['confidence']:.4f}",
            "dataType": "other",
            "dataTypeDetails": PREDICTION,
            "comments": PREDICTION_COMMENT,
        },
    )
    ET.SubElement(te, f"{{{ns}}}Unicode").text = v["label"]
    children = list(glyph_el)
    kept = (f"{{{ns}}}Coords", f"{{{ns}}}Graphemes", f"{{{ns}}}TextEquiv")
    after = [i for i, c in enumerate(children) if c.tag in kept]
    glyph_el.insert(after[-1] + 1 if after else 0, te)
