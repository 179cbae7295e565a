"""What a training run observes and writes, kept out of the objective (JEMModule): sample grids
of the replay buffer, and where to resume after a divergence."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from glyphgate.core.errors import DivergenceError
from glyphgate.core.image.grid import save_grid


class SampleGrids(pl.Callback):
    """samples/epochNNN.png after each validation: 64 replay-buffer chains, the samples the
    contrastive-divergence term pushes up on (a glance shows whether SGLD still makes glyphs)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking or pl_module.cfg.mode == "classifier":
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
