"""The files of a scan: everything under a folder or in a ZIP, each read under a byte cap, so a
member that inflates to gigabytes (a ZIP bomb) or a stray disk image in the folder is one error
row and not an out-of-memory kill. The cap is the server's per-request cap
(GLYPHGATE_MAX_UPLOAD_MB): a file the server would refuse is refused here too."""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from glyphgate.core.contract.settings import Settings
from glyphgate.core.errors import DataError

CAP_SETTING = "GLYPHGATE_MAX_UPLOAD_MB"
# What a damaged or hostile member can raise while it is opened or inflated.
MEMBER_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError)


def size_text(n: int) -> str:
    """Bytes in the units the cap is given in (binary, as GLYPHGATE_MAX_UPLOAD_MB is).

    Examples
    --------
    >>> size_text(20 * 1024**3), size_text(1536), size_text(12)
    ('20.0 GB', '1.5 KB', '12 bytes')
    """
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _files_under(root: Path) -> Iterator[str]:
    """Every file under `root`, relative to it. os.walk rather than Path.rglob, which keeps a
    set of every path it yielded: 40,000 files cost 15 MB more at the peak than 10,000."""
    for folder, _, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                yield os.path.relpath(full, root)


class Source:
    """A folder or a ZIP: `names` (sorted, as results.csv lists them) and `read(name)`, which
    returns at most the cap's bytes or raises a one-line DataError naming the file."""

    def __init__(self, path: Path, settings: Settings):
        self.path = path
        self.cap = settings.max_upload_bytes
        self.cap_text = f"the {settings.max_upload_mb:g} MB allowed ({CAP_SETTING})"
        self.archive = None
        if path.is_dir():
            self.names = sorted(_files_under(path))
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self.archive = zipfile.ZipFile(path)
            except MEMBER_ERRORS as e:
                raise DataError(f"{path}: not a readable ZIP archive ({e})") from None
            self.members = {i.filename: i for i in self.archive.infolist() if not i.is_dir()}
            self.names = sorted(self.members)
        elif path.exists():
            raise DataError(f"{path}: neither a folder nor a ZIP archive")
        else:
            raise DataError(f"{path}: no such folder or ZIP file")

    def read(self, name: str) -> bytes:
        try:
            return self._member(name) if self.archive else self._file(name)
        except MEMBER_ERRORS as e:
            raise DataError(f"{name}: unreadable ({e})") from None

    def _file(self, name: str) -> bytes:
        size = (self.path / name).stat().st_size
        if size > self.cap:
            raise DataError(f"{name}: {size_text(size)}, more than {self.cap_text}")
        with open(self.path / name, "rb") as f:
            return self._bounded(name, f.read(self.cap + 1), "grew while it was read")

    def _member(self, name: str) -> bytes:
        info = self.members[name]
        if info.file_size > self.cap:
            raise DataError(
                f"{name}: declares {size_text(info.file_size)} uncompressed, more than {self.cap_text}"
            )
        # The declared size is only a header's word: read one byte past the cap to catch a liar.
        with self.archive.open(info) as member:
            data = member.read(self.cap + 1)
        return self._bounded(name, data, f"declares {size_text(info.file_size)}")

    def _bounded(self, name: str, data: bytes, claim: str) -> bytes:
        if len(data) > self.cap:
            raise DataError(f"{name}: holds more than {self.cap_text} ({claim})")
        return data

    def close(self) -> None:
        if self.archive:
            self.archive.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
