"""The server's /scan_page: one uploaded page image and its PAGE-XML or ALTO -> a verdict per glyph."""

from __future__ import annotations

import io
from pathlib import Path

from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import BadImage
from glyphgate.core.pages.cuts import WrongPageImage
from glyphgate.core.pages.to_score import PageToScore
from glyphgate.core.scoring.scorer import VERDICT

RESCALE_FIELD_HINT = "send the form field rescale=true if the image is a scaled copy"


def scan_uploaded_page(
    xml_path: Path,
    image_path: Path,
    names: tuple[str, str],
    scorer,
    max_pixels: int,
    crop: str = "box",
    rescale: bool = False,
) -> dict:
    """The server's /scan_page: one uploaded page image and its PAGE-XML or ALTO (told apart by the
    root element) -> a verdict per glyph and the annotated XML in the same format ("page_xml"),
    scored by the worker's own scorer (the crops never leave memory). An image whose size is not
    the XML's is refused (400) unless `rescale` says it is a scaled copy."""
    image_name, xml_name = names
    try:
        page = PageToScore.cut(xml_path, image_path, crop, max_pixels=max_pixels, rescale=rescale)
    except DataError as e:  # the temp file's name means nothing to the client: name its upload
        wrong_size = isinstance(e, WrongPageImage)
        message = e.with_hint(RESCALE_FIELD_HINT) if wrong_size else str(e)
        file = (
            image_name
            if wrong_size
            else next(
                (
                    name
                    for path, name in ((xml_path, xml_name), (image_path, image_name))
                    if str(path) in message
                ),
                None,
            )
        )
        raise BadImage(
            message.replace(str(xml_path), xml_name).replace(str(image_path), image_name), file=file
        ) from None
    verdicts = scorer.classify_crops(page.crops)[0] if page.glyphs else []
    results = page.rows([{k: v[k] for k in VERDICT} for v in verdicts])
    annotated = io.BytesIO()
    page.annotate({g.id: v for (_, g), v in zip(page.glyphs, verdicts)}, annotated)
    return {
        "page": xml_name,
        "n": len(results),
        "flagged": sum(r["is_ood"] for r in results),
        "warnings": page.warnings,
        "results": results,
        "page_xml": annotated.getvalue().decode("utf-8"),
    }
