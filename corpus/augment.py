"""Perturbations that real archive pipelines apply to a glyph scan, on preprocessed tensors.

Each function takes one image (1, 56, 56) in [-1, 1] (what `preprocess` makes) and returns one
of the same shape, as `preprocess` would have made it from the perturbed scan. They serve twice:
- `scan_augment()` draws them at random per training sample (torchvision transforms v2), so
  the model sees every crop convention, binarisation, stroke weight, resolution and JPEG
  quality a segmenter or scanner produces, without storing more images;
- `PANEL` applies each one with fixed parameters to the test split (calibration's robustness
  panel), so a perturbation that moves the verdicts shows up as a number.
"""

from __future__ import annotations

import io
import random

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy import ndimage

from glyphgate.core.image.ink import CROP_MARGIN, convention_box, otsu, stroke
from glyphgate.core.image.preprocess import prepare


def paper_level(x: torch.Tensor) -> float:
    """The paper's value: the median of the border, as preprocessing pads with (the lower of
    the two middle values, as torch.median takes it)."""
    a = x[0].numpy()
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    k = (len(border) - 1) // 2
    return float(np.partition(border, k)[k])


def renormalise(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max back to [-1, 1]: serving min-max scales every scan it receives."""
    lo, hi = x.min(), x.max()
    return torch.ones_like(x) if hi - lo < 1e-6 else (x - lo) / (hi - lo) * 2 - 1


_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def ink_box(x: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), exclusive ends, of the ink of the glyph in the middle.

    Line-band crops carry fragments of the neighbouring glyphs at their borders; only the
    connected ink touching the central third counts as the glyph, as a segmenter's box would.
    """
    img = x[0].numpy()
    paper, ink = paper_level(x), float(img.min())
    if paper - ink < 0.2:
        return None
    labels, n = ndimage.label(img < (paper + ink) / 2, structure=_FOUR_CONNECTED)
    if n == 0:
        return None
    h, w = img.shape
    central = np.zeros(n + 1, dtype=bool)
    central[labels[h // 3 : h - h // 3, w // 3 : w - w // 3]] = True
    central[0] = False
    keep = central[labels] if central.any() else labels > 0
    cols = np.flatnonzero(keep.any(0))
    # Dots, macrons and accents above or below the stem belong to the glyph.
    for sl_rows, sl_cols in ndimage.find_objects(labels):
        lo, hi = max(sl_cols.start, cols[0]), min(sl_cols.stop, cols[-1] + 1)
        if hi - lo >= 0.5 * (sl_cols.stop - sl_cols.start):
            keep[sl_rows, sl_cols] |= labels[sl_rows, sl_cols] > 0
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def recrop(x: torch.Tensor, mode: str, margin: float = CROP_MARGIN) -> torch.Tensor:
    """Re-cut to another crop convention (glyphgate.core.image.ink's, as page import cuts), around
    the ink box of the glyph in the middle, then preprocess again."""
    box = ink_box(x)
    if box is None:
        return x
    t, b, l, r = convention_box(box, mode, tuple(x.shape[-2:]), margin=margin, min_pad=0)
    return torch.from_numpy(prepare(x[0, t:b, l:r].numpy()))[0]


def binarise(x: torch.Tensor, method: str = "otsu", window: int = 15, k: float = 0.2) -> torch.Tensor:
    """Bitonal scan: global Otsu threshold, or Sauvola's local one (mean and deviation in a window)."""
    u = ((x + 1) / 2).numpy()
    if method == "otsu":
        thr = otsu(u, bins=64, top=1.0)
    else:
        # Box means by scipy's separable filter ("mirror" is torch's reflect padding): a
        # window-sized average pool costs window² per pixel (850 µs an image, the costliest
        # augmentation).
        mean = ndimage.uniform_filter(u, (1, window, window), mode="mirror")
        sq = ndimage.uniform_filter(u * u, (1, window, window), mode="mirror")
        std = np.sqrt(np.maximum(sq - mean**2, 0))
        thr = mean * (1 + k * (std / 0.5 - 1))
    out = torch.from_numpy(np.where(u > thr, np.float32(1.0), np.float32(-1.0)))
    return out if out.min() < 0 else x  # a threshold that wipes the glyph out is no scan anyone keeps


def speckle(x: torch.Tensor, amount: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Salt-and-pepper dots, the dust a bitonal threshold leaves."""
    r = torch.rand(x.shape, generator=gen)
    return torch.where(r < amount / 2, -1.0, torch.where(r > 1 - amount / 2, 1.0, x))


def low_res(x: torch.Tensor, size: int, up: str = "bilinear") -> torch.Tensor:
    """A scan at `size` px (area average), brought back to 56 with nearest or bilinear."""
    small = F.interpolate(x[None], size=(size, size), mode="area")
    kw = {"align_corners": False} if up == "bilinear" else {}
    return F.interpolate(small, size=x.shape[-2:], mode=up, **kw)[0]


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A JPEG round trip through Pillow's libjpeg, as an archive's JPEG derivative is made
    (torchvision's own JPEG codec is deprecated and warns on every call)."""
    u8 = ((x[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L"), dtype=np.float32)
    return torch.from_numpy(out / np.float32(127.5) - 1)[None]


def rotate(x: torch.Tensor, degrees: float, shear: float = 0.0) -> torch.Tensor:
    return TF.affine(
        x,
        angle=degrees,
        translate=[0, 0],
        scale=1.0,
        shear=[shear, 0.0],
        interpolation=v2.InterpolationMode.BILINEAR,
        fill=paper_level(x),
    )


# The robustness panel: one fixed perturbation per row, applied to every test image.
PANEL = {
    "tight crop": lambda x: recrop(x, "tight"),
    "box crop": lambda x: recrop(x, "box"),
    "line crop": lambda x: recrop(x, "line"),
    "binarised (Otsu)": lambda x: binarise(x, "otsu"),
    "binarised (Sauvola)": lambda x: binarise(x, "sauvola"),
    "stroke +1 px": lambda x: stroke(x, 1),
    "stroke -1 px": lambda x: stroke(x, -1),
    "16 px downsample": lambda x: low_res(x, 16, "bilinear"),
    "JPEG 50": lambda x: jpeg(x, 50),
    "rotation +3°": lambda x: rotate(x, 3.0),
    "rotation -3°": lambda x: rotate(x, -3.0),
    "nearest resize": lambda x: low_res(x, 28, "nearest"),
}


def apply_panel(x: torch.Tensor, name: str) -> torch.Tensor:
    """Perturb a batch (N, 1, 56, 56) by the panel row `name`."""
    fn = PANEL[name]
    return torch.stack([renormalise(fn(im)) for im in x]) if len(x) else x


# Random draws for training; the probabilities keep about a third of samples as rendered.
def _random_crop(x):
    mode = random.choice(("tight", "box", "line"))
    return recrop(x, mode, random.uniform(0.02, 0.35))


def _random_binarise(x):
    out = binarise(
        x, random.choice(("otsu", "sauvola")), window=random.choice((11, 15, 21)), k=random.uniform(0.1, 0.35)
    )
    return speckle(out, random.uniform(0.0, 0.01)) if random.random() < 0.5 else out


def _random_stroke(x):
    return stroke(x, random.choice((-1, 1)))


def _random_low_res(x):
    return low_res(x, random.randint(12, 40), random.choice(("nearest", "bilinear")))


def _random_jpeg(x):
    return jpeg(x, random.randint(30, 90))


def _random_rotate(x):
    return rotate(x, random.uniform(-4, 4), random.uniform(-6, 6))


def scan_augment() -> v2.Transform:
    """The training-time pipeline over one (1, 56, 56) sample."""
    step = lambda fn, p: v2.RandomApply([v2.Lambda(fn)], p=p)  # noqa: E731
    return v2.Compose(
        [
            step(_random_crop, 0.5),
            step(_random_rotate, 0.3),
            step(_random_stroke, 0.2),
            step(_random_low_res, 0.2),
            step(_random_binarise, 0.25),
            step(_random_jpeg, 0.15),
            v2.Lambda(renormalise),
        ]
    )
