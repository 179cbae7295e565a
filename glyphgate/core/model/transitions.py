"""Glyph-safe augmentation transitions for SGLD chains (improved contrastive divergence, Du et
al. 2021): a chain jumps to a nearby variant of its state (shifted, slightly scaled or turned,
stroke thicker or thinner, blurred) and can leave a mode that Langevin steps alone would not.

Never a horizontal flip or a large rotation: a mirrored or turned glyph is out of distribution
here (the rotated_mirrored OOD suite is made of exactly those)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from glyphgate.core.image.ink import stroke

SHIFT_PX = 3  # at 56 px, about the jitter of a segmenter's box
SCALE = 0.08  # 0.92 .. 1.08
ROTATE_DEG = 5.0
P_STROKE, P_BLUR = 0.3, 0.2


def transition(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x [N, 1, H, W] in [-1, 1] (dark ink on light paper) -> one random glyph-safe variant each."""
    n, _, h, w = x.shape
    dev = x.device

    def uniform(lo: float, hi: float, size=(n,)) -> torch.Tensor:
        return torch.rand(size, device=dev, generator=generator) * (hi - lo) + lo

    angle = uniform(-ROTATE_DEG, ROTATE_DEG) * math.pi / 180
    scale = uniform(1 - SCALE, 1 + SCALE)
    tx, ty = (uniform(-SHIFT_PX, SHIFT_PX) * 2 / w), (uniform(-SHIFT_PX, SHIFT_PX) * 2 / h)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # the paper colour fills what moves in from outside: pad with the border, not with black
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    weight = torch.rand(n, device=dev, generator=generator)
    thicker = (weight < P_STROKE / 2).view(n, 1, 1, 1)
    thinner = ((weight >= P_STROKE / 2) & (weight < P_STROKE)).view(n, 1, 1, 1)
    if thicker.any() or thinner.any():
        y = torch.where(thicker, stroke(y, 1), y)
        y = torch.where(thinner, stroke(y, -1), y)
    blur = (torch.rand(n, device=dev, generator=generator) < P_BLUR).view(n, 1, 1, 1)
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0], device=dev)
        k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
        y = torch.where(blur, F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k), y)
    return y.clamp(-1, 1)
