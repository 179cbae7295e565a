"""`glyphgate <command>`: one console command for every step of the pipeline.

Sub-command modules are imported only when used, so `glyphgate --help` stays fast and the
packages keep their one-way imports (this module is the only one that sees them all).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command path -> module that defines add_arguments(parser) and run(args)
COMMANDS = {
    ("data", "synth"): (
        "corpus.cli",
        "synth",
        "write the embedded synthetic glyph corpus and OOD suites",
    ),
    ("data", "check"): (
        "corpus.cli",
        "check",
        "load a data folder (course npy layout or image folders) and summarise it",
    ),
    ("data", "export-png"): (
        "corpus.cli",
        "export_png",
        "write splits and OOD sets of a course-layout folder as PNG folders",
    ),
    ("data", "examples"): (
        "corpus.cli",
        "examples",
        "render sample glyph scans, non-glyph scans and a page with PAGE-XML",
    ),
    ("data", "import-page"): (
        "corpus.cli",
        "import_page",
        "cut labelled glyphs, words, fragments and blanks from PAGE-XML or ALTO pages",
    ),
    ("train",): ("training.cli_train", "train", "train a JEM (or ebm / classifier baseline) with Lightning"),
    ("generate",): (
        "training.cli_train",
        "generate",
        "sample glyphs from a checkpoint by SGLD (PNG grid, optional chain strip)",
    ),
    ("export",): (
        "training.cli_export",
        "export",
        "checkpoint -> artifacts folder: model.onnx (parity-checked), model.pt, classes.json",
    ),
    ("evaluate",): (
        "calibration.cli",
        "evaluate",
        "measure accuracy, flag rate and AUROC on glyphs imported from real pages",
    ),
    ("peers",): (
        "calibration.cli",
        "peers",
        "the gate beside its peers on real pages: baseline, feature-space detectors, Tesseract",
    ),
    ("card",): (
        "calibration.cli",
        "card",
        "write MODEL_CARD.md for a calibrated artifacts folder from its run and calibration",
    ),
    ("scan",): (
        "glyphgate.scan.cli",
        "scan",
        "score every image in a folder or ZIP -> results.csv/json + contact sheet of flagged scans",
    ),
    ("calibrate",): (
        "calibration.cli",
        "calibrate",
        "fit the energy threshold, measure OOD metrics and baselines, write calibration.json + report",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glyphgate", description="JEM glyph classifier, OOD detector and generator"
    )
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for path, (module, name, help_text) in COMMANDS.items():
        if len(path) == 1:
            sub = top.add_parser(path[0], help=help_text, description=help_text)
        else:
            if path[0] not in groups:
                grp = top.add_parser(path[0], help=f"{path[0]} commands")
                groups[path[0]] = grp.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
            sub = groups[path[0]].add_parser(path[1], help=help_text, description=help_text)
        sub.set_defaults(_target=(module, name))
        mod = importlib.import_module(module)
        getattr(mod, f"add_{name}_arguments")(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, name = args._target
    from glyphgate.core.errors import DivergenceError, GlyphgateError

    try:
        return int(getattr(importlib.import_module(module), name)(args) or 0)
    except DivergenceError as e:
        print(f"glyphgate: {e}", file=sys.stderr)
        return 1
    except (GlyphgateError, FileNotFoundError) as e:
        print(f"glyphgate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glyphgate: interrupted", file=sys.stderr)
        return 130
