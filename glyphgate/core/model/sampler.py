"""SGLD sampling with a replay buffer (persistent chains) and noise or informative init."""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch
from torch import nn

from glyphgate.core.image.preprocess import SHAPE
from glyphgate.core.model.transitions import transition


class InformativeInit(nn.Module):
    """Per-class Gaussians fitted to the training images (JEM++): mean + top-k principal axes.

    A full 3136x3136 covariance per class would cost gigabytes; the low-rank form keeps the
    glyph shape while staying a few MB, and a small diagonal term fills the rest.
    """

    def __init__(self, num_classes: int, rank: int = 16):
        super().__init__()
        d = SHAPE[0] * SHAPE[1] * SHAPE[2]
        self.register_buffer("mean", torch.zeros(num_classes, d))
        self.register_buffer("axes", torch.zeros(num_classes, d, rank))  # columns scaled by their std
        self.register_buffer("resid", torch.full((num_classes,), 0.1))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "InformativeInit":
        x = x.reshape(len(x), -1).float()
        rank = self.axes.shape[2]
        for c in range(self.mean.shape[0]):
            xc = x[y == c]
            if len(xc) == 0:
                continue
            self.mean[c] = xc.mean(0)
            centred = xc - self.mean[c]
            q = min(rank, len(xc) - 1, centred.shape[1])
            if q > 0:
                u, s, v = torch.pca_lowrank(centred, q=q, center=False)
                self.axes[c, :, :q] = v * (s / max(len(xc) - 1, 1) ** 0.5)
                explained = (s**2).sum() / max(len(xc) - 1, 1)
                total = centred.pow(2).sum() / max(len(xc) - 1, 1)
                self.resid[c] = ((total - explained).clamp_min(0) / centred.shape[1]).sqrt()
        self.fitted.fill_(True)
        return self

    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(len(y), self.axes.shape[2], 1, device=self.mean.device, generator=generator)
        eps = torch.randn(len(y), self.mean.shape[1], device=self.mean.device, generator=generator)
        x = self.mean[y] + torch.bmm(self.axes[y], z).squeeze(2) + self.resid[y, None] * eps
        return x.clamp(-1, 1).view(len(y), *SHAPE)


def smooth_noise(n: int, device, generator=None) -> torch.Tensor:
    """Uniform noise drawn at a random resolution (1x1 up to 56x56) and upsampled, with random
    contrast and offset: flat fields, blobs and broadband texture.

    Restarting some chains from here puts negatives where the informative init never goes
    (blank or stained paper, smudges), so the energy there is pushed up too, not left to chance.
    """
    sizes = (1, 2, 4, 7, 14, 28, 56)
    pick = torch.randint(0, len(sizes), (n,), device=device, generator=generator)
    x = torch.empty(n, *SHAPE, device=device)
    for i, s in enumerate(sizes):
        rows = (pick == i).nonzero().flatten()
        if len(rows):
            z = torch.rand(len(rows), 1, s, s, device=device, generator=generator) * 2 - 1
            x[rows] = nn.functional.interpolate(z, size=SHAPE[1:], mode="bilinear", align_corners=False)
    contrast = torch.rand(n, 1, 1, 1, device=device, generator=generator)
    offset = (torch.rand(n, 1, 1, 1, device=device, generator=generator) * 2 - 1) * (1 - contrast)
    return (offset + contrast * x).clamp_(-1, 1)


