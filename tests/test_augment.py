"""The scan perturbations (training augmentation and the robustness panel) do what they say."""

import numpy as np
import pytest
import torch

from corpus import augment as A
from glyphgate.core.image.preprocess import preprocess


def _glyph(h=56, w=56, top=18, bottom=40, left=22, right=32, paper=0.6):
    """A grey scan of one bar-shaped glyph in the middle, preprocessed like any scan."""
    from scipy import ndimage

    img = np.full((h, w), paper, np.float32)
    img[top:bottom, left:right] = 0.05
    img = ndimage.gaussian_filter(img, 1.0) + np.random.default_rng(top).normal(
        0, 0.03, img.shape
    )  # soft edges, grain
    return preprocess(img.astype(np.float32))[0]


def test_tight_crop_fills_the_frame_and_box_crop_keeps_a_margin():
    x = _glyph()
    tight, box = A.recrop(x, "tight"), A.recrop(x, "box", 0.15)
    ink = lambda t: int((t < 0).sum())  # noqa: E731
    assert ink(tight) > 2 * ink(x)  # a 22-px-tall bar now spans the 56-px frame
    assert ink(x) < ink(box) < ink(tight)
    assert (
        tight[0, :6, 28].min() < 0 and tight[0, -6:, 28].min() < 0
    )  # top and bottom of the bar reach the edges
    assert box[0, :2].mean() > 0.3  # the margin is paper


def test_ink_box_ignores_neighbour_fragments_at_the_border():
    x = _glyph()
    x[0, 20:36, 0:3] = -1.0  # a neighbour's stroke at the left edge
    t, b, l, r = A.ink_box(x)
    assert l >= 15 and (t, b) == A.ink_box(_glyph())[:2]


def test_binarisation_is_bitonal_and_keeps_the_glyph():
    x = _glyph()
    x = x + 0.1 * torch.randn_like(x)
    for method in ("otsu", "sauvola"):
        b = A.binarise(x.clamp(-1, 1), method)
        assert set(torch.unique(b).tolist()) == {-1.0, 1.0}
        assert b[0, 20:38, 24:30].mean() < -0.9


def test_sauvola_thresholds_at_the_windows_own_mean_and_deviation():
    # Sauvola's rule written out: each pixel's window of the image mirrored at its edges (the
    # edge pixel not repeated), thr = mean * (1 + k * (std / 0.5 - 1)); paper above it. Grain
    # everywhere, so the windows at the edges decide pixels too.
    x = torch.rand(1, 56, 56, generator=torch.Generator().manual_seed(3)) * 2 - 1
    u = ((x[0] + 1) / 2).double().numpy()
    window, k, pad = 11, 0.3, 5
    padded = np.pad(u, pad, mode="reflect")
    want = np.empty_like(u)
    for i in range(56):
        for j in range(56):
            w = padded[i : i + window, j : j + window]
            want[i, j] = 1.0 if u[i, j] > w.mean() * (1 + k * (w.std() / 0.5 - 1)) else -1.0
    got = A.binarise(x, "sauvola", window=window, k=k)[0].numpy()
    assert (got != want).sum() <= 1  # float32 rounding at the threshold, at most
    assert 200 < (want < 0).sum() < 56 * 56 - 200  # the rule has work to do here


def test_stroke_weight_grows_and_shrinks_the_ink():
    x = _glyph()
    ink = lambda t: int((t < 0).sum())  # noqa: E731
    assert ink(A.stroke(x, 1)) > ink(x) > ink(A.stroke(x, -1))


@pytest.mark.parametrize("name", list(A.PANEL))
def test_every_panel_row_changes_the_image_and_keeps_the_contract(name):
    x = torch.stack([_glyph(top=10 + i, left=14 + 2 * i) for i in range(4)])
    out = A.apply_panel(x, name)
    assert out.shape == x.shape and out.dtype == torch.float32
    # renormalised per image as serving min-max scales a scan: every image spans exactly [-1, 1]
    # (so no perturbation wiped a glyph out to flat paper)
    assert torch.equal(out.amin(dim=(1, 2, 3)), -torch.ones(4)), out.amin(dim=(1, 2, 3))
    assert torch.equal(out.amax(dim=(1, 2, 3)), torch.ones(4)), out.amax(dim=(1, 2, 3))
    assert (out - x).abs().amax(dim=(1, 2, 3)).min() > 0.05, f"{name} left an image unchanged"


def test_training_augmentation_keeps_shape_and_range():
    torch.manual_seed(0)
    t = A.scan_augment()
    x = _glyph()
    outs = [t(x) for _ in range(50)]
    assert all(o.shape == x.shape and o.min() >= -1 and o.max() <= 1 for o in outs)
    assert sum(not torch.equal(o, x) for o in outs) > 25  # most draws perturb
