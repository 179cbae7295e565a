"""`glyphgate scan`."""

from __future__ import annotations

from glyphgate.core.pages.cuts import add_page_arguments


def add_scan_arguments(p):
    p.add_argument(
        "path",
        help="folder (searched recursively) or ZIP file of scans; with --page, a PAGE-XML file or folder",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--artifacts",
        default=None,
        help="score locally with this artifacts folder (default: GLYPHGATE_ARTIFACTS, else the shipped artifacts/default)",
    )
    src.add_argument(
        "--url", default=None, help="score through a running glyphgate server, e.g. http://127.0.0.1:3000"
    )
    p.add_argument(
        "--out", required=True, help="report folder: results.csv, results.json, flagged.html, flagged.png"
    )
    p.add_argument(
        "--batch", type=int, default=256, help="images per ONNX batch or per request (default 256)"
    )
    p.add_argument(
        "--fdr",
        type=float,
        default=None,
        metavar="Q",
        help="flag by the Benjamini-Hochberg procedure over the whole folder at false-discovery rate Q "
        "(instead of the threshold): at most a share Q of the flagged scans are real glyphs, on average",
    )
    p.add_argument(
        "--page",
        action="store_true",
        help="PATH is PAGE-XML: cut every glyph by its coordinates (Glyph level, or words split into glyphs), "
        "score it and write <page>.glyphgate.xml with the verdicts",
    )
    add_page_arguments(p, note="with --page: ")
    p.add_argument("--no-progress", action="store_true")


def scan(args) -> int:
    from glyphgate.core.contract.settings import load as load_settings
    from glyphgate.core.errors import ConfigError
    from glyphgate.scan.folder import open_scorer
    from glyphgate.scan.folder import scan as run

    if not 1 <= args.batch <= 4096:
        raise ConfigError(f"--batch {args.batch}: expected 1..4096")
    if args.fdr is not None and not 0 < args.fdr < 1:
        raise ConfigError(f"--fdr {args.fdr}: expected a value strictly between 0 and 1")
    if args.page and args.fdr is not None:
        raise ConfigError("--fdr applies to folders of scans, not yet to --page")
    # Pages and folders are scored the same way: locally or through a server.
    settings = load_settings()
    score = open_scorer(
        args.artifacts or settings.artifacts, args.url, settings.api_token, keep_all=args.fdr is not None
    )
    if args.page:
        from glyphgate.scan.page import scan_pages

        summary = scan_pages(
            args.path,
            args.out,
            score,
            image=args.image,
            crop=args.crop,
        )
        print(
            f"{summary['pages']} pages, {summary['images']} glyphs: {summary['scored']} scored, {summary['flagged']} "
            f"flagged in {summary['seconds']:.1f} s -> {args.out}"
        )
        return 1 if summary["flagged"] or summary["errors"] else 0
    summary = run(
        args.path,
        args.out,
        score,
        batch=args.batch,
        progress=not args.no_progress,
        fdr=args.fdr,
    )
    print(
        f"{summary['images']} files: {summary['scored']} scored, {summary['flagged']} flagged, "
        f"{summary['unreadable']} unreadable, {summary['images_per_s']:.0f} images/s -> {args.out}"
    )
    # grep-style exit status: 1 when anything was flagged, so a pipeline can branch on it
    return 1 if summary["flagged"] else 0
