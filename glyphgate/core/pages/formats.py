"""Which format a page file is, by its root element: PAGE-XML (2013, 2019) or ALTO (v2, v3, v4),
read into glyphgate.core.pages.model's Page and annotated by their own modules; and the page
files of a folder."""

from __future__ import annotations

import re
from pathlib import Path

from glyphgate.core.errors import DataError
from glyphgate.core.pages.alto import read_alto
from glyphgate.core.pages.alto_verdicts import annotate_alto
from glyphgate.core.pages.model import Page, parse
from glyphgate.core.pages.pagexml import PAGE_NS, annotate_pagexml, read_pagexml

ALTO_NS = re.compile(r"^\{(http://www\.loc\.gov/standards/alto/ns-v([234])#)\}alto$")


def read_page(xml: str | Path, data: bytes | None = None) -> tuple[Page, list[str]]:
    """Parse one PAGE-XML or ALTO file (or its bytes `data`, named `xml`) -> (page, warnings about
    elements it skipped). The root element says which it is."""
    xml = Path(xml)
    root = parse(xml, data).getroot()
    alto = ALTO_NS.match(root.tag)
    if alto:
        return read_alto(root, alto.group(1), xml)
    m = PAGE_NS.match(root.tag)
    if not m:
        raise DataError(f"{xml}: not a PAGE-XML or ALTO file (root element {root.tag!r})")
    return read_pagexml(root, m.group(1), xml)


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
        annotate_alto(tree, alto.group(1), verdicts, split, out)
        return
    annotate_pagexml(tree, PAGE_NS.match(root.tag).group(1), verdicts, split, out)


def is_page_xml(path: Path) -> bool:
    """A cheap look for a PcGts or alto root, so METS files and other XML in a workspace are
    passed over (a damaged PAGE or ALTO file is still read, and reported)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return bool(re.search(r"<(?:\w+:)?(?:PcGts|alto)\b", head))


def page_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DataError(f"{src}: no such PAGE-XML or ALTO file or folder")
    files = [p for p in sorted(src.rglob("*.xml")) if is_page_xml(p)]
    if not files:
        raise DataError(f"{src}: no PAGE-XML or ALTO files under it")
    return files
