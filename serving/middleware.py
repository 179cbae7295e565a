"""The gate in front of every API: the bearer token and the body-size cap, both checked before
BentoML reads anything; one log line per refused request; and the API page (its HTML and its
description).

What each API takes is declared beside it (serving/endpoints.py) and checked there, when its
body is read; which paths are open without the token comes from those declarations too."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from http import HTTPStatus
from pathlib import Path

import aiohttp

DOCS_PAGE = Path(__file__).with_name("docs.html").read_bytes()
# BentoML's own paths, none of them an API declared in service.py: health and metrics (no body
# worth capping), the API page's spec and its assets; "/", the API page, is served from here.
OPEN_PATHS = ("/readyz", "/livez", "/healthz", "/metrics")
PUBLIC_PATHS = (*OPEN_PATHS, "/", "/docs.json")
PUBLIC_PREFIXES = ("/static_content",)
# BentoML's /readyz asks the generator's /readyz; while the generator restarts that probe
# raises instead of answering, and BentoML's TimeoutMiddleware (outside this one) then holds
# the request for the whole traffic timeout (600 s) before uvicorn answers 500.
PROBE_FAILURES = (TimeoutError, aiohttp.ClientError, OSError)
REASON_BYTES = 65536  # enough for a refused batch's per-file errors; a longer body is cut
# The API workers share one listening socket, and a client keeps its connection to the worker
# that accepted it: after a worker is killed, every client reconnects to the survivor and the
# replacement got none of them back (bench/soak.py measured 0 % of the requests after its
# return). Closing a connection after this many answers lets clients spread over the workers
# again within seconds, for one reconnect (well under a millisecond) per that many requests.
ANSWERS_PER_CONNECTION = 100
TRACKED_CONNECTIONS = 10_000  # counts of connections long closed are dropped past this many

log = logging.getLogger("glyphgate")


async def _reply(send, status: int, message: str, headers: list | None = None) -> None:
    """An answer in the one error shape, from here rather than from an API."""
    body = json.dumps({"error": message, "file": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no reason given"


class RefusalLog:
    """Watches one request's answer and logs it once when it is a refusal (status 400 or over),
    whoever made it: this middleware, an API, BentoML's router or its validation."""

    def __init__(self, scope, send):
        self.method, self.path, self._send = scope["method"], scope["path"], send
        self.started, self.status, self._body, self._logged = False, 0, bytearray(), False

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.started, self.status = True, message["status"]
        elif message["type"] == "http.response.body" and self.status >= 400:
            self._body += message.get("body", b"")[: REASON_BYTES - len(self._body)]
            if not message.get("more_body", False):
                self._log(self._reason())
        await self._send(message)

    def cancelled(self) -> None:
        """BentoML's TimeoutMiddleware cancels a request over the traffic timeout and answers it
        504 itself, outside this middleware."""
        if not self.started:
            self.status = HTTPStatus.GATEWAY_TIMEOUT
            self._log("cancelled: over the server's request timeout, or the server is stopping")

    def _reason(self) -> str:
        """The body's "error" (glyphgate's shape and BentoML's), else its text, on one line."""
        text = bytes(self._body).decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, list) and body:  # BentoML answers some 4xx as [{"error": ...}]
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        return " ".join((error if isinstance(error, str) else text).split()) or _phrase(self.status)

    def _log(self, reason: str) -> None:
        if not self._logged:
            self._logged = True
            log.info("%d %s %s: %s", self.status, self.method, self.path, reason)


class GateMiddleware:
    """`endpoints`: the service's declared APIs (serving.endpoints.Endpoints). With a token set,
    every path needs it except BentoML's open ones and what the declarations open: deny by
    default, so an API added without a declaration is guarded too."""

    def __init__(self, app, settings, endpoints, description: str):
        self.app, self.settings, self.endpoints, self.description = app, settings, endpoints, description
        self._answers: dict[tuple, int] = {}  # per client (host, port): one kept-alive connection

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        watched = RefusalLog(scope, self._closing_when_due(scope, send))
        try:
            await self._gate(scope, receive, watched.send)
        except asyncio.CancelledError:
            watched.cancelled()
            raise
        except Exception as e:
            if watched.started:
                raise
            if scope["path"] == "/readyz" and isinstance(e, PROBE_FAILURES):
                message = f"not ready: the generator did not answer its readiness probe ({type(e).__name__})"
                return await _reply(watched.send, 503, message)
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            return await _reply(watched.send, 500, "unexpected server error; the server log has the details")

    def _closing_when_due(self, scope, send):
        """`send`, or, on a connection's ANSWERS_PER_CONNECTION-th answer, `send` with
        "Connection: close" added (uvicorn then closes it once the answer is out)."""
        client = scope.get("client")
        if client is None:
            return send
        answered = self._answers.get(client, 0) + 1
        if answered < ANSWERS_PER_CONNECTION:
            if len(self._answers) >= TRACKED_CONNECTIONS:
                self._answers.clear()
            self._answers[client] = answered
            return send
        self._answers.pop(client, None)

        async def closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return closing

    def needs_token(self, path: str) -> bool:
        public = path in PUBLIC_PATHS or any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES)
        return not (public or self.endpoints.is_public(path))

    async def _gate(self, scope, receive, send):
        path = scope["path"].rstrip("/") or "/"
        headers = dict(scope["headers"])

        async def reply(status, message, extra_headers=None):
            await _reply(send, status, message, extra_headers)

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
