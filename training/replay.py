"""The replay buffer of persistent SGLD chains that JEM training keeps (and its checkpoint carries)."""

from __future__ import annotations

import torch
from torch import nn

from glyphgate.core.image.preprocess import SHAPE


class ReplayBuffer(nn.Module):
    """Fixed-capacity store of persistent SGLD chains, shared by all classes (JEM's): a chain
    drawn for class y is pushed towards y and returned to the common pool. A registered buffer,
    so checkpoints carry it; shaped (1, capacity, ...) as checkpoints have always stored it."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.register_buffer("chains", torch.rand(1, capacity, *SHAPE) * 2 - 1)

    def __len__(self) -> int:
        return self.chains.shape[1]

    def draw(self, n: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.capacity, (n,), device=self.chains.device, generator=generator)
        return self.chains[0, idx].clone(), idx

    def put(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        self.chains[0, idx] = x.detach().to(self.chains.dtype)
