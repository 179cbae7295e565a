"""`glyphgate calibrate`, `evaluate`, `card`, `peers`."""

from __future__ import annotations

from pathlib import Path

# What calibrate and evaluate promise about the files they read and the folder they write.
EXIT_STATUS = (
    "An unreadable image is reported on one line (glyphgate: skipped FILE: reason), left out and "
    "counted (skipped in the JSON written). Exit status: 0 every file read, 1 some skipped, 2 nothing usable."
)
READ_ONLY = (
    "The shipped model (the package's artifacts/default) is never written unless --in-place is given; "
    "any other artifacts folder is written in place unless --out DIR is given."
)


def _add_destination(p, what: str) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"write {what} to DIR (created when missing) and leave the artifacts folder as it is",
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="write into the artifacts folder even when it is the shipped model (`make model` does)",
    )
    p.epilog = f"{READ_ONLY} {EXIT_STATUS}"


def _destination(args, command: str) -> Path:
    """The folder `command` writes: --out DIR, else the artifacts folder; the shipped one only
    with --in-place, since its files are the repository's (a stray run would rewrite them)."""
    from glyphgate.core.contract import artifacts as contract
    from glyphgate.core.errors import ConfigError

    target = Path(args.out if args.out is not None else args.artifacts)
    if not args.in_place and target.resolve() == contract.SHIPPED.resolve():
        raise ConfigError(
            f"{target}: the shipped model is read-only; pass --out DIR to write {command}'s results "
            "elsewhere, or --in-place to overwrite it"
        )
    return target


def _calibration_copy(args) -> Path:
    """The artifacts folder calibrate writes: itself, or --out DIR holding a copy of its model
    files and of its calibration.json (a collection keeps the old one's metrics as reference)."""
    import shutil

    from glyphgate.core.contract.artifacts import (
        CALIBRATION_JSON,
        CLASSES_JSON,
        MODEL_ONNX,
        MODEL_PT,
        require,
    )

    target, source = _destination(args, "calibrate"), Path(args.artifacts)
    if target.resolve() == source.resolve():
        return source
    require(source, MODEL_ONNX, CLASSES_JSON)
    target.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_ONNX, MODEL_PT, CLASSES_JSON, CALIBRATION_JSON):
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    return target


def add_calibrate_arguments(p):
    p.add_argument(
        "--artifacts",
        required=True,
        help="artifacts folder from `glyphgate export`; calibration.json and report/ go there (or to --out DIR)",
    )
    _add_destination(p, "a copy of the model files with the new calibration.json and report/")
    p.add_argument("--data", required=True, help="data folder with the ID split and the OOD sets")
    p.add_argument(
        "--target-tpr",
        type=float,
        default=0.95,
        help="share of real glyphs kept below the threshold (default 0.95)",
    )
    p.add_argument("--split", default="test", help="ID split the threshold is fitted on (default test)")
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="ARTIFACTS",
        help="artifacts folder of a baseline model (e.g. the classifier-mode run) to compare; repeatable",
    )
    p.add_argument("--no-rbm", action="store_true", help="skip the BernoulliRBM baseline")
    p.add_argument(
        "--real",
        default=None,
        metavar="DIR",
        help="real glyphs from `glyphgate data import-page --split-by-work`: the threshold and p-values are "
        "fitted on DIR/val (the validation works), the synthetic suites stay as reference metrics",
    )
    c = p.add_argument_group(
        "an archive's own collection (any folder that is not a full data set of the model's classes)"
    )
    c.add_argument(
        "--name", default=None, help="the collection's name in calibration.json (default: the folder's name)"
    )
    c.add_argument(
        "--unlabelled",
        action="store_true",
        help="DATA holds unlabelled glyphs (every image outside ood/): threshold only",
    )
    c.add_argument(
        "--unknown-as-ood",
        action="store_true",
        help="class folders that name no class of the model are OOD, not left out",
    )
    c.add_argument(
        "--ood",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of the collection's own rejects; repeatable",
    )
    c.add_argument(
        "--target-fpr",
        type=float,
        default=None,
        help="fit the threshold so at most this share of the rejects is accepted (instead of --target-tpr)",
    )


