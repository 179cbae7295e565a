"""A page as glyphgate reads it, whatever its format: lines of words of glyphs with their boxes,
the transcription's graphemes and the model's classes, the hardened XML parser, the page image
beside the XML, and the "glyphgate {...}" block a verdict is written as (PAGE's Glyph/@custom,
ALTO's verdict tags)."""

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


def box_of_points(pts: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(pts[:, 1].min())),
        int(np.ceil(pts[:, 1].max())) + 1,
        int(np.floor(pts[:, 0].min())),
        int(np.ceil(pts[:, 0].max())) + 1,
    )


OUR_CUSTOM = re.compile(r"\s*glyphgate \{([^}]*)\}")


def our_fields(custom: str | None) -> dict[str, str] | None:
    """The fields of glyphgate's block in a @custom ("glyphgate {label:a; is_ood:false;}"), or None."""
    m = OUR_CUSTOM.search(custom or "")
    if not m:
        return None
    pairs = (part.split(":", 1) for part in m.group(1).split(";") if ":" in part)
    return {k.strip(): v.strip() for k, v in pairs}


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