class ChainStore(Protocol):
    """Persistent chains the sampler draws from and returns to (training's ReplayBuffer)."""

    def __len__(self) -> int: ...

    def draw(self, n: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def put(self, x: torch.Tensor, idx: torch.Tensor) -> None: ...


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode and no parameter gradients while sampling; both restored afterwards."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


class SGLDSampler:
    """x_{k+1} = clamp(x_k + step_size * clamp(df/dx) + noise * N(0, 1), -1, 1), f = -E."""

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        *,
        buffer: ChainStore | None = None,
        init: InformativeInit | None = None,
        steps: int = 20,
        step_size: float = 1.0,
        noise: float = 0.01,
        grad_clamp: float | None = 0.03,
        reinit: float = 0.05,
        reinit_noise: float = 0.0,
        transition_start: bool = False,
        transition_every: int = 0,
    ):
        self.model, self.num_classes, self.buffer, self.init = model, num_classes, buffer, init
        self.steps, self.step_size, self.noise, self.grad_clamp, self.reinit = (
            steps,
            step_size,
            noise,
            grad_clamp,
            reinit,
        )
        self.reinit_noise = reinit_noise  # share of buffer restarts drawn from smooth_noise
        # Augmentation transitions (icd): buffer chains start from a transformed state, and a
        # long run jumps every `transition_every` steps (never in its last stretch of steps).
        self.transition_start, self.transition_every = transition_start, transition_every

    def fresh(self, n: int, y: torch.Tensor | None, device, generator=None) -> torch.Tensor:
        """Start points: informative per-class Gaussians when fitted, else uniform noise."""
        if self.init is not None and bool(self.init.fitted):
            if y is None:
                y = torch.randint(0, self.num_classes, (n,), device=device, generator=generator)
            return self.init.sample(y.to(device), generator)
        return torch.rand(n, *SHAPE, device=device, generator=generator) * 2 - 1

    def run(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        steps: int | None = None,
        keep_chain: bool = False,
        generator=None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The SGLD loop itself; returns the final samples and, if asked, every state."""
        steps = self.steps if steps is None else steps
        chain = [x.detach().clone()] if keep_chain else []
        every = self.transition_every
        with frozen(self.model), torch.enable_grad():
            x = x.detach().clone()
            for k in range(steps):
                if every and k and k % every == 0 and k <= steps - every:
                    x = transition(x, generator)
                x.requires_grad_(True)
                f = self.model(x, y)
                (grad,) = torch.autograd.grad(f.sum(), x)
                if self.grad_clamp is not None:
                    grad = grad.clamp(-self.grad_clamp, self.grad_clamp)
                noise = torch.randn(x.shape, device=x.device, generator=generator) * self.noise
                x = (x.detach() + self.step_size * grad + noise).clamp_(-1.0, 1.0)
                if keep_chain:
                    chain.append(x.detach().clone())
        return x.detach(), chain

    def differentiable_step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """One SGLD step with the graph kept: the result depends on the model's parameters through
        the gradient (for improved CD's KL term, which trains the sampler through its last steps)."""
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.model(x, y).sum(), x, create_graph=True)
        if self.grad_clamp is not None:
            grad = grad.clamp(-self.grad_clamp, self.grad_clamp)
        noise = torch.randn_like(x) * self.noise
        return (x + self.step_size * grad + noise).clamp(-1.0, 1.0)

    def sample(
        self,
        n: int,
        y: torch.Tensor | None = None,
        steps: int | None = None,
        keep_chain: bool = False,
        use_buffer: bool = True,
        generator=None,
    ):
        """n samples; persistent chains from the buffer with `reinit` of them restarted fresh.

        Returns (samples, chain list, reinit mask)."""
        device = next(self.model.parameters()).device
        if self.buffer is None or not use_buffer:
            x0 = self.fresh(n, y, device, generator)
            x, chain = self.run(x0, y, steps, keep_chain, generator)
            return x, chain, torch.ones(n, dtype=torch.bool, device=device)
        x0, idx = self.buffer.draw(n, generator)
        if self.transition_start:
            x0 = transition(x0, generator)
        restart = torch.rand(n, device=device, generator=generator) < self.reinit
        if restart.any():
            x0[restart] = self.fresh(int(restart.sum()), None if y is None else y[restart], device, generator)
            from_noise = restart & (torch.rand(n, device=device, generator=generator) < self.reinit_noise)
            if from_noise.any():
                x0[from_noise] = smooth_noise(int(from_noise.sum()), device, generator)
        x, chain = self.run(x0, y, steps, keep_chain, generator)
        self.buffer.put(x, idx)
        return x, chain, restart