def calibrate(args) -> int:
    from calibration.calibrate import calibrate as run
    from corpus.folders import Skipped
    from corpus.load import is_full_dataset

    target, skipped = _calibration_copy(args), Skipped()
    collection = (
        args.name or args.unlabelled or args.unknown_as_ood or args.ood or args.target_fpr is not None
    )
    if collection or not is_full_dataset(Path(args.data)):
        return _calibrate_collection(args, target, skipped)

    cal = run(
        target,
        args.data,
        target_tpr=args.target_tpr,
        split=args.split,
        baselines=args.baseline,
        rbm=not args.no_rbm,
        real=args.real,
        skipped=skipped,
    )
    pop = cal["threshold_population"]
    print(
        f"threshold {cal['threshold']:.4f} fitted on {pop['population']} glyphs ({pop['data']}, N = {pop['n']}): "
        f"keeps {cal['measured_tpr']:.4f} of them (target {cal['target_tpr']})"
    )
    print(
        f"  synthetic {args.split} split: accuracy {cal['id']['accuracy']:.4f}, ECE {cal['id']['ece']:.4f}, "
        f"flagged {cal['id']['flagged_at_threshold']:.1%}"
    )
    for kind, m in pop.get("ood", {}).items():
        print(f"  real val {kind}: caught {m['caught_at_threshold']:.1%}, AUROC {m['auroc']:.4f}")
    for name, m in cal["metrics"]["sets"].items():
        print(
            f"  {m['kind']:4s} {name}: caught {m['caught_at_threshold']:.1%}, "
            f"energy AUROC {m['scores']['energy']['auroc']:.4f}, FPR95 {m['scores']['energy']['fpr95']:.4f}"
        )
    return _finish(f"{target}/calibration.json and {target}/report/index.html", skipped)


def _finish(written: str, skipped) -> int:
    """The summary's last line, and the exit status it implies (1: some files were left out)."""
    print(f"wrote {written}; {len(skipped)} unreadable files skipped")
    return 1 if len(skipped) else 0


def add_card_arguments(p):
    p.add_argument("--artifacts", required=True, help="calibrated artifacts folder; MODEL_CARD.md goes there")
    p.add_argument("--run", required=True, help="the training run folder the model was exported from")
    p.add_argument("--data", required=True, help="the data folder it was trained and calibrated on")
    p.add_argument("--baseline-run", default=None, help="run folder of the classifier baseline, if any")
    p.add_argument("--command", default="make model", help="the command that made it, for the card")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("ARTIFACTS", "RUN"),
        default=None,
        help="a calibrated model of another training mode and its run folder: adds the side-by-side table",
    )
    p.add_argument(
        "--before",
        default=None,
        metavar="DIR",
        help="calibration.json and real_scans.json of the model this one replaces: adds a before/after table",
    )
    p.add_argument(
        "--real-pages",
        default=None,
        metavar="DIR",
        help="the pages the real glyphs were imported from, for the card's steps "
        "(default: the source their import.json names)",
    )


def card(args) -> int:
    from calibration.card import write_card

    path = write_card(
        args.artifacts,
        args.run,
        args.data,
        args.baseline_run,
        args.command,
        args.compare,
        args.before,
        args.real_pages,
    )
    print(f"wrote {path}")
    return 0


def add_evaluate_arguments(p):
    p.add_argument(
        "--artifacts",
        required=True,
        help="calibrated artifacts folder; results go to its real_scans.json and report/ (or to --out DIR)",
    )
    _add_destination(p, "real_scans.json and report/")
    p.add_argument(
        "--data", required=True, help="folder from `glyphgate data import-page`: <class>/ and ood/<kind>/"
    )
    p.add_argument("--name", required=True, help="name of this collection in real_scans.json (e.g. kant-bin)")
    p.add_argument("--source", default="", help="where the pages come from and their licence, for the card")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="ARTIFACTS",
        help="a second calibrated artifacts folder (the shipped classifier baseline) measured on the same crops",
    )


