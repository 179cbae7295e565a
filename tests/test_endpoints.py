"""The contracts declared beside each API (serving/endpoints.py), through a real BentoML app
built in this process and the real gate middleware, over httpx's ASGI transport: no server,
no model."""

import asyncio
import functools
from pathlib import Path

import bentoml
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from glyphgate.core.contract.settings import Settings
from glyphgate.core.errors import RequestError
from serving.alpha import read_alpha
from serving.endpoints import Endpoints
from serving.forms import Files, Upload
from serving.generate_params import GenerateRequest
from serving.middleware import GateMiddleware

TOKEN = {"Authorization": "Bearer s3cret"}
ENDPOINTS = Endpoints()


@bentoml.service(name="endpoints-under-test")
class Declared:
    @ENDPOINTS.api(Files("image"), alpha=True)
    async def scored(self, image: Upload, ctx: bentoml.Context, alpha: float | None = None) -> dict:
        return {"file": image.name, "size": len(image.data), "alpha": alpha}

    @ENDPOINTS.api(Files("images", at_most=3))
    def batch(self, images: list[Upload], ctx: bentoml.Context) -> dict:
        return {"files": [u.name for u in images]}

    @ENDPOINTS.api(params=GenerateRequest)
    async def params(self, n: int, steps: int, label: str | None, seed: int, ctx: bentoml.Context) -> dict:
        if label == "refused":
            raise RequestError("label 'refused': refused by the API")
        return {"n": n, "steps": steps, "label": label, "seed": seed}

    # Added the way BentoML documents it, no declaration: the token must still guard it.
    @bentoml.api
    def brand_new(self) -> dict:
        return {"ok": True}


ENDPOINTS.mount_public(
    Declared, Starlette(routes=[Route("/app.js", lambda r: PlainTextResponse("js"))]), "/ui"
)
Declared.add_asgi_middleware(
    GateMiddleware, settings=Settings(api_token="s3cret"), endpoints=ENDPOINTS, description="docs"
)


@functools.cache
def app():
    return Declared.to_asgi()  # once: each build registers BentoML's metrics again


def calls(*requests) -> list[httpx.Response]:
    """Each (method, path, kwargs) through the app, lifespan and all, in order."""
    app_ = app()

    async def go():
        async with app_.router.lifespan_context(app_):
            transport = httpx.ASGITransport(app=app_)
            async with httpx.AsyncClient(transport=transport, base_url="http://gate") as c:
                return [await c.request(method, path, **kw) for method, path, kw in requests]

    return asyncio.run(go())


def png() -> tuple:
    return ("g.png", b"\x89PNG\r\n\x1a\nbytes", "image/png")


def test_an_api_added_without_a_declaration_needs_the_token():
    without, wrong, with_token, declared = calls(
        ("POST", "/brand_new", {"json": {}}),
        ("POST", "/brand_new", {"json": {}, "headers": {"Authorization": "Bearer nope"}}),
        ("POST", "/brand_new", {"json": {}, "headers": TOKEN}),
        ("POST", "/scored", {"files": {"image": png()}}),
    )
    assert without.status_code == wrong.status_code == 401 and "bearer token" in without.json()["error"]
    assert with_token.status_code == 200 and with_token.json() == {"ok": True}
    assert declared.status_code == 401  # declared, not public: guarded as well


def test_only_health_metrics_the_api_page_and_public_mounts_are_open():
    paths = ("/readyz", "/livez", "/docs.json", "/", "/ui/app.js", "/ui", "/uix")
    got = dict(zip(paths, calls(*[("GET", p, {}) for p in paths])))
    assert {p: r.status_code for p, r in got.items()} == {
        "/readyz": 200,
        "/livez": 200,
        "/docs.json": 200,
        "/": 200,
        "/ui/app.js": 200,
        "/ui": 404,  # open (no 401), and nothing there
        "/uix": 401,  # starts like an open mount, is not inside it
    }
    assert got["/docs.json"].json()["info"]["description"] == "docs"
    # BentoML's /metrics does not answer in this process, without a server's set-up;
    # tests/test_serving.py reads it without the token from a real server.
    gate = GateMiddleware(None, Settings(api_token="s3cret"), ENDPOINTS, "docs")
    assert not gate.needs_token("/metrics") and not gate.needs_token("/static_content/index.css")


def test_a_declared_file_field_is_enforced_with_a_message_naming_it():
    ok, wrong, text, too_many, not_multipart = calls(
        ("POST", "/scored", {"files": {"image": png()}, "headers": TOKEN}),
        ("POST", "/scored", {"files": {"file": png()}, "headers": TOKEN}),
        ("POST", "/scored", {"files": {"image": (None, "http://169.254.169.254/")}, "headers": TOKEN}),
        ("POST", "/batch", {"files": [("images", png())] * 4, "headers": TOKEN}),
        ("POST", "/scored", {"json": {"image": "a.png"}, "headers": TOKEN}),
    )
    assert ok.status_code == 200 and ok.json() == {"file": "g.png", "size": 13, "alpha": None}
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "no file in the field 'image'; got 'file'", "file": None}
    assert text.status_code == 400 and "must hold file uploads, not text" in text.json()["error"]
    assert too_many.status_code == 400 and "the limit is 3" in too_many.json()["error"]
    assert (
        not_multipart.status_code == 400 and "expected multipart/form-data" in not_multipart.json()["error"]
    )


def test_alpha_out_of_range_is_refused_by_the_one_validator():
    inside, *outside = calls(
        *[
            ("POST", "/scored", {"files": {"image": png()}, "data": {"alpha": a}, "headers": TOKEN})
            for a in ("0.25", "0", "1", "1.5", "lots")
        ]
    )
    assert inside.status_code == 200 and inside.json()["alpha"] == 0.25
    for a, r in zip(("0", "1", "1.5", "lots"), outside):
        assert r.status_code == 400, (a, r.text)
        with pytest.raises(RequestError) as e:
            read_alpha(a)
        assert r.json() == {"error": str(e.value), "file": None}
    assert "strictly between 0 and 1" in outside[0].json()["error"]
    assert "not a number" in outside[-1].json()["error"]


def test_json_parameters_are_read_once_and_refusals_keep_the_one_shape():
    ok, empty, bad, refused = calls(
        ("POST", "/params", {"json": {"n": 4, "label": "a"}, "headers": TOKEN}),
        ("POST", "/params", {"headers": TOKEN}),
        ("POST", "/params", {"json": {"n": 0}, "headers": TOKEN}),
        ("POST", "/params", {"json": {"label": "refused"}, "headers": TOKEN}),
    )
    assert ok.status_code == 200 and ok.json() == {"n": 4, "steps": 256, "label": "a", "seed": 0}
    assert empty.status_code == 200 and empty.json()["n"] == 16
    assert bad.status_code == 400 and "n=0 is out of range" in bad.json()["error"]
    assert refused.status_code == 400
    assert refused.json() == {"error": "label 'refused': refused by the API", "file": None}


def test_a_declaration_must_match_the_api_it_declares():
    with pytest.raises(TypeError, match="exactly the declared arguments image"):

        @ENDPOINTS.api(Files("image"))
        def misnamed(self, file: Path, ctx: bentoml.Context) -> dict: ...
