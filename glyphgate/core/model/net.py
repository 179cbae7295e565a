"""EnergyCNN: the course's shallow CNN whose logits double as a Joint Energy-based Model.

Sign convention, once and everywhere: f(x) = -E(x); energy(x) = -logsumexp(logits).
Low energy = looks like training data; OOD flag = energy > threshold.
"""

from __future__ import annotations

import torch
from torch import nn


class EnergyCNN(nn.Module):
    def __init__(self, num_classes: int = 42, width: int = 32):
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        # Swish (SiLU) keeps input gradients smooth, which SGLD needs; no batch norm, so the
        # energy of an image never depends on the rest of its batch.
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=4),
            nn.SiLU(),  # 56 -> 30
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.SiLU(),  # -> 15
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),
            nn.SiLU(),  # -> 8
            nn.Conv2d(c3, c3, 3, stride=2, padding=1),
            nn.SiLU(),  # -> 4
            nn.Conv2d(c3, c3, 3, stride=2, padding=1),
            nn.SiLU(),  # -> 2
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c3, num_classes)
        self.num_classes, self.width = num_classes, width

    def get_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """f(x) = -E: the single output (EBM), logsumexp of logits (JEM), or logits[y] (conditional)."""
        logits = self.get_logits(x)
        if y is not None:
            return logits.gather(1, y.view(-1, 1)).squeeze(1)
        if self.num_classes == 1:
            return logits.squeeze(1)
        return torch.logsumexp(logits, dim=1)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) = -logsumexp(logits); higher = more OOD."""
        return -self(x)


class OnnxHead(nn.Module):
    """What the ONNX graph computes: image -> (logits, energy)."""

    def __init__(self, net: EnergyCNN):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net.get_logits(image)
        return logits, -torch.logsumexp(logits, dim=1)
