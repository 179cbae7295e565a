"""Strict decoding names the problem of a bad upload."""

from pathlib import Path

import pytest

from glyphgate.core.image.decode import BadImage, load_gray

PNG = (Path(__file__).resolve().parents[1] / "examples" / "glyphs" / "a.png").read_bytes()


@pytest.mark.parametrize(
    "data, message",
    [
        (PNG[:40], "damaged or truncated PNG (40 bytes)"),
        (PNG[: len(PNG) // 2], "damaged or truncated image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 30, "damaged or truncated JPEG"),
        (b"filename,label\na.png,a\n", "not an image in a supported format"),
        (b"https://example.org/scan.png", "looks like a URL"),
        (b"", "empty file"),
    ],
)
def test_bad_uploads_say_what_is_wrong(data, message):
    with pytest.raises(BadImage, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_gray(data, "x", 10**7)


def test_a_bad_image_is_one_of_the_projects_errors():
    """The CLI prints every GlyphgateError as one line and the server answers it as a 4xx."""
    from glyphgate.core.errors import GlyphgateError, RequestError

    with pytest.raises(GlyphgateError) as e:
        load_gray(b"not an image at all", "x.png", 1_000_000)
    assert isinstance(e.value, RequestError) and "x.png" in str(e.value)
