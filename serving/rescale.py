"""`rescale`, /scan_page's form flag: the uploaded image is a scaled copy of the page its XML
describes. Read here, beside `alpha`, so the form reader and the API page share one definition."""

from __future__ import annotations

from pydantic import Field

from glyphgate.core.errors import RequestError

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")
DESCRIPTION = (
    "optional: true when the image is a scaled copy of the page the XML describes (its coordinates "
    "are scaled); without it an image of another size than the XML's Page is refused"
)


def rescale_field():
    """The form field as the API page documents it."""
    return (bool, Field(False, description=DESCRIPTION))


def read_rescale(value) -> bool:
    """The form value of `rescale` (absent: False) as a flag, or RequestError saying what to send."""
    if value is None:
        return False
    if not isinstance(value, str):
        raise RequestError("the field 'rescale' must be true or false, not a file")
    if value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise RequestError(f"rescale {value[:40]!r}: expected true or false")
