"""Multipart bodies read once, against the file fields an endpoint declares.

BentoML's own multipart parser would download a URL given as text in a file field; reading
the form here, and refusing text parts in file fields, means the server never fetches
anything on a client's behalf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from glyphgate.core.errors import RequestError
from serving.alpha import read_alpha
from serving.rescale import read_rescale


@dataclass(frozen=True)
class Files:
    """A declared file field: its name, and how many files it takes (at least one)."""

    field: str
    at_most: int = 1


@dataclass(frozen=True)
class Upload:
    """One received file: the client's name for it (temp paths mean nothing to it) and its bytes."""

    name: str
    data: bytes

    def saved_in(self, folder: Path, stem: str) -> Path:
        """For readers that need a path; the client's suffix kept, since some readers go by it."""
        path = folder / f"{stem}{Path(self.name).suffix}"
        path.write_bytes(self.data)
        return path


def _listed(keys) -> str:
    return ", ".join(repr(k) for k in keys)


async def read_form(request: Request, files: tuple[Files, ...], alpha: bool, rescale: bool = False) -> dict:
    """The request's form as the API's arguments ({field: Upload or [Upload, ...], "alpha": ...}),
    or RequestError naming the field at fault and what to send instead."""
    body = await request.body()  # already in memory: the gate middleware buffered it to cap its size
    ctype = request.headers.get("content-type", "")
    limit = sum(f.at_most for f in files)
    if len(files) > 1:
        if not body or not ctype.startswith("multipart/form-data"):
            raise RequestError(
                f"expected multipart/form-data with one file in each of the fields {_listed(fields(files))}"
            )
    elif not body:
        raise RequestError(
            f"empty body: send multipart/form-data with the image file(s) in the field {files[0].field!r}"
        )
    elif not ctype.startswith("multipart/form-data"):
        raise RequestError(
            f"expected multipart/form-data with the file(s) in the field {files[0].field!r}, got "
            f"{ctype.split(';')[0] or 'no Content-Type'}"
        )
    try:
        form = await request.form(max_files=limit + 1, max_fields=16)
    except (HTTPException, MultiPartException) as e:  # starlette wraps python-multipart's errors
        detail = str(getattr(e, "detail", None) or getattr(e, "message", e))
        if "Too many files" in detail:
            raise RequestError(f"more than {limit} files in one request; the limit is {limit}") from None
        raise RequestError(f"malformed multipart body ({detail})") from None
    allowed = set(fields(files)) | ({"alpha"} if alpha else set()) | ({"rescale"} if rescale else set())
    others = sorted(set(form.keys()) - allowed)
    (_check_each if len(files) > 1 else _check_one)(form, files, others)
    values: dict = {}
    for f in files:
        got = [
            Upload(v.filename or (f.field if len(files) > 1 else f"upload {i}"), v.file.read())
            for i, v in enumerate(form.getlist(f.field))
        ]
        values[f.field] = got[0] if f.at_most == 1 else got
    if alpha:
        values["alpha"] = read_alpha(form["alpha"]) if "alpha" in form else None
    if rescale:
        values["rescale"] = read_rescale(form.get("rescale"))
    return values


def fields(files: tuple[Files, ...]) -> list[str]:
    return [f.field for f in files]


def _check_one(form: FormData, files: tuple[Files, ...], others: list[str]) -> None:
    """One file field (a scan, or a batch of them)."""
    field, limit = files[0].field, files[0].at_most
    values = form.getlist(field)
    if not values:
        raise RequestError(f"no file in the field {field!r}" + (f"; got {_listed(others)}" if others else ""))
    if others:
        raise RequestError(f"unexpected field(s) {_listed(others)}: put the file(s) in {field!r}")
    if any(not isinstance(v, UploadFile) for v in values):
        raise RequestError(
            f"the field {field!r} must hold file uploads, not text (a URL or base64 string is never fetched "
            f"or decoded: send the image bytes as a file)"
        )
    if len(values) > limit:
        raise RequestError(f"{len(values)} files in one request; the limit is {limit}")


def _check_each(form: FormData, files: tuple[Files, ...], others: list[str]) -> None:
    """Several file fields of one file each (a page image and its PAGE-XML)."""
    want = " and ".join(repr(f) for f in fields(files))
    if others:
        raise RequestError(f"unexpected field(s) {_listed(others)}: send one file in each of {want}")
    for f in fields(files):
        values = form.getlist(f)
        if len(values) != 1 or not isinstance(values[0], UploadFile):
            raise RequestError(
                f"the field {f!r} must hold exactly one file upload (got {len(values)}); send {want}"
            )
