"""What a training run observes and writes, kept out of the objective (JEMModule): sample grids
of the replay buffer, where to resume after a divergence, and what every rank of a run held."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from glyphgate.core.errors import DivergenceError
from glyphgate.core.image.grid import save_grid
from training.checkpoint import state_sha256


class SampleGrids(pl.Callback):
    """samples/epochNNN.png after each validation: 64 replay-buffer chains, the samples the
    contrastive-divergence term pushes up on (a glance shows whether SGLD still makes glyphs)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        # one grid per epoch: under DDP rank 0's buffer, drawn by rank 0 alone
        if trainer.sanity_checking or pl_module.cfg.mode == "classifier" or not trainer.is_global_zero:
            return
        save_grid(
            pl_module.buffer.chains[0, :64].cpu(),
            self.folder / f"epoch{trainer.current_epoch:03d}.png",
            nrow=8,
        )


class DivergenceGuard(pl.Callback):
    """The module stops on NaN or exploding energies; this names the checkpoint to go back to,
    the newest one the run's ModelCheckpoints wrote."""

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, DivergenceError):
            return
        written = [
            Path(p)
            for cb in trainer.checkpoint_callbacks
            for p in (cb.last_model_path, cb.best_model_path)
            if p
        ]
        written = [p for p in written if p.is_file()]
        kept = str(max(written, key=lambda p: p.stat().st_mtime)) if written else ""
        where = f"the last good checkpoint is {kept}" if kept else "no checkpoint had been written yet"
        exception.args = (f"{exception.args[0]}; {where}. Lower lr or sgld_step_size, or raise l2_alpha.",)


class RankRecord(pl.Callback):
    """What each process of the run started from and ended with, gathered for rank 0's
    metrics.json: its step counts and seconds per training step, its torch threads, and hashes
    of its weights, informative init and replay buffer. Under DDP the weights and the init must
    hash alike on every rank (one model) and the buffers must not (each rank its own chains);
    after a resume the buffers' start hashes are those of the chains the checkpoint kept for
    each rank."""

    def __init__(self):
        self.ranks: list[dict] = []
        self._start: dict = {}
        self._step_s: list[float] = []
        self._t0 = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        self._start = {
            "start_step": trainer.global_step,
            "buffer_sha256_start": state_sha256({"chains": pl_module.buffer.chains}),
        }

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._step_s.append(time.perf_counter() - self._t0)

    def step_seconds(self) -> float | None:
        """Mean seconds of one training step (forward, SGLD, backward with DDP's gradient
        averaging, optimiser), the first step left out: it pays for allocations and warm-up."""
        timed = self._step_s[1:]
        return sum(timed) / len(timed) if timed else None

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        mine = {
            "rank": trainer.global_rank,
            **self._start,
            "end_step": trainer.global_step,
            "step_s": self.step_seconds(),
            "threads": torch.get_num_threads(),
            "net_sha256": state_sha256(pl_module.net.state_dict()),
            "init_sha256": state_sha256(pl_module.init.state_dict()),
            "buffer_sha256_end": state_sha256({"chains": pl_module.buffer.chains}),
        }
        self.ranks = [mine]
        if trainer.world_size > 1:
            gathered: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, mine)
            self.ranks = sorted(gathered, key=lambda r: r["rank"])
