"""ALTO pages (v2, v3 and v4) read into glyphgate.core.pages.model's Page, Line, Word and Glyph;
glyphgate.core.pages.alto_verdicts writes the verdicts back into a copy.

Reading
- The first Layout/Page (a warning names any further ones). Its @WIDTH and @HEIGHT are in
  Description/MeasurementUnit: pixel, mm10 or inch1200 (pixel, with a warning, where it is
  missing). The image is Description/sourceImageInformation/fileName, found as PAGE's
  Page/@imageFilename is.
- TextBlock -> region, TextLine -> line, String -> word (@CONTENT is its transcription), and in
  v4 Glyph -> glyph (@CONTENT is its ground truth). A String without Glyph elements is split
  into its ink's components, as a PAGE Word is.
- Coordinates come from Shape/Polygon/@POINTS where an element has one ("x,y x,y" or "x y x y"),
  else from the rectangle @HPOS, @VPOS, @WIDTH, @HEIGHT. In pixels, (HPOS, VPOS) and
  (HPOS+WIDTH, VPOS+HEIGHT) are corner pixels, as PAGE's Coords points are and as converters
  such as page-to-alto write them, so a page converted from PAGE cuts and scores the same. In
  mm10 and inch1200 they bound the measured rectangle, which is scaled onto the image by the
  image's size over the Page's: such a page is never refused for its image's size.
- IDs are optional in ALTO. A missing one is made from the element's place: block<n> for the
  n-th TextBlock, then <parent's id>_line<n>, _string<n> and _glyph<n>. Reading and annotating
  both use `element_ids`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from glyphgate.core.errors import DataError
from glyphgate.core.pages.model import (
    Glyph,
    Line,
    Page,
    Word,
    box_of_points,
    our_fields,
)

UNITS = ("pixel", "mm10", "inch1200")
OUR_TAG = "glyphgate-verdict"
TAG_PREFIX = "glyphgate_"
XLINK = "http://www.w3.org/1999/xlink"
# A Glyph's CONTENT is exactly one character; a split glyph with neither a one-character
# transcription nor a label still needs one.
UNKNOWN = "\ufffd"


def qualified(ns: str):
    return lambda tag: f"{{{ns}}}{tag}"


def version_of(ns: str) -> str:
    return re.search(r"ns-v(\d)#", ns).group(1)


def _polygon(el, q, where: str) -> np.ndarray:
    """The element's outline as (K, 2) x, y points: its Shape/Polygon, else its rectangle."""
    poly = el.find(f"{q('Shape')}/{q('Polygon')}")
    if poly is not None and poly.get("POINTS", "").strip():
        try:
            values = [float(v) for v in poly.get("POINTS").replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"{where}: unreadable Shape/Polygon/@POINTS") from None
        if len(values) < 2 or len(values) % 2 or not np.isfinite(values).all():
            raise ValueError(f"{where}: unreadable Shape/Polygon/@POINTS")
        return np.array(values, np.float64).reshape(-1, 2)
    try:
        x, y, w, h = (float(el.get(name)) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: no readable HPOS, VPOS, WIDTH and HEIGHT") from None
    if not np.isfinite([x, y, w, h]).all():
        raise ValueError(f"{where}: no readable HPOS, VPOS, WIDTH and HEIGHT")
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def _box_of(pts: np.ndarray, units: str) -> tuple:
    """Pixels: corner pixels, as PAGE's points (exclusive ends one past them). Other units: the
    measured rectangle, kept as floats until it is scaled onto the image."""
    if units == "pixel":
        return box_of_points(pts)
    return (
        float(pts[:, 1].min()),
        float(pts[:, 1].max()),
        float(pts[:, 0].min()),
        float(pts[:, 0].max()),
    )


def units_of(root, q, xml: Path, warnings: list[str]) -> str:
    el = root.find(f"{q('Description')}/{q('MeasurementUnit')}")
    unit = (el.text or "").strip() if el is not None else ""
    if not unit:
        warnings.append("no Description/MeasurementUnit: coordinates read as pixels")
        return "pixel"
    if unit not in UNITS:
        raise DataError(f"{xml}: MeasurementUnit {unit!r} is none of {', '.join(UNITS)}")
    return unit


def _size(page_el, units: str, xml: Path) -> tuple | None:
    """(height, width) the Page declares: ints for whole pixels. A page in pixels may leave them
    out (then nothing is scaled, as for PAGE); one in mm10 or inch1200 cannot be scaled without."""
    try:
        h, w = float(page_el.get("HEIGHT")), float(page_el.get("WIDTH"))
    except (TypeError, ValueError):
        h = w = float("nan")
    if not (np.isfinite([h, w]).all() and h > 0 and w > 0):
        if units == "pixel":
            return None
        raise DataError(
            f"{xml}: no Page/@WIDTH and @HEIGHT, which its {units} coordinates need to meet the image"
        )
    if units == "pixel" and h.is_integer() and w.is_integer():
        return int(h), int(w)
    return h, w


def _image_filename(root, q) -> str:
    el = root.find(f"{q('Description')}/{q('sourceImageInformation')}/{q('fileName')}")
    name = (el.text or "").strip() if el is not None else ""
    return name.removeprefix("file://")


def element_ids(page_el, q) -> dict:
    """Element -> its ID, or the one made from its place where it has none."""
    ids = {}
    for bi, block in enumerate(page_el.iter(q("TextBlock"))):
        bid = ids[block] = block.get("ID") or f"block{bi}"
        for li, line in enumerate(block.findall(q("TextLine"))):
            lid = ids[line] = line.get("ID") or f"{bid}_line{li}"
            for si, string in enumerate(line.findall(q("String"))):
                sid = ids[string] = string.get("ID") or f"{lid}_string{si}"
                for gi, glyph in enumerate(string.findall(q("Glyph"))):
                    ids[glyph] = glyph.get("ID") or f"{sid}_glyph{gi}"
    return ids


def our_tags(tags_el, q) -> dict[str, dict[str, str]]:
    """Glyph id -> the fields of the verdict tag glyphgate wrote for it."""
    if tags_el is None:
        return {}
    return {
        t.get("ID", "").removeprefix(TAG_PREFIX): our_fields(t.get("DESCRIPTION")) or {}
        for t in tags_el.findall(q("OtherTag"))
        if t.get("TYPE") == OUR_TAG
    }


def first_page(root, q, xml: Path, warnings: list[str]):
    layout = root.find(q("Layout"))
    pages = layout.findall(q("Page")) if layout is not None else []
    if not pages:
        raise DataError(f"{xml}: no Layout/Page element")
    if len(pages) > 1:
        warnings.append(f"{len(pages)} Page elements: only the first is read")
    return pages[0]


def read_alto(root, ns: str, xml: Path) -> tuple[Page, list[str]]:
    """One parsed ALTO file -> (page, warnings about elements it skipped)."""
    q = qualified(ns)
    warnings: list[str] = []
    units = units_of(root, q, xml, warnings)
    page_el = first_page(root, q, xml, warnings)
    size = _size(page_el, units, xml)
    tags = our_tags(root.find(q("Tags")), q)
    ids = element_ids(page_el, q)
    regions, lines = [], []
    for block in page_el.iter(q("TextBlock")):
        try:
            regions.append(_box_of(_polygon(block, q, f"TextBlock {ids[block]}"), units))
        except ValueError as e:
            warnings.append(str(e))
        for line_el in block.findall(q("TextLine")):
            try:
                line = Line(ids[line_el], _box_of(_polygon(line_el, q, f"TextLine {ids[line_el]}"), units))
            except ValueError as e:
                warnings.append(str(e))
                continue
            for string in line_el.findall(q("String")):
                sid = ids[string]
                try:
                    poly = _polygon(string, q, f"String {sid}")
                    word = Word(sid, (string.get("CONTENT") or "").strip(), _box_of(poly, units), poly)
                    word.glyphs.extend(_glyph(g, ids[g], q, tags, units) for g in string.findall(q("Glyph")))
                except ValueError as e:
                    warnings.append(str(e))
                    continue
                line.words.append(word)
            lines.append(line)
    page = Page(xml, _image_filename(root, q), size, lines, regions, units)
    return page, warnings


def _glyph(el, gid: str, q, tags: dict, units: str) -> Glyph:
    """A v4 Glyph: its CONTENT is ground truth, unless glyphgate's split made it from a label."""
    fields = tags.get(gid, {})
    ours = fields.get("source") == "split"
    truth = not ours or fields.get("content") == "transcription"
    return Glyph(
        gid,
        (el.get("CONTENT") or "").strip() if truth else "",
        _box_of(_polygon(el, q, f"Glyph {gid}"), units),
        predicted=fields.get("label") or None,
        flagged=fields.get("is_ood") != "false",
        ours=ours,
    )
