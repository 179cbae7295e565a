"""A whole printed page set in one of the bundled faces, with its PAGE-XML or ALTO ground truth.

The project's own stand-in for an archive page (real pages never enter the repository): lines
of words, each glyph placed by the renderer so its box is known exactly, written as a greyscale
PNG plus PAGE-XML with TextRegion -> TextLine -> Word -> Glyph (or Word only, to exercise the
connected-component split), or the same boxes as ALTO: TextBlock -> TextLine -> String -> Glyph
(v4; String only in any version). Letters are set slightly apart, as hand-set type usually is,
so a word's components are its letters.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

from corpus.synth.faces import PRINT_FACES, Face
from corpus.synth.render import get_font

NAMESPACES = {
    "2019": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15",
    "2013": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15",
}
ALTO_NAMESPACES = {v: f"http://www.loc.gov/standards/alto/ns-v{v}#" for v in ("2", "3", "4")}
ALTO_SCHEMA_VERSIONS = {"3": "3.1", "4": "4.4"}  # v2's schema has no SCHEMAVERSION attribute
MM10_PER_PIXEL = 254 / 300  # the ALTO page in mm10 is taken to be scanned at 300 dpi
RENDERED = "2026-01-01T00:00:00"
DEFAULT_TEXT = [
    "Das ist ein gedruckt buch von der kunst",
    "und lere der alten meister Gott hilf",
    "wir haben gesehen das mān die ſchrift",
    "Sic incipit liber primus de arte bona",
]


def _box_points(l, t, r, b) -> str:
    return f"{l},{t} {r},{t} {r},{b} {l},{b}"


def render_page(
    out_dir: str | Path,
    name: str = "page",
    lines: list[str] = DEFAULT_TEXT,
    face: Face | None = None,
    size: int = 44,
    glyph_level: bool = True,
    namespace: str = "2019",
    seed: int = 0,
    fmt: str = "page",
    version: str = "4",
    unit: str = "pixel",
) -> tuple[Path, Path]:
    """Write out_dir/<name>.png and out_dir/<name>.xml; returns both paths. `fmt` "page" writes
    PAGE-XML (`namespace` 2019 or 2013); "alto" writes ALTO `version` 2, 3 or 4 in `unit` pixel
    or mm10, with Glyph elements (v4 only) when `glyph_level`."""
    if fmt not in ("page", "alto"):
        raise ValueError(f"fmt {fmt!r}: expected page or alto")
    if fmt == "alto" and (version not in ALTO_NAMESPACES or unit not in ("pixel", "mm10")):
        raise ValueError(f"ALTO version {version!r} in {unit!r}: expected 2, 3 or 4 in pixel or mm10")
    if fmt == "alto" and glyph_level and version != "4":
        raise ValueError(f"ALTO {version} has no Glyph element (it came with 4.0): pass glyph_level=False")
    face = face or next(f for f in PRINT_FACES if f.name.startswith("Rusch-GoticoAntiqua"))
    font = get_font(str(face.path), size)
    rng = np.random.default_rng(seed)
    width, line_h, top = 1200, int(size * 1.9), int(size * 2.5)
    height = top * 2 + line_h * len(lines)
    ink = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(ink)
    gap, space = 0.1 * size, 0.5 * size
    xml_lines = []
    for li, text in enumerate(lines):
        baseline = top + li * line_h + size
        x = size * 2.0
        words = []
        for wi, word in enumerate(text.split()):
            glyphs = []
            for ci, ch in enumerate(word):
                glyph = face.char_for(ch) or ((ch, False) if ord(ch) in face.cmap else None)
                if glyph is None:
                    raise ValueError(f"{face.name} has no glyph for {ch!r}")
                draw.text((x, baseline), glyph[0], font=font, fill=255, anchor="ls")
                l, t, r, b = draw.textbbox((x, baseline), glyph[0], font=font, anchor="ls")
                if glyph[1]:  # a macron vowel this face lacks: the cast bar above the base letter
                    bar = max(2, round(size * 0.06))
                    bt = t - bar - max(3, round(size * 0.08))
                    draw.rectangle([l + 0.1 * (r - l), bt, r - 0.1 * (r - l), bt + bar], fill=255)
                    t = bt
                glyphs.append((f"g{li}_{wi}_{ci}", ch, (int(l) - 1, int(t) - 1, int(r) + 1, int(b) + 1)))
                x += font.getlength(glyph[0]) + gap
            x += space
            wl, wt = min(g[2][0] for g in glyphs), min(g[2][1] for g in glyphs)
            wr, wb = max(g[2][2] for g in glyphs), max(g[2][3] for g in glyphs)
            words.append((f"w{li}_{wi}", word, (wl - 2, wt - 2, wr + 2, wb + 2), glyphs))
        ll, lt = min(w[2][0] for w in words) - 2, min(w[2][1] for w in words) - 2
        lr, lb = max(w[2][2] for w in words) + 2, max(w[2][3] for w in words) + 2
        xml_lines.append((f"l{li}", text, (ll, lt, lr, lb), words))

    # Paper with a little grain and uneven tone, dark ink: a greyscale scan.
    paper = 215 + 20 * np.linspace(0, 1, width)[None, :] + rng.normal(0, 4, (height, width))
    page = np.where(np.asarray(ink) > 127, rng.normal(45, 8, (height, width)), paper)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(png)

    region = (
        min(line[2][0] for line in xml_lines) - 4,
        min(line[2][1] for line in xml_lines) - 4,
        max(line[2][2] for line in xml_lines) + 4,
        max(line[2][3] for line in xml_lines) + 4,
    )
    xml = out_dir / f"{name}.xml"
    if fmt == "alto":
        text = _alto(xml_lines, region, png.name, (width, height), glyph_level, version, unit)
    else:
        text = _page(xml_lines, region, png.name, (width, height), glyph_level, namespace)
    xml.write_text(text, encoding="utf-8")
    return png, xml


def _page(xml_lines, region, image_name: str, size, glyph_level: bool, namespace: str) -> str:
    width, height = size

    def coords(box):
        return f'<Coords points="{_box_points(*box)}"/>'

    def equiv(text):
        return f"<TextEquiv><Unicode>{escape(text)}</Unicode></TextEquiv>"

    body = []
    for lid, text, lbox, words in xml_lines:
        ws = []
        for wid, word, wbox, glyphs in words:
            gs = (
                "".join(f'<Glyph id="{gid}">{coords(b)}{equiv(ch)}</Glyph>' for gid, ch, b in glyphs)
                if glyph_level
                else ""
            )
            ws.append(f'<Word id="{wid}">{coords(wbox)}{gs}{equiv(word)}</Word>')
        body.append(f'<TextLine id="{lid}">{coords(lbox)}{"".join(ws)}{equiv(text)}</TextLine>')
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{NAMESPACES[namespace]}">'
        # Created and LastChange are required by the PAGE schema; fixed, so a page renders byte for byte
        f"<Metadata><Creator>glyphgate render_page</Creator><Created>{RENDERED}</Created>"
        f"<LastChange>{RENDERED}</LastChange></Metadata>"
        f'<Page imageFilename="{image_name}" imageWidth="{width}" imageHeight="{height}">'
        f'<TextRegion id="r0">{coords(region)}{"".join(body)}</TextRegion></Page></PcGts>\n'
    )


def _alto_number(value: float) -> str:
    # Two decimals, as ALTO writers commonly round: the rectangles still scale back onto the very
    # pixels the PAGE names, since a page in mm10 is cut to the nearest pixel
    return format(round(value, 2), ".2f").rstrip("0").rstrip(".")


def _alto(xml_lines, region, image_name: str, size, glyph_level: bool, version: str, unit: str) -> str:
    """The page as ALTO: the PAGE's boxes, as corner pixels in pixels (what page-to-alto writes)
    or as the rectangles they cover in mm10."""
    width, height = size

    def place(box):
        left, t, r, b = box
        if unit == "pixel":
            x, y, w, h = left, t, r - left, b - t
        else:  # the pixels' rectangle: from the first pixel's near edge to the last one's far edge
            x, y, w, h = (v * MM10_PER_PIXEL for v in (left, t, r + 1 - left, b + 1 - t))
        return " ".join(
            f'{k}="{_alto_number(v)}"' for k, v in zip(("HPOS", "VPOS", "WIDTH", "HEIGHT"), (x, y, w, h))
        )

    def content(text):
        return escape(text, {'"': "&quot;"})

    body = []
    for lid, _, lbox, words in xml_lines:
        strings = []
        for wid, word, wbox, glyphs in words:
            gs = "".join(
                f'<Glyph ID="{gid}" CONTENT="{content(ch)}" {place(b)}/>'
                for gid, ch, b in glyphs
                if glyph_level
            )
            strings.append(f'<String ID="{wid}" CONTENT="{content(word)}" {place(wbox)}>{gs}</String>')
        body.append(f'<TextLine ID="{lid}" {place(lbox)}>{"<SP/>".join(strings)}</TextLine>')
    scale = 1 if unit == "pixel" else MM10_PER_PIXEL
    page_size = f'WIDTH="{_alto_number(width * scale)}" HEIGHT="{_alto_number(height * scale)}"'
    schema = f' SCHEMAVERSION="{ALTO_SCHEMA_VERSIONS[version]}"' if version in ALTO_SCHEMA_VERSIONS else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<alto xmlns="{ALTO_NAMESPACES[version]}"{schema}>'
        f"<Description><MeasurementUnit>{unit}</MeasurementUnit>"
        f"<sourceImageInformation><fileName>{escape(image_name)}</fileName></sourceImageInformation>"
        f"</Description>"
        f'<Layout><Page ID="page" PHYSICAL_IMG_NR="1" {page_size}>'
        f'<PrintSpace HPOS="0" VPOS="0" {page_size}>'
        f'<TextBlock ID="r0" {place(region)}>{"".join(body)}</TextBlock>'
        f"</PrintSpace></Page></Layout></alto>\n"
    )
