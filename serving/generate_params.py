"""Parameters of /generate and /generate_chain: one pydantic model, which the gate middleware
validates every request body against (with messages a person can act on) and whose field
bounds the API signatures reuse."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GenerateRequest(BaseModel):
    """{"n": 16, "steps": 256, "label": "ā", "seed": 0}; every field optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(16, ge=1, le=64, description="samples in the grid")
    steps: int = Field(256, ge=0, le=1024, description="SGLD steps from fresh chains")
    label: str | None = Field(None, description="a class to condition on; unconditional without it")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed: the same seed gives the same grid")


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


def check_params(body: bytes, classes: list[str]) -> str | None:
    """None when the JSON body is a valid request, else the problem in one sentence."""
    try:
        params = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"body is not JSON ({e}); send e.g. {EXAMPLE}"
    if not isinstance(params, dict):
        return f"body must be a JSON object with any of {', '.join(FIELDS)}"
    try:
        request = GenerateRequest.model_validate(params)
    except ValidationError as e:
        unknown = sorted(str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden")
        if unknown:
            return f"unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(FIELDS)}"
        err = e.errors()[0]
        name, value = str(err["loc"][0]), err["input"]
        if err["type"] in ("greater_than_equal", "less_than_equal"):
            return f"{name}={value} is out of range: expected {_bounds(name)}"
        kind = "an integer" if name != "label" else "a string"
        return f"{name} must be {kind}, got {json.dumps(value)}"
    if request.label is not None and request.label not in classes:
        return (
            f"label {request.label!r} is not a class of this model; classes: {' '.join(classes)} "
            "(or omit it for unconditional)"
        )
    return None
