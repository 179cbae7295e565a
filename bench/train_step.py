"""Seconds per training iteration, jem vs icd vs classifier, same batch size, measured in one run;
with --sam-rho also the JEM step under sharpness-aware minimisation, and with --compare-width W
the JEM at width W beside the default.

python bench/train_step.py [--batch-size 64] [--iters 30] [--width 32] [--sgld-steps 10] [--sam-rho 0.05] [--compare-width 24]
"""

from __future__ import annotations

import argparse
import time

import torch

from training.config import TrainConfig
from training.module import JEMModule


def seconds_per_iteration(mode: str, args, sam_rho: float = 0.0, width: int | None = None) -> float:
    torch.manual_seed(0)
    cfg = TrainConfig(
        mode=mode,
        width=width or args.width,
        sgld_steps=args.sgld_steps,
        batch_size=args.batch_size,
        sam_rho=sam_rho,
    )
    module = JEMModule(42, **cfg.__dict__)
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    x = torch.rand(args.batch_size, 1, 56, 56) * 2 - 1
    y = torch.randint(0, 42, (args.batch_size,))
    module.log = lambda *a, **k: None  # no Trainer attached: logging is a no-op here
    module.log_dict = lambda *a, **k: None
    if sam_rho > 0:  # SAM steps its own optimiser: hand it this one
        module.optimizers = lambda: opt
        module.lr_schedulers = lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        module.manual_backward = lambda loss: loss.backward()
    for i in range(args.warmup + args.iters):
        if i == args.warmup:
            t0 = time.perf_counter()
        if sam_rho > 0:
            module.training_step((x, y), i)
            continue
        opt.zero_grad()
        module.training_step((x, y), i).backward()
        opt.step()
    return (time.perf_counter() - t0) / args.iters


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--width", type=int, default=TrainConfig.width)
    p.add_argument("--sgld-steps", type=int, default=TrainConfig.sgld_steps)
    p.add_argument("--sam-rho", type=float, default=0.0, help="also time the JEM step under SAM")
    p.add_argument("--compare-width", type=int, default=None, help="also time the JEM at this width")
    args = p.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"width {args.width}, sgld_steps {args.sgld_steps}"
    )
    jem = seconds_per_iteration("jem", args)
    icd = seconds_per_iteration("icd", args)
    clf = seconds_per_iteration("classifier", args)
    print(f"jem        {jem * 1000:8.1f} ms/iteration")
    print(f"icd        {icd * 1000:8.1f} ms/iteration")
    print(f"classifier {clf * 1000:8.1f} ms/iteration")
    print(
        f"ratio jem/classifier {jem / clf:.1f}x  (SGLD steps + 1 = {args.sgld_steps + 1}); icd/jem {icd / jem:.2f}x"
    )
    if args.sam_rho > 0:
        sam = seconds_per_iteration("jem", args, sam_rho=args.sam_rho)
        print(f"jem + SAM  {sam * 1000:8.1f} ms/iteration  (rho {args.sam_rho}); SAM/jem {sam / jem:.2f}x")
    if args.compare_width:
        wide = seconds_per_iteration("jem", args, width=args.compare_width)
        print(
            f"jem w{args.compare_width:<6} {wide * 1000:8.1f} ms/iteration; width {args.compare_width}/{args.width} {wide / jem:.2f}x"
        )


if __name__ == "__main__":
    main()
