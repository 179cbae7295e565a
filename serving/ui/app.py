"""The demo page at /ui: static files from serving/ui/ plus the calibration summary it draws.
Mounted into the same BentoML app, so there is no second server and nothing from a CDN."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

PAGE = Path(__file__).parent


def ui_app(calibration: dict) -> Starlette:
    """`calibration`: the served model's calibration.json; the page draws a summary of it."""
    summary = {
        "classes": calibration["classes"],
        "threshold": calibration["threshold"],
        "measured_tpr": calibration["measured_tpr"],
        # which glyphs the threshold keeps measured_tpr of: real, synthetic or a collection's
        "population": calibration.get("threshold_population", {}).get("population", "synthetic"),
        "accuracy": calibration["id"]["accuracy"],
        "histogram": calibration.get("energy_histogram")
        or {"edges": [calibration["threshold"] - 1, calibration["threshold"] + 1], "id": [1]},
    }

    async def calibration_summary(request):
        return JSONResponse(summary)

    return Starlette(
        routes=[
            Route("/calibration", calibration_summary),
            Mount("/", StaticFiles(directory=PAGE, html=True)),
        ]
    )
