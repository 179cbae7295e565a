"""Strict decoding of uploaded scans: by content, never by file name or declared type."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glyphgate.core.errors import GlyphgateError, RequestError
from glyphgate.core.image.preprocess import REDUCE_ABOVE, gray_array, on_white, prepare_many

try:
    import cv2

    # a damaged PNG is Pillow's to explain in one line; OpenCV would also print warnings
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except ImportError:  # a server installed without it decodes everything with Pillow
    cv2 = None

# Formats a scanning pipeline sends; anything else is refused before a decoder runs.
FORMATS = ["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM"]
# GLYPHGATE_MAX_PIXELS (settings.max_pixels) changes it for the server, scans and page imports.
# One limit for every image, high enough for archive masters of whole pages (150 Mpx is a 14 x 18
# inch sheet at 600 dpi). A flat image that large costs its decoded size while it decodes (an RGB
# 200 Mpx PNG of a few KB: 600 MB), so a server that takes glyph uploads only may set it lower.
DEFAULT_MAX_PIXELS = 200_000_000
SETTING = "GLYPHGATE_MAX_PIXELS"

# Our own cap, checked from the header in open_image before a pixel is decoded, is the one limit:
# Pillow's fixed one (a DecompressionBombWarning at 89 Mpx, an error at 179 Mpx) would otherwise
# refuse archive pages whatever GLYPHGATE_MAX_PIXELS says, and print its warning into the logs.
# Every image glyphgate is given is opened by open_image (is_heavy reads only a header).
Image.MAX_IMAGE_PIXELS = None
# Pillow's own warnings about an image (corrupt EXIF, odd APNG chunks, palette transparency) say
# nothing a user can act on and would land in the server log: ignored, by a filter installed once
# at import (catch_warnings per image is not thread-safe, and the server decodes in threads; a
# filter added per image costs every decode and resets the warning registries each time).
warnings.filterwarnings("ignore", module=r"PIL\.", append=True)


class BadImage(RequestError):
    """An upload that is not a usable image; the message says why (shown to the client) and
    `file` names the upload when the caller knows which one it was."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(message)
        self.file = file


def decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """bytes -> float32 [1, 1, 56, 56] in [-1, 1], or BadImage naming the upload and the problem."""
    return prepare_many([load_gray(data, name, max_pixels)])


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


def too_many_pixels(name: str, size: tuple[int, int], max_pixels: int) -> str | None:
    """The refusal of an image of `size` (width, height) over the cap, or None when it fits."""
    w, h = size
    if w * h <= max_pixels:
        return None
    return f"{name}: {w} × {h} = {w * h:,} pixels, more than {SETTING}={max_pixels} (refused before decoding)"


@contextlib.contextmanager
def open_image(
    source: bytes | str | Path,
    name: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    error=BadImage,
    what: str = "an image",
    before_load: Callable[[Image.Image], None] | None = None,
) -> Iterator[Image.Image]:
    """The one way glyphgate opens an image it is given (uploads, scan folders, data folders, page
    images): Pillow restricted to FORMATS, the pixel cap (GLYPHGATE_MAX_PIXELS) checked from the
    header before a pixel is decoded, Pillow's warnings kept out of the logs, and every failure one
    `error` naming `name`. `before_load(im)` sees the opened, not yet decoded image: it may refuse
    it (a GlyphgateError passes through) or ask for a reduced decode (Image.draft). Yields the
    loaded image."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=FORMATS)
        refusal = too_many_pixels(name, im.size, max_pixels)
        if refusal:
            im.close()
            raise error(refusal)
        if before_load is not None:
            before_load(im)
        im.load()
    except GlyphgateError:
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


def gray8(im: Image.Image) -> np.ndarray:
    """A loaded page image -> its 8-bit grey (H, W) uint8 array, for pages of 100+ Mpx: one byte a
    pixel and at most one copy beside the decoded image (never a float page, 4 bytes a pixel).
    Transparency is composited onto white; 16-bit scans keep the top 8 bits of the range they use."""
    im = on_white(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        deep = np.asarray(im)
        if deep.dtype.kind == "i":  # mode I is signed; ink is never below black
            deep = np.clip(deep, 0, None)
        shift = max(0, int(deep.max(initial=0)).bit_length() - 8)
        return (deep >> shift).astype(np.uint8)
    if im.mode != "L":
        im = im.convert("L")
    return _copied_in_strips(im)


STRIP_BYTES = 4 * 1024 * 1024


def _copied_in_strips(im: Image.Image) -> np.ndarray:
    """An "L" image as a uint8 array, copied strip by strip: np.asarray(im) goes through tobytes,
    which holds the pixels twice more while it joins its chunks (a 150 Mpx page: +300 MB)."""
    w, h = im.size
    out = np.empty((h, w), np.uint8)
    rows = max(1, STRIP_BYTES // max(w, 1))
    for top in range(0, h, rows):
        strip = im.crop((0, top, w, min(h, top + rows)))
        out[top : top + rows] = np.frombuffer(strip.tobytes(), np.uint8).reshape(-1, w)
    return out


def load_gray(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """bytes -> the grey (H, W) array preprocessing starts from (uint8 for 8-bit scans, else
    float32); BadImage when unusable."""
    if not data:
        raise BadImage(f"{name}: empty file (0 bytes)")
    head = data[:64].lstrip()
    # Only a real scheme counts: a CSV whose header starts "filename," is just not an image.
    if re.match(rb"(?i)(https?|ftp|file)://", head) or head[:2] == b"//":
        raise BadImage(
            f"{name}: looks like a URL, not image bytes; upload the file itself (URLs are never fetched)"
        )
    fast = _grey_png(data, max_pixels)
    if fast is not None:
        return fast
    with open_image(data, name, max_pixels) as im:
        return gray_array(im)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _grey_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """An 8-bit grey PNG without transparency (what segmenters, page imports and our corpus
    write) decoded by OpenCV's libpng: 45 us a crop where Pillow's Python around the same libpng
    costs 100, and the pixels are the same (lossless, no colour or gamma conversion). None for
    any other file, or when libpng refuses it: Pillow then decodes it, or says what is wrong."""
    if cv2 is None or len(data) < 33 or data[:8] != PNG_MAGIC or data[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    bit_depth, colour_type = data[24], data[25]
    first_data = data.find(b"IDAT")
    if (bit_depth, colour_type) != (8, 0) or first_data < 0 or b"tRNS" in data[:first_data]:
        return None
    if w * h > max_pixels or max(w, h) >= 2 * REDUCE_ABOVE:  # refused, or reduced: Pillow's path
        return None
    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return a if a is not None and a.shape == (h, w) else None


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
