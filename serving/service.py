"""The BentoML services: `Gate` scores scans on ONNX Runtime; `Generator` runs SGLD on torch
in its own process, so a long generation never stalls scoring.

Start with `bentoml serve` (bentofile.yaml) or `make serve`; settings come from GLYPHGATE_*
environment variables (see serving/settings.py and the README)."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from annotated_types import Ge, Le
from PIL import Image

from serving import settings as _settings
from serving.decode import decode_many
from serving.generation import DEFAULTS, LIMITS
from serving.images import input_image, to_png_image
from serving.middleware import GateMiddleware
from serving.scoring import Scorer
from serving.ui import ui_app
from training.artifacts import CALIBRATION_JSON, CLASSES_JSON, MODEL_ONNX, MODEL_PT, load_calibration, load_torch_model, require
from training.errors import DataError

# torch, torchvision and onnxruntime are imported inside the services (the scoring workers
# never import torch): `bentoml serve` imports this module once just to find the services, and
# every second there delays /readyz.

log = logging.getLogger("glyphgate")
SETTINGS = _settings.load()


def _startup_check() -> dict:
    """Refuse to start, with one clear line, when the artifacts are incomplete or inconsistent."""
    try:
        require(SETTINGS.artifacts, MODEL_ONNX, MODEL_PT, CLASSES_JSON, CALIBRATION_JSON)
        return load_calibration(SETTINGS.artifacts)
    except DataError as e:
        raise SystemExit(f"glyphgate: refusing to start: {e}") from None


CALIBRATION = _startup_check()
N = Annotated[int, Ge(LIMITS["n"][0]), Le(LIMITS["n"][1])]
STEPS = Annotated[int, Ge(LIMITS["steps"][0]), Le(LIMITS["steps"][1])]
SEED = Annotated[int, Ge(LIMITS["seed"][0]), Le(LIMITS["seed"][1])]


def _below_scoring() -> None:
    """Put the calling thread (and the torch threads it starts) below scoring in the CPU
    scheduler, so a long SGLD run takes only the CPU time that scoring leaves.

    SCHED_IDLE rather than nice 19: a waking scoring request preempts an idle-class thread at
    once, while a nice-19 one may finish its time slice first (measured: p99 /score while
    generating 75 ms at nice 19). Linux scheduling is per thread, so this runs in the thread
    that does the work, on every request (it is idempotent)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: fall back to the lowest nice value
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        except (AttributeError, OSError):
            pass


