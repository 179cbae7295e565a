"""`glyphgate calibrate` on an archive's own collection: fit the threshold on its glyphs.

A collection rarely holds all the model's classes and may hold none labelled at all:
- a labelled folder (root/<class>/*) with any subset of the model's classes; folders that name
  no class are listed and left out of accuracy, or with `unknown_as_ood` become an OOD set;
- an unlabelled folder of glyphs (every image under root, root/ood/ excepted): threshold only;
- OOD sets: root/ood/<kind>/ (what `glyphgate data import-page` writes) and any `--ood DIR`,
  the collection's own rejects.
The threshold is the energy quantile at a target TPR on the collection's glyphs, or the largest
energy that keeps the share of rejects accepted at or below a target FPR. calibration.json stays
bound to the model's hash, names the collection, keeps the synthetic suites' metrics beside it
and stores the calibration glyphs' sorted energies, which the server turns into p-values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.figures import collection_figures
from calibration.metrics import fit_temperature, fit_threshold
from calibration.real import score_sets
from calibration.record import Measured, OperatingPoint, build_record, write_record
from calibration.report import write_index
from calibration.view import View
from corpus.folders import (
    EXTENSIONS,
    Skipped,
    load_files,
    read_named_classes,
    read_ood_folders,
    skip_record,
)
from glyphgate.core.contract.artifacts import (
    CALIBRATION_JSON,
    CLASSES_JSON,
    MODEL_ONNX,
    load_calibration,
    read_json,
    require,
    sha256,
)
from glyphgate.core.contract.scores import GATE_SCORE
from glyphgate.core.errors import ArtifactsError, DataError
from glyphgate.core.scoring.onnx_session import OnnxModel

FEW_GLYPHS = 200  # below this a 95 % quantile rests on a handful of glyphs: the report warns


def _images_under(root: Path, skip_ood: bool = True) -> list[str]:
    return sorted(
        str(p)
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in EXTENSIONS
        and not (skip_ood and "ood" in p.relative_to(root).parts[:1])
    )


def threshold_at_fpr(e_ood: np.ndarray, target_fpr: float) -> float:
    """The largest energy threshold that accepts (energy <= t) at most `target_fpr` of the rejects."""
    e = np.sort(np.asarray(e_ood))
    k = int(np.floor(target_fpr * len(e)))
    if k >= len(e):
        return float(e[-1])
    # The step below e[k] in the energies' own precision: ORT's energies are float32, and a
    # float64 step would round back onto e[k] when the server compares them.
    return float(np.nextafter(e[k], np.array(-np.inf, dtype=e.dtype)))


def reference_metrics(folder: Path) -> dict | None:
    """The synthetic suites' metrics of the calibration this one replaces (kept for comparison)."""
    path = folder / CALIBRATION_JSON
    if not path.is_file():
        return None
    try:
        old = load_calibration(folder)
    except (DataError, ArtifactsError):
        return None  # unreadable, or made for another export: nothing to compare with
    if old.get("reference"):
        return {**old["reference"], "temperature": old.get("temperature", 1.0)}
    return {
        "data": old.get("data"),
        "threshold": old["threshold"],
        "temperature": old.get("temperature", 1.0),
        "id": old["id"],
        "metrics": old["metrics"],
    }


