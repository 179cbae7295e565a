"""Two training modes side by side (issue 14: jem vs icd at the same epoch budget) and the rule
that picks the shipped one. Each mode is read from its calibrated artifacts folder (calibration,
real_scans.json, generation.json) and its run folder (config, wall time), so the table in the
card is made from the same files as the rest of the card."""

from __future__ import annotations

from pathlib import Path

from calibration.real import REAL_SCANS_JSON
from glyphgate.core.contract.artifacts import load_calibration, read_json
from glyphgate.core.model.modes import uses_exposure

GENERATION_JSON = (
    "generation.json"  # written by `glyphgate generate --evaluate --out <artifacts>/generation.json`
)
GEN_STEPS = "256"  # the step count for the generation figures that decide
MAX_ACCURACY_LOSS = 0.005  # the challenger may lose at most half a point of accuracy
REAL_OOD = ("words", "fragments")  # what a page segmenter emits besides glyphs


def exposure_kinds(cfg: dict) -> set[str]:
    """The OOD kinds a run saw as negatives (outlier exposure): never evaluation sets."""
    if uses_exposure(cfg.get("mode"), cfg.get("oe_weight", 0)):
        return set(cfg.get("exposure_kinds") or ())
    return set()


def mix_sets(data: str | Path) -> set[str]:
    """The data folder's OOD sets that mix several kinds (the course's ood_ta / ood_tb)."""
    manifest_path = Path(data) / "classes.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    return {n for n, info in manifest.get("ood", {}).items() if isinstance(info, dict) and info.get("mix")}


def evaluation_sets(cal: dict, cfg: dict, data: str | Path) -> tuple[dict, dict]:
    """(far, near) energy AUROC per set, near restricted to the evaluation sets: kinds seen as
    outlier exposure in training, and the mixes that contain them, are left out."""
    exposure = exposure_kinds(cfg)
    mixes = mix_sets(data)
    sets = cal["metrics"]["sets"]
    far = {n: m["scores"]["energy"]["auroc"] for n, m in sets.items() if m["kind"] == "far"}
    near = {
        n: m["scores"]["energy"]["auroc"]
        for n, m in sets.items()
        if m["kind"] == "near" and n not in exposure and n not in mixes
    }
    return far, near


def mode_column(artifacts: str | Path, run: str | Path, data: str | Path) -> dict:
    """One mode's figures for the comparison table."""
    artifacts, run = Path(artifacts), Path(run)
    cal = load_calibration(artifacts)
    cfg = read_json(run / "config.json")
    metrics = read_json(run / "metrics.json")
    far, near = evaluation_sets(cal, cfg, data)
    gen_path = artifacts / GENERATION_JSON
    real_path = artifacts / REAL_SCANS_JSON
    real = read_json(real_path) if real_path.is_file() else {}
    real_auroc = [r["ood"][k]["auroc"] for r in real.values() for k in REAL_OOD if k in r["ood"]]
    panel = {n: r for n, r in cal.get("robustness", {}).items() if n != "clean"}
    return {
        "mode": cfg["mode"],
        "artifacts": str(artifacts),
        "epochs": metrics.get("epochs"),
        "wall_s": metrics.get("fit_wall_s"),
        "accuracy": cal["id"]["accuracy"],
        "far_min": min(far.values()),
        "near_min": min(near.values()),
        "near_mean": sum(near.values()) / len(near),
        "real": real,
        "real_ood_mean": sum(real_auroc) / len(real_auroc) if real_auroc else None,
        "panel_worst_accuracy": min((r["d_accuracy"] for r in panel.values()), default=None),
        "panel_worst_flagged": max((r["d_flagged"] for r in panel.values()), default=None),
        "generation": read_json(gen_path)["steps"] if gen_path.is_file() else {},
    }


