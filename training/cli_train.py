"""`glyphgate train` and `glyphgate generate`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from glyphgate.core.errors import ConfigError

from .config import MODES, TrainConfig


def add_train_arguments(p):
    p.add_argument("--data", required=True, help="data folder (course npy layout or image folders)")
    p.add_argument(
        "--out", required=True, help="run folder: config.json, checkpoints/, samples/, metrics.json"
    )
    p.add_argument(
        "--mode", choices=MODES, default=None, help="jem (default), ebm, or classifier (the baseline)"
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
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")


def train(args) -> int:
    from .train import run_training

    overrides = {
        "mode": args.mode,
        "max_epochs": args.max_epochs,
        "real_dir": args.real,
        "init_from": args.init,
    }
    if args.config:
        cfg = TrainConfig.from_file(args.config, **overrides)
    else:
        cfg = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    t0 = time.perf_counter()
    metrics = run_training(args.data, args.out, cfg, resume=args.resume)
    print(f"trained in {time.perf_counter() - t0:.0f} s -> {Path(args.out) / 'checkpoints'}")
    print(json.dumps(metrics, indent=2))
    return 0


def add_generate_arguments(p):
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) of a jem or ebm run")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--steps", type=int, default=256, help="SGLD steps (default 256)")
    p.add_argument(
        "--label", default=None, help="class name to sample conditionally (default: unconditional)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chain", action="store_true", help="also write PNG_chain.png: one chain at evenly spaced steps"
    )


def generate(args) -> int:
    from glyphgate.core.generate import synthesize
    from glyphgate.core.grid import save_grid

    from .generate import load_module, save_chain_strip

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
