"""Every GLYPHGATE_* setting, typed, in one place: the server, `make serve`, `bentoml serve` and
`glyphgate scan` read the same environment the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from glyphgate.core.contract.artifacts import SHIPPED
from glyphgate.core.errors import ConfigError
from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS


def _cpus_half() -> int:
    return max(1, (os.cpu_count() or 1) // 2)


def _env(name: str, default, doc: str):
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True)
class Settings:
    artifacts: Path = _env(
        "GLYPHGATE_ARTIFACTS", None, "artifacts folder (default: the package's artifacts/default)"
    )
    max_upload_mb: float = _env("GLYPHGATE_MAX_UPLOAD_MB", 32.0, "largest request body; larger ones get 413")
    api_token: str | None = _env(
        "GLYPHGATE_API_TOKEN", None, "when set, every API needs 'Authorization: Bearer <token>'"
    )
    max_batch: int = _env("GLYPHGATE_MAX_BATCH", 256, "most files in one batch request")
    # 200 Mpx: archive masters of whole pages pass (150 Mpx is a 14 x 18 inch sheet at 600 dpi); a
    # header that claims more is refused before decoding, and Pillow's own limit is off (decode.py).
    max_pixels: int = _env(
        "GLYPHGATE_MAX_PIXELS",
        DEFAULT_MAX_PIXELS,
        "most pixels in one image (uploads, scanned folders, page images)",
    )
    host: str = _env("GLYPHGATE_HOST", "127.0.0.1", "address the server binds")
    port: int = _env("GLYPHGATE_PORT", 3000, "port the server binds")
    # Scoring gets the cores; generation runs in its own process with fewer threads so a long
    # SGLD run leaves room for scoring requests.
    ort_threads: int = _env(
        "GLYPHGATE_ORT_THREADS", None, "ONNX Runtime intra-op threads (default: half the cores)"
    )
    torch_threads: int = _env(
        "GLYPHGATE_TORCH_THREADS", None, "torch threads for generation (default: half the cores)"
    )
    log_level: str = _env("GLYPHGATE_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DERIVED = {"artifacts": lambda: SHIPPED, "ort_threads": _cpus_half, "torch_threads": _cpus_half}


def _convert(raw: str, kind: str, name: str):
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not {'an integer' if kind.startswith('int') else 'a number'}"
        ) from None
    if kind.startswith("Path"):
        return Path(raw)
    return raw


def load(environ: dict | None = None) -> Settings:
    """Settings from the environment (or `environ`); ConfigError names the variable at fault.

    Examples
    --------
    >>> load({"GLYPHGATE_PORT": "8080"}).port
    8080
    """
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(Settings):
        raw = environ.get(f.metadata["env"])
        if raw:
            values[f.name] = _convert(raw, str(f.type), f.metadata["env"])
        elif f.name in DERIVED:
            values[f.name] = DERIVED[f.name]()
    values["log_level"] = str(values.get("log_level", "INFO")).upper()
    if values["log_level"] not in LOG_LEVELS:
        raise ConfigError(f"GLYPHGATE_LOG_LEVEL={values['log_level']!r}: expected {', '.join(LOG_LEVELS)}")
    for name in ("max_upload_mb", "max_batch", "max_pixels", "port", "ort_threads", "torch_threads"):
        if name in values and values[name] <= 0:
            raise ConfigError(
                f"{Settings.__dataclass_fields__[name].metadata['env']}={values[name]}: must be positive"
            )
    return Settings(**values)
