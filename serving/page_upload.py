"""The server's /scan_page: one uploaded page image and its PAGE-XML -> a verdict per glyph."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import FORMATS, BadImage
from glyphgate.core.pages.cuts import PageCuts, scored_glyphs, word_splits
from glyphgate.core.pages.pagexml import annotate, read_page
from glyphgate.core.scoring.scorer import VERDICT


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
                    f"{image_name}: {im.width}x{im.height} pixels, more than the {max_pixels:,} allowed",
                    file=image_name,
                )
    except BadImage:
        raise
    except Exception as e:
        raise BadImage(
            f"{image_name}: not a page image in a supported format ({', '.join(FORMATS)}): {type(e).__name__}",
            file=image_name,
        ) from None
    try:
        page, warnings = read_page(xml_path)
        cuts = PageCuts(page, image_path, crop, warnings, keep_unmatched=True)
        glyphs = scored_glyphs(cuts.words())
    except DataError as e:  # the temp file's name means nothing to the client: name its upload
        message = str(e)
        file = next(
            (name for path, name in ((xml_path, xml_name), (image_path, image_name)) if str(path) in message),
            None,
        )
        raise BadImage(
            message.replace(str(xml_path), xml_name).replace(str(image_path), image_name), file=file
        ) from None
    verdicts = scorer.classify_crops([g.crop for _, g in glyphs])[0] if glyphs else []
    results, by_id = [], {}
    for (wc, g), v in zip(glyphs, verdicts):
        results.append(
            {
                "line": wc.line.id,
                "word": wc.word.id,
                "glyph": g.id,
                "text": g.text,
                "box": list(g.box),
                **{k: v[k] for k in VERDICT},
            }
        )
        by_id[g.id] = v
    annotated = io.BytesIO()
    annotate(xml_path, by_id, word_splits(glyphs), annotated)
    return {
        "page": xml_name,
        "n": len(results),
        "flagged": sum(r["is_ood"] for r in results),
        "warnings": warnings,
        "results": results,
        "page_xml": annotated.getvalue().decode("utf-8"),
    }
