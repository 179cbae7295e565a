"""The gate in front of every API: bearer token, body-size cap, and the shape of multipart
uploads, checked before BentoML parses anything.

BentoML's multipart parser would download a URL given as text in a file field; rejecting
text parts here means the server never fetches anything on a client's behalf."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request

from serving.generate_params import check_params

DOCS_PAGE = Path(__file__).with_name("docs.html").read_bytes()
OPEN_PATHS = ("/readyz", "/livez", "/healthz", "/metrics")
# With a token set, these are the only paths reachable without it: health, metrics, the docs
# page and its assets, the demo page (which asks for the token before it calls an API). Every
# other path, any endpoint added later included, needs the bearer token: deny by default.
PUBLIC_PATHS = (*OPEN_PATHS, "/", "/docs.json")
PUBLIC_PREFIXES = ("/ui", "/static_content")


def needs_token(path: str) -> bool:
    public = path in PUBLIC_PATHS or any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES)
    return not public


# endpoint -> (file field, at most how many files); None = no file upload on that endpoint
UPLOADS = {
    "/classify": ("image", 1),
    "/score": ("image", 1),
    "/preview": ("image", 1),
    "/classify_batch": ("images", None),
    "/score_batch": ("images", None),
}
# endpoint -> the file fields it needs, one file each
PAIRS = {"/scan_page": ("image", "page")}
# endpoints that take an optional text field `alpha`: flag when p_value < alpha for that request
ALPHA_PATHS = {"/classify", "/score", "/classify_batch", "/score_batch"}


def alpha_problem(value) -> str | None:
    if isinstance(value, UploadFile):
        return "the field 'alpha' must be a number, not a file"
    try:
        a = float(value)
    except (TypeError, ValueError):
        return f"alpha {str(value)[:40]!r}: not a number"
    return None if 0 < a < 1 else f"alpha {a}: expected a value strictly between 0 and 1"


def _json(status: int, message: str, headers: list | None = None):
    body = json.dumps({"error": message, "file": None}).encode()
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        + (headers or []),
    }, {"type": "http.response.body", "body": body}


async def _form(scope, body: bytes, max_files: int, max_fields: int):
    """Parse an already buffered multipart body (the app gets the same bytes replayed afterwards)."""

    async def once():
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(scope, once).form(max_files=max_files, max_fields=max_fields)


class GateMiddleware:
    def __init__(self, app, settings, classes: list[str], description: str):
        self.app, self.settings, self.classes, self.description = app, settings, classes, description

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/") or "/"
        headers = dict(scope["headers"])

        async def reply(status, message, extra_headers=None):
            start, body = _json(status, message, extra_headers)
            await send(start)
            await send(body)

        token = self.settings.api_token
        if token and needs_token(path):
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return await reply(
                    401,
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                    [(b"www-authenticate", b"Bearer")],
                )
        if path == "/" and scope["method"] in ("GET", "HEAD"):
            return await self._docs_page(scope, send)
        if path == "/docs.json" and scope["method"] == "GET":
            return await self.app(scope, receive, self._own_description(send))
        if scope["method"] != "POST" or path in OPEN_PATHS:
            return await self.app(scope, receive, send)

        cap = self.settings.max_upload_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return await reply(413, self._too_large(int(declared)))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return await reply(413, self._too_large(size))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        if path in PAIRS:
            problem = await self._check_pair(scope, headers, body, PAIRS[path])
            if problem:
                return await reply(400, problem)
        elif path in UPLOADS:
            problem = await self._check_upload(scope, headers, body, *UPLOADS[path])
            if problem:
                return await reply(400, problem)
        elif path in ("/generate", "/generate_chain"):
            problem = check_params(body or b"{}", self.classes)
            if problem:
                return await reply(400, problem)

        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _docs_page(scope, send):
        body = DOCS_PAGE
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

    def _own_description(self, send):
        """BentoML's default OpenAPI description is a README whose badges load images from
        img.shields.io and readthedocs.org; the API page shows glyphgate's own words instead."""
        start, chunks = {}, []

        async def rewrite(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            spec = json.loads(b"".join(chunks) or b"{}")
            spec.setdefault("info", {})["description"] = self.description
            body = json.dumps(spec).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        return rewrite

    def _too_large(self, size: int) -> str:
        return (
            f"request body of {size:,} bytes is over the {self.settings.max_upload_bytes:,}-byte limit "
            f"(GLYPHGATE_MAX_UPLOAD_MB={self.settings.max_upload_mb:g})"
        )

    async def _check_pair(self, scope, headers: dict, body: bytes, fields: tuple[str, ...]) -> str | None:
        """Exactly one file in each of `fields` and nothing else (a page image and its PAGE-XML)."""
        want = " and ".join(repr(f) for f in fields)
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        if not body or not ctype.startswith("multipart/form-data"):
            return f"expected multipart/form-data with one file in each of the fields {want}"

        try:
            form = await _form(scope, body, max_files=len(fields) + 1, max_fields=8)
        except Exception as e:  # python-multipart raises several types for broken bodies
            return f"malformed multipart body ({getattr(e, 'detail', e)})"
        try:
            others = sorted(set(form.keys()) - set(fields))
            if others:
                return f"unexpected field(s) {', '.join(repr(k) for k in others)}: send one file in each of {want}"
            for f in fields:
                values = form.getlist(f)
                if len(values) != 1 or not isinstance(values[0], UploadFile):
                    return (
                        f"the field {f!r} must hold exactly one file upload (got {len(values)}); send {want}"
                    )
            scope.setdefault("state", {})["upload_names"] = [form[f].filename or f for f in fields]
        finally:
            await form.close()
        return None

    async def _check_upload(
        self, scope, headers: dict, body: bytes, field: str, limit: int | None
    ) -> str | None:
        limit = limit or self.settings.max_batch
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        if not body:
            return f"empty body: send multipart/form-data with the image file(s) in the field {field!r}"
        if not ctype.startswith("multipart/form-data"):
            return (
                f"expected multipart/form-data with the file(s) in the field {field!r}, got "
                f"{ctype.split(';')[0] or 'no Content-Type'}"
            )

        try:
            form = await _form(scope, body, max_files=limit + 1, max_fields=16)
        except Exception as e:  # python-multipart raises several types for broken bodies
            detail = str(getattr(e, "detail", e))
            if "Too many files" in detail:
                return f"more than {limit} files in one request; the limit is {limit}"
            return f"malformed multipart body ({detail})"
        try:
            values = form.getlist(field)
            optional = {"alpha"} if scope["path"].rstrip("/") in ALPHA_PATHS else set()
            others = sorted(set(form.keys()) - {field} - optional)
            if not values:
                extra = f"; got {', '.join(repr(k) for k in others)}" if others else ""
                return f"no file in the field {field!r}{extra}"
            if others:
                return (
                    f"unexpected field(s) {', '.join(repr(k) for k in others)}: put the file(s) in {field!r}"
                )
            texts = [v for v in values if not isinstance(v, UploadFile)]
            if texts:
                return (
                    f"the field {field!r} must hold file uploads, not text (a URL or base64 string is never fetched "
                    f"or decoded: send the image bytes as a file)"
                )
            if len(values) > limit:
                return f"{len(values)} files in one request; the limit is {limit}"
            if "alpha" in optional and "alpha" in form and (problem := alpha_problem(form["alpha"])):
                return problem
            # BentoML hands the API temp-file paths; keep the client's names for the results.
            scope.setdefault("state", {})["upload_names"] = [
                v.filename or f"upload {i}" for i, v in enumerate(values)
            ]
        finally:
            await form.close()
        return None
