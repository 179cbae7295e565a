"""`glyphgate calibrate`: fit the energy threshold on ID glyphs, measure every score function
against every OOD set, compare with the baselines, write calibration.json and the report."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from calibration import report as rep
from calibration.metrics import (
    caught,
    expected_calibration_error,
    fit_temperature,
    fit_threshold,
    ood_metrics,
    reliability,
)
from calibration.rbm import fit_rbm, free_energy
from calibration.real import REAL_SCANS_JSON
from calibration.robustness import panel_examples, robustness_panel
from calibration.scores import all_scores
from corpus.folders import read_named_classes, read_ood_folders
from corpus.load import load_glyph_data
from glyphgate.core.contract.artifacts import (
    CALIBRATION_JSON,
    CLASSES_JSON,
    MODEL_ONNX,
    MODEL_PT,
    SCHEMA_VERSION,
    load_torch_model,
    read_json,
    require,
    sha256,
)
from glyphgate.core.contract.scores import GATE_SCORE, SCORES, softmax
from glyphgate.core.errors import DataError
from glyphgate.core.image.grid import save_grid
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
    logits, scores = {}, {}
    for name, x in x_by_set.items():
        lg, en = runner.run(x, batch=256)
        net = model.net if model is not None else None
        logits[name], scores[name] = lg, all_scores(lg, en, net, x)
    return logits, scores


def _kind_pool(values: dict[str, np.ndarray], kinds: dict[str, str]) -> dict[str, np.ndarray]:
    pools: dict[str, list] = {}
    for name, v in values.items():
        pools.setdefault(kinds.get(name, "unknown"), []).append(v)
    return {k: np.concatenate(v) for k, v in sorted(pools.items())}


def _short(m: dict) -> dict:
    return {"auroc": m["auroc"], "fpr95": m["fpr95"]}


def _comparison_row(s_id: np.ndarray, s_ood: dict[str, np.ndarray], kinds: dict[str, str]) -> dict:
    row = {}
    for name, s in {**s_ood, **{f"all {k}": v for k, v in _kind_pool(s_ood, kinds).items()}}.items():
        row[name] = _short(ood_metrics(s_id, s))
    return row


def real_population(real: str | Path, classes: list[str], runner: OnnxModel) -> dict:
    """The real validation works' glyphs (DIR/val/<class>/) and their own non-glyphs
    (DIR/val/ood/<kind>/), scored: the population the shipped threshold is fitted on."""
    val = Path(real) / "val"
    if not val.is_dir():
        raise DataError(
            f"{real}: no val/ folder of real validation glyphs (import pages with "
            "`glyphgate data import-page --split-by-work`)"
        )
    x, y, _ = read_named_classes(val, classes, "real validation glyphs")
    if len(y) == 0:
        raise DataError(f"{val}: no glyphs of the model's classes")
    logits, energy = runner.run(x.numpy(), batch=256)
    ood = {k: runner.run(v.numpy(), batch=256)[1] for k, v in read_ood_folders(val).items()}
    return {"data": str(val), "x": x.numpy(), "y": y.numpy(), "logits": logits, "energy": energy, "ood": ood}


def energy_histogram(e_id: np.ndarray, e_by_kind: dict[str, np.ndarray], bins: int = 60) -> dict:
    """Shares per energy bin for ID and each OOD kind (what the demo page plots under a verdict)."""
    everything = np.concatenate([e_id, *e_by_kind.values()])
    lo, hi = np.quantile(everything, [0.001, 0.999])
    edges = np.linspace(lo, hi, bins + 1)
    share = lambda e: (np.histogram(np.clip(e, lo, hi), edges)[0] / max(len(e), 1)).round(5).tolist()  # noqa: E731
    return {
        "edges": edges.round(5).tolist(),
        "id": share(e_id),
        **{k: share(v) for k, v in e_by_kind.items()},
    }


def calibrate(
    artifacts: str | Path,
    data_dir: str | Path,
    target_tpr: float = 0.95,
    split: str = "test",
    baselines: list[str | Path] = (),
    rbm: bool = True,
    real: str | Path | None = None,
    log=print,
) -> dict:
    """Fit the threshold and the p-values' calibration energies on the real validation works'
    glyphs when `real` is given (the population users send), else on the synthetic `split`;
    either way every OOD set is measured at that threshold."""
    folder = require(artifacts, MODEL_ONNX, MODEL_PT, CLASSES_JSON)
    classes = read_json(folder / CLASSES_JSON)
    data = load_glyph_data(data_dir)
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
    pop = real_population(real, classes, runner) if real else None
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

    per_set = {}
    for name, s in scores.items():
        per_set[name] = {
            "kind": kinds.get(name, "unknown"),
            "n": int(len(s["energy"])),
            "fpr_at_threshold": float(np.mean(s["energy"] <= threshold)),
            "caught_at_threshold": caught(s["energy"], threshold),
            "scores": {f: ood_metrics(s_id[f], s[f]) for f in s_id},
        }
    per_kind = {}
    for kind in sorted(set(kinds.get(n, "unknown") for n in scores)):
        members = [n for n in scores if kinds.get(n, "unknown") == kind]
        pooled = {f: np.concatenate([scores[n][f] for n in members]) for f in s_id}
        per_kind[kind] = {
            "kind": kind,
            "n": int(len(pooled["energy"])),
            "sets": members,
            "fpr_at_threshold": float(np.mean(pooled["energy"] <= threshold)),
            "caught_at_threshold": caught(pooled["energy"], threshold),
            "scores": {f: ood_metrics(s_id[f], pooled[f]) for f in s_id},
        }

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

    if pop:
        population = {
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
    else:
        population = {"population": "synthetic", "data": f"{data_dir} ({split} split)", "n": int(len(y_id))}
    cal = {
        "schema_version": SCHEMA_VERSION,
        "score": GATE_SCORE,
        "orientation": "higher = more OOD; is_ood = energy > threshold",
        "threshold": threshold,
        "target_tpr": target_tpr,
        "measured_tpr": measured_tpr,
        "temperature": temperature,
        "split": "real val" if pop else split,
        "threshold_population": population,
        "model_sha256": sha256(folder / MODEL_ONNX),
        "classes": classes,
        "id": {
            "n": int(len(y_id)),
            "accuracy": float(np.mean(probs.argmax(1) == y_id)),
            "ece": expected_calibration_error(probs, y_id),
            "ece_raw": expected_calibration_error(softmax(logits[split]), y_id),
            "flagged_at_threshold": caught(s_id["energy"], threshold),
            "energy_quantiles": {
                q: float(np.quantile(s_id["energy"], float(q))) for q in ("0.01", "0.5", "0.95", "0.99")
            },
        },
        # p-values come from the same population as the threshold
        "id_energies": np.sort(e_fit).round(6).tolist(),
        "score_functions": list(s_id),
        "metrics": {"sets": per_set, "kinds": per_kind},
        "comparison": comparison,
        "robustness": panel,
        "energy_histogram": energy_histogram(
            e_fit, _kind_pool({n: v["energy"] for n, v in scores.items()}, kinds)
        ),
        "baselines": baseline_meta,
        "data": str(data_dir),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # Real-page figures were measured at the old threshold: they are re-made by `glyphgate evaluate`.
    (folder / REAL_SCANS_JSON).unlink(missing_ok=True)
    (folder / CALIBRATION_JSON).write_text(
        json.dumps(cal, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_report(
        folder / "report",
        cal,
        comparison,
        x_id,
        s_id,
        scores,
        {n: x for n, x in sets.items() if n != split},
        kinds,
        reliability(probs, y_id),
    )
    return cal


def write_report(out: Path, cal: dict, comparison: dict, x_id, s_id, scores, x_ood, kinds, rel) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rep.energy_histograms(
        out / "energy_histograms.png",
        s_id["energy"],
        {n: s["energy"] for n, s in scores.items()},
        kinds,
        cal["threshold"],
    )
    rep.roc_curves(out / "roc_curves.png", s_id, scores, kinds)
    rep.reliability_diagram(
        out / "reliability.png",
        rel,
        cal["id"]["ece"],
        f"synthetic {cal['id']['n']} ID glyphs, T = {cal['temperature']:.2f}",
    )
    save_grid(x_id[np.argsort(-s_id["energy"])], out / "false_alarms.png", nrow=8, limit=64)
    save_grid(panel_examples(x_id), out / "robustness_examples.png", nrow=8)
    figures = {
        "Energy: ID test vs each OOD set (the sheet's Fig. 2)": "energy_histograms.png",
        "ROC curves per score function (red far, orange near)": "roc_curves.png",
        "Reliability diagram": "reliability.png",
        "False alarms: the 64 highest-energy ID test glyphs": "false_alarms.png",
        "Robustness panel: the same 8 test glyphs clean (top row), then under each perturbation in the panel's order": "robustness_examples.png",
    }
    for kind in sorted(set(kinds.values())):
        names = [n for n in x_ood if kinds.get(n) == kind]
        x = np.concatenate([x_ood[n] for n in names])
        e = np.concatenate([scores[n]["energy"] for n in names])
        save_grid(x[np.argsort(e)], out / f"misses_{kind}.png", nrow=8, limit=64)
        figures[f"Misses, {kind} OOD: the 64 lowest-energy images"] = f"misses_{kind}.png"
    # glyphgate evaluate adds the real-page section later and re-renders the index from these.
    (out / "figures.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    rep.write_index(out / "index.html", cal, comparison, figures)
