"""Parameters of /generate and /generate_chain: one pydantic model, which every request body
is read against once (with messages a person can act on) and whose field bounds the
Generator's API signatures reuse."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from glyphgate.core.errors import RequestError


class GenerateRequest(BaseModel):
    """{"n": 16, "steps": 256, "label": "ā", "seed": 0}; every field optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(16, ge=1, le=64, description="samples in the grid")
    steps: int = Field(256, ge=0, le=1024, description="SGLD steps from fresh chains")
    label: str | None = Field(None, description="a class to condition on; unconditional without it")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed: the same seed gives the same grid")

    @classmethod
    def from_body(cls, body: bytes) -> GenerateRequest:
        """The JSON body (empty: every default) as a request, or RequestError naming the problem."""
        try:
            params = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RequestError(f"body is not JSON ({e}); send e.g. {EXAMPLE}") from None
        if not isinstance(params, dict):
            raise RequestError(f"body must be a JSON object with any of {', '.join(FIELDS)}")
        try:
            return cls.model_validate(params)
        except ValidationError as e:
            raise RequestError(_problem(e)) from None


class ChainRequest(GenerateRequest):
    """/generate_chain: the same fields, one chain by default."""

    n: int = Field(1, ge=1, le=64, description="chains to run; the strip shows the first")


FIELDS = list(GenerateRequest.model_fields)
EXAMPLE = '{"n": 16, "steps": 256, "label": "a", "seed": 0}'


def annotated(name: str):
    """The field as an `Annotated` type with its bounds, for a BentoML API parameter."""
    field = GenerateRequest.model_fields[name]
    return Annotated[field.annotation, *field.metadata]


def default(name: str):
    return GenerateRequest.model_fields[name].default


def _bounds(name: str) -> str:
    meta = {type(m).__name__: m for m in GenerateRequest.model_fields[name].metadata}
    return f"{meta['Ge'].ge}..{meta['Le'].le}"


def _problem(e: ValidationError) -> str:
    unknown = sorted(str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden")
    if unknown:
        return f"unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(FIELDS)}"
    err = e.errors()[0]
    name, value = str(err["loc"][0]), err["input"]
    if err["type"] in ("greater_than_equal", "less_than_equal"):
        return f"{name}={value} is out of range: expected {_bounds(name)}"
    kind = "an integer" if name != "label" else "a string"
    return f"{name} must be {kind}, got {json.dumps(value)}"


def check_label(label: str | None, classes: list[str]) -> None:
    """RequestError unless `label` is None (unconditional) or a class of the served model."""
    if label is not None and label not in classes:
        raise RequestError(
            f"label {label!r} is not a class of this model; classes: {' '.join(classes)} "
            "(or omit it for unconditional)"
        )
