"""The calibration report a person opens: report/index.html beside its PNGs (calibration/figures.py),
rendered from templates/report.html.j2 over the same view as the model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from calibration.figures import FIGURES_JSON
from calibration.record import CalibrationRecord
from calibration.render import render
from calibration.targets import TARGETS
from calibration.view import View, read_optional, summary
from glyphgate.core.contract.artifacts import REAL_SCANS_JSON


def write_index(path: Path, view: View) -> Path:
    path.write_text(
        render("report.html.j2", v=view, summary=summary(view), targets=TARGETS), encoding="utf-8"
    )
    return path


def seed_report(folder: Path, out: Path) -> None:
    """Give `out` (a folder other than the artifacts folder) the calibration's figures, so the
    report rendered there shows them: figures.json and the PNGs it names, copied once."""
    source = Path(folder) / "report"
    target = Path(out) / "report"
    target.mkdir(parents=True, exist_ok=True)
    if (target / FIGURES_JSON).is_file() or not (source / FIGURES_JSON).is_file():
        return
    for name in json.loads((source / FIGURES_JSON).read_text(encoding="utf-8")).values():
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    shutil.copy2(source / FIGURES_JSON, target / FIGURES_JSON)


def rerender_index(
    folder: Path, cal: CalibrationRecord | dict | None = None, out: Path | None = None
) -> None:
    """index.html again from what the artifacts folder now holds (after `glyphgate evaluate`
    or `glyphgate peers` added their figures); nothing when calibrate has not made a report.
    With `out`, the report in out/report/ over the folder's calibration and out's real_scans.json."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    if not (out / "report" / FIGURES_JSON).is_file():
        return
    record = CalibrationRecord.model_validate(cal) if isinstance(cal, dict) else cal
    view = View.read(
        folder,
        record,
        real=read_optional(out / REAL_SCANS_JSON) or {},
        figures=read_optional(out / "report" / FIGURES_JSON) or {},
    )
    write_index(out / "report" / "index.html", view)
