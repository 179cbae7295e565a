"""The gate in front of every API: the bearer token and the body-size cap, both checked before
BentoML reads anything; and the API page (its HTML and its description).

What each API takes is declared beside it (serving/endpoints.py) and checked there, when its
body is read; which paths are open without the token comes from those declarations too."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

DOCS_PAGE = Path(__file__).with_name("docs.html").read_bytes()
# BentoML's own paths, none of them an API declared in service.py: health and metrics (no body
# worth capping), the API page's spec and its assets; "/", the API page, is served from here.
OPEN_PATHS = ("/readyz", "/livez", "/healthz", "/metrics")
PUBLIC_PATHS = (*OPEN_PATHS, "/", "/docs.json")
PUBLIC_PREFIXES = ("/static_content",)


def _json(status: int, message: str, headers: list | None = None):
    body = json.dumps({"error": message, "file": None}).encode()
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        + (headers or []),
    }, {"type": "http.response.body", "body": body}


class GateMiddleware:
    """`endpoints`: the service's declared APIs (serving.endpoints.Endpoints). With a token set,
    every path needs it except BentoML's open ones and what the declarations open: deny by
    default, so an API added without a declaration is guarded too."""

    def __init__(self, app, settings, endpoints, description: str):
        self.app, self.settings, self.endpoints, self.description = app, settings, endpoints, description

    def needs_token(self, path: str) -> bool:
        public = path in PUBLIC_PATHS or any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES)
        return not (public or self.endpoints.is_public(path))

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
        if token and self.needs_token(path):
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
