"""Strict decoding names the problem of a bad upload."""

from pathlib import Path

import numpy as np
import pytest
from bomb_png import png_header_only

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


def test_glyphgate_max_pixels_is_the_one_limit_and_pillow_never_warns():
    """Pillow's own limit (a warning at 89 Mpx, an error at 179 Mpx) never decides: 100 and
    180 Mpx headers pass the cap and fail only on their missing data; 300 Mpx is refused by ours."""
    import warnings

    from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for w, h in ((10_000, 10_000), (12_000, 15_000)):
            with pytest.raises(BadImage, match="damaged or truncated"):
                load_gray(png_header_only(w, h), "page.png", DEFAULT_MAX_PIXELS)
        with pytest.raises(BadImage) as refused:
            load_gray(png_header_only(20_000, 15_000), "huge.png", DEFAULT_MAX_PIXELS)
    assert str(refused.value) == (
        "huge.png: 20000 × 15000 = 300,000,000 pixels, more than GLYPHGATE_MAX_PIXELS=200000000 "
        "(refused before decoding)"
    )
    assert not [w for w in caught if "DecompressionBomb" in w.category.__name__]
    assert DEFAULT_MAX_PIXELS >= 150_000_000  # an archive page of 150 Mpx is taken by default


def test_pages_decode_to_8_bit_grey(monkeypatch):
    import numpy as np
    from PIL import Image

    from glyphgate.core.image import decode
    from glyphgate.core.image.decode import gray8

    deep = Image.fromarray(np.array([[0, 1024], [2048, 4095]], np.uint16))  # a 12-bit scan in 16 bits
    assert deep.mode.startswith("I;16")
    assert gray8(deep).tolist() == [[0, 64], [128, 255]]
    clear = Image.new("RGBA", (3, 2), (0, 0, 0, 0))  # transparent is paper
    assert gray8(clear).dtype == np.uint8 and (gray8(clear) == 255).all()
    monkeypatch.setattr(decode, "STRIP_BYTES", 20)  # strips of 2 rows, the last one short
    page = Image.fromarray(np.random.default_rng(0).integers(0, 256, (51, 7), np.uint8))
    assert np.array_equal(gray8(page), np.asarray(page))


def test_grey_pngs_take_opencv_and_decode_to_pillows_pixels(tmp_path):
    """The fast path (8-bit grey PNG, no transparency) gives Pillow's pixels; every other PNG,
    and every damaged one, is Pillow's."""
    import io

    from PIL import Image

    from glyphgate.core.image import decode
    from glyphgate.core.image.preprocess import gray_array

    rng = np.random.default_rng(3)
    grey = [rng.integers(0, 256, (h, w), dtype=np.uint8) for h, w in [(1, 1), (37, 12), (56, 56), (90, 300)]]
    pngs = []
    for a in grey:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    for data, a in zip(pngs, grey):
        assert decode._grey_png(data, 10**9) is not None
        assert np.array_equal(decode.load_gray(data, "g.png", 10**9), a)
    others = []
    for mode in ("RGB", "LA", "P", "I;16"):
        buf = io.BytesIO()
        Image.fromarray(grey[1]).convert(mode).save(buf, format="PNG")
        others.append(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(grey[1]).save(buf, format="PNG", transparency=0)
    others.append(buf.getvalue())
    for data in others:
        assert decode._grey_png(data, 10**9) is None
        with Image.open(io.BytesIO(data)) as im:
            assert np.array_equal(decode.load_gray(data, "o.png", 10**9), gray_array(im))
    assert decode._grey_png(pngs[1][: len(pngs[1]) // 2], 10**9) is None
    with pytest.raises(BadImage, match="truncated"):
        decode.load_gray(pngs[1][: len(pngs[1]) // 2], "cut.png", 10**9)
