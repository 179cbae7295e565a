"""`glyphgate train` and `glyphgate generate`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from glyphgate.core.errors import ConfigError
from glyphgate.core.model.modes import MODES
from training.config import STRATEGIES, TrainConfig


def add_train_arguments(p):
    p.add_argument("--data", required=True, help="data folder (course npy layout or image folders)")
    p.add_argument(
        "--out", required=True, help="run folder: config.json, checkpoints/, samples/, metrics.json"
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="jem (default), icd (jem + improved contrastive divergence), ebm, or classifier (the baseline)",
    )
    p.add_argument(
        "--real",
        default=None,
        metavar="DIR",
        help="real glyphs from `glyphgate data import-page --split-by-work` (DIR/train, DIR/val) mixed into training",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="MODEL_PT",
        help="fine-tune from an exported model (artifacts/default/model.pt): DATA may hold any subset of its classes",
    )
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--config", default=None, help="JSON file of TrainConfig settings; flags override it")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN_DIR/checkpoints/last.ckpt (give --devices/--strategy again for DDP)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="processes (CPU cores or GPUs) to train on, each on a shard of every epoch (default 1)",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="auto (default: one process, or ddp for --devices > 1) or ddp (Lightning starts one "
        "process per device by re-running this command; gloo on CPU, NCCL on GPUs)",
    )


def train(args) -> int:
    from training.train import run_training

    overrides = {
        "mode": args.mode,
        "max_epochs": args.max_epochs,
        "real_dir": args.real,
        "init_from": args.init,
        "devices": args.devices,
        "strategy": args.strategy,
    }
    if args.config:
        cfg = TrainConfig.from_file(args.config, **overrides)
    else:
        cfg = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    t0 = time.perf_counter()
    metrics = run_training(args.data, args.out, cfg, resume=args.resume)
    if metrics is None:  # another rank of a DDP run: rank 0 reports
        return 0
    print(f"trained in {time.perf_counter() - t0:.0f} s -> {Path(args.out) / 'checkpoints'}")
    print(json.dumps(metrics, indent=2))
    return 0


def add_generate_arguments(p):
    p.add_argument(
        "--ckpt", required=True, help="checkpoint (.ckpt) of a jem, icd or ebm run, or an artifacts folder"
    )
    p.add_argument("--out", required=True, help="PNG file to write (with --evaluate: the JSON file)")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--steps", type=int, default=256, help="SGLD steps (default 256)")
    p.add_argument(
        "--label", default=None, help="class name to sample conditionally (default: unconditional)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chain", action="store_true", help="also write PNG_chain.png: one chain at evenly spaced steps"
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="measure generation quality instead: conditional accuracy, KID and diversity at 32/256/512 "
        "steps, in the features of --baseline, against the real test glyphs of --data",
    )
    p.add_argument(
        "--baseline", default=None, help="with --evaluate: the classifier baseline's artifacts folder"
    )
    p.add_argument(
        "--data", default=None, help="with --evaluate: the data folder whose test split is the reference"
    )
    p.add_argument(
        "--per-class", type=int, default=10, help="with --evaluate: fresh chains per class (default 10)"
    )


def evaluate_generation(args) -> int:
    import torch

    from corpus.load import load_glyph_data
    from glyphgate.core.contract.artifacts import load_torch_model
    from glyphgate.core.image.grid import save_grid
    from training.gen_quality import evaluate_generation as run
    from training.gen_quality import load_sampling_model

    if not (args.baseline and args.data):
        raise ConfigError(
            "--evaluate needs --baseline (classifier artifacts) and --data (the reference test split)"
        )
    model = load_sampling_model(args.ckpt)
    baseline = load_torch_model(args.baseline)
    data = load_glyph_data(args.data, classes=list(model.classes))
    real_x, real_y = data.splits["test"]
    report, samples = run(model, baseline, real_x, real_y, per_class=args.per_class, seed=args.seed)
    report.update(model=str(args.ckpt), baseline=str(args.baseline), data=str(args.data))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shown = min(4, args.per_class)  # four per class keep a grid of 42 classes under half a megabyte
    for k, x in samples.items():  # the first samples of every class, one class per row
        idx = torch.arange(len(x)).view(-1, args.per_class)[:, :shown].flatten()
        save_grid(x[idx], out.with_name(f"{out.stem}_steps{k}.png"), nrow=shown)
    print(f"wrote {out} and its sample grids")
    return 0


def generate(args) -> int:
    if args.evaluate:
        return evaluate_generation(args)
    from glyphgate.core.image.grid import save_grid
    from glyphgate.core.model.sgld import synthesize
    from training.checkpoint import load_module, save_chain_strip

    if not 1 <= args.n <= 1024:
        raise ConfigError(f"--n {args.n}: expected 1..1024")
    if not 0 <= args.steps <= 10000:
        raise ConfigError(f"--steps {args.steps}: expected 0..10000")
    module = load_module(args.ckpt)
    samples, chain = synthesize(
        module, n=args.n, steps=args.steps, label=args.label, seed=args.seed, keep_chain=args.chain
    )
    out = Path(args.out)
    save_grid(samples, out)
    print(f"wrote {out}")
    if args.chain:
        strip = out.with_name(out.stem + "_chain.png")
        save_chain_strip(chain, strip)
        print(f"wrote {strip}")
    return 0