def calibrate_collection(
    artifacts: str | Path,
    data: str | Path,
    name: str | None = None,
    unlabelled: bool = False,
    unknown_as_ood: bool = False,
    ood_dirs: list[str | Path] = (),
    target_tpr: float = 0.95,
    target_fpr: float | None = None,
    log=print,
    skipped: Skipped | None = None,
) -> dict:
    """The collection's calibration written into `artifacts`; with `skipped`, unreadable image
    files are left out and recorded there (and counted in calibration.json) instead of stopping it."""
    folder = require(artifacts, MODEL_ONNX, CLASSES_JSON)
    classes = read_json(folder / CLASSES_JSON)
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: folder not found")
    if not 0 < target_tpr < 1:
        raise DataError(f"--target-tpr {target_tpr}: expected a value strictly between 0 and 1")
    if target_fpr is not None and not 0 <= target_fpr < 1:
        raise DataError(f"--target-fpr {target_fpr}: expected a value in [0, 1)")
    name = name or data.name

    unknown: dict[str, int] = {}
    ood: dict[str, np.ndarray] = {}
    if unlabelled:
        files = _images_under(data)
        if not files:
            raise DataError(f"{data}: no images ({'/'.join(EXTENSIONS)}) outside ood/")
        x, y = load_files(files, f"{name} glyphs", skipped).numpy(), None
    else:
        xt, yt, unknown = read_named_classes(data, classes, f"{name} glyphs", skipped)
        x, y = xt.numpy(), yt.numpy()
        if unknown_as_ood and unknown:
            ood["unknown_classes"] = load_files(
                [f for n in unknown for f in _images_under(data / n, skip_ood=False)],
                "unknown classes",
                skipped,
            ).numpy()
        if len(x) == 0:
            raise DataError(
                f"{data}: none of its class folders names a class of the model "
                f"(found {', '.join(sorted(unknown))}); use --unlabelled for unlabelled glyphs"
            )
    ood.update({k: v.numpy() for k, v in read_ood_folders(data, skipped).items()})
    for d in ood_dirs:
        d = Path(d)
        files = _images_under(d, skip_ood=False) if d.is_dir() else []
        if not files:
            raise DataError(f"{d}: --ood folder not found or holds no images")
        ood[d.name if d.name not in ood else f"{d.parent.name}_{d.name}"] = load_files(
            files, f"ood {d.name}", skipped
        ).numpy()
    if target_fpr is not None and not ood:
        raise DataError(
            "--target-fpr needs rejects to count false alarms on: give --ood DIR or an ood/ folder"
        )

    runner = OnnxModel(folder / MODEL_ONNX, cpu_only=True)
    (logits, e_id), *ood_runs = score_sets(runner, [x, *ood.values()], f"scoring with {folder.name}")
    e_ood = {k: run[1] for k, run in zip(ood, ood_runs)}
    if target_fpr is None:
        threshold, measured_tpr = fit_threshold(e_id, target_tpr)
    else:
        threshold = threshold_at_fpr(np.concatenate(list(e_ood.values())), target_fpr)
        measured_tpr = float(np.mean(e_id <= threshold))
    warning = (
        f"the threshold rests on {len(e_id)} glyphs (fewer than {FEW_GLYPHS}): its false-alarm rate is "
        "uncertain by several points"
        if len(e_id) < FEW_GLYPHS
        else None
    )
    if warning:
        log(f"warning: {warning}")

    # labelled glyphs refit the confidence's temperature; unlabelled ones keep the one in place
    reference = reference_metrics(folder)
    temperature = (
        fit_temperature(logits, y) if y is not None else float((reference or {}).get("temperature", 1.0))
    )
    # the collection's rejects are scored by the gate alone, all of kind "unknown"
    measured = Measured(
        {GATE_SCORE: e_id}, {k: {GATE_SCORE: e} for k, e in e_ood.items()}, {}, logits, y, e_id
    )
    rec = build_record(
        measured,
        OperatingPoint(threshold, measured_tpr, target_tpr, temperature),
        split="collection",
        population={"population": "collection", "data": str(data), "n": int(len(e_id))},
        model_sha256=sha256(folder / MODEL_ONNX),
        classes=classes,
        data=str(data),
        flag_id=False,
        target_fpr=target_fpr,
        collection={
            "name": name,
            "data": str(data),
            "labelled": y is not None,
            "n_glyphs": int(len(e_id)),
            "classes_present": sorted({classes[c] for c in np.unique(y)}) if y is not None else [],
            "unknown_classes": unknown,
            "unknown_as_ood": unknown_as_ood,
            "warning": warning,
        },
        reference=reference,
        **skip_record(skipped),
    )
    write_record(folder, rec)
    figures = collection_figures(folder / "report", rec.threshold, x, e_id, e_ood)
    write_index(folder / "report" / "index.html", View(rec, figures=figures))
    return rec.to_dict()
