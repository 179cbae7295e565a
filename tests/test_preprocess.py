import numpy as np
import pytest
import torch
from PIL import Image

from training.preprocess import IMAGE_SIZE, pil_to_gray, preprocess, preprocess_many


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


def test_resize_shorter_side_then_centre_crop():
    wide = np.full((28, 112), 255, np.uint8)
    wide[:, 56 - 4 : 56 + 4] = 0  # a stroke in the middle survives the centre crop
    wide[:, :8] = 0  # a stroke at the far left does not
    x = preprocess(wide)[0, 0]
    assert x.shape == (56, 56)
    assert x[:, 26:30].mean() < 0 and x[:, :4].min() > 0.9


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
    """The numpy/Pillow path (no torch in the scoring workers) is torchvision's resize + crop."""
    import torchvision.transforms.v2.functional as TF

    a = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    t = torch.from_numpy((a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else np.ones_like(a))[None, None]
    ref = TF.center_crop(TF.resize(t, [56], antialias=True), [56, 56]) * 2 - 1
    assert torch.allclose(preprocess(a), ref.clamp(-1, 1), atol=1e-4)
