"""The BentoML services: `Gate` scores scans on ONNX Runtime; `Generator` runs SGLD on torch
in its own process, so a long generation never stalls scoring.

Start with `bentoml serve` (bentofile.yaml) or `make serve`; settings come from GLYPHGATE_*
environment variables (see glyphgate/core/settings.py and the README)."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import tempfile
from pathlib import Path

import aiohttp
import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable
from PIL import Image

from glyphgate.core.contract.artifacts import (
    CALIBRATION_JSON,
    CLASSES_JSON,
    MODEL_ONNX,
    MODEL_PT,
    load_calibration,
    load_torch_model,
    require,
)
from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import ConfigError, GlyphgateError, RequestError
from glyphgate.core.image.decode import BadImage, decode_many, is_heavy
from glyphgate.core.image.grid import grid_image, input_image
from glyphgate.core.image.preprocess import single_threaded_blas
from glyphgate.core.scoring.scorer import Scorer
from serving.endpoints import Endpoints, Unavailable, refusal
from serving.forms import Files, Upload
from serving.generate_params import ChainRequest, GenerateRequest, annotated, check_label, default
from serving.metrics import GateMetrics
from serving.middleware import GateMiddleware
from serving.priority import background_pool, below_scoring, heavy_slots, run_heavy
from serving.ui.app import ui_app

# torch, torchvision and onnxruntime are imported inside the services (the scoring workers
# never import torch): `bentoml serve` imports this module once just to find the services, and
# every second there delays /readyz.

log = logging.getLogger("glyphgate")
try:
    SETTINGS = load_settings()
except ConfigError as e:
    raise SystemExit(f"glyphgate serve: {e}") from None


def _log_to_stderr() -> None:
    """glyphgate's own lines (start-up facts, one line per refused request) at GLYPHGATE_LOG_LEVEL,
    beside BentoML's; not propagated, since BentoML's root handler would print them twice."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s glyphgate %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(SETTINGS.log_level)
    log.propagate = False


_log_to_stderr()


@functools.cache
def calibration() -> dict:
    """Refuse to start, with one clear line, when the artifacts are incomplete or inconsistent."""
    try:
        require(SETTINGS.artifacts, MODEL_ONNX, MODEL_PT, CLASSES_JSON, CALIBRATION_JSON)
        return load_calibration(SETTINGS.artifacts)
    except GlyphgateError as e:
        raise SystemExit(f"glyphgate: refusing to start: {e}") from None


# Checked when `bentoml serve` imports this module, on purpose: there a SystemExit stops the
# server with one line. Checked in a service's __init__ instead (tried), a failure makes BentoML
# restart the worker forever, a traceback each time, and the server never exits.
calibration()

ENDPOINTS = Endpoints()  # what each API of Gate takes, declared on it; the gate middleware reads it
# How the call to the Generator process fails when that process dies (circus starts a new one,
# which takes a few seconds to load torch): the connection drops mid-request, or is refused.
GENERATOR_DOWN = (aiohttp.ClientError, ConnectionError, ServiceUnavailable)
GENERATOR_RESTART_S = 10
N, STEPS, SEED = annotated("n"), annotated("steps"), annotated("seed")
DEFAULT_N, DEFAULT_STEPS, DEFAULT_SEED = default("n"), default("steps"), default("seed")


