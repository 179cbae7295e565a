"""`glyphgate data synth` and `glyphgate data check`."""

from __future__ import annotations

import time

from glyphgate.core.errors import ConfigError, DataError
from glyphgate.core.pages.options import add_page_arguments


def add_synth_arguments(p):
    from corpus.synth.corpus import DEFAULT_OOD_PER_KIND, DEFAULT_TOTAL

    p.add_argument(
        "--out", required=True, help="folder to write (course layout + classes.json + ood/ + preview/)"
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical arrays (default 0)")
    p.add_argument(
        "--total",
        type=int,
        default=DEFAULT_TOTAL,
        help=f"glyph images over all splits (default {DEFAULT_TOTAL})",
    )
    p.add_argument(
        "--ood-per-kind",
        type=int,
        default=DEFAULT_OOD_PER_KIND,
        help=f"images per OOD kind (default {DEFAULT_OOD_PER_KIND})",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def synth(args) -> int:
    from corpus.synth.corpus import synthesize

    t0 = time.perf_counter()
    try:
        manifest = synthesize(
            args.out, seed=args.seed, total=args.total, ood_per_kind=args.ood_per_kind, workers=args.workers
        )
    except ValueError as e:
        raise DataError(str(e)) from None
    sizes = manifest["splits"]
    print(
        f"wrote {args.out}: train {sizes['train']}, val {sizes['val']}, test {sizes['test']}, "
        f"{len(manifest['ood'])} OOD sets, {len(manifest['classes'])} classes in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def add_check_arguments(p):
    p.epilog = (
        "An unreadable image is reported on one line (glyphgate: skipped FILE: reason) and left out. "
        "Exit status: 0 every file read, 1 some skipped, 2 nothing usable."
    )
    p.add_argument("--data", required=True, help="data folder: course npy layout or image folders")
    p.add_argument("--seed", type=int, default=0, help="split seed for a single class tree (default 0)")


def check(args) -> int:
    """Exit 0: every file read; 1: some image files unreadable (one stderr line each, left out);
    2: nothing usable (a class folder none of whose images reads, a malformed array)."""
    from corpus.folders import Skipped
    from corpus.load import load_glyph_data

    skipped = Skipped()
    data = load_glyph_data(args.data, seed=args.seed, skipped=skipped)
    print(
        f"{data.root} ({data.layout} layout): {data.num_classes} classes, "
        f"{len(skipped)} unreadable files skipped"
    )
    for split, (x, y) in data.splits.items():
        counts = y.bincount(minlength=data.num_classes)
        print(
            f"  {split:5s} {len(y):6d} images, per class {int(counts.min())}..{int(counts.max())}, "
            f"values {float(x.min()):.2f}..{float(x.max()):.2f}"
        )
    for name, x in data.ood.items():
        print(f"  OOD {name} ({data.ood_kind[name]}): {len(x)} images")
    return 1 if len(skipped) else 0


def add_import_page_arguments(p):
    p.add_argument(
        "pages", help="a PAGE-XML or ALTO file, or a folder searched for them (other XML is passed over)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder to write: <class>/, ood/{other_symbols,words,fragments,blank}/, import.json",
    )
    add_page_arguments(p)
    p.add_argument(
        "--classes",
        default=None,
        help="classes.json naming the classes (default: the embedded corpus' 42 classes)",
    )
    p.add_argument(
        "--split-by-work",
        default=None,
        metavar="JSON",
        help='{"train": [work folders], "val": [...], "test": [...]}: pages go to OUT/<split>/ by their work folder',
    )
    p.add_argument(
        "--accept-predictions",
        action="store_true",
        help="on a page annotated by `glyphgate scan --page`: a glyph without ground truth takes the model's "
        "predicted label when its verdict was not flagged (pseudo-labels; flagged glyphs never become labels). "
        "Without it only ground truth labels a glyph, and the annotated copy imports as the original page; "
        "import.json records the choice",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.epilog = (
        "exit status: 0 every page imported; 1 some pages failed (one line each on stderr, the others "
        "imported); 2 no page could be imported"
    )


def import_page(args) -> int:
    import json
    from pathlib import Path

    from corpus.page_import import import_pages

    if args.classes:
        try:
            classes = json.loads(Path(args.classes).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{args.classes}: unreadable class list ({e})") from None
        classes = classes.get("classes") if isinstance(classes, dict) else classes
        if not isinstance(classes, list) or not classes:
            raise DataError(f"{args.classes}: no class list")
    else:
        from corpus.synth.faces import CLASSES as classes
    splits = None
    if args.split_by_work:
        try:
            splits = json.loads(Path(args.split_by_work).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{args.split_by_work}: unreadable split file ({e})") from None
        splits = (
            {k: v for k, v in splits.items() if not k.startswith("_")} if isinstance(splits, dict) else splits
        )
        if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
            raise DataError(f"{args.split_by_work}: expected {{split: [work folder names]}}")
    from glyphgate.core.contract.settings import load as load_settings

    t0 = time.perf_counter()
    summary = import_pages(
        args.pages,
        args.out,
        list(classes),
        image=args.image,
        crop=args.crop,
        splits=splits,
        rescale=args.rescale,
        accept_predictions=args.accept_predictions,
        max_pixels=load_settings().max_pixels,
        progress=not args.no_progress,
    )
    tot = summary["totals"]
    print(
        f"imported {len(summary['pages'])} pages ({len(summary['errors'])} failed) into {args.out} in "
        f"{time.perf_counter() - t0:.1f} s: {tot.get('glyphs', 0)} glyphs of the classes, {tot.get('other symbols', 0)} other symbols, "
        f"{tot.get('words', 0)} words, {tot.get('fragments', 0)} fragments, {tot.get('blank', 0)} blank"
        + (
            f"; {tot.get('predictions as labels', 0)} predicted labels accepted"
            if args.accept_predictions
            else ""
        )
    )
    # 0: every page imported; 1: some pages failed (each said so in one line); no page at all
    # raised DataError above, which the CLI prints in one line and exits 2 on.
    return 0 if not summary["errors"] else 1


def add_export_png_arguments(p):
    p.add_argument(
        "--data", required=True, help="course-layout folder, e.g. what `glyphgate data synth` wrote"
    )
    p.add_argument("--out", required=True, help="folder to write: <split>/<class>/*.png and ood/<set>/*.png")
    p.add_argument(
        "--split",
        action="append",
        choices=("train", "val", "test"),
        default=None,
        help="split to write; repeatable (default: test)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="at most this many images per class and per OOD set"
    )


def export_png(args) -> int:
    from corpus.examples import export_png as run

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: expected at least 1")
    counts = run(args.data, args.out, tuple(args.split or ["test"]), args.limit)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def add_examples_arguments(p):
    p.add_argument("--out", default="examples", help="folder to write (default examples/)")
    p.add_argument("--seed", type=int, default=0)


def examples(args) -> int:
    from corpus.examples import write_examples

    files = write_examples(args.out, args.seed)
    print(f"wrote {len(files)} files under {args.out}")
    return 0
