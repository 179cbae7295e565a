"""The files of a scan: everything under a folder or in a ZIP, or the paths and URIs a manifest
(CSV or Parquet) lists, each read under a byte cap, so a member that inflates to gigabytes (a ZIP
bomb) or a stray disk image in the folder is one error row and not an out-of-memory kill. The cap
is the server's per-request cap (GLYPHGATE_MAX_UPLOAD_MB): a file the server would refuse is
refused here too."""

from __future__ import annotations

import csv
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
    set of every path it yielded: 40,000 files cost 15 MB more at the peak than 10,000. Each
    folder's relative name is made once, not per file (os.path.relpath costs 45 us a call)."""
    for folder, _, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel + os.sep
        for name in files:
            if os.path.isfile(os.path.join(folder, name)):
                yield prefix + name


MANIFESTS = (".csv", ".parquet")
MANIFEST_COLUMN = "path"


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MANIFESTS


def manifest_entries(path: Path) -> list[str]:
    """The `path` column of a CSV or Parquet manifest (else its only column), in its order, each
    entry once: absolute paths, paths relative to the manifest's folder, or URIs."""
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: a Parquet manifest needs pyarrow (pip install '.[ray]')") from None
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow's errors have no common base beyond ArrowException/OSError
            raise DataError(f"{path}: not a readable Parquet file ({e})") from None
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
    else:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        columns = {
            name: [r[i] for r in rows[1:] if len(r) > i] for i, name in enumerate(rows[0] if rows else [])
        }
    column = (
        MANIFEST_COLUMN
        if MANIFEST_COLUMN in columns
        else next(iter(columns), None)
        if len(columns) == 1
        else None
    )
    if column is None:
        raise DataError(
            f"{path}: a manifest needs a '{MANIFEST_COLUMN}' column (it has {', '.join(columns) or 'none'})"
        )
    return list(dict.fromkeys(str(v) for v in columns[column] if v not in (None, "")))


class Source:
    """A folder, a ZIP or a manifest: `names` (a folder's and a ZIP's sorted, a manifest's in its
    order, as results.csv lists them) and `read(name)`, which returns at most the cap's bytes or
    raises a one-line DataError naming the file."""

    def __init__(self, path: Path, settings: Settings, listed: bool = True):
        """`listed=False`: a reader only (a scan's worker process), which need not walk a
        folder of millions of files again; `names` is then empty for a folder."""
        self.path = path
        self.cap = settings.max_upload_bytes
        self.cap_text = f"the {settings.max_upload_mb:g} MB allowed ({CAP_SETTING})"
        self.archive = None
        self.manifest = is_manifest(path)
        if self.manifest:
            self.names = manifest_entries(path) if listed else []
        elif path.is_dir():
            self.names = sorted(_files_under(path)) if listed else []
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self.archive = zipfile.ZipFile(path)
            except MEMBER_ERRORS as e:
                raise DataError(f"{path}: not a readable ZIP archive ({e})") from None
            self.members = {i.filename: i for i in self.archive.infolist() if not i.is_dir()}
            self.names = sorted(self.members)
        elif path.exists():
            raise DataError(f"{path}: neither a folder, a ZIP archive nor a manifest (.csv, .parquet)")
        else:
            raise DataError(f"{path}: no such folder or ZIP file")

    def read(self, name: str) -> bytes:
        try:
            if self.archive:
                return self._member(name)
            if self.manifest and "://" in name and not name.startswith("file://"):
                return self._uri(name)
            return self._file(name)
        except MEMBER_ERRORS as e:
            raise DataError(f"{name}: unreadable ({e})") from None

    def _file(self, name: str) -> bytes:
        where = self.path / name if not self.manifest else self.path.parent / name.removeprefix("file://")
        size = where.stat().st_size
        if size > self.cap:
            raise DataError(f"{name}: {size_text(size)}, more than {self.cap_text}")
        with open(where, "rb") as f:
            return self._bounded(name, f.read(self.cap + 1), "grew while it was read")

    def _uri(self, name: str) -> bytes:
        """A manifest's s3://, gs://, hdfs://... entry, through pyarrow's filesystems (the ones
        Ray Data reads with), under the same cap."""
        try:
            from pyarrow import fs
        except ImportError:
            raise DataError(f"{name}: reading URIs needs pyarrow (pip install '.[ray]')") from None
        try:
            filesystem, where = fs.FileSystem.from_uri(name)
            size = filesystem.get_file_info(where).size
            if size is not None and size > self.cap:
                raise DataError(f"{name}: {size_text(size)}, more than {self.cap_text}")
            with filesystem.open_input_stream(where) as f:
                return self._bounded(name, f.read(self.cap + 1), "grew while it was read")
        except DataError:
            raise
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError / its own per filesystem
            raise DataError(f"{name}: unreadable ({e})") from None

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
