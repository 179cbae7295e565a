"""Seconds per training step of `glyphgate train` on 1 process and on 2 DDP processes (gloo on CPU,
or NCCL with --accelerator gpu), measured in one run on the same generated corpus and config.

    python bench/train_ddp.py [--total 2520] [--epochs 2] [--batch-size 64] [--width 16]
                              [--sgld-steps 5] [--accelerator cpu] [--workdir DIR]

Each run is a `glyphgate train` subprocess, the 2-process one launched by Lightning as a user's
would be (`--devices 2 --strategy ddp`). A step is the batch size on every rank, so 2 processes
take 2 x batch samples per step: the figures are seconds per step (each rank's mean from the
run's metrics.json, the first step left out) and samples per second over all ranks. On CPU,
Lightning gives each of N processes cores / N torch threads; the 1-process run is timed on
every core (torch's default) and on one thread (what a rank gets on 2 cores), so the table
separates what DDP adds from what torch's threading loses on small convolutions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GLYPHGATE = Path(sys.executable).with_name("glyphgate")
LAUNCHER_VARS = ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def make_corpus(folder: Path, total: int) -> Path:
    from corpus.synth.corpus import synthesize

    if not (folder / "train.npy").is_file():
        synthesize(folder, seed=0, total=total, ood_per_kind=16, workers=os.cpu_count())
    return folder


def train(corpus: Path, run: Path, cfg: Path, devices: int, threads: int | None = None) -> dict:
    """One `glyphgate train` run (`threads`: torch threads of a 1-process run); its metrics.json."""
    args = [str(GLYPHGATE), "train", "--data", str(corpus), "--out", str(run), "--config", str(cfg)]
    if devices > 1:
        args += ["--devices", str(devices), "--strategy", "ddp"]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"train_ddp: {devices}-process run failed:\n{done.stderr[-3000:]}")
    return json.loads((run / "metrics.json").read_text())


def per_step(metrics: dict, batch_size: int) -> dict:
    ranks = metrics["distributed"]["ranks"]
    step_s = max(r["step_s"] for r in ranks)  # a step ends when the slowest rank's does
    world = metrics["distributed"]["world_size"]
    return {
        "world": world,
        "steps": ranks[0]["end_step"],
        "threads": [r["threads"] for r in ranks],
        "step_s": step_s,
        "samples_per_s": world * batch_size / step_s,
        "fit_wall_s": metrics["fit_wall_s"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total", type=int, default=2520, help="corpus images (train split about 70 %%)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="per process, as Lightning's DDP takes it")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--sgld-steps", type=int, default=5)
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--workdir", default=None, help="keep the corpus and runs here (default: a temp folder)")
    args = p.parse_args()

    root = Path(args.workdir or tempfile.mkdtemp(prefix="train_ddp_"))
    root.mkdir(parents=True, exist_ok=True)
    corpus = make_corpus(root / "corpus", args.total)
    cfg = root / "cfg.json"
    settings = dict(
        width=args.width,
        batch_size=args.batch_size,
        sgld_steps=args.sgld_steps,
        max_epochs=args.epochs,
        max_time=None,
        accelerator=args.accelerator,
    )
    cfg.write_text(json.dumps(settings))
    print(f"{os.cpu_count()} cores; {json.dumps(settings)}; corpus {args.total} images in {corpus}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other work on these cores skews every row)")
    # 1 process on every core (torch's default), 1 process on one thread (what each DDP rank gets
    # here), 2 DDP processes
    runs = {"1 process": (1, None), "1 process, 1 thread": (1, 1), "2 processes": (2, None)}
    results = {}
    for name, (devices, threads) in runs.items():
        run = root / f"run{devices}_{threads or 'all'}"
        shutil.rmtree(run, ignore_errors=True)
        r = results[name] = per_step(train(corpus, run, cfg, devices, threads), args.batch_size)
        print(
            f"{name:20s} {r['step_s'] * 1000:7.1f} ms/step {r['samples_per_s']:7.1f} samples/s  "
            f"({r['steps']} steps per rank, torch threads {r['threads']}, fit {r['fit_wall_s']:.1f} s)"
        )
    two = results["2 processes"]
    for name in ("1 process", "1 process, 1 thread"):
        one = results[name]
        print(
            f"2 processes vs {name}: {two['step_s'] / one['step_s']:.2f}x the time per step, "
            f"{two['samples_per_s'] / one['samples_per_s']:.2f}x the samples/s"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
