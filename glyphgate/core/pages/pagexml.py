"""PAGE-XML pages (2013-07-15 and 2019-07-15) -> labelled glyph crops, the archive's own format;
ALTO pages (v2, v3, v4) are read into the same structure by glyphgate.core.pages.alto, chosen by
the root element.

A page is read into lines of words of glyphs, each with its polygon. Glyph-level `Coords` are
used as they are; a word without glyphs is split into connected components of its ink, with
dots, macrons and other marks above or below a stem merged into it, and kept only where the
component count equals the transcription's length (in graphemes: a base letter and its
combining marks are one glyph, as `aͤ` is one printed sort).

The importer is read-only on the page: every crop is cut from the image given (grey stays grey,
binarised stays binarised) and written by `import_pages` in the image-folder layout.
"""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET

from glyphgate.core.errors import DataError

PAGE_NS = re.compile(r"^\{(http://schema\.primaresearch\.org/PAGE/gts/pagecontent/\d{4}-\d{2}-\d{2})\}PcGts$")
ALTO_NS = re.compile(r"^\{(http://www\.loc\.gov/standards/alto/ns-v([234])#)\}alto$")
# Only to word a parse error: a file too broken to parse still says what it meant to be.
ALTO_ROOT = re.compile(rb"<(?:\w+:)?alto\b")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")

# Transcriptions write the abbreviation stroke over a vowel as a tilde (OCR-D ground truth) or a
# macron; on the page it is the same cast bar, which the corpus' classes name with a macron.
ABBREVIATIONS = {"ã": "ā", "ẽ": "ē", "ĩ": "ī", "õ": "ō", "ũ": "ū"}


@dataclass
class Glyph:
    id: str
    text: str  # the ground truth ("" when the page has none); never a prediction
    # (top, bottom, left, right) in the XML's units, exclusive ends: page pixels, or for an ALTO page
    # in mm10 / inch1200 the measured rectangle as floats (scaled to the image's pixels when cut)
    box: tuple[int, int, int, int]
    predicted: str | None = None  # glyphgate's label, on a page `scan --page` annotated
    flagged: bool = True  # whether that verdict was is_ood; no verdict counts as flagged
    ours: bool = False  # made by glyphgate's word split, not by the page's own segmentation


@dataclass
class Word:
    id: str
    text: str
    box: tuple[int, int, int, int]
    polygon: np.ndarray  # (K, 2) x, y
    glyphs: list[Glyph] = field(default_factory=list)


@dataclass
class Line:
    id: str
    box: tuple[int, int, int, int]
    words: list[Word] = field(default_factory=list)


@dataclass
class Page:
    xml: Path
    image_filename: str
    size: tuple[int, int] | None  # (height, width) the XML declares
    lines: list[Line]
    regions: list[tuple[int, int, int, int]]
    units: str = "pixel"  # ALTO's MeasurementUnit: pixel, mm10 or inch1200 (PAGE: always pixel)


def graphemes(text: str) -> list[str]:
    """Base characters with their combining marks, NFC-composed: 'Aufklaͤrung' -> 10 glyphs."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text.strip()):
        if out and unicodedata.combining(ch):
            out[-1] += ch
        elif not ch.isspace():
            out.append(ch)
    return [unicodedata.normalize("NFC", g) for g in out]


def class_of(grapheme: str, classes: set[str]) -> str | None:
    """The model class a transcribed glyph belongs to, or None (a symbol outside the classes)."""
    g = ABBREVIATIONS.get(grapheme, grapheme)
    return g if g in classes else None


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


def _box(pts: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(pts[:, 1].min())),
        int(np.ceil(pts[:, 1].max())) + 1,
        int(np.floor(pts[:, 0].min())),
        int(np.ceil(pts[:, 0].max())) + 1,
    )


# How `annotate` marks the model's verdict in PAGE's own terms: a TextEquiv whose dataType is
# "other" (the schema's value for a custom type) with dataTypeDetails naming it a prediction, and
# the Glyph's @custom "glyphgate {...}" (with "source:split" on the Glyphs a word split made).
PREDICTION = "glyphgate-prediction"
PREDICTION_COMMENT = "glyphgate: the model's label; energy, p_value and is_ood in @custom"
OUR_CUSTOM = re.compile(r"\s*glyphgate \{([^}]*)\}")


def is_prediction(te) -> bool:
    """A TextEquiv glyphgate wrote: marked by dataTypeDetails, or (copies annotated before the
    marking) by its comment."""
    return te.get("dataTypeDetails") == PREDICTION or (te.get("comments") or "").startswith("glyphgate:")


def our_fields(custom: str | None) -> dict[str, str] | None:
    """The fields of glyphgate's block in a @custom ("glyphgate {label:a; is_ood:false;}"), or None."""
    m = OUR_CUSTOM.search(custom or "")
    if not m:
        return None
    pairs = (part.split(":", 1) for part in m.group(1).split(";") if ":" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def is_ours(glyph_el, word_id: str) -> bool:
    """A Glyph glyphgate's word split made: "source:split" in its block, or (copies annotated
    before that field) a block on a Glyph named as the split names them, <word id>_g<n>."""
    fields = our_fields(glyph_el.get("custom"))
    if fields is None:
        return False
    legacy = re.fullmatch(rf"{re.escape(word_id)}_g\d+", glyph_el.get("id", "")) is not None
    return fields.get("source") == "split" or legacy


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
        _box(_points(el, ns, f"Glyph {gid}")),
        predicted=(_unicode(ours[0], ns) if ours else fields.get("label")) or None,
        flagged=fields.get("is_ood") != "false",
        ours=is_ours(el, word_id),
    )