@bentoml.service(name="glyphgate-generator", workers=1, traffic={"timeout": 600})
class Generator:
    def __init__(self):
        import torch

        torch.set_num_threads(SETTINGS.torch_threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_torch_model(SETTINGS.artifacts, device)
        log.info(
            "glyphgate generation on torch %s, device %s, %d threads",
            torch.__version__,
            device,
            torch.get_num_threads(),
        )

    def _run(self, n, steps, label, seed, keep_chain):
        from glyphgate.core.model.sgld import synthesize

        below_scoring()
        return synthesize(self.model, n=n, steps=steps, label=label, seed=seed, keep_chain=keep_chain)

    @bentoml.api
    def generate(
        self,
        n: N = DEFAULT_N,
        steps: STEPS = DEFAULT_STEPS,
        label: str | None = None,
        seed: SEED = DEFAULT_SEED,
    ) -> Image.Image:
        x, _ = self._run(n, steps, label, seed, keep_chain=False)
        return grid_image(x, nrow=max(1, int(np.ceil(np.sqrt(len(x))))))

    @bentoml.api
    def generate_chain(
        self,
        n: N = 1,
        steps: STEPS = DEFAULT_STEPS,
        label: str | None = None,
        seed: SEED = DEFAULT_SEED,
    ) -> Image.Image:
        from glyphgate.core.model.sgld import chain_frames

        _, chain = self._run(n, steps, label, seed, keep_chain=True)
        frames = chain_frames(chain, frames=9)
        return grid_image(frames, nrow=len(frames))


# Two API workers: request parsing and decoding are Python (one GIL per process), so a second
# process is what lets batch requests use both cores; ORT runs one thread per worker.
@bentoml.service(
    name="glyphgate",
    workers=2,
    threads=4,
    http={"host": SETTINGS.host, "port": SETTINGS.port},
    traffic={"timeout": 600},
)
class Gate:
    generator = bentoml.depends(Generator)

    def __init__(self):
        self.calibration = calibration()
        self.metrics = GateMetrics(self.calibration["threshold"])
        self.heavy = background_pool()
        self.scorer = Scorer.from_calibration(SETTINGS.artifacts, self.calibration, SETTINGS.ort_threads)
        single_threaded_blas()
        # Everything loaded so far lives as long as the worker: keep it out of the garbage
        # collector's full passes, which otherwise walk ~100k objects (~25 ms) in a request.
        gc.freeze()

    # -- scoring -------------------------------------------------------------------------------
    async def _decode_one(self, image: Upload) -> np.ndarray:
        """One upload -> model input, or BadImage. A big one is decoded in a below-scoring
        thread, so small scans on this event loop never queue behind it."""
        upload = [(image.name, image.data)]
        if is_heavy(image.data):
            x, _, errors = await asyncio.get_running_loop().run_in_executor(
                self.heavy, run_heavy, heavy_slots(), decode_many, upload, SETTINGS.max_pixels
            )
        else:
            x, _, errors = decode_many(upload, SETTINGS.max_pixels)
        if errors:
            self.metrics.rejected.inc()
            raise BadImage(errors[0]["error"], errors[0]["file"])
        return x

    def _needs_p_values(self, alpha: float | None) -> None:
        if alpha is not None and self.scorer.cal_energies is None:
            raise RequestError(
                "alpha needs p-values, and this model's calibration.json stores no calibration "
                "energies (re-run glyphgate calibrate)"
            )

    async def _one(self, image: Upload, fn, alpha: float | None = None) -> dict:
        self._needs_p_values(alpha)
        result = fn(await self._decode_one(image), alpha)[0]
        self.metrics.record([result])
        return result

    def _many(self, images: list[Upload], ctx: bentoml.Context, fn, alpha: float | None = None) -> dict:
        self._needs_p_values(alpha)
        x, ok, errors = decode_many([(u.name, u.data) for u in images], SETTINGS.max_pixels)
        self.metrics.rejected.inc(len(errors))
        if not ok:
            return refusal(ctx, f"none of the {len(images)} uploads is a usable image", errors=errors)
        results: list[dict] = [{} for _ in images]
        scored = fn(x, alpha)
        self.metrics.record(scored)
        for i, r in zip(ok, scored):
            results[i] = {"index": i, "file": images[i].name, **r}
        for e in errors:
            results[e["index"]] = e
        return {"n": len(images), "n_errors": len(errors), "results": results}

    # One scan is well under a millisecond of work: it runs on the event loop, since a hop to
    # the thread pool and back costs about as much and adds GIL hand-offs under load.
    @ENDPOINTS.api(Files("image"), alpha=True)
    async def classify(self, image: Upload, ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """One scan -> label, top-k probabilities, energy, threshold, p_value, is_ood (energy > threshold,
        or p_value < alpha when the form field alpha is given)."""
        return await self._one(image, self.scorer.classify, alpha)

    @ENDPOINTS.api(Files("image"), alpha=True)
    async def score(self, image: Upload, ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """One scan -> energy (higher = more OOD), threshold, p_value (share of real glyphs at least this
        unusual), is_ood (energy > threshold, or p_value < alpha)."""
        return await self._one(image, self.scorer.score, alpha)

    @ENDPOINTS.api(Files("images", at_most=SETTINGS.max_batch), alpha=True)
    def classify_batch(self, images: list[Upload], ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """Many scans in one request -> results in request order; undecodable ones carry 'error'."""
        return self._many(images, ctx, self.scorer.classify, alpha)

    @ENDPOINTS.api(Files("images", at_most=SETTINGS.max_batch), alpha=True)
    def score_batch(self, images: list[Upload], ctx: bentoml.Context, alpha: float | None = None) -> dict:
        """Many scans in one request -> energy / p_value / is_ood in request order."""
        return self._many(images, ctx, self.scorer.score, alpha)

    @ENDPOINTS.api(Files("image"), Files("page"), rescale=True)
    def scan_page(self, image: Upload, page: Upload, ctx: bentoml.Context, rescale: bool = False) -> dict:
        """A page image and its PAGE-XML or ALTO (multipart fields image and page) -> a verdict per glyph, cut by the
        page's coordinates (Glyph level, or words split into glyphs), and the page annotated with them."""
        from serving.page_upload import scan_uploaded_page

        with tempfile.TemporaryDirectory(prefix="glyphgate-page-") as folder:
            result = scan_uploaded_page(
                page.saved_in(Path(folder), "page"),
                image.saved_in(Path(folder), "image"),
                (image.name, page.name),
                self.scorer,
                SETTINGS.max_pixels,
                rescale=rescale,
            )
        self.metrics.record(result["results"])
        return result

    @ENDPOINTS.api(Files("image"))
    async def preview(self, image: Upload, ctx: bentoml.Context) -> Image.Image:
        """One scan -> the 56x56 PNG the model actually sees (after the shared preprocessing)."""
        return input_image((await self._decode_one(image))[0])

    # -- generation (forwarded to the Generator process) ----------------------------------------
    @ENDPOINTS.api(params=GenerateRequest)
    async def generate(
        self, n: int, steps: int, label: str | None, seed: int, ctx: bentoml.Context
    ) -> Image.Image:
        """SGLD samples from fresh chains -> PNG grid (label optional: unconditional without it)."""
        check_label(label, self.calibration["classes"])
        return await _generated(self.generator.to_async.generate(n=n, steps=steps, label=label, seed=seed))

    @ENDPOINTS.api(params=ChainRequest)
    async def generate_chain(
        self, n: int, steps: int, label: str | None, seed: int, ctx: bentoml.Context
    ) -> Image.Image:
        """One SGLD chain at 9 evenly spaced steps -> PNG strip (noise turning into a glyph)."""
        check_label(label, self.calibration["classes"])
        return await _generated(
            self.generator.to_async.generate_chain(n=n, steps=steps, label=label, seed=seed)
        )


async def _generated(call) -> Image.Image:
    """The Generator's answer; its process dying under a request is a 503 to retry, not a 500
    with the traceback of a dropped connection."""
    try:
        return await call
    except GENERATOR_DOWN as e:
        raise Unavailable(
            f"generation unavailable: the generator process stopped or is restarting ({type(e).__name__}); "
            f"retry in {GENERATOR_RESTART_S} s",
            GENERATOR_RESTART_S,
        ) from None


API_DESCRIPTION = (
    "glyphgate classifies a scan of a historical printed glyph (one of the model's classes), flags scans that are "
    "not glyphs (energy above the calibrated threshold, or p_value below a request's alpha), and generates glyphs "
    'by SGLD. Errors are always JSON: {"error": ..., "file": ...}. The demo page is at /ui/.'
)
Gate.add_asgi_middleware(GateMiddleware, settings=SETTINGS, endpoints=ENDPOINTS, description=API_DESCRIPTION)
# The demo page is open: it asks for the token itself before it calls an API.
ENDPOINTS.mount_public(Gate, ui_app(calibration()), "/ui")
