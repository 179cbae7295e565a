"""One training run: data module, JEMModule, Lightning Trainer, checkpoints, final metrics."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from corpus.load import GlyphData
from glyphgate.core.errors import ConfigError, DataError
from training.callbacks import DivergenceGuard, RankRecord, SampleGrids
from training.config import TrainConfig
from training.datamodule import GlyphDataModule
from training.module import JEMModule, energy_auroc

# what a resume takes from its command line rather than from the run's config.json: how long, and
# on how many processes (a run started on two may go on on one, and the other way round)
PER_INVOCATION = ("max_epochs", "devices", "strategy", "loader_workers")


def energy_aurocs(module: JEMModule, data: GlyphData) -> dict[str, float]:
    """Energy AUROC of the ID test split against every OOD set (higher energy = OOD)."""
    e_id = module.energies(data.splits["test"][0])
    return {name: energy_auroc(e_id, module.energies(x)) for name, x in data.ood.items()}


def run_training(data_dir: str, out_dir: str, cfg: TrainConfig, resume: bool = False) -> dict | None:
    """Train, evaluate the best and the last checkpoint, write metrics.json; returns the metrics
    on rank 0 and None on the other ranks of a DDP run."""
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise DataError(f"{last}: nothing to resume")
    if resume:
        saved = TrainConfig.from_file(out / "config.json")
        cfg = TrainConfig(**{**saved.__dict__, **{k: getattr(cfg, k) for k in PER_INVOCATION}})
    out.mkdir(parents=True, exist_ok=True)
    # Under "ddp" every rank runs this whole command (Lightning re-runs it per extra rank), so
    # what the run writes outside the Trainer is written by rank 0 alone.
    if rank_zero_only.rank == 0:
        cfg.save(out / "config.json")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    start = None
    if cfg.init_from and not resume:
        from glyphgate.core.contract.artifacts import load_torch_model

        start = load_torch_model(
            Path(cfg.init_from).parent if Path(cfg.init_from).suffix == ".pt" else cfg.init_from
        )
        if start.mode != cfg.mode or start.net.width != cfg.width:
            raise DataError(
                f"--init {cfg.init_from}: a {start.mode} model of width {start.net.width}; "
                f"set mode {start.mode!r} and width {start.net.width} to fine-tune it"
            )
    dm = GlyphDataModule.from_config(data_dir, cfg, classes=start.classes if start else None)
    dm.setup("fit")
    module = JEMModule(dm.data.num_classes, dm.data.classes, **cfg.__dict__)
    if start is not None:
        # The 42-way head and the weights carry over; the informative init is refitted on the new
        # data for the classes it holds (the others keep the shipped model's), and setup() refills
        # the replay buffer from it.
        module.net.load_state_dict(start.net.state_dict())
        if start.init is not None:
            module.init.load_state_dict(start.init.state_dict())
            module.init.fitted.fill_(False)
    monitor = ("val/acc", "max") if cfg.mode == "classifier" else ("val/auroc", "max")
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor=monitor[0], mode=monitor[1], enable_version_counter=False
    )
    # save_last only copies when a new best is saved; resume and the divergence guard need
    # the newest epoch, so a second callback writes last.ckpt after every validation.
    latest = ModelCheckpoint(
        dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    record = RankRecord()
    trainer = trainer_for(
        cfg,
        default_root_dir=out,
        max_epochs=cfg.max_epochs,
        max_time=cfg.max_time,
        logger=CSVLogger(out, name="logs"),
        callbacks=[
            checkpoint,
            latest,
            SampleGrids(out / "samples"),
            DivergenceGuard(),
            record,
            TQDMProgressBar(refresh_rate=20),
        ],
        log_every_n_steps=20,
        gradient_clip_val=None,
        enable_model_summary=False,
        deterministic=cfg.deterministic,
        # SGLD needs input gradients during validation sample grids and energy checks.
        inference_mode=False,
    )
    t0 = time.perf_counter()
    with step_threads(dm.num_workers):
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
    fit_s = time.perf_counter() - t0
    if not trainer.is_global_zero:
        return None  # rank 0 evaluates the checkpoints it wrote and reports the run

    best = checkpoint.best_model_path or str(last)
    metrics = {
        "mode": cfg.mode,
        "epochs": trainer.current_epoch,
        "fit_wall_s": fit_s,
        "distributed": {
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "ranks": record.ranks,
        },
        **evaluate(dm, best),
    }
    metrics["last"] = evaluate(dm, str(last))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


@contextlib.contextmanager
def step_threads(loader_workers: int):
    """The training step's torch threads: the cores the loader's workers leave, restored after
    (a test session trains in process, and later runs would inherit the count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - loader_workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def trainer_for(cfg: TrainConfig, **settings) -> pl.Trainer:
    """The Trainer on cfg's accelerator, devices and strategy; Lightning's refusal of a
    combination (more GPUs than the machine has, no GPU at all) as a one-line error."""
    try:
        return pl.Trainer(
            accelerator=cfg.accelerator, devices=cfg.devices, strategy=lightning_strategy(cfg), **settings
        )
    except MisconfigurationException as e:
        raise ConfigError(
            f"accelerator {cfg.accelerator!r}, devices {cfg.devices}, strategy {cfg.strategy!r}: {e}"
        ) from None


def lightning_strategy(cfg: TrainConfig) -> str | DDPStrategy:
    """Lightning's strategy for this run. Its DDP leaves module buffers alone: by default DDP
    copies rank 0's buffers to every rank before each forward pass, which would overwrite every
    rank's replay buffer with rank 0's (the weights are still broadcast once at the start)."""
    if cfg.devices == 1 and cfg.strategy == "auto":
        return "auto"
    # torch 2.14 deprecates the flag, but its successor (forward_sync_buffers=False) still copies
    # rank 0's buffers once at the start, and its warning says to keep this one for rank-local
    # buffers, so the warning says nothing a user can act on
    warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
    # Lightning's all_gather (the validation energies, the checkpoint's chains) still calls a
    # function torch 2.14 deprecates: a warning per call, six an epoch, none of them ours to fix
    warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_gather is deprecated")
    return DDPStrategy(broadcast_buffers=False)


def accuracy_on(module: JEMModule, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    """Share of x classified as y, on this process alone (the ranks of a finished DDP run have
    stopped taking part, so no Trainer loop)."""
    with torch.no_grad():
        hits = sum(
            int((module.net.get_logits(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
            for i in range(0, len(x), batch)
        )
    return hits / max(1, len(x))


def evaluate(dm: GlyphDataModule, ckpt: str) -> dict:
    """Test accuracy and energy AUROC per OOD set (and the far minimum / near mean) of one checkpoint."""
    module = JEMModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    test_acc = accuracy_on(module, *dm.data.splits["test"]) if module.cfg.mode != "ebm" else None
    aurocs = energy_aurocs(module, dm.data)
    kinds = dm.data.ood_kind
    far = [v for k, v in aurocs.items() if kinds.get(k) == "far"]
    near = [v for k, v in aurocs.items() if kinds.get(k) == "near"]
    return {
        "checkpoint": ckpt,
        "test_acc": test_acc,
        "energy_auroc": aurocs,
        "energy_auroc_far_min": min(far) if far else None,
        "energy_auroc_near_mean": float(np.mean(near)) if near else None,
    }
