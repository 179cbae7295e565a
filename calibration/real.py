"""`glyphgate evaluate`: how the shipped gate behaves on glyphs cut from real pages.

Reads a folder written by `glyphgate data import-page` (root/<class>/ plus root/ood/<kind>/),
scores it with the artifacts' ONNX model and threshold, and records in real_scans.json (the
artifacts folder's, or that of the folder given as `out`), under a name: accuracy on the classes
the folder holds, the share of real glyphs flagged at the shipped threshold, the energy AUROC of
the glyphs against each OOD kind of the same pages (words, fragments, blank margins, other
symbols), and the unreadable files left out. It measures; it never changes the threshold.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration import figures as fig
from calibration.metrics import caught, expected_calibration_error, ood_metrics, reliability
from calibration.report import rerender_index, seed_report
from corpus.folders import Skipped, read_named_classes, read_ood_folders, skip_record
from glyphgate.core.contract.artifacts import (
    CLASSES_JSON,
    MODEL_ONNX,
    REAL_SCANS_JSON,
    load_calibration,
    read_json,
    require,
)
from glyphgate.core.contract.scores import softmax
from glyphgate.core.errors import DataError
from glyphgate.core.image.grid import save_grid
from glyphgate.core.scoring.onnx_session import OnnxModel

BATCH = 256


def score_sets(runner: OnnxModel, sets: list[np.ndarray], desc: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(logits, energy) of each array, under one progress bar over all their images."""
    runs = []
    with tqdm(total=sum(map(len, sets)), desc=desc, unit="img", disable=None, leave=False) as bar:
        for x in sets:
            parts = []
            for i in range(0, len(x), BATCH):
                parts.append(runner.run(x[i : i + BATCH]))
                bar.update(len(parts[-1][1]))
            runs.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    return runs


