"""What a training checkpoint holds, how a run resumes from it, and `glyphgate generate`'s files
(a checkpoint loaded for sampling, grids and chain strips as PNGs).

A checkpoint (RUN/checkpoints/last.ckpt, best.ckpt) is Lightning's file, written by rank 0 only:
- the weights (`state_dict` net.*), the Adam moments and step counts (`optimizer_states`), the
  warm-up + cosine schedule (`lr_schedulers`), and epoch / global step and the loops' progress;
  under DDP these are the same on every rank (the gradients are averaged before every step, and
  the start is rank 0's, broadcast), so rank 0's copy is every rank's;
- the informative init's per-class Gaussians (`state_dict` init.*): fitted from the training
  split with the run's seed, identical on every rank, so again rank 0's is every rank's;
- the replay buffer, which is not shared: every rank keeps its own persistent chains (started
  from its own draw, updated by its own SGLD noise on its own shard of the data). Rank 0's chains
  stay where checkpoints have always kept them (`state_dict` buffer.chains: load_from_checkpoint,
  `glyphgate export` and `glyphgate generate` read them); the other ranks' are gathered into
  RANK_CHAINS, {rank: chains}. All of them, not rank 0's alone, because a resumed DDP run then
  continues every rank's chains where they stopped, instead of handing every rank rank 0's
  chains and losing the diversity the run had built (4096 chains cost 51 MB per extra rank).

Resuming: `glyphgate train --data D --out RUN --resume [--devices N --strategy ddp]` restarts from
RUN/checkpoints/last.ckpt with RUN/config.json; the epoch limit and the number of processes come
from the command line. Rank r takes its own chains back; a rank the checkpoint has none for (more
processes than before) keeps the fresh chains it drew from the informative init, as a new run's
would; with fewer processes the extra ranks' chains go unused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from glyphgate.core.errors import DataError
from glyphgate.core.image.grid import save_grid
from glyphgate.core.model.sgld import chain_frames

RANK_CHAINS = "replay_chains_by_rank"
CHAINS_KEY = "buffer.chains"


def store_rank_chains(checkpoint: dict, gathered: torch.Tensor) -> None:
    """Keep ranks 1.. of `gathered` (every rank's chains, stacked along a new first dimension)."""
    checkpoint[RANK_CHAINS] = {r: gathered[r].detach().cpu().clone() for r in range(1, len(gathered))}


def restore_rank_chains(checkpoint: dict, rank: int, fresh: torch.Tensor) -> None:
    """Point the checkpoint's buffer at this rank's chains before the state dict is loaded."""
    if rank == 0:
        return
    saved = checkpoint.get(RANK_CHAINS, {}).get(rank)
    checkpoint["state_dict"][CHAINS_KEY] = saved if saved is not None else fresh.detach().clone()


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """One hash over names and exact values: two models hash alike only if every number matches."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


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
