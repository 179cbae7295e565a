"""`glyphgate generate --evaluate`: how good a model's samples are, as numbers.

For N fresh chains per class (informative init when the model has one), measured at 32, 256 and
512 SGLD steps of the same chains:
- conditional accuracy: the share of samples the classifier baseline labels as the class asked
  for (the card's target is >= 0.90 at 256 steps);
- KID (kernel inception distance, unbiased at small N; Binkowski et al. 2018) between the
  samples and real test glyphs, in the classifier baseline's penultimate features (cubic
  polynomial kernel, averaged over random subsets); lower is closer to real glyphs;
- within-class diversity: the mean pairwise distance between samples of one class in the same
  (standardised) features, beside the same figure for real test glyphs (a collapsed sampler scores near 0).
The baseline is a different network from the one sampled, so a sampler cannot score well by
producing adversarial patterns for its own classifier."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from glyphgate.core.errors import ConfigError

STEPS = (32, 256, 512)


@torch.no_grad()
def features(net, x: torch.Tensor, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features [N, D], logits [N, C]) of the baseline network."""
    feats, logits = [], []
    for i in range(0, len(x), batch):
        f = net.features(x[i : i + batch].float())
        feats.append(f.numpy())
        logits.append(net.head(f).numpy())
    return np.concatenate(feats), np.concatenate(logits)


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 20, size: int = 200, seed: int = 0) -> float:
    """Unbiased squared MMD with k(x, y) = (x.y / d + 1)^3, averaged over random subsets."""
    rng = np.random.default_rng(seed)
    m = min(size, len(a), len(b))
    d = a.shape[1]
    out = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = ~np.eye(m, dtype=bool)
        out.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(out))


def diversity(f: np.ndarray, y: np.ndarray) -> float:
    """Mean pairwise distance between samples of the same class, averaged over classes."""
    per_class = []
    for c in np.unique(y):
        g = f[y == c]
        if len(g) > 1:
            dist = np.sqrt(((g[:, None] - g[None]) ** 2).sum(-1))
            per_class.append(dist[~np.eye(len(g), dtype=bool)].mean())
    return float(np.mean(per_class)) if per_class else float("nan")


def evaluate_generation(
    model,
    baseline,
    real_x: torch.Tensor,
    real_y: torch.Tensor,
    per_class: int = 10,
    steps=STEPS,
    seed: int = 0,
    log=print,
) -> tuple[dict, dict[int, torch.Tensor]]:
    """Figures per step count, the real glyphs' own reference figures, and the samples per step
    count (`glyphgate generate --evaluate` writes them as JSON and PNG grids)."""
    if list(baseline.classes) != list(model.classes):
        raise ConfigError(
            "the baseline's classes differ from the model's: evaluate with the baseline trained on the same data"
        )
    if per_class < 2:
        raise ConfigError(f"--per-class {per_class}: expected at least 2 (diversity needs pairs)")
    conditional = model.net.num_classes > 1
    n_classes = len(model.classes)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    sampler = model.sampler()
    x = sampler.fresh(len(y), y.to(model.device) if conditional else None, model.device, gen)
    f_real, logits_real = features(baseline.net, real_x)
    # Standardised by the real glyphs' feature statistics, so the cubic kernel sees values of
    # order 1 (raw penultimate activations run to tens and make KID's scale arbitrary).
    mu, sd = f_real.mean(0), f_real.std(0) + 1e-6
    f_real = (f_real - mu) / sd
    ry = real_y.numpy()
    reference = {
        "n_real": int(len(real_x)),
        "baseline_accuracy_on_real": float(np.mean(logits_real.argmax(1) == ry)),
        "diversity_real": diversity(f_real, ry),
        "kid_real_halves": kid(f_real[::2], f_real[1::2]),
    }
    figures, samples, done, t0 = {}, {}, 0, time.perf_counter()
    for k in sorted(steps):
        x, _ = sampler.run(x, y.to(model.device) if conditional else None, steps=k - done, generator=gen)
        done = k
        xs = x.detach().cpu()
        f, logits = features(baseline.net, xs)
        f = (f - mu) / sd
        figures[str(k)] = {
            "conditional_accuracy": float(np.mean(logits.argmax(1) == y.numpy())) if conditional else None,
            "kid": kid(f, f_real),
            "diversity": diversity(f, y.numpy()),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        samples[k] = xs
        log(
            f"{k:4d} steps: "
            + ", ".join(f"{n} {v:.4f}" for n, v in figures[str(k)].items() if isinstance(v, float))
        )
    return {
        "per_class": per_class,
        "n_samples": int(len(y)),
        "seed": seed,
        "steps": figures,
        "reference": reference,
        "model_mode": getattr(model, "mode", None) or model.cfg.mode,
    }, samples


def load_sampling_model(path: str | Path):
    """A Lightning checkpoint (.ckpt) or an exported model (artifacts folder or its model.pt)."""
    from glyphgate.core.contract.artifacts import load_torch_model
    from training.checkpoint import load_module

    p = Path(path)
    if p.is_dir() or p.suffix == ".pt":
        return load_torch_model(p if p.is_dir() else p.parent)
    return load_module(p)
