"""A whole printed page set in one of the bundled faces, with its PAGE-XML ground truth.

The project's own stand-in for an archive page (real pages never enter the repository): lines
of words, each glyph placed by the renderer so its box is known exactly, written as a greyscale
PNG plus PAGE-XML with TextRegion -> TextLine -> Word -> Glyph (or Word only, to exercise the
connected-component split). Letters are set slightly apart, as hand-set type usually is, so a
word's components are its letters.
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
) -> tuple[Path, Path]:
    """Write out_dir/<name>.png and out_dir/<name>.xml; returns both paths."""
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

    def coords(box):
        return f'<Coords points="{_box_points(*box)}"/>'

    def equiv(text):
        return f"<TextEquiv><Unicode>{escape(text)}</Unicode></TextEquiv>"

    region = (
        min(line[2][0] for line in xml_lines) - 4,
        min(line[2][1] for line in xml_lines) - 4,
        max(line[2][2] for line in xml_lines) + 4,
        max(line[2][3] for line in xml_lines) + 4,
    )
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
    xml = out_dir / f"{name}.xml"
    xml.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="{NAMESPACES[namespace]}">'
        f"<Metadata><Creator>glyphgate render_page</Creator></Metadata>"
        f'<Page imageFilename="{png.name}" imageWidth="{width}" imageHeight="{height}">'
        f'<TextRegion id="r0">{coords(region)}{"".join(body)}</TextRegion></Page></PcGts>\n',
        encoding="utf-8",
    )
    return png, xml