def measure(folder: Path, x: np.ndarray, y: np.ndarray, ood: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """One calibrated model on one collection's crops: (figures: accuracy, ECE before and after
    the temperature, glyphs flagged at its shipped threshold, each OOD kind caught and ranked;
    the arrays behind them, for the figures' plots)."""
    cal = load_calibration(folder)
    runner = OnnxModel(folder / MODEL_ONNX, cpu_only=True)
    (logits, energy), *ood_runs = score_sets(runner, [x, *ood.values()], f"scoring with {folder.name}")
    temperature = cal.get("temperature", 1.0)
    probs = softmax(logits, temperature)
    energies = {kind: run[1] for kind, run in zip(ood, ood_runs)}
    figures = {
        "artifacts": str(folder),
        "model_sha256": cal["model_sha256"],
        "accuracy": float((logits.argmax(1) == y).mean()),
        "temperature": temperature,
        "ece_raw": expected_calibration_error(softmax(logits), y),
        "ece": expected_calibration_error(probs, y),
        "flagged_at_threshold": caught(energy, cal["threshold"]),
        "threshold": cal["threshold"],
        "ood": {
            kind: {
                "n": int(len(eo)),
                **{k: m for k, m in ood_metrics(energy, eo).items() if k in ("auroc", "fpr95")},
                "caught_at_threshold": caught(eo, cal["threshold"]),
            }
            for kind, eo in energies.items()
        },
    }
    return figures, {"logits": logits, "energy": energy, "energies": energies, "probs": probs}


def evaluate_real(
    artifacts: str | Path,
    data: str | Path,
    name: str,
    source: str = "",
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    skipped: Skipped | None = None,
) -> dict:
    """The shipped model (and with `baseline`, a second calibrated model on the same crops).
    real_scans.json and the report go to `out` (default: the artifacts folder itself; another
    folder gets a copy of the calibration's figures, so its report is whole). With `skipped`,
    unreadable crops are left out and recorded there instead of stopping the evaluation."""
    folder = require(artifacts, MODEL_ONNX, CLASSES_JSON)
    target = Path(out) if out is not None else folder
    cal = load_calibration(folder)
    classes = read_json(folder / CLASSES_JSON)
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: folder not found (import pages with `glyphgate data import-page`)")
    x, y, unknown = read_named_classes(data, classes, f"{name} glyphs", skipped)
    if len(x) == 0:
        raise DataError(f"{data}: no glyphs of the model's classes")
    x, y = x.numpy(), y.numpy()
    ood = {k: v.numpy() for k, v in read_ood_folders(data, skipped).items()}
    m, arrays = measure(folder, x, y, ood)
    logits, energy, energies, probs = (arrays[k] for k in ("logits", "energy", "energies", "probs"))
    pred = logits.argmax(1)
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
        **{
            k: m[k]
            for k in ("accuracy", "ece_raw", "ece", "temperature", "flagged_at_threshold", "threshold")
        },
        "ood": m["ood"],
        "unknown_classes": unknown,
        **skip_record(skipped),
        "per_class": per_class,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if baseline is not None:
        bfolder = require(baseline, MODEL_ONNX, CLASSES_JSON)
        if read_json(bfolder / CLASSES_JSON) != classes:
            raise DataError(f"{bfolder}: its classes differ from {folder / CLASSES_JSON}")
        result["baseline"] = measure(bfolder, x, y, ood)[0]

    if target.resolve() != folder.resolve():
        seed_report(folder, target)
    report = target / "report"
    report.mkdir(parents=True, exist_ok=True)
    wrong = np.flatnonzero((pred != y) | flagged)
    if len(wrong):  # a small collection can be all right: nothing to draw
        order = wrong[np.argsort(-energy[wrong])]
        save_grid(x[order], report / f"real_{name}_misses.png", nrow=8, limit=64)
    flagged_glyphs = np.flatnonzero(flagged)
    if len(flagged_glyphs):  # the real glyphs the gate flags, highest energy first
        save_grid(
            x[flagged_glyphs[np.argsort(-energy[flagged_glyphs])]],
            report / f"real_{name}_flagged.png",
            nrow=8,
            limit=64,
        )
    if energies:
        # the non-glyphs the gate lets through, lowest energy (most glyph-like) first
        kept = {k: e <= cal["threshold"] for k, e in energies.items()}
        passed = np.concatenate([ood[k][kept[k]] for k in energies])
        e_passed = np.concatenate([energies[k][kept[k]] for k in energies])
        if len(passed):
            save_grid(passed[np.argsort(e_passed)], report / f"real_{name}_passed.png", nrow=8, limit=64)
        fig.energy_histograms(
            report / f"real_{name}_energy.png",
            energy,
            energies,
            {k: "real" for k in energies},
            cal["threshold"],
        )
    fig.reliability_diagram(
        report / f"real_{name}_reliability.png",
        reliability(probs, y),
        result["ece"],
        f"{name}, T = {result['temperature']:.2f}; before T: ECE {result['ece_raw']:.3f}",
    )
    path = target / REAL_SCANS_JSON
    everything = read_json(path) if path.is_file() else {}
    everything[name] = result
    path.write_text(json.dumps(everything, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    rerender_index(folder, cal, target)
    return result


def summary_line(name: str, r: dict) -> str:
    ood = "; ".join(
        f"{k} caught {v['caught_at_threshold']:.1%} (AUROC {v['auroc']:.3f})"
        for k, v in sorted(r["ood"].items())
    )
    line = (
        f"{name}: {r['n_glyphs']} glyphs of {r['n_classes']} classes: accuracy {r['accuracy']:.4f}, "
        f"ECE {r['ece_raw']:.4f} -> {r['ece']:.4f} at T = {r['temperature']:.3f}, "
        f"flagged {r['flagged_at_threshold']:.1%} at the threshold {r['threshold']:.3f}; {ood or 'no OOD kinds'}; "
        f"{r.get('skipped', 0)} unreadable files skipped"
    )
    if b := r.get("baseline"):
        line += (
            f"\n  baseline {b['artifacts']}: accuracy {b['accuracy']:.4f}, ECE {b['ece']:.4f}, "
            f"flagged {b['flagged_at_threshold']:.1%}; "
            + "; ".join(
                f"{k} caught {v['caught_at_threshold']:.1%} (AUROC {v['auroc']:.3f})"
                for k, v in sorted(b["ood"].items())
            )
        )
    return line
