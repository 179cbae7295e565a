"""The server's /scan_page: one uploaded page image and its PAGE-XML -> a verdict per glyph."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from glyphgate.core.decode import FORMATS, BadImage
from glyphgate.core.errors import DataError
from glyphgate.core.pages import PageCuts
from glyphgate.core.pagexml import annotate, read_page
from glyphgate.core.preprocess import prepare_many


def scan_uploaded_page(
    xml_path: Path, image_path: Path, names: tuple[str, str], scorer, max_pixels: int, crop: str = "box"
) -> dict:
    """The server's /scan_page: one uploaded page image and its PAGE-XML -> a verdict per glyph and
    the annotated PAGE-XML, scored by the worker's own scorer (the crops never leave memory)."""
    image_name, xml_name = names
    try:
        with Image.open(image_path, formats=FORMATS) as im:
            if im.width * im.height > max_pixels:
                raise BadImage(
                    f"{image_name}: {im.width}x{im.height} pixels, more than the {max_pixels:,} allowed"
                )
    except BadImage:
        raise
    except Exception as e:
        raise BadImage(
            f"{image_name}: not a page image in a supported format ({', '.join(FORMATS)}): {type(e).__name__}"
        ) from None
    try:
        page, warnings = read_page(xml_path)
        cuts = PageCuts(page, image_path, crop, warnings, keep_unmatched=True)
        glyphs = [(wc, g) for wc in cuts.words() for g in wc.glyphs if g.crop is not None]
    except DataError as e:  # the temp file's name means nothing to the client: name its upload
        raise BadImage(str(e).replace(str(xml_path), xml_name).replace(str(image_path), image_name)) from None
    verdicts = scorer.classify(prepare_many([g.crop.astype(np.float32) for _, g in glyphs])) if glyphs else []
    results, by_id, split = [], {}, {}
    for (wc, g), v in zip(glyphs, verdicts):
        results.append(
            {
                "line": wc.line.id,
                "word": wc.word.id,
                "glyph": g.id,
                "text": g.text,
                "box": list(g.box),
                **{k: v[k] for k in ("label", "confidence", "energy", "p_value", "is_ood")},
            }
        )
        by_id[g.id] = v
        if not g.from_glyph_level:
            split.setdefault(wc.word.id, []).append((g.id, g.box, g.text))
    with tempfile.TemporaryDirectory() as tmp:
        annotate(xml_path, by_id, split, Path(tmp) / "page.xml")
        xml = (Path(tmp) / "page.xml").read_text(encoding="utf-8")
    return {
        "page": xml_name,
        "n": len(results),
        "flagged": sum(r["is_ood"] for r in results),
        "warnings": warnings,
        "results": results,
        "page_xml": xml,
    }
