"""One CUDA training step of the project's JEMModule and one SGLD generation, timed: the check to
run where a GPU is lent (torch with CUDA and Lightning; no BentoML, no data folder).

    python bench/gpu_check.py [--batch-size 64] [--width 16] [--sgld-steps 5] [--iters 20]
                              [--gen-n 64] [--gen-steps 256] [--device cuda]

The step is training_step's whole objective (cross-entropy, and the p(x) term with its SGLD
negatives drawn from the replay buffer; a random batch holds no exposure negatives) plus backward
and Adam, on random images; the informative init is fitted to random images too, since only the
cost is measured. Without CUDA it says so and exits with status 0; `--device cpu` runs the same
code on the CPU (to check the script itself on a machine without a GPU).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def timed(fn, warmup: int, iters: int, device: torch.device) -> float:
    """Mean seconds of fn() after `warmup` calls, the GPU drained before each clock read."""
    drain = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    for _ in range(warmup):
        fn()
    drain()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    drain()
    return (time.perf_counter() - t0) / iters


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--sgld-steps", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--gen-n", type=int, default=64, help="chains of the generation")
    p.add_argument("--gen-steps", type=int, default=256, help="SGLD steps of the generation")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu_check: CUDA is not available here (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda or 'none'}); nothing timed",
            file=sys.stderr,
        )
        return 0

    from glyphgate.core.model.sgld import synthesize
    from training.config import TrainConfig
    from training.module import JEMModule

    torch.manual_seed(0)
    cfg = TrainConfig(width=args.width, sgld_steps=args.sgld_steps, batch_size=args.batch_size)
    module = JEMModule(42, **cfg.__dict__)
    module.init.fit(torch.rand(42 * 20, 1, 56, 56) * 2 - 1, torch.arange(42).repeat(20))
    module.start_chains()
    module = module.to(device)
    module.log = module.log_dict = lambda *a, **k: None  # no Trainer attached
    opt = torch.optim.Adam(module.net.parameters(), lr=1e-4)
    x = torch.rand(args.batch_size, 1, 56, 56, device=device) * 2 - 1
    y = torch.randint(0, 42, (args.batch_size,), device=device)
    losses = []

    def step():
        opt.zero_grad()
        loss = module.training_step((x, y), 0)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    step_s = timed(step, args.warmup, args.iters, device)
    if not torch.isfinite(torch.stack(losses)).all():
        print(f"gpu_check: the training loss went NaN or infinite on {device}", file=sys.stderr)
        return 1
    gen_s = timed(lambda: synthesize(module, n=args.gen_n, steps=args.gen_steps), 1, 1, device)

    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"{name} | torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(
        f"train step (batch {args.batch_size}, width {args.width}, {args.sgld_steps} SGLD steps): "
        f"{step_s * 1000:.2f} ms, {args.batch_size / step_s:.0f} samples/s"
    )
    print(
        f"SGLD generation ({args.gen_n} chains x {args.gen_steps} steps): {gen_s:.3f} s, "
        f"{gen_s / args.gen_steps * 1000:.2f} ms per step"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
