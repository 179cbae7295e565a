"""PAGE-XML pages (2013-07-15 and 2019-07-15) -> labelled glyph crops, the archive's own format.

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
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET

from glyphgate.core.errors import DataError

PAGE_NS = re.compile(r"^\{(http://schema\.primaresearch\.org/PAGE/gts/pagecontent/\d{4}-\d{2}-\d{2})\}PcGts$")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")

# Transcriptions write the abbreviation stroke over a vowel as a tilde (OCR-D ground truth) or a
# macron; on the page it is the same cast bar, which the corpus' classes name with a macron.
ABBREVIATIONS = {"ã": "ā", "ẽ": "ē", "ĩ": "ī", "õ": "ō", "ũ": "ū"}


@dataclass
class Glyph:
    id: str
    text: str
    box: tuple[int, int, int, int]  # (top, bottom, left, right) in page pixels, exclusive ends


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


def _text(el, ns: str) -> str:
    """The element's own TextEquiv (index 1 / the first when several), not its children's."""
    equivs = el.findall(f"{{{ns}}}TextEquiv")
    if not equivs:
        return ""
    equivs.sort(key=lambda e: int(e.get("index", "1")) if e.get("index", "1").lstrip("-").isdigit() else 1)
    uni = equivs[0].find(f"{{{ns}}}Unicode")
    return (uni.text or "") if uni is not None else ""


def read_page(xml: str | Path) -> tuple[Page, list[str]]:
    """Parse one PAGE-XML file -> (page, warnings about elements it skipped)."""
    xml = Path(xml)
    try:
        root = SafeET.parse(str(xml)).getroot()
    except FileNotFoundError:
        raise DataError(f"{xml}: file not found") from None
    except Exception as e:  # ParseError, defusedxml's DTD/entity refusals
        raise DataError(f"{xml}: not well-formed PAGE-XML ({type(e).__name__}: {e})") from None
    m = PAGE_NS.match(root.tag)
    if not m:
        raise DataError(f"{xml}: not a PAGE-XML file (root element {root.tag!r})")
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
                for g in word_el.findall(f"{{{ns}}}Glyph"):
                    gid = g.get("id", "?")
                    word.glyphs.append(Glyph(gid, _text(g, ns).strip(), _box(_points(g, ns, f"Glyph {gid}"))))
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
        raise DataError(f"{page.xml}: no Page/@imageFilename; pass --image")
    name = Path(page.image_filename)
    for base in (page.xml.parent, page.xml.parent.parent):
        for candidate in [base / name] + [(base / name).with_suffix(s) for s in IMAGE_SUFFIXES]:
            if candidate.is_file():
                return candidate
    raise DataError(f"{page.xml}: page image {page.image_filename} not found next to it; pass --image")


def annotate(xml: Path, verdicts: dict[str, dict], split: dict[str, list], out) -> None:
    """Write a copy of `xml` with each glyph's verdict to `out` (a path or a binary file);
    `split` = word id -> [(glyph id, box, text)] for glyphs that came from a word split (they
    become new Glyph elements)."""
    tree = SafeET.parse(str(xml))
    root = tree.getroot()
    ns = PAGE_NS.match(root.tag).group(1)
    ET.register_namespace("", ns)
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731

    def mark(glyph_el, v: dict) -> None:
        custom = (
            f"glyphgate {{label:{v['label']}; confidence:{v['confidence']:.4f}; energy:{v['energy']:.4f}; "
            f"p_value:{'' if v['p_value'] is None else format(v['p_value'], '.4f')}; is_ood:{str(v['is_ood']).lower()};}}"
        )
        glyph_el.set("custom", (glyph_el.get("custom", "") + " " + custom).strip())
        te = ET.Element(
            q("TextEquiv"),
            {
                "index": "2",
                "conf": f"{v['confidence']:.4f}",
                "comments": "glyphgate: the model's label; energy, p_value and is_ood in @custom",
            },
        )
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
                ET.SubElement(
                    g, q("Coords"), {"points": f"{left},{t} {r - 1},{t} {r - 1},{b - 1} {left},{b - 1}"}
                )
                if text:
                    ET.SubElement(ET.SubElement(g, q("TextEquiv"), {"index": "1"}), q("Unicode")).text = text
                if gid in verdicts:
                    mark(g, verdicts[gid])
                word_el.insert(at + k, g)
    tree.write(out, encoding="utf-8", xml_declaration=True)
