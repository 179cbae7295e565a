"""`glyphgate generate` files: a checkpoint loaded for sampling, grids and chain strips as PNGs."""

from __future__ import annotations

from pathlib import Path

import torch

from glyphgate.core.errors import DataError
from glyphgate.core.image.grid import save_grid
from glyphgate.core.model.sgld import chain_frames


def load_module(ckpt: str | Path):
    """A JEMModule from a checkpoint (Lightning is imported here only: the server's generator
    samples an exported model and should not pay for it at start-up)."""
    from training.module import JEMModule

    path = Path(ckpt)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        module = JEMModule.load_from_checkpoint(str(path), map_location="cpu")
    except Exception as e:  # torch/Lightning raise many types for a bad file
        raise DataError(f"{path}: not a glyphgate checkpoint ({type(e).__name__}: {e})") from None
    return module.eval()


def save_chain_strip(chain: list[torch.Tensor], path: Path, frames: int = 9) -> None:
    x = chain_frames(chain, frames)
    save_grid(x, path, nrow=len(x))
