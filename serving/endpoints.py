"""Each API's contract, declared once beside it: the file fields it takes, whether it takes
`alpha`, the JSON parameters it reads, whether it is open without the token.

    @ENDPOINTS.api(Files("image"), alpha=True)
    async def score(self, image: Upload, ctx: bentoml.Context, alpha: float | None = None): ...

The declaration reads the body once, in place of BentoML's parser (which would fetch a URL
sent as text in a file field), and the API gets Uploads with the client's file names. A
refusal, there or raised by the API as RequestError, is a 4xx in the one error shape
{"error": ..., "file": ...} (a 503 for Unavailable); the gate middleware logs it. The gate
middleware asks the registry which paths are open; an API declared any other way needs the token."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import bentoml
from pydantic import BaseModel, Field, create_model
from starlette.responses import JSONResponse

from glyphgate.core.errors import RequestError
from serving.alpha import alpha_field
from serving.forms import Files, read_form
from serving.rescale import rescale_field

CONTEXT = ("ctx", "context")  # the parameter names BentoML passes its Context as


@dataclass(frozen=True)
class Endpoint:
    files: tuple[Files, ...] = ()
    alpha: bool = False
    rescale: bool = False  # the form flag of pages: the image is a scaled copy of the XML's page
    params: type[BaseModel] | None = None  # a JSON body, read by the model's from_body
    public: bool = False

    def __post_init__(self):
        if bool(self.files) == bool(self.params):
            raise TypeError("an endpoint takes either file fields or JSON parameters")
        if (self.alpha or self.rescale) and not self.files:
            raise TypeError("alpha and rescale are form fields: they come with file fields")
        if len(self.files) > 1 and any(f.at_most != 1 for f in self.files):
            raise TypeError("several file fields take one file each")

    def arguments(self) -> dict[str, tuple]:
        """The API's arguments as the API page documents them."""
        if self.params is not None:
            return {name: (f.annotation, f) for name, f in self.params.model_fields.items()}
        out = {}
        for f in self.files:
            kind = "one file" if f.at_most == 1 else f"1 to {f.at_most} files"
            out[f.field] = (Path if f.at_most == 1 else list[Path], Field(description=kind))
        out |= {"alpha": alpha_field()} if self.alpha else {}
        return out | ({"rescale": rescale_field()} if self.rescale else {})

    async def read(self, request) -> dict[str, Any]:
        """The request body as the API's arguments, or RequestError."""
        if self.params is not None:
            return self.params.from_body(await request.body()).model_dump()
        return await read_form(request, self.files, self.alpha, self.rescale)


@dataclass(frozen=True)
class Unread:
    """Every argument of a refused request: the API answers `error` without running."""

    error: RequestError


class DeclaredInput(bentoml.IODescriptor):
    endpoint: ClassVar[Endpoint]

    @classmethod
    async def from_http_request(cls, request, serde):
        try:
            values = await cls.endpoint.read(request)
        except RequestError as e:  # raised here, BentoML would answer 500
            values = dict.fromkeys(cls.model_fields, Unread(e))
        return cls.model_construct(**values)


class Unavailable(RequestError):
    """A request the server cannot answer now but will later (the generator is restarting):
    503, with the seconds to wait before trying again."""

    status = 503

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def refusal(
    ctx: bentoml.Context,
    message: str,
    file: str | None = None,
    status: int = 400,
    headers: dict | None = None,
    **extra,
):
    """The one error shape of every endpoint, never a traceback (the gate middleware logs it)."""
    ctx.response.status_code = status  # BentoML copies it onto any response an API returns
    return JSONResponse({"error": message, "file": file, **extra}, status_code=status, headers=headers)


def _refused(ctx, e: RequestError):
    status = getattr(e, "status", 400)
    headers = {"Retry-After": str(e.retry_after_s)} if isinstance(e, Unavailable) else None
    return refusal(ctx, str(e), getattr(e, "file", None), status, headers, **getattr(e, "extra", {}))


def _answering_refusals(func):
    """`func` run only on a body that was read, its RequestError answered as a refusal; sync stays
    sync, since BentoML runs a sync API in its thread pool and an async one on the event loop."""
    ctx_name = next(p for p in inspect.signature(func).parameters if p in CONTEXT)

    def unread(kwargs) -> RequestError | None:
        return next((v.error for v in kwargs.values() if isinstance(v, Unread)), None)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(self, *args, **kwargs):
            try:
                if (e := unread(kwargs)) is not None:
                    raise e
                return await func(self, *args, **kwargs)
            except RequestError as e:
                return _refused(kwargs[ctx_name], e)

        return run_async

    @functools.wraps(func)
    def run(self, *args, **kwargs):
        try:
            if (e := unread(kwargs)) is not None:
                raise e
            return func(self, *args, **kwargs)
        except RequestError as e:
            return _refused(kwargs[ctx_name], e)

    return run


class Endpoints:
    """The declared APIs of a service, by route, and the mounts open without the token."""

    def __init__(self):
        self.by_route: dict[str, Endpoint] = {}
        self.public_mounts: list[str] = []

    def api(
        self,
        *files: Files,
        alpha: bool = False,
        rescale: bool = False,
        params: type[BaseModel] | None = None,
        public: bool = False,
    ):
        """`@bentoml.api` with the contract declared: see the module's docstring."""
        spec = Endpoint(files, alpha, rescale, params, public)

        def declare(func):
            params = [p for p in inspect.signature(func).parameters if p != "self"]
            taken = [p for p in params if p not in CONTEXT]
            if taken != list(spec.arguments()) or len(taken) == len(params):  # a refusal needs the Context
                raise TypeError(
                    f"{func.__name__}({', '.join(taken)}) must take a Context and exactly the declared "
                    f"arguments {', '.join(spec.arguments())}"
                )
            model = create_model(
                "Input", __module__=func.__module__, __base__=DeclaredInput, **spec.arguments()
            )
            model.endpoint = spec
            method = bentoml.api(input_spec=model)(_answering_refusals(func))
            self.by_route[method.route] = spec
            return method

        return declare

    def mount_public(self, service, app, path: str) -> None:
        """Mount `app` at `path`, open without the token (a page that asks for it itself)."""
        service.mount_asgi_app(app, path=path)
        self.public_mounts.append(path)

    def is_public(self, path: str) -> bool:
        if (spec := self.by_route.get(path)) is not None:
            return spec.public
        return any(path == p or path.startswith(p + "/") for p in self.public_mounts)