def decide(shipped: dict, challenger: dict) -> tuple[bool, str]:
    """(whether the challenger should ship instead, the reason in words). The issue's rule: better
    on OOD and on generation, losing at most half a point of synthetic accuracy. OOD counts the
    real pages and the robustness panel first (the project's rule for any change): the
    challenger must not be worse on the real pages' words and fragments (mean AUROC) nor on the
    panel's worst rows, and must be better on the synthetic near evaluation sets (mean and worst)
    with far not worse. Generation: KID at 256 steps."""
    a, b = shipped, challenger

    def not_worse(key, higher_is_better=True):
        if a[key] is None or b[key] is None:
            return True
        return b[key] >= a[key] if higher_is_better else b[key] <= a[key]

    real = not_worse("real_ood_mean")
    panel = not_worse("panel_worst_accuracy") and not_worse("panel_worst_flagged", higher_is_better=False)
    synthetic = (
        b["near_mean"] > a["near_mean"] and b["near_min"] > a["near_min"] and b["far_min"] >= a["far_min"]
    )
    ga, gb = a["generation"].get(GEN_STEPS), b["generation"].get(GEN_STEPS)
    gen = None if not (ga and gb) else gb["kid"] < ga["kid"]
    acc = b["accuracy"] >= a["accuracy"] - MAX_ACCURACY_LOSS
    parts = [
        f"real-page OOD {'not worse' if real else 'worse'}",
        f"robustness panel {'not worse' if panel else 'worse'}",
        f"synthetic OOD {'better' if synthetic else 'not better'}",
        "generation not measured" if gen is None else f"generation {'better' if gen else 'not better'}",
        f"accuracy {100 * (b['accuracy'] - a['accuracy']):+.1f} pt",
    ]
    ship = real and panel and synthetic and bool(gen) and acc
    return ship, f"`{b['mode']}` against `{a['mode']}`: " + ", ".join(parts)


def fmt(v, digits=4):
    return "n/a" if v is None else f"{v:.{digits}f}"


def comparison_lines(columns: list[dict]) -> list[str]:
    """The card's side-by-side table: one column per mode."""
    real_names = sorted({n for c in columns for n in c["real"]})
    steps = sorted({k for c in columns for k in c["generation"]}, key=int)

    def row(label, get, digits=4):
        return f"| {label} | " + " | ".join(fmt(get(c), digits) for c in columns) + " |"

    def real(name, key):
        def get(c):
            r = c["real"].get(name)
            if r is None:
                return None
            return r[key] if key in r else r["ood"].get(key, {}).get("auroc")

        return get

    def gen(k, key):
        return lambda c: c["generation"].get(k, {}).get(key)

    rows = [
        row("synthetic test accuracy", lambda c: c["accuracy"]),
        row("far-OOD energy AUROC, worst set", lambda c: c["far_min"]),
        row("near-OOD energy AUROC, evaluation sets, mean", lambda c: c["near_mean"]),
        row("near-OOD energy AUROC, evaluation sets, worst", lambda c: c["near_min"]),
    ]
    for name in real_names:
        rows += [
            row(f"{name}: accuracy", real(name, "accuracy")),
            row(f"{name}: flagged at threshold", real(name, "flagged_at_threshold")),
            row(f"{name}: AUROC vs words", real(name, "words")),
            row(f"{name}: AUROC vs fragments", real(name, "fragments")),
        ]
    rows += [
        row("real pages: mean AUROC vs words and fragments", lambda c: c["real_ood_mean"]),
        row("robustness panel: worst accuracy change", lambda c: c["panel_worst_accuracy"]),
        row("robustness panel: worst flag-rate rise", lambda c: c["panel_worst_flagged"]),
    ]
    for k in steps:
        rows += [
            row(f"generation, {k} steps: conditional accuracy", gen(k, "conditional_accuracy"), 3),
            row(f"generation, {k} steps: KID (lower is better)", gen(k, "kid"), 3),
            row(f"generation, {k} steps: within-class diversity", gen(k, "diversity"), 2),
        ]
    rows += [
        row("epochs", lambda c: c["epochs"], 0),
        row("training wall time (min)", lambda c: None if c["wall_s"] is None else c["wall_s"] / 60, 1),
    ]
    return [
        "| | " + " | ".join(f"`{c['mode']}`" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
        *rows,
    ]
