"""`ocrd-glyphgate-gate`: glyphgate's gate as an OCR-D processor (OCR-D v3 processor API)."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np
from ocrd import OcrdPageResult, Processor
from ocrd_modelfactory import page_from_file
from ocrd_models.ocrd_file import OcrdFileType
from ocrd_models.ocrd_page import OcrdPage, parseString, to_xml
from ocrd_utils import MIMETYPE_PAGE, config, make_file_id

from glyphgate.core.contract.artifacts import load_calibration
from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import DataError
from glyphgate.core.pages.formats import read_page
from glyphgate.core.pages.model import Page, find_image
from glyphgate.core.pages.to_score import PageToScore
from glyphgate.core.scoring.scorer import Scorer

EXECUTABLE = "ocrd-glyphgate-gate"
MIMETYPE_ALTO = "application/alto+xml"


def _one_line_for_bad_pages(record: logging.LogRecord) -> bool:
    """OCR-D logs a failed page with its traceback; a bad page (glyphgate's DataError, which names
    the file and the problem) is one line, as everywhere in glyphgate."""
    if record.exc_info and isinstance(record.exc_info[1], DataError):
        record.exc_info, record.exc_text = None, None
    return True


class GlyphgateGate(Processor):
    """Per page of the input file group: the image OCR-D's workspace gives for it (the original,
    or the newest derived image of the page's AlternativeImage, with the transform from the
    PAGE's coordinates onto it), its glyphs cut as `glyphgate scan --page` cuts them and scored
    by the shipped scorer, and the PAGE file written to the output file group with each Glyph's
    verdict where `scan --page` writes it (a prediction TextEquiv and Glyph/@custom
    "glyphgate {...}") and the processing step as a MetadataItem, as OCR-D's own base class
    writes it (`add_metadata`). Page ranges,
    OCRD_MAX_PARALLEL_PAGES and the existing-/missing-output policies are OCR-D's own: a page
    that fails (an unreadable image, a broken XML) is logged and skipped while the others go on
    (OCRD_MISSING_OUTPUT=SKIP, the default; OCRD_MAX_MISSING_OUTPUTS caps the share that may fail).
    """

    @property
    def executable(self) -> str:
        return EXECUTABLE

    @property
    def metadata_filename(self) -> str:
        return "ocrd/ocrd-tool.json"

    def setup(self) -> None:
        settings = load_settings()
        self.artifacts = Path(self.parameter["artifacts"] or settings.artifacts)
        self.calibration = load_calibration(self.artifacts)
        self.threads = settings.ort_threads
        self.alpha = self.parameter["alpha"] or None
        self._scorer, self._pid = None, None
        logging.getLogger("ocrd.processor.base").addFilter(_one_line_for_bad_pages)
        self.scorer()  # a missing or broken model fails here, before the first page

    def scorer(self) -> Scorer:
        # OCRD_MAX_PARALLEL_PAGES forks page workers after setup: each opens its own ONNX Runtime
        # session, since a session's thread pool does not survive a fork
        if self._pid != os.getpid():
            self._scorer = Scorer.from_calibration(self.artifacts, self.calibration, self.threads)
            self._pid = os.getpid()
        return self._scorer

    def process_page_file(self, *input_files: Optional[OcrdFileType]) -> None:
        """One page. A PAGE file is parsed by OCR-D (its image comes through the workspace, derived
        images included) and written from glyphgate's annotated copy, without parsing that copy
        into OCR-D's object model again (0.1-0.2 s a page on the Kant pages); an ALTO file gets
        an ALTO copy; anything else (an image without PAGE) goes OCR-D's own way."""
        input_file = input_files[0]
        if (
            input_file is None
            or not input_file.local_filename
            or input_file.mimetype not in (MIMETYPE_PAGE, MIMETYPE_ALTO)
        ):
            return super().process_page_file(*input_files)
        same_group = input_file.fileGrp == self.output_file_grp
        file_id = input_file.ID if same_group else make_file_id(input_file, self.output_file_grp)
        overwrite = config.OCRD_EXISTING_OUTPUT == "OVERWRITE"
        if not overwrite and next(self.workspace.mets.find_files(ID=file_id), None):
            raise FileExistsError(f"{file_id} already exists and OCRD_EXISTING_OUTPUT != OVERWRITE")
        self._base_logger.info("processing page %s", input_file.pageId)
        if input_file.mimetype == MIMETYPE_ALTO:
            content = self._gate_alto(Path(input_file.local_filename), input_file.pageId)
        else:
            pcgts = page_from_file(input_file)
            pcgts.set_pcGtsId(file_id)
            self.add_metadata(pcgts)
            content = self._gate_page(pcgts, input_file.pageId)
        self.workspace.add_file(
            file_grp=self.output_file_grp,
            file_id=file_id,
            page_id=input_file.pageId,
            mimetype=input_file.mimetype,
            local_filename=str(Path(self.output_file_grp) / f"{file_id}.xml"),
            content=content,
            force=overwrite,
        )

    def process_page_pcgts(
        self, *input_pcgts: Optional[OcrdPage], page_id: Optional[str] = None
    ) -> OcrdPageResult:
        """The same for a page OCR-D parsed (what its processing workers call)."""
        return OcrdPageResult(parseString(self._gate_page(input_pcgts[0], page_id), silence=True))

    def _gate_page(self, pcgts: OcrdPage, page_id: Optional[str]) -> bytes:
        try:
            image, coords, _ = self.workspace.image_from_page(pcgts.get_Page(), page_id)
        except (OSError, ValueError) as e:  # OSError: PIL's truncated / unidentified images
            raise DataError(f"{pcgts.get_Page().get_imageFilename()}: unreadable page image ({e})") from None
        page = PageToScore.from_memory(
            f"{page_id or pcgts.get_pcGtsId()}.xml",
            to_xml(pcgts).encode("utf-8"),
            np.asarray(image.convert("L")),
            coords["transform"],
            crop=self.parameter["crop"],
            glyphs_only=self.parameter["level"] == "glyph",
        )
        return self._score(page, page_id, coords.get("features") or "original")

    def _gate_alto(self, xml: Path, page_id: str) -> bytes:
        read = read_page(xml)
        page = PageToScore.cut(
            xml,
            self._alto_image(read[0], page_id),
            self.parameter["crop"],
            glyphs_only=self.parameter["level"] == "glyph",
            read=read,
        )
        return self._score(page, page_id, "original")

    def _alto_image(self, page: Page, page_id: str) -> Path | None:
        """The ALTO's sourceImageInformation/fileName where it resolves, else the page's image in
        the METS (ALTO has no AlternativeImage)."""
        xml = page.xml
        try:
            return find_image(page)
        except DataError:
            images = self.workspace.mets.find_files(pageId=page_id, mimetype="//image/.*")
            image = next((f for f in images if f.local_filename), None)
            if image is None:
                raise DataError(f"{xml}: no page image (sourceImageInformation or METS)") from None
            return Path(image.local_filename)

    def _score(self, page: PageToScore, page_id: str, image: str) -> bytes:
        """Score the page's glyphs; its annotated copy."""
        verdicts = self.scorer().classify_crops(page.crops, self.alpha)[0] if page.glyphs else []
        for warning in page.warnings:
            self.logger.warning("page %s: %s", page_id, warning)
        annotated = io.BytesIO()
        page.annotate({g.id: v for (_, g), v in zip(page.glyphs, verdicts)}, annotated)
        self.logger.info(
            "page %s: %d glyphs scored, %d flagged (image %s)",
            page_id,
            len(verdicts),
            sum(v["is_ood"] for v in verdicts),
            image,
        )
        return annotated.getvalue()