def evaluate(args) -> int:
    from calibration.real import evaluate_real, summary_line
    from corpus.folders import Skipped

    target, skipped = _destination(args, "evaluate"), Skipped()
    result = evaluate_real(
        args.artifacts, args.data, args.name, args.source, args.baseline, out=target, skipped=skipped
    )
    print(summary_line(args.name, result))
    return _finish(f"{target}/real_scans.json and {target}/report/index.html", skipped)


def _calibrate_collection(args, target: Path, skipped) -> int:
    from calibration.collection import calibrate_collection

    cal = calibrate_collection(
        target,
        args.data,
        name=args.name,
        unlabelled=args.unlabelled,
        unknown_as_ood=args.unknown_as_ood,
        ood_dirs=args.ood,
        target_tpr=args.target_tpr,
        target_fpr=args.target_fpr,
        skipped=skipped,
    )
    c = cal["collection"]
    acc = (
        "unlabelled"
        if cal["id"]["accuracy"] is None
        else f"accuracy {cal['id']['accuracy']:.4f} on {', '.join(c['classes_present'])}"
    )
    print(f"collection {c['name']}: {c['n_glyphs']} glyphs, {acc}")
    if c["unknown_classes"]:
        print(
            f"  not classes of the model ({'OOD' if c['unknown_as_ood'] else 'left out'}): "
            + ", ".join(f"{k} ({v})" for k, v in c["unknown_classes"].items())
        )
    print(
        f"threshold {cal['threshold']:.4f}: keeps {cal['measured_tpr']:.4f} of the collection's glyphs"
        + (
            f" (target TPR {cal['target_tpr']})"
            if cal["target_fpr"] is None
            else f" (target FPR {cal['target_fpr']} on its rejects)"
        )
    )
    for name, m in cal["metrics"]["sets"].items():
        e = m["scores"]["energy"]
        print(
            f"  {name}: AUROC {e['auroc']:.4f}, FPR95 {e['fpr95']:.4f}, caught at threshold {m['caught_at_threshold']:.4f} (N = {m['n']})"
        )
    return _finish(f"{target}/calibration.json and {target}/report/index.html", skipped)


def add_peers_arguments(p):
    p.add_argument(
        "--artifacts", required=True, help="the calibrated JEM artifacts folder; peers.json goes there"
    )
    p.add_argument("--baseline", required=True, help="the calibrated classifier baseline's artifacts folder")
    p.add_argument("--data", required=True, help="the corpus the models were trained on (its train split)")
    p.add_argument(
        "--real",
        default=None,
        metavar="DIR",
        help="real glyphs from `import-page --split-by-work`: DIR/train joins the feature detectors' fit",
    )
    p.add_argument(
        "--collection",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a folder from `glyphgate data import-page` (<class>/ and ood/<kind>/) to measure; repeatable",
    )
    p.add_argument("--no-ocr", action="store_true", help="leave out the Tesseract rows")
    p.add_argument("--jobs", type=int, default=2, help="Tesseract processes at once (default 2)")


def peers(args) -> int:
    from calibration.peers import gate_row
    from calibration.peers import peers as run
    from glyphgate.core.contract.artifacts import PEERS_JSON
    from glyphgate.core.errors import DataError

    collections = {}
    for item in args.collection:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise DataError(f"--collection {item!r}: expected NAME=DIR")
        collections[name] = folder
    out = run(args.artifacts, args.baseline, args.data, args.real, collections, not args.no_ocr, args.jobs)
    for name, table in out["collections"].items():
        kinds = sorted({k for r in table["rows"].values() for k in r["auroc"]})
        print(
            f"{name} ({table['n_glyphs']} glyphs): accuracy | AUROC / caught at {out['flag_share']:.0%} flagged: "
            + ", ".join(kinds)
        )
        for row, r in table["rows"].items():
            mark = "*" if row == gate_row(table) else " "
            acc = "  —   " if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            cells = "  ".join(f"{r['auroc'][k]:.3f}/{r['caught'][k]:.2f}" for k in kinds)
            print(f" {mark}{row:34s} {acc}  {cells}")
    for b in out["beaten"]:
        print(f"{b['collection']}: {b['peer']} ranks {b['kind']} above the gate by {b['by']:.3f} AUROC")
    print(f"wrote {args.artifacts}/{PEERS_JSON}")
    return 0
