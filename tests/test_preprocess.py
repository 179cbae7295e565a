import numpy as np
import pytest
import torch
from PIL import Image

from glyphgate.core.image.preprocess import (
    IMAGE_SIZE,
    pil_to_gray,
    prepare,
    preprocess,
    preprocess_many,
)


def _glyph_like(h=70, w=50, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 220, np.uint8)
    img[10:60, 20:30] = 30  # a dark stem on light paper
    return np.clip(img + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)


def test_output_shape_and_range():
    x = preprocess(np.stack([_glyph_like(seed=s) for s in range(5)]))
    assert x.shape == (5, 1, IMAGE_SIZE, IMAGE_SIZE) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) < -0.95 and 0.95 < float(x.max()) <= 1.0


def test_min_max_makes_exposure_irrelevant():
    a = _glyph_like().astype(np.float32)
    assert torch.allclose(preprocess(a), preprocess(a * 0.3 + 40.0), atol=1e-5)


def test_dark_ink_stays_dark():
    x = preprocess(_glyph_like(h=56, w=56))[0, 0]
    assert x[30, 25] < -0.8 and x[30, 45] > 0.5


def test_pil_path_matches_tensor_path():
    arr = _glyph_like()
    from_pil = preprocess(Image.fromarray(arr))
    from_tensor = preprocess(torch.from_numpy(arr)[None, None])
    from_numpy = preprocess(arr)
    assert torch.equal(from_pil, from_tensor) and torch.equal(from_pil, from_numpy)


def test_tall_glyph_box_keeps_ascender_and_descender():
    """A tight box of a tall glyph (l, long s) is padded, never centre-cropped."""
    tall = np.full((112, 28), 255, np.uint8)
    tall[:8, 10:18] = 0  # top of the ascender
    tall[-8:, 10:18] = 0  # foot of the descender
    x = preprocess(tall)[0, 0]
    assert x.shape == (56, 56)
    assert x[:4, 26:30].mean() < 0 and x[-4:, 26:30].mean() < 0
    assert x[:, :10].min() > 0.9 and x[:, -10:].min() > 0.9  # padded with paper


def test_padding_takes_the_paper_colour_from_the_border():
    grey = np.full((60, 20), 180, np.uint8)
    grey[20:40, 5:15] = 20
    grey[0, 0] = 255  # one bright speck does not move the median
    x = preprocess(grey)[0, 0]
    paper = (180 - 20) / (255 - 20) * 2 - 1
    assert abs(float(x[28, 2]) - paper) < 1e-4 and abs(float(x[28, 53]) - paper) < 1e-4


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"])
def test_every_pil_mode_converts(mode):
    base = Image.fromarray(_glyph_like())
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base, np.uint16) * 257).astype(np.uint16))
    else:
        img = base.convert(mode)
    g = pil_to_gray(img)
    assert g.shape == (70, 50) and g.dtype == np.float32
    x = preprocess(img)
    assert x.shape == (1, 1, 56, 56)
    # The stem stays darker than the paper in every mode.
    assert float(x[0, 0, 28, 20:24].mean()) < float(x[0, 0, 28, 45:50].mean())


def test_transparent_background_is_paper():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 18:22] = (0, 0, 0, 255)  # opaque black stroke, the rest fully transparent black
    x = preprocess(Image.fromarray(rgba, "RGBA"))[0, 0]
    assert x[28, 28] < -0.9 and x[5, 5] > 0.9


def test_flat_image_is_blank_paper():
    assert torch.equal(preprocess(np.zeros((30, 30))), torch.ones(1, 1, 56, 56))


def test_preprocess_many_mixed_sizes_matches_one_by_one():
    imgs = [_glyph_like(70, 50, 0), _glyph_like(40, 90, 1), _glyph_like(70, 50, 2)]
    batch = preprocess_many(imgs)
    assert batch.shape == (3, 1, 56, 56)
    for i, im in enumerate(imgs):
        assert torch.equal(batch[i], preprocess(im)[0])


def test_rejects_colour_arrays():
    with pytest.raises(ValueError):
        preprocess(np.zeros((2, 3, 20, 20)))


@pytest.mark.parametrize("shape", [(70, 50), (40, 90), (200, 300), (3, 700), (1000, 80), (30, 30), (1, 1)])
def test_pillow_resize_matches_torchvision_antialias(shape):
    """The numpy/Pillow path (no torch in the scoring workers) is torchvision's resize + pad."""
    import torchvision.transforms.v2.functional as TF

    a = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    t = torch.from_numpy((a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else np.ones_like(a))[
        None, None
    ]
    h, w = shape
    # torchvision's max_size rounds the short side down; a 3x700 strip would round to 0 rows.
    size = [56, max(1, int(56 * w / h))] if h >= w else [max(1, int(56 * h / w)), 56]
    r = TF.resize(t, size, antialias=True)
    h, w = r.shape[-2:]
    paper = float(np.median(torch.cat([r[0, 0, 0], r[0, 0, -1], r[0, 0, :, 0], r[0, 0, :, -1]]).numpy()))
    ref = torch.full((1, 1, 56, 56), paper)
    ref[..., (56 - h) // 2 : (56 - h) // 2 + h, (56 - w) // 2 : (56 - w) // 2 + w] = r
    assert torch.allclose(preprocess(a), (ref * 2 - 1).clamp(-1, 1), atol=1e-4)


def test_huge_scans_are_box_averaged_first_and_still_look_the_same():
    """A 6000x6000 scan is reduced by a whole factor before the float work (21 ms instead of
    0.9 s); the model input differs from the full-resolution path by under 2.5 % of its range."""
    from pathlib import Path

    from glyphgate.core.image.preprocess import REDUCE_ABOVE

    glyph = Image.open(Path(__file__).parents[1] / "examples/glyphs/a.png").convert("L")
    huge = glyph.resize((6000, 6000), Image.BILINEAR)
    gray = pil_to_gray(huge)
    assert REDUCE_ABOVE <= max(gray.shape) < 2 * REDUCE_ABOVE
    full = prepare(np.asarray(huge, np.float32))
    assert np.abs(prepare(gray) - full).max() < 0.05
    kept = glyph.resize((REDUCE_ABOVE, 300))  # at the limit: untouched
    assert pil_to_gray(kept).shape == (300, REDUCE_ABOVE)
