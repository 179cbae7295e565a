"""Strict decoding of uploaded scans: by content, never by file name or declared type."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glyphgate.core.errors import RequestError
from glyphgate.core.image.preprocess import pil_to_gray, prepare, prepare_many

# Formats a scanning pipeline sends; anything else is refused before a decoder runs.
FORMATS = ["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM"]
DEFAULT_MAX_PIXELS = 40_000_000  # GLYPHGATE_MAX_PIXELS changes it for the server and scans


class BadImage(RequestError):
    """An upload that is not a usable image; the message says why (shown to the client) and
    `file` names the upload when the caller knows which one it was."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(message)
        self.file = file


def decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """bytes -> float32 [1, 1, 56, 56] in [-1, 1], or BadImage naming the upload and the problem."""
    return prepare(load_gray(data, name, max_pixels))


def decode_many(
    uploads: list[tuple[str, bytes]], max_pixels: int
) -> tuple[np.ndarray, list[int], list[dict]]:
    """Many uploads -> (model inputs [M, 1, 56, 56], indexes of the M good ones, errors of the rest)."""
    grays, ok, errors = [], [], []
    for i, (name, data) in enumerate(uploads):
        try:
            grays.append(load_gray(data, name, max_pixels))
            ok.append(i)
        except BadImage as e:
            errors.append({"index": i, "file": name, "error": str(e)})
    return prepare_many(grays), ok, errors


# Above either size an upload is decoded off the event loop (serving/priority.py): a 6000x6000
# PNG takes over a second to decode, and on the loop it stalls every small request behind it.
HEAVY_BYTES = 256 * 1024
HEAVY_PIXELS = 2_000_000


def is_heavy(data: bytes) -> bool:
    """True when decoding `data` takes long: many bytes, or a header that declares many pixels
    (a flat 36-megapixel PNG is only kilobytes). Reading the header costs microseconds."""
    if len(data) > HEAVY_BYTES:
        return True
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
    except Exception:  # not an image at all: the real decode says why, quickly
        return False
    return w * h > HEAVY_PIXELS


@contextlib.contextmanager
def open_image(
    source: bytes | str | Path, name: str, max_pixels: int | None, error=BadImage, what: str = "an image"
) -> Iterator[Image.Image]:
    """The one way glyphgate opens an image it is given (uploads, scan folders, data folders, page
    images): Pillow restricted to FORMATS, the pixel cap checked from the header before a pixel is
    decoded, decompression bombs refused, and every failure one `error` naming `name`. Yields the
    loaded image. `max_pixels=None` leaves only Pillow's own bomb limit (pages of a few 100 MP)."""
    try:
        with warnings.catch_warnings():
            if max_pixels is not None:
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=FORMATS)
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                im.close()
                raise error(f"{name}: {w}x{h} = {w * h:,} pixels is over the {max_pixels:,}-pixel cap")
            im.load()
    except error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise error(f"{name}: refused as a decompression bomb (declares more pixels than allowed)") from None
    except FileNotFoundError:
        raise error(f"{name}: file not found") from None
    except UnidentifiedImageError:
        head = source[:256] if isinstance(source, bytes) else _head(source)
        kind = _signature(head)
        if kind:  # the file starts like an image Pillow reads, so it was cut off or damaged
            size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
            raise error(f"{name}: damaged or truncated {kind} ({size:,} bytes)") from None
        hint = " (it looks like base64 text; send the raw bytes)" if _looks_base64(head) else ""
        raise error(f"{name}: not {what} in a supported format ({', '.join(FORMATS)}){hint}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise error(f"{name}: damaged or truncated image ({e})") from None
    with im:
        yield im


def load_gray(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """bytes -> the grey (H, W) float array preprocessing starts from; BadImage when unusable."""
    if not data:
        raise BadImage(f"{name}: empty file (0 bytes)")
    head = data[:64].lstrip()
    # Only a real scheme counts: a CSV whose header starts "filename," is just not an image.
    if re.match(rb"(?i)(https?|ftp|file)://", head) or head[:2] == b"//":
        raise BadImage(
            f"{name}: looks like a URL, not image bytes; upload the file itself (URLs are never fetched)"
        )
    with open_image(data, name, max_pixels) as im:
        return pil_to_gray(im)


def _head(path: str | Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(256)


SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
)


def _signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def _looks_base64(data: bytes) -> bool:
    sample = data[:256].strip()
    return len(sample) >= 16 and all(
        c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n" for c in sample
    )