def parse(xml: str | Path, data: bytes | None = None) -> ET.ElementTree:
    """The XML tree by the hardened parser (no DTD, no entities): of `data` when given (then `xml`
    only names it in messages), else of the file `xml`."""
    xml = Path(xml)
    try:
        return SafeET.parse(io.BytesIO(data) if data is not None else str(xml), forbid_dtd=True)
    except FileNotFoundError:
        raise DataError(f"{xml}: file not found") from None
    except Exception as e:  # ParseError, defusedxml's DTD/entity refusals
        what = "ALTO" if ALTO_ROOT.search(_head(xml, data)) else "PAGE-XML"
        raise DataError(f"{xml}: not well-formed {what} ({type(e).__name__}: {e})") from None


def _head(xml: Path, data: bytes | None) -> bytes:
    if data is not None:
        return data[:4096]
    try:
        with open(xml, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def read_page(xml: str | Path, data: bytes | None = None) -> tuple[Page, list[str]]:
    """Parse one PAGE-XML or ALTO file (or its bytes `data`, named `xml`) -> (page, warnings about
    elements it skipped). The root element says which it is."""
    xml = Path(xml)
    root = parse(xml, data).getroot()
    alto = ALTO_NS.match(root.tag)
    if alto:
        from glyphgate.core.pages.alto import read_alto  # alto.py builds on this module's classes

        return read_alto(root, alto.group(1), xml)
    m = PAGE_NS.match(root.tag)
    if not m:
        raise DataError(f"{xml}: not a PAGE-XML or ALTO file (root element {root.tag!r})")
    ns = m.group(1)
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
            regions.append(_box(_points(region, ns, f"TextRegion {region.get('id')}")))
        except ValueError as e:
            warnings.append(str(e))
    for line_el in page_el.iter(f"{{{ns}}}TextLine"):
        lid = line_el.get("id", "?")
        try:
            line = Line(lid, _box(_points(line_el, ns, f"TextLine {lid}")))
        except ValueError as e:
            warnings.append(str(e))
            continue
        for word_el in line_el.findall(f"{{{ns}}}Word"):
            wid = word_el.get("id", "?")
            try:
                poly = _points(word_el, ns, f"Word {wid}")
                word = Word(wid, _text(word_el, ns).strip(), _box(poly), poly)
                word.glyphs.extend(_glyph(g, ns, wid) for g in word_el.findall(f"{{{ns}}}Glyph"))
            except ValueError as e:
                warnings.append(str(e))
                continue
            line.words.append(word)
        lines.append(line)
    return Page(xml, page_el.get("imageFilename", ""), size, lines, regions), warnings


def find_image(page: Page, image: str | Path | None = None) -> Path:
    """The page image: `image` itself, the image in folder `image` whose name carries the XML's
    page number, or Page/@imageFilename resolved next to the XML (any image suffix, since
    workspaces convert the original TIFF)."""
    if image is not None:
        image = Path(image)
        if image.is_file():
            return image
        if image.is_dir():
            number = re.findall(r"\d+", page.xml.stem)
            if number:
                hits = [
                    p
                    for p in sorted(image.iterdir())
                    if p.suffix.lower() in IMAGE_SUFFIXES and re.findall(r"\d+", p.stem)[-1:] == number[-1:]
                ]
                if len(hits) == 1:
                    return hits[0]
            raise DataError(
                f"{page.xml}: no single image in {image} with page number {number[-1] if number else '?'}"
            )
        raise DataError(f"{page.xml}: image {image} not found")
    if not page.image_filename:
        raise DataError(
            f"{page.xml}: no Page/@imageFilename (ALTO: sourceImageInformation/fileName); pass --image"
        )
    name = Path(page.image_filename)
    for base in (page.xml.parent, page.xml.parent.parent):
        for candidate in [base / name] + [(base / name).with_suffix(s) for s in IMAGE_SUFFIXES]:
            if candidate.is_file():
                return candidate
    raise DataError(f"{page.xml}: page image {page.image_filename} not found next to it; pass --image")


def annotate(xml: Path | bytes, verdicts: dict[str, dict], split: dict[str, list], out) -> None:
    """Write a copy of `xml` (a path, or the XML's bytes) with each glyph's verdict to `out` (a
    path or a binary file); `split` = word id -> [(glyph id, box in the XML's units, text)] for
    glyphs that came from a word split (they become new Glyph elements, marked as glyphgate's).
    What an earlier annotation wrote is replaced, so annotating an annotated copy gives what
    annotating the page gives. An ALTO page is annotated by glyphgate.core.pages.alto."""
    tree = parse("page.xml", xml) if isinstance(xml, bytes) else parse(xml)
    root = tree.getroot()
    alto = ALTO_NS.match(root.tag)
    if alto:
        from glyphgate.core.pages.alto import annotate_alto

        annotate_alto(tree, alto.group(1), verdicts, split, out)
        return
    ns = PAGE_NS.match(root.tag).group(1)
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


def verdict_fields(v: dict | None) -> dict[str, str]:
    """A verdict as the fields of glyphgate's block (none for no verdict)."""
    if v is None:
        return {}
    return {
        "label": v["label"],
        "confidence": f"{v['confidence']:.4f}",
        "energy": f"{v['energy']:.4f}",
        "p_value": "" if v["p_value"] is None else format(v["p_value"], ".4f"),
        "is_ood": str(v["is_ood"]).lower(),
    }


def our_block(fields: dict[str, str]) -> str:
    """Fields as glyphgate's block, "glyphgate {label:a; is_ood:false;}": what `our_fields` reads."""
    return "glyphgate {" + " ".join(f"{k}:{value};" for k, value in fields.items()) + "}"


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
