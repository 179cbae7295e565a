"""`alpha`, a request's own flag rule (flag when p_value < alpha): read and range-checked here,
for every endpoint that declares it, so one rule and one set of messages hold everywhere."""

from __future__ import annotations

from pydantic import Field
from starlette.datastructures import UploadFile

from glyphgate.core.errors import RequestError

# Strict bounds: alpha 0 would flag nothing and alpha 1 everything, whatever the scan.
LOW, HIGH = 0.0, 1.0
DESCRIPTION = "optional: flag when p_value < alpha (strictly between 0 and 1) instead of energy > threshold"


def alpha_field():
    """The form field as the API page documents it."""
    return (float | None, Field(None, gt=LOW, lt=HIGH, description=DESCRIPTION))


def read_alpha(value) -> float:
    """The form value of `alpha` as a number, or RequestError saying what is wrong with it."""
    if isinstance(value, UploadFile):
        raise RequestError("the field 'alpha' must be a number, not a file")
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"alpha {str(value)[:40]!r}: not a number") from None
    if not LOW < a < HIGH:
        raise RequestError(f"alpha {a}: expected a value strictly between 0 and 1")
    return a
