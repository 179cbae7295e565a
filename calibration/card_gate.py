"""The card's tables held against targets.json: the gate at the shipped threshold (per kind,
per real collection), before and after a retraining, and the default model's own targets.
"Caught" is the share of a non-glyph set flagged at the shipped threshold (energy > threshold);
"flagged" is the same share for real glyphs (false alarms)."""

from __future__ import annotations

from pathlib import Path

from calibration.render import Table, fmt
from calibration.targets import TARGETS, label, verdict
from calibration.view import View
from glyphgate.core.contract.artifacts import REAL_SCANS_JSON, read_json
from glyphgate.core.contract.scores import GATE_SCORE, SCORES

GATE = TARGETS["gate"]


def set_caught(m: dict) -> float:
    """Caught share of one calibration.json set (older files hold only the share missed)."""
    return m["caught_at_threshold"] if "caught_at_threshold" in m else 1.0 - m["fpr_at_threshold"]


def gate_figures(cal: dict | None, real: dict | None) -> dict[str, float]:
    """Flat {label: value} of every gate figure of one calibrated model (for before/after)."""
    out: dict[str, float] = {}
    if cal:
        out["threshold"] = cal["threshold"]
        if "flagged_at_threshold" in cal["id"]:
            out["synthetic test glyphs: flagged"] = cal["id"]["flagged_at_threshold"]
        else:
            out["synthetic test glyphs: flagged"] = 1.0 - cal["measured_tpr"]
        for n, m in cal["metrics"]["sets"].items():
            out[f"synthetic {n} ({m['kind']}): caught"] = set_caught(m)
    for name, r in (real or {}).items():
        out[f"{name}: accuracy"] = r["accuracy"]
        out[f"{name}: glyphs flagged"] = r["flagged_at_threshold"]
        for k, v in sorted(r["ood"].items()):
            if "caught_at_threshold" in v:
                out[f"{name}: {k} caught"] = v["caught_at_threshold"]
    return out


def gate_rows(view: View) -> Table:
    """(quantity, measured, target, met / missed by) for every gate target that was measured."""
    t = Table(["quantity", "measured", "target", ""])

    def add(quantity: str, v: float, target: dict) -> None:
        t.rows.append([quantity, fmt(v), label(target), verdict(v, target)])

    for name, what, quantity, v, target in view.real_figures():
        if what != "auroc":  # AUROC targets are in the real-pages section
            add(f"{name}: {quantity}", v, target)
    add("synthetic test glyphs: flagged", view.record.id_flagged, GATE["glyphs flagged"])
    for n, m in view.record.metrics.sets.items():
        role = view.role(n)
        if role == "mix":
            continue  # a mix of exposure and evaluation kinds: its members have their own rows
        if n in GATE["must catch"] or m.kind == "far":
            target = GATE["far caught"]
        elif role == "evaluation":
            target = GATE["evaluation caught"]
        else:
            continue
        add(f"synthetic {n} ({m.kind}, {role}): caught", m.caught_at_threshold, target)
    return t


def before_after(view: View, before: Path | None) -> Table | None:
    """Every gate figure of the model this one replaced beside this one's (– = not measured then)."""
    if before is None or not (before / "calibration.json").is_file():
        return None
    old_real = read_json(before / REAL_SCANS_JSON) if (before / REAL_SCANS_JSON).is_file() else {}
    old = gate_figures(read_json(before / "calibration.json"), old_real)
    new = gate_figures(view.record.to_dict(), view.real)
    return Table(
        ["figure", "before", "after"], [[k, fmt(old[k]) if k in old else "–", fmt(new[k])] for k in new]
    )


def target_checks(view: View) -> Table:
    """The default model against its own targets: synthetic accuracy and OOD, generation, and
    the gate's near-OOD AUROC against every baseline score calibrate compared it with."""
    rec, synth = view.record, TARGETS["synthetic"]
    far, near = view.energy_auroc()
    t = Table(["quantity", "measured", "target", ""])

    def add(quantity: str, v: float | None, target: dict) -> None:
        if v is not None:
            t.rows.append([quantity, fmt(v), label(target, 4), verdict(v, target, 4)])

    add("test accuracy", rec.id.accuracy, synth["test accuracy"])
    add(
        "far-OOD energy AUROC (each set)",
        min(far.values(), default=None),
        synth["far-OOD energy AUROC (each set)"],
    )
    add(
        "near-OOD energy AUROC (each evaluation set)",
        min(near.values(), default=None),
        synth["near-OOD energy AUROC (each evaluation set)"],
    )
    gen = TARGETS["generation"]
    steps = ((view.generation or {}).get("steps") or {}).get(gen["steps"]) or {}
    add(
        f"conditional accuracy of {gen['steps']}-step samples",
        steps.get("conditional_accuracy"),
        gen["conditional accuracy"],
    )
    near_kind = rec.metrics.kinds.get("near")
    for b in rec.baselines:
        for name, score in SCORES.items():
            row = rec.comparison.get(f"{b.mode} · {name}")
            if score.on_baseline and name != GATE_SCORE and row and near_kind and "all near" in row:
                add(
                    f"near-OOD {GATE_SCORE} AUROC above the {b.mode}'s {score.label}",
                    near_kind.scores[GATE_SCORE].auroc,
                    {"above": row["all near"].auroc},
                )
    return t
