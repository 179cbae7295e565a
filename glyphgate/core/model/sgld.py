"""SGLD from fresh chains: the one sampling entry point of the CLI, the card and the server."""

from __future__ import annotations

import torch

from glyphgate.core.errors import RequestError


def label_index(model, label: str | None) -> int | None:
    """Class index of `label` for a JEMModule or an exported TorchModel (None: unconditional)."""
    if label is None:
        return None
    if label not in model.classes:
        raise RequestError(
            f"label {label!r} is not a class of this model (classes: {''.join(model.classes)})"
        )
    if model.net.num_classes == 1:
        raise RequestError("an ebm-mode model has no classes to condition on")
    return model.classes.index(label)


def synthesize(
    model, n: int, steps: int, label: str | None = None, seed: int = 0, keep_chain: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Fresh chains (informative init when the model has one) run for `steps` SGLD steps.

    `model` is a JEMModule or an exported TorchModel: both offer net, classes, device, sampler().

    Examples
    --------
    >>> from glyphgate.core.contract.artifacts import SHIPPED, load_torch_model
    >>> x, _ = synthesize(load_torch_model(SHIPPED), n=2, steps=4, label="a")
    >>> tuple(x.shape)
    (2, 1, 56, 56)
    """
    y_idx = label_index(model, label)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    y = None if y_idx is None else torch.full((n,), y_idx, dtype=torch.long, device=model.device)
    sampler = model.sampler()
    x0 = sampler.fresh(n, y, model.device, gen)
    x, chain = sampler.run(x0, y, steps=steps, keep_chain=keep_chain, generator=gen)
    return x.cpu(), [c.cpu() for c in chain]


def chain_frames(chain: list[torch.Tensor], frames: int = 9) -> torch.Tensor:
    """The first chain at `frames` evenly spaced steps (0 .. K)."""
    idx = torch.linspace(0, len(chain) - 1, min(frames, len(chain))).round().long().tolist()
    return torch.stack([chain[i][0] for i in idx])
