"""A decompression bomb's shape for the tests: a PNG whose header declares width x height but whose
data is one row, so it costs nothing to send and everything to decode."""

import struct
import zlib


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height (1-bit grey) but carries one row of data."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