@bentoml.service(name="glyphgate-generator", workers=1, traffic={"timeout": 600})
class Generator:
    def __init__(self):
        import torch

        torch.set_num_threads(SETTINGS.torch_threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_torch_model(SETTINGS.artifacts, device)
        log.warning("glyphgate generation on torch %s, device %s, %d threads", torch.__version__, device, torch.get_num_threads())

    def _run(self, n, steps, label, seed, keep_chain):
        from training.generate import synthesize

        _below_scoring()
        return synthesize(self.model, n=n, steps=steps, label=label, seed=seed, keep_chain=keep_chain)

    @bentoml.api
    def generate(self, n: N = DEFAULTS["n"], steps: STEPS = DEFAULTS["steps"], label: str | None = None,
                 seed: SEED = DEFAULTS["seed"]) -> Image.Image:
        x, _ = self._run(n, steps, label, seed, keep_chain=False)
        return to_png_image(x, nrow=max(1, int(np.ceil(np.sqrt(len(x))))))

    @bentoml.api
    def generate_chain(self, n: N = 1, steps: STEPS = DEFAULTS["steps"], label: str | None = None,
                       seed: SEED = DEFAULTS["seed"]) -> Image.Image:
        from training.generate import chain_frames

        _, chain = self._run(n, steps, label, seed, keep_chain=True)
        frames = chain_frames(chain, frames=9)
        return to_png_image(frames, nrow=len(frames))


# Two API workers: request parsing and decoding are Python (one GIL per process), so a second
# process is what lets batch requests use both cores; ORT runs one thread per worker.
@bentoml.service(name="glyphgate", workers=2, threads=4, http={"host": SETTINGS.host, "port": SETTINGS.port},
                 traffic={"timeout": 600})
class Gate:
    generator = bentoml.depends(Generator)

    def __init__(self):
        self.calibration = CALIBRATION
        self.scorer = Scorer(SETTINGS.artifacts, CALIBRATION["classes"], CALIBRATION["threshold"], SETTINGS.ort_threads,
                             cal_energies=CALIBRATION.get("id_energies"))
        # Everything loaded so far lives as long as the worker: keep it out of the garbage
        # collector's full passes, which otherwise walk ~100k objects (~25 ms) in a request.
        gc.freeze()

    # -- scoring -------------------------------------------------------------------------------
    @staticmethod
    def _names(files: list[Path], ctx: bentoml.Context) -> list[str]:
        names = getattr(ctx.request.state, "upload_names", None)
        return names if names and len(names) == len(files) else [Path(f).name for f in files]

    def _decode(self, files: list[Path], ctx: bentoml.Context) -> tuple[np.ndarray, list[int], list[dict]]:
        uploads = [(name, Path(f).read_bytes()) for f, name in zip(files, self._names(files, ctx))]
        return decode_many(uploads, SETTINGS.max_pixels)

    def _alpha_error(self, alpha: float | None, ctx: bentoml.Context) -> dict | None:
        if alpha is None:
            return None
        if not 0 < alpha < 1:
            ctx.response.status_code = 400
            return {"error": f"alpha {alpha}: expected a value strictly between 0 and 1"}
        if self.scorer.cal_energies is None:
            ctx.response.status_code = 400
            return {"error": "alpha needs p-values, and this model's calibration.json stores no calibration energies "
                             "(re-run glyphgate calibrate)"}
        return None

    def _one(self, image: Path, ctx: bentoml.Context, fn, alpha: float | None = None) -> dict:
        if (bad := self._alpha_error(alpha, ctx)) is not None:
            return bad
        x, _, errors = self._decode([image], ctx)
        if errors:
            ctx.response.status_code = 400
            return {"error": errors[0]["error"]}
        return fn(x, alpha)[0]

    def _many(self, images: list[Path], ctx: bentoml.Context, fn, alpha: float | None = None) -> dict:
        if (bad := self._alpha_error(alpha, ctx)) is not None:
            return bad
        x, ok, errors = self._decode(images, ctx)
        names = self._names(images, ctx)
        if not ok:
            ctx.response.status_code = 400
            return {"error": f"none of the {len(images)} uploads is a usable image", "errors": errors}
        results: list[dict] = [{} for _ in images]
        for i, r in zip(ok, fn(x, alpha)):
            results[i] = {"index": i, "filename": names[i], **r}
        for e in errors:
            results[e["index"]] = e
        return {"n": len(images), "n_errors": len(errors), "results": results}

    # One scan is well under a millisecond of work: it runs on the event loop, since a hop to
    # the thread pool and back costs about as much and adds GIL hand-offs under load.
    @bentoml.api
    async def classify(self, image: Path, ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """One scan -> label, top-k probabilities, energy, threshold, p_value, is_ood (energy > threshold,
        or p_value < alpha when the form field alpha is given)."""
        return self._one(image, ctx, self.scorer.classify, alpha)

    @bentoml.api
    async def score(self, image: Path, ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """One scan -> energy (higher = more OOD), threshold, p_value (share of real glyphs at least this
        unusual), is_ood (energy > threshold, or p_value < alpha)."""
        return self._one(image, ctx, self.scorer.score, alpha)

    @bentoml.api
    def classify_batch(self, images: list[Path], ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """Many scans in one request -> results in request order; undecodable ones carry 'error'."""
        return self._many(images, ctx, self.scorer.classify, alpha)

    @bentoml.api
    def score_batch(self, images: list[Path], ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """Many scans in one request -> energy / p_value / is_ood in request order."""
        return self._many(images, ctx, self.scorer.score, alpha)

    @bentoml.api
    def scan_page(self, image: Path, page: Path, ctx: bentoml.Context) -> dict:
        """A page image and its PAGE-XML (multipart fields image and page) -> a verdict per glyph, cut by the
        PAGE coordinates (Glyph level, or words split into glyphs), and the PAGE-XML annotated with them."""
        from .decode import BadImage
        from .page_scan import scan_uploaded_page

        names = getattr(ctx.request.state, "upload_names", None) or [Path(image).name, Path(page).name]
        try:
            return scan_uploaded_page(Path(page), Path(image), tuple(names), self.scorer, SETTINGS.max_pixels)
        except BadImage as e:
            ctx.response.status_code = 400
            return {"error": str(e)}

    @bentoml.api
    def preview(self, image: Path, ctx: bentoml.Context) -> Image.Image:
        """One scan -> the 56x56 PNG the model actually sees (after the shared preprocessing)."""
        x, _, errors = self._decode([image], ctx)
        if errors:
            raise bentoml.exceptions.InvalidArgument(errors[0]["error"])
        return input_image(x[0])

    # -- generation (forwarded to the Generator process) ----------------------------------------
    @bentoml.api
    async def generate(self, n: N = DEFAULTS["n"], steps: STEPS = DEFAULTS["steps"], label: str | None = None,
                       seed: SEED = DEFAULTS["seed"]) -> Image.Image:
        """SGLD samples from fresh chains -> PNG grid (label optional: unconditional without it)."""
        return await self.generator.to_async.generate(n=n, steps=steps, label=label, seed=seed)

    @bentoml.api
    async def generate_chain(self, n: N = 1, steps: STEPS = DEFAULTS["steps"], label: str | None = None,
                             seed: SEED = DEFAULTS["seed"]) -> Image.Image:
        """One SGLD chain at 9 evenly spaced steps -> PNG strip (noise turning into a glyph)."""
        return await self.generator.to_async.generate_chain(n=n, steps=steps, label=label, seed=seed)


Gate.add_asgi_middleware(GateMiddleware, settings=SETTINGS, classes=CALIBRATION["classes"])
Gate.mount_asgi_app(ui_app(CALIBRATION), path="/ui")
