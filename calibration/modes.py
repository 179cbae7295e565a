"""Two training modes side by side (issue 14: jem vs icd at the same epoch budget) and the rule
that picks the shipped one. Each mode is read into the same view as the card (calibration,
real_scans.json, generation.json, its run's config and wall time), so the table in the card is
made from the same files as the rest of the card."""

from __future__ import annotations

from pathlib import Path

from calibration.render import Code, Table, fmt
from calibration.targets import TARGETS
from calibration.view import View
from glyphgate.core.contract.artifacts import read_json
from glyphgate.core.model.modes import uses_exposure

GEN_STEPS = TARGETS["generation"]["steps"]  # the step count whose generation figures decide
MAX_ACCURACY_LOSS = TARGETS["modes"]["max_accuracy_loss"]
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


def mode_column(view: View) -> dict:
    """One mode's figures for the comparison table."""
    far, near = view.energy_auroc()
    real = view.real
    real_auroc = [r["ood"][k]["auroc"] for r in real.values() for k in REAL_OOD if k in r["ood"]]
    panel = {n: r for n, r in view.record.robustness.items() if n != "clean"}
    return {
        "mode": view.run.cfg["mode"],
        "epochs": view.run.metrics.get("epochs"),
        "max_epochs": view.run.cfg.get("max_epochs"),
        "wall_s": view.run.metrics.get("fit_wall_s"),
        "accuracy": view.record.id.accuracy,
        "far_min": min(far.values()),
        "near_min": min(near.values()),
        "near_mean": sum(near.values()) / len(near),
        "real": real,
        "real_ood_mean": sum(real_auroc) / len(real_auroc) if real_auroc else None,
        "panel_worst_accuracy": min((r.d_accuracy for r in panel.values()), default=None),
        "panel_worst_flagged": max((r.d_flagged for r in panel.values()), default=None),
        "generation": (view.generation or {}).get("steps", {}),
    }


def decide(shipped: dict, challenger: dict) -> tuple[bool, str]:
    """(whether the challenger should ship instead, the reason in words). The issue's rule: better
    on OOD and on generation, losing at most MAX_ACCURACY_LOSS of synthetic accuracy. OOD counts
    the real pages and the robustness panel first (the project's rule for any change): the
    challenger must not be worse on the real pages' words and fragments (mean AUROC) nor on the
    panel's worst rows, and must be better on the synthetic near evaluation sets (mean and worst)
    with far not worse. Generation: KID at GEN_STEPS steps."""
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


def kid_change(by: dict) -> float | None:
    """icd's KID at GEN_STEPS steps against jem's, as a share (negative = lower = closer)."""
    kj, ki = (by[m]["generation"].get(GEN_STEPS, {}).get("kid") for m in ("jem", "icd"))
    return (ki - kj) / abs(kj) if kj and ki else None


def comparison_table(columns: list[dict]) -> Table:
    """The card's side-by-side table: one column per mode."""
    real_names = sorted({n for c in columns for n in c["real"]})
    steps = sorted({k for c in columns for k in c["generation"]}, key=int)
    t = Table(["", *(Code(c["mode"]) for c in columns)])

    def row(label, get, digits=4):
        t.rows.append([label, *(fmt(get(c), digits) for c in columns)])

    def real(name, key):
        def get(c):
            r = c["real"].get(name)
            if r is None:
                return None
            return r[key] if key in r else r["ood"].get(key, {}).get("auroc")

        return get

    def gen(k, key):
        return lambda c: c["generation"].get(k, {}).get(key)

    row("synthetic test accuracy", lambda c: c["accuracy"])
    row("far-OOD energy AUROC, worst set", lambda c: c["far_min"])
    row("near-OOD energy AUROC, evaluation sets, mean", lambda c: c["near_mean"])
    row("near-OOD energy AUROC, evaluation sets, worst", lambda c: c["near_min"])
    for name in real_names:
        row(f"{name}: accuracy", real(name, "accuracy"))
        row(f"{name}: flagged at threshold", real(name, "flagged_at_threshold"))
        for kind in REAL_OOD:
            row(f"{name}: AUROC vs {kind}", real(name, kind))
    row(f"real pages: mean AUROC vs {' and '.join(REAL_OOD)}", lambda c: c["real_ood_mean"])
    row("robustness panel: worst accuracy change", lambda c: c["panel_worst_accuracy"])
    row("robustness panel: worst flag-rate rise", lambda c: c["panel_worst_flagged"])
    for k in steps:
        row(f"generation, {k} steps: conditional accuracy", gen(k, "conditional_accuracy"), 3)
        row(f"generation, {k} steps: KID (lower is better)", gen(k, "kid"), 3)
        row(f"generation, {k} steps: within-class diversity", gen(k, "diversity"), 2)
    row("epochs", lambda c: c["epochs"], 0)
    row("training wall time (min)", lambda c: None if c["wall_s"] is None else c["wall_s"] / 60, 1)
    return t
