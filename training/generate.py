"""Sampling a trained model: grids of final samples and strips of one chain."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import DataError


def load_module(ckpt: str | Path):
    """A JEMModule from a checkpoint (Lightning is imported here only: the server's generator
    samples an exported model and should not pay for it at start-up)."""
    from .module import JEMModule

    path = Path(ckpt)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        module = JEMModule.load_from_checkpoint(str(path), map_location="cpu")
    except Exception as e:  # torch/Lightning raise many types for a bad file
        raise DataError(f"{path}: not a glyphgate checkpoint ({type(e).__name__}: {e})") from None
    return module.eval()


def label_index(module, label: str | None) -> int | None:
    """Class index of `label` for a JEMModule or an exported TorchModel (None: unconditional)."""
    if label is None:
        return None
    if label not in module.classes:
        raise DataError(f"label {label!r} is not a class of this model (classes: {''.join(module.classes)})")
    if module.net.num_classes == 1:
        raise DataError("an ebm-mode model has no classes to condition on")
    return module.classes.index(label)


def synthesize(module, n: int, steps: int, label: str | None = None, seed: int = 0,
               keep_chain: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Fresh chains (informative init when the model has one) run for `steps` SGLD steps.

    `module` is a JEMModule or an exported TorchModel: both offer net, classes, device, sampler()."""
    y_idx = label_index(module, label)
    gen = torch.Generator(device=module.device).manual_seed(seed)
    y = None if y_idx is None else torch.full((n,), y_idx, dtype=torch.long, device=module.device)
    sampler = module.sampler()
    x0 = sampler.fresh(n, y, module.device, gen)
    x, chain = sampler.run(x0, y, steps=steps, keep_chain=keep_chain, generator=gen)
    return x.cpu(), [c.cpu() for c in chain]


def save_grid(x: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(len(x) ** 0.5 + 0.999))
    save_image(x * 0.5 + 0.5, path, nrow=nrow, padding=2, pad_value=1.0)


def chain_frames(chain: list[torch.Tensor], frames: int = 9) -> torch.Tensor:
    """The first chain at `frames` evenly spaced steps (0 .. K)."""
    idx = torch.linspace(0, len(chain) - 1, min(frames, len(chain))).round().long().tolist()
    return torch.stack([chain[i][0] for i in idx])


def save_chain_strip(chain: list[torch.Tensor], path: Path, frames: int = 9) -> None:
    x = chain_frames(chain, frames)
    save_grid(x, path, nrow=len(x))
