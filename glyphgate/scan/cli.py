"""`glyphgate scan`. Exit status: 0 every file scored and nothing flagged; 1 something flagged
or some files unreadable; 2 nothing usable (an empty folder, every file unreadable) or a wrong
argument; 130/143 stopped by SIGINT/SIGTERM (finish with --resume)."""

from __future__ import annotations

from glyphgate.core.pages.options import add_page_arguments


def add_scan_arguments(p):
    p.add_argument(
        "path",
        help="folder (searched recursively) or ZIP file of scans; with --page, a PAGE-XML or ALTO file or folder",
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
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue a scan that was stopped or killed: keep the rows OUT/results.csv holds, scan "
        "only the files (with --page: the pages) it does not, and report on them all",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="start again although OUT/results.csv exists (without --resume or --overwrite, an "
        "existing results.csv is refused)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=256,
        help="images per ONNX batch or per request, written to results.csv after each (default 256)",
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
        help="PATH is PAGE-XML or ALTO: cut every glyph by its coordinates (Glyph level, or words split into glyphs), "
        "score it and write <page>.glyphgate.xml with the verdicts",
    )
    add_page_arguments(p, note="with --page: ")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that read and decode the files while ONNX Runtime scores (default: one per core "
        "for a local scan of more than one batch; 0: decode in the scan's own process); with --engine ray: "
        "the scoring actors, each one ONNX Runtime session (default: one per cluster CPU)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this machine's cores; ray: a Ray Data pipeline (decode tasks, an actor pool of ONNX "
        "Runtime sessions, Parquet/CSV shards in OUT/shards) on a local Ray runtime or --address (pip install '.[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --engine ray: an existing Ray cluster (e.g. ray://head:10001 or auto); every node must see PATH",
    )
    p.add_argument(
        "--shards",
        choices=("parquet", "csv"),
        default="parquet",
        help="with --engine ray: the format of the shards the workers write (default parquet)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.epilog = (
        "Exit status: 0 every file scored and nothing flagged; 1 something flagged or unreadable; "
        "2 nothing usable (no files, every file unreadable, no page scanned) or a bad argument; "
        "130 / 143 stopped by SIGINT / SIGTERM after the chunk in flight (finish with --resume). "
        "Files over GLYPHGATE_MAX_UPLOAD_MB (also what a ZIP member declares or inflates to) are "
        "refused, one error row each."
    )


def scan(args) -> int:
    from glyphgate.core.contract.settings import load as load_settings
    from glyphgate.core.errors import ConfigError
    from glyphgate.scan.folder import open_scorer

    if args.workers is not None and not 0 <= args.workers <= 256:
        raise ConfigError(f"--workers {args.workers}: expected 0..256")
    if not 1 <= args.batch <= 4096:
        raise ConfigError(f"--batch {args.batch}: expected 1..4096")
    if args.fdr is not None and not 0 < args.fdr < 1:
        raise ConfigError(f"--fdr {args.fdr}: expected a value strictly between 0 and 1")
    if args.page and args.fdr is not None:
        raise ConfigError("--fdr applies to folders of scans, not yet to --page")
    if args.engine == "ray" and (args.page or args.url):
        raise ConfigError(
            "--engine ray scores folders, ZIPs and manifests with a local model (not --page or --url)"
        )
    if args.engine == "local" and args.address:
        raise ConfigError("--address needs --engine ray")
    # Pages and folders are scored the same way: locally or through a server.
    settings = load_settings()
    if args.engine == "ray":
        return scan_folder(args, None, artifacts=args.artifacts or settings.artifacts)
    score = open_scorer(args.artifacts or settings.artifacts, args.url, settings.api_token)
    return (scan_pages if args.page else scan_folder)(args, score)


def scan_pages(args, score) -> int:
    from glyphgate.scan.page import scan_pages as run

    summary = run(
        args.path,
        args.out,
        score,
        image=args.image,
        crop=args.crop,
        resume=args.resume,
        overwrite=args.overwrite,
        rescale=args.rescale,
    )
    if not summary["complete"]:
        return stopped(summary, "pages", args.out)
    print(
        f"{summary['pages']} pages, {summary['images']} glyphs: {summary['scored']} scored, {summary['flagged']} "
        f"flagged in {summary['seconds']:.1f} s -> {args.out}"
    )
    return 1 if summary["flagged"] or summary["errors"] or summary["unreadable"] else 0


def scan_folder(args, score, artifacts=None) -> int:
    from glyphgate.core.errors import DataError

    common = dict(
        batch=args.batch,
        progress=not args.no_progress,
        fdr=args.fdr,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    if score is None:
        from glyphgate.scan.ray_engine import scan_with_ray

        summary = scan_with_ray(
            args.path,
            args.out,
            artifacts,
            workers=args.workers,
            address=args.address,
            shard_format=args.shards,
            **common,
        )
    else:
        from glyphgate.scan.folder import scan as run

        summary = run(args.path, args.out, score, workers=args.workers, **common)
    if not summary["complete"]:
        return stopped(summary, "files", args.out)
    if not summary["scored"]:
        raise DataError(
            f"{args.path}: none of its {summary['images']} files could be scored "
            f"(the reasons are in {args.out}/results.csv)"
        )
    rate = summary["images_per_s"]
    print(
        f"{summary['images']} files: {summary['scored']} scored, {summary['flagged']} flagged, "
        f"{summary['unreadable']} unreadable" + (f", {rate:.0f} images/s" if rate else "") + f" -> {args.out}"
    )
    # grep-style exit status: 1 when anything was flagged (or unreadable), so a pipeline can branch on it
    return 1 if summary["flagged"] or summary["unreadable"] else 0


def stopped(summary: dict, what: str, out) -> int:
    """The one line a stopped scan ends with, and the shell's status for its signal."""
    import sys

    from glyphgate.scan.stop import exit_status

    print(
        f"glyphgate: stopped by {summary['stopped_by']}: {summary['remaining']} {what} not scanned yet "
        f"({out}/results.json says so); run the same command with --resume to finish",
        file=sys.stderr,
    )
    return exit_status(summary["stopped_by"])
