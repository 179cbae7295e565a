"""Server settings, all from the environment so `bentoml serve` and `make serve` agree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from training.artifacts import default_artifacts


@dataclass(frozen=True)
class Settings:
    artifacts: Path
    max_upload_mb: float
    api_token: str | None
    max_batch: int
    max_pixels: int
    host: str
    port: int
    ort_threads: int
    torch_threads: int
    log_level: str

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"glyphgate serve: {name}={raw!r} is not an integer") from None


def load() -> Settings:
    cpus = os.cpu_count() or 1
    try:
        mb = float(os.environ.get("GLYPHGATE_MAX_UPLOAD_MB", "32"))
    except ValueError:
        raise SystemExit("glyphgate serve: GLYPHGATE_MAX_UPLOAD_MB must be a number") from None
    level = os.environ.get("GLYPHGATE_LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SystemExit(f"glyphgate serve: GLYPHGATE_LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING or ERROR")
    return Settings(
        artifacts=default_artifacts(),
        max_upload_mb=mb,
        api_token=os.environ.get("GLYPHGATE_API_TOKEN") or None,
        max_batch=_int("GLYPHGATE_MAX_BATCH", 256),
        # 40 Mpx covers a 600-dpi A3 page scan; a bomb that claims more is refused before decoding.
        max_pixels=_int("GLYPHGATE_MAX_PIXELS", 40_000_000),
        host=os.environ.get("GLYPHGATE_HOST", "127.0.0.1"),
        port=_int("GLYPHGATE_PORT", 3000),
        # Scoring gets the cores; generation runs in its own process with fewer threads so a
        # long SGLD run leaves room for scoring requests.
        ort_threads=_int("GLYPHGATE_ORT_THREADS", max(1, cpus // 2)),
        torch_threads=_int("GLYPHGATE_TORCH_THREADS", max(1, cpus // 2)),
        log_level=level,
    )
