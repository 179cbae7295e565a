"""`glyphgate evaluate`: how the shipped gate behaves on glyphs cut from real pages.

Reads a folder written by `glyphgate data import-page` (root/<class>/ plus root/ood/<kind>/),
scores it with the artifacts' ONNX model and threshold, and records in the artifacts'
real_scans.json, under a name: accuracy on the classes the folder holds, the share of real
glyphs flagged at the shipped threshold, and the energy AUROC of the glyphs against each OOD
kind of the same pages (words, fragments, blank margins, other symbols). It measures; it never
changes the threshold.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from glyphgate.core.artifacts import (
    CLASSES_JSON,
    MODEL_ONNX,
    load_calibration,
    read_json,
    require,
)
from glyphgate.core.errors import DataError
from glyphgate.core.grid import save_grid
from glyphgate.core.onnx_model import OnnxModel
from training.data_folders import read_named_classes, read_ood_folders

from . import report as rep
from .metrics import caught, ood_metrics

REAL_SCANS_JSON = "real_scans.json"


def evaluate_real(artifacts: str | Path, data: str | Path, name: str, source: str = "") -> dict:
    folder = require(artifacts, MODEL_ONNX, CLASSES_JSON)
    cal = load_calibration(folder)
    classes = read_json(folder / CLASSES_JSON)
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: folder not found (import pages with `glyphgate data import-page`)")
    x, y, unknown = read_named_classes(data, classes, f"{name} glyphs")
    if len(x) == 0:
        raise DataError(f"{data}: no glyphs of the model's classes")
    ood = read_ood_folders(data)
    runner = OnnxModel(folder / MODEL_ONNX, cpu_only=True)
    logits, energy = runner.run(x.numpy(), batch=256)
    pred = logits.argmax(1)
    y = y.numpy()
    flagged = energy > cal["threshold"]
    per_class = {
        classes[c]: {
            "n": int((y == c).sum()),
            "accuracy": float((pred[y == c] == c).mean()),
            "flagged": float(flagged[y == c].mean()),
        }
        for c in np.unique(y)
    }
    result = {
        "data": str(data),
        "source": source or str(data),
        "n_glyphs": int(len(y)),
        "n_classes": len(per_class),
        "accuracy": float((pred == y).mean()),
        "flagged_at_threshold": float(flagged.mean()),
        "threshold": cal["threshold"],
        "ood": {},
        "unknown_classes": unknown,
        "per_class": per_class,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    energies = {}
    for kind, xo in ood.items():
        _, eo = runner.run(xo.numpy(), batch=256)
        energies[kind] = eo
        m = ood_metrics(energy, eo)
        result["ood"][kind] = {
            "n": int(len(eo)),
            "auroc": m["auroc"],
            "fpr95": m["fpr95"],
            "caught_at_threshold": caught(eo, cal["threshold"]),
        }

    out = folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    wrong = np.flatnonzero((pred != y) | flagged)
    order = wrong[np.argsort(-energy[wrong])]
    save_grid(x.numpy()[order], out / f"real_{name}_misses.png", nrow=8, limit=64)
    flagged_glyphs = np.flatnonzero(flagged)
    if len(flagged_glyphs):  # the real glyphs the gate flags, highest energy first
        save_grid(
            x.numpy()[flagged_glyphs[np.argsort(-energy[flagged_glyphs])]],
            out / f"real_{name}_flagged.png",
            nrow=8,
            limit=64,
        )
    if energies:
        # the non-glyphs the gate lets through, lowest energy (most glyph-like) first
        kept = {k: e <= cal["threshold"] for k, e in energies.items()}
        passed = np.concatenate([ood[k].numpy()[kept[k]] for k in energies])
        e_passed = np.concatenate([energies[k][kept[k]] for k in energies])
        if len(passed):
            save_grid(passed[np.argsort(e_passed)], out / f"real_{name}_passed.png", nrow=8, limit=64)
        rep.energy_histograms(
            out / f"real_{name}_energy.png", energy, energies, {k: "real" for k in energies}, cal["threshold"]
        )
    path = folder / REAL_SCANS_JSON
    everything = read_json(path) if path.is_file() else {}
    everything[name] = result
    path.write_text(json.dumps(everything, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    figures = out / "figures.json"
    if figures.is_file():
        rep.write_index(out / "index.html", cal, cal["comparison"], read_json(figures), everything)
    return result


def summary_line(name: str, r: dict) -> str:
    ood = "; ".join(
        f"{k} caught {v['caught_at_threshold']:.1%} (AUROC {v['auroc']:.3f})"
        for k, v in sorted(r["ood"].items())
    )
    return (
        f"{name}: {r['n_glyphs']} glyphs of {r['n_classes']} classes: accuracy {r['accuracy']:.4f}, "
        f"flagged {r['flagged_at_threshold']:.1%} at the threshold {r['threshold']:.3f}; {ood or 'no OOD kinds'}"
    )
