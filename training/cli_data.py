"""`glyphgate data synth` and `glyphgate data check`."""

from __future__ import annotations

import time

from .errors import DataError


def add_synth_arguments(p):
    from .synth.corpus import DEFAULT_OOD_PER_KIND, DEFAULT_TOTAL

    p.add_argument("--out", required=True, help="folder to write (course layout + classes.json + ood/ + preview/)")
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical arrays (default 0)")
    p.add_argument("--total", type=int, default=DEFAULT_TOTAL, help=f"glyph images over all splits (default {DEFAULT_TOTAL})")
    p.add_argument("--ood-per-kind", type=int, default=DEFAULT_OOD_PER_KIND, help=f"images per OOD kind (default {DEFAULT_OOD_PER_KIND})")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def synth(args) -> int:
    from .synth.corpus import synthesize

    t0 = time.perf_counter()
    try:
        manifest = synthesize(args.out, seed=args.seed, total=args.total, ood_per_kind=args.ood_per_kind, workers=args.workers)
    except ValueError as e:
        raise DataError(str(e)) from None
    sizes = manifest["splits"]
    print(f"wrote {args.out}: train {sizes['train']}, val {sizes['val']}, test {sizes['test']}, "
          f"{len(manifest['ood'])} OOD sets, {len(manifest['classes'])} classes in {time.perf_counter() - t0:.1f} s")
    return 0


def add_check_arguments(p):
    p.add_argument("--data", required=True, help="data folder: course npy layout or image folders")
    p.add_argument("--seed", type=int, default=0, help="split seed for a single class tree (default 0)")


def check(args) -> int:
    from .data import load_glyph_data

    data = load_glyph_data(args.data, seed=args.seed)
    print(f"{data.root} ({data.layout} layout): {data.num_classes} classes")
    for split, (x, y) in data.splits.items():
        counts = y.bincount(minlength=data.num_classes)
        print(f"  {split:5s} {len(y):6d} images, per class {int(counts.min())}..{int(counts.max())}, "
              f"values {float(x.min()):.2f}..{float(x.max()):.2f}")
    for name, x in data.ood.items():
        print(f"  OOD {name} ({data.ood_kind[name]}): {len(x)} images")
    return 0
