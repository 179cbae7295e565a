"""The calibration report a person opens: report/index.html beside its PNGs (calibration/figures.py),
rendered from templates/report.html.j2 over the same view as the model card."""

from __future__ import annotations

from pathlib import Path

from calibration.figures import FIGURES_JSON
from calibration.record import CalibrationRecord
from calibration.render import render
from calibration.targets import TARGETS
from calibration.view import View, summary


def write_index(path: Path, view: View) -> Path:
    path.write_text(
        render("report.html.j2", v=view, summary=summary(view), targets=TARGETS), encoding="utf-8"
    )
    return path


def rerender_index(folder: Path, cal: CalibrationRecord | dict | None = None) -> None:
    """index.html again from what the artifacts folder now holds (after `glyphgate evaluate`
    or `glyphgate peers` added their figures); nothing when calibrate has not made a report."""
    folder = Path(folder)
    if not (folder / "report" / FIGURES_JSON).is_file():
        return
    record = CalibrationRecord.model_validate(cal) if isinstance(cal, dict) else cal
    write_index(folder / "report" / "index.html", View.read(folder, record))
