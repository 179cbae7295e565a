"""One training run: data module, JEMModule, Lightning Trainer, checkpoints, final metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger

from corpus.load import GlyphData
from glyphgate.core.errors import DataError
from training.callbacks import DivergenceGuard, SampleGrids
from training.config import TrainConfig
from training.datamodule import GlyphDataModule
from training.module import JEMModule, energy_auroc


def energy_aurocs(module: JEMModule, data: GlyphData) -> dict[str, float]:
    """Energy AUROC of the ID test split against every OOD set (higher energy = OOD)."""
    e_id = module.energies(data.splits["test"][0])
    return {name: energy_auroc(e_id, module.energies(x)) for name, x in data.ood.items()}


def run_training(data_dir: str, out_dir: str, cfg: TrainConfig, resume: bool = False) -> dict:
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise DataError(f"{last}: nothing to resume")
    if resume:
        saved = TrainConfig.from_file(out / "config.json")
        cfg = TrainConfig(**{**saved.__dict__, "max_epochs": cfg.max_epochs})
    out.mkdir(parents=True, exist_ok=True)
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
    trainer = pl.Trainer(
        default_root_dir=out,
        max_epochs=cfg.max_epochs,
        max_time=cfg.max_time,
        accelerator=cfg.accelerator,
        devices=1,
        logger=CSVLogger(out, name="logs"),
        callbacks=[
            checkpoint,
            latest,
            SampleGrids(out / "samples"),
            DivergenceGuard(),
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
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
    fit_s = time.perf_counter() - t0

    best = checkpoint.best_model_path or str(last)
    metrics = {
        "mode": cfg.mode,
        "epochs": trainer.current_epoch,
        "fit_wall_s": fit_s,
        **evaluate(trainer, dm, best),
    }
    metrics["last"] = evaluate(trainer, dm, str(last))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def evaluate(trainer: pl.Trainer, dm: GlyphDataModule, ckpt: str) -> dict:
    """Test accuracy and energy AUROC per OOD set (and the far minimum / near mean) of one checkpoint."""
    module = JEMModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    test = trainer.test(module, datamodule=dm, verbose=False)[0] if module.cfg.mode != "ebm" else {}
    aurocs = energy_aurocs(module, dm.data)
    kinds = dm.data.ood_kind
    far = [v for k, v in aurocs.items() if kinds.get(k) == "far"]
    near = [v for k, v in aurocs.items() if kinds.get(k) == "near"]
    return {
        "checkpoint": ckpt,
        "test_acc": test.get("test/acc"),
        "energy_auroc": aurocs,
        "energy_auroc_far_min": min(far) if far else None,
        "energy_auroc_near_mean": float(np.mean(near)) if near else None,
    }
