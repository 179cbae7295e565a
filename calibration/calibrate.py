"""`glyphgate calibrate`: fit the energy threshold on ID glyphs, measure every score function
against every OOD set, compare with the baselines, write calibration.json and the report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration.figures import calibration_figures
from calibration.metrics import (
    caught,
    expected_calibration_error,
    fit_temperature,
    fit_threshold,
    ood_metrics,
    reliability,
)
from calibration.rbm import fit_rbm, free_energy
from calibration.record import Measured, OperatingPoint, build_record, kind_pool, write_record
from calibration.report import write_index
from calibration.robustness import robustness_panel
from calibration.scores import all_scores
from calibration.view import View
from corpus.folders import Skipped, read_named_classes, read_ood_folders, skip_record
from corpus.load import load_glyph_data
from glyphgate.core.contract.artifacts import (
    CLASSES_JSON,
    MODEL_ONNX,
    MODEL_PT,
    load_torch_model,
    read_json,
    require,
    sha256,
)
from glyphgate.core.contract.scores import SCORES, softmax
from glyphgate.core.errors import DataError
from glyphgate.core.scoring.onnx_session import OnnxModel


def score_artifacts(
    folder: Path,
    x_by_set: dict[str, np.ndarray],
    with_grad: bool = True,
    model=None,
    runner: OnnxModel | None = None,
) -> tuple[dict, dict]:
    """(logits per set, score-function values per set) for one exported model; `model` and
    `runner` are its already loaded TorchModel and ONNX session, if the caller has them."""
    runner = runner or OnnxModel(folder / MODEL_ONNX, cpu_only=True)
    if with_grad and model is None:
        model = load_torch_model(folder)
    model = model if with_grad else None
    net = model.net if model is not None else None
    logits, scores = {}, {}
    total = sum(len(x) for x in x_by_set.values())
    with tqdm(total=total, desc=f"scoring with {folder.name}", unit="img", disable=None, leave=False) as bar:
        for name, x in x_by_set.items():
            lg, en = runner.run(x, batch=256)
            logits[name], scores[name] = lg, all_scores(lg, en, net, x)
            bar.update(len(x))
    return logits, scores


def _short(m: dict) -> dict:
    return {"auroc": m["auroc"], "fpr95": m["fpr95"]}


def _comparison_row(s_id: np.ndarray, s_ood: dict[str, np.ndarray], kinds: dict[str, str]) -> dict:
    row = {}
    for name, s in {**s_ood, **{f"all {k}": v for k, v in kind_pool(s_ood, kinds).items()}}.items():
        row[name] = _short(ood_metrics(s_id, s))
    return row


def real_population(
    real: str | Path, classes: list[str], runner: OnnxModel, skipped: Skipped | None = None
) -> dict:
    """The real validation works' glyphs (DIR/val/<class>/) and their own non-glyphs
    (DIR/val/ood/<kind>/), scored: the population the shipped threshold is fitted on."""
    val = Path(real) / "val"
    if not val.is_dir():
        raise DataError(
            f"{real}: no val/ folder of real validation glyphs (import pages with "
            "`glyphgate data import-page --split-by-work`)"
        )
    x, y, _ = read_named_classes(val, classes, "real validation glyphs", skipped)
    if len(y) == 0:
        raise DataError(f"{val}: no glyphs of the model's classes")
    logits, energy = runner.run(x.numpy(), batch=256)
    ood = {k: runner.run(v.numpy(), batch=256)[1] for k, v in read_ood_folders(val, skipped).items()}
    return {"data": str(val), "x": x.numpy(), "y": y.numpy(), "logits": logits, "energy": energy, "ood": ood}


def calibrate(
    artifacts: str | Path,
    data_dir: str | Path,
    target_tpr: float = 0.95,
    split: str = "test",
    baselines: list[str | Path] = (),
    rbm: bool = True,
    real: str | Path | None = None,
    log=print,
    skipped: Skipped | None = None,
) -> dict:
    """Fit the threshold and the p-values' calibration energies on the real validation works'
    glyphs when `real` is given (the population users send), else on the synthetic `split`;
    either way every OOD set is measured at that threshold. With `skipped`, unreadable image
    files are left out and recorded there (and counted in calibration.json) instead of stopping it."""
    folder = require(artifacts, MODEL_ONNX, MODEL_PT, CLASSES_JSON)
    classes = read_json(folder / CLASSES_JSON)
    data = load_glyph_data(data_dir, skipped=skipped)
    if split not in data.splits:
        raise DataError(f"{data_dir}: no {split!r} split (has {', '.join(data.splits)})")
    if data.classes != classes:
        raise DataError(
            f"{data_dir}: its classes differ from {folder / CLASSES_JSON}; calibrate on the data the model was trained for"
        )
    if not data.ood:
        raise DataError(f"{data_dir}: no OOD sets to calibrate against")
    if not 0 < target_tpr < 1:
        raise DataError(f"--target-tpr {target_tpr}: expected a value strictly between 0 and 1")
    kinds = dict(data.ood_kind)
    x_id, y_id = (t.numpy() for t in data.splits[split])
    sets = {split: x_id, **{n: x.numpy() for n, x in data.ood.items()}}

    t0 = time.perf_counter()
    model = load_torch_model(folder)
    runner = OnnxModel(folder / MODEL_ONNX, cpu_only=True)
    logits, scores = score_artifacts(folder, sets, model=model, runner=runner)
    log(
        f"scored {sum(len(v) for v in sets.values())} images with {len(scores[split])} score functions in {time.perf_counter() - t0:.1f} s"
    )
    s_id = scores.pop(split)
    pop = real_population(real, classes, runner, skipped) if real else None
    e_fit = pop["energy"] if pop else s_id["energy"]
    # The confidence's temperature comes from the same glyphs as the threshold.
    temperature = fit_temperature(*((pop["logits"], pop["y"]) if pop else (logits[split], y_id)))
    probs = softmax(logits[split], temperature)
    log(f"temperature {temperature:.4f} (softmax(logits / T) for confidence and top_k)")
    threshold, measured_tpr = fit_threshold(e_fit, target_tpr)
    log(
        f"threshold fitted on {'the real validation glyphs of ' + str(real) if pop else 'the synthetic ' + split + ' split'} "
        f"(N = {len(e_fit)})"
    )

    label = model.mode
    comparison = {
        f"{label} · {f}": _comparison_row(s_id[f], {n: s[f] for n, s in scores.items()}, kinds)
        for f, s in SCORES.items()
        if s.compared and f in s_id
    }
    baseline_meta = []
    for b in baselines:
        bfolder = require(b, MODEL_ONNX, MODEL_PT, CLASSES_JSON)
        _, bscores = score_artifacts(bfolder, sets, with_grad=False)
        b_id = bscores.pop(split)
        blabel = load_torch_model(bfolder).mode  # the baseline's mode names its rows
        for f in (f for f, s in SCORES.items() if s.on_baseline):
            comparison[f"{blabel} · {f}"] = _comparison_row(
                b_id[f], {n: s[f] for n, s in bscores.items()}, kinds
            )
        baseline_meta.append(
            {"artifacts": str(bfolder), "mode": blabel, "model_sha256": sha256(bfolder / MODEL_ONNX)}
        )
    if rbm:
        t0 = time.perf_counter()
        machine = fit_rbm(data.splits["train"][0].numpy())
        f_ood = {n: free_energy(machine, x) for n, x in sets.items() if n != split}
        comparison["BernoulliRBM · free energy"] = _comparison_row(free_energy(machine, x_id), f_ood, kinds)
        log(f"fitted and scored the BernoulliRBM baseline in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    panel = robustness_panel(runner, x_id, y_id, threshold)
    log(
        f"robustness panel: {len(panel) - 1} perturbations of {len(y_id)} glyphs in {time.perf_counter() - t0:.1f} s"
    )

    population = (
        _real_population_figures(pop, temperature, threshold)
        if pop
        else {"population": "synthetic", "data": f"{data_dir} ({split} split)", "n": int(len(y_id))}
    )
    measured = Measured(s_id, scores, kinds, logits[split], y_id, e_fit)
    rec = build_record(
        measured,
        OperatingPoint(threshold, measured_tpr, target_tpr, temperature),
        split="real val" if pop else split,
        population=population,
        model_sha256=sha256(folder / MODEL_ONNX),
        classes=classes,
        data=str(data_dir),
        comparison=comparison,
        robustness=panel,
        baselines=baseline_meta,
        **skip_record(skipped),
    )
    write_record(folder, rec)
    x_ood = {n: x for n, x in sets.items() if n != split}
    figures = calibration_figures(
        folder / "report", rec, x_id, s_id, scores, x_ood, kinds, reliability(probs, y_id)
    )
    write_index(folder / "report" / "index.html", View(rec, figures=figures))
    return rec.to_dict()


def _real_population_figures(pop: dict, temperature: float, threshold: float) -> dict:
    """The real validation works at the shipped threshold: accuracy, ECE, their own non-glyphs."""
    return {
        "population": "real",
        "data": pop["data"],
        "n": int(len(pop["y"])),
        "accuracy": float(np.mean(pop["logits"].argmax(1) == pop["y"])),
        "ece_raw": expected_calibration_error(softmax(pop["logits"]), pop["y"]),
        "ece": expected_calibration_error(softmax(pop["logits"], temperature), pop["y"]),
        "flagged_at_threshold": caught(pop["energy"], threshold),
        "ood": {
            k: {
                "n": int(len(e)),
                **_short(ood_metrics(pop["energy"], e)),
                "caught_at_threshold": caught(e, threshold),
            }
            for k, e in sorted(pop["ood"].items())
        },
    }
