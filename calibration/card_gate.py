"""The card's gate section: what the shipped threshold does, per kind, against the gate targets,
before and after a retraining. "Caught" is the share of a non-glyph set flagged at the shipped
threshold (energy > threshold); "flagged" is the same share for real glyphs (false alarms)."""

from __future__ import annotations

from pathlib import Path

from calibration.real import REAL_SCANS_JSON
from glyphgate.core.contract.artifacts import read_json

# The real-page targets: {collection: {quantity: (bound, "min" | "max" | "range")}}. "flagged" is
# the share of the collection's glyphs flagged; "caught K" the share of its non-glyph kind K
# flagged, both at the shipped threshold (issue 21); "auroc K" ranks the glyphs against kind K.
REAL_TARGETS = {
    "vd-sbb-test": {
        "accuracy": (0.95, "min"),
        "flagged": ((0.03, 0.07), "range"),
        "caught words": (0.99, "min"),
        "caught fragments": (0.95, "min"),
        "caught other_symbols": (0.90, "min"),
        "caught blank": (0.99, "min"),
        "auroc words": (0.97, "min"),
        "auroc fragments": (0.97, "min"),
    },
    # The Kant pages hold the same targets binarised and greyscale.
    **{
        name: {
            "accuracy": (0.85, "min"),
            "flagged": (0.08, "max"),
            "caught words": (0.98, "min"),
            "caught fragments": (0.90, "min"),
            "caught blank": (0.99, "min"),
            "auroc words": (0.95, "min"),
            "auroc fragments": (0.95, "min"),
            "auroc blank": (0.99, "min"),
        }
        for name in ("kant-bin", "kant-nrm")
    },
}
SYNTH_GLYPHS_FLAGGED_MAX = 0.10
SYNTH_EVAL_CAUGHT_MIN = 0.80  # each synthetic evaluation kind
SYNTH_FAR_CAUGHT_MIN = 0.99  # far kinds, and solid shapes and rules whether far or exposure
MUST_CATCH = ("solid_shapes", "rules_lines")


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


def _check(v: float, bound, how: str) -> tuple[str, bool]:
    if how == "range":
        return f"{100 * bound[0]:.0f}–{100 * bound[1]:.0f} %", bound[0] <= v <= bound[1]
    if how == "min":
        return f"≥ {bound:.2f}", v >= bound
    return f"≤ {bound:.2f}", v <= bound


def _verdict(v: float, bound, how: str) -> str:
    _, ok = _check(v, bound, how)
    if ok:
        return "met"
    if how == "range":
        gap = bound[0] - v if v < bound[0] else v - bound[1]
    else:
        gap = abs(v - bound)
    return f"**missed** by {gap:.3f}"


def gate_target_rows(
    cal: dict, real: dict, exposure: set[str], mixes: set[str] = frozenset()
) -> list[tuple[str, float, str, str]]:
    """(quantity, measured, target, met / missed by) for every gate target that was measured."""
    rows = []
    for name, targets in REAL_TARGETS.items():
        r = real.get(name)
        if not r:
            continue
        for q, (bound, how) in targets.items():
            what, _, kind = q.partition(" ")
            if q == "flagged":
                v, label = r["flagged_at_threshold"], f"{name}: glyphs flagged"
            elif q == "accuracy":
                v, label = r["accuracy"], f"{name}: accuracy"
            elif what == "caught" and "caught_at_threshold" in r["ood"].get(kind, {}):
                v, label = r["ood"][kind]["caught_at_threshold"], f"{name}: {kind} caught"
            else:
                continue  # AUROC targets are in the real-pages section
            rows.append((label, v, _check(v, bound, how)[0], _verdict(v, bound, how)))
    v = cal["id"].get("flagged_at_threshold", 1.0 - cal["measured_tpr"])
    rows.append(
        (
            "synthetic test glyphs: flagged",
            v,
            f"≤ {SYNTH_GLYPHS_FLAGGED_MAX:.2f}",
            _verdict(v, SYNTH_GLYPHS_FLAGGED_MAX, "max"),
        )
    )
    for n, m in cal["metrics"]["sets"].items():
        if n in mixes:
            continue  # a mix of exposure and evaluation kinds: its members have their own rows
        role = "exposure" if n in exposure else "evaluation"
        if n in MUST_CATCH or m["kind"] == "far":
            bound = SYNTH_FAR_CAUGHT_MIN
        elif role == "evaluation":
            bound = SYNTH_EVAL_CAUGHT_MIN
        else:
            continue
        v = set_caught(m)
        rows.append(
            (f"synthetic {n} ({m['kind']}, {role}): caught", v, f"≥ {bound:.2f}", _verdict(v, bound, "min"))
        )
    return rows


def gate_section(
    cal: dict, real: dict, exposure: set[str], before: Path | None, mixes: set[str] = frozenset()
) -> list[str]:
    pop = cal.get(
        "threshold_population", {"population": "synthetic", "data": cal.get("data", "?"), "n": cal["id"]["n"]}
    )
    rests = (
        f"the **real** validation works' glyphs (`{pop['data']}`, N = {pop['n']})"
        if pop["population"] == "real"
        else f"**{pop['population']}** glyphs (`{pop['data']}`, N = {pop['n']}): no real validation glyphs were given"
    )
    lines = [
        "## The gate at the shipped threshold",
        "",
        f"Threshold: energy > **{cal['threshold']:.4f}**, fitted on {rests} at a target TPR of {cal['target_tpr']} "
        f"(measured {cal['measured_tpr']:.4f}); the p-values' calibration energies come from the same glyphs. "
        "Caught = share of a non-glyph set flagged at this threshold; flagged = share of glyphs flagged.",
        "",
    ]
    if pop.get("ood"):
        lines += [
            "The validation works' own non-glyphs at this threshold: "
            + "; ".join(
                f"{k} caught {v['caught_at_threshold']:.1%} (AUROC {v['auroc']:.3f})"
                for k, v in pop["ood"].items()
            )
            + f"; accuracy on their glyphs {pop['accuracy']:.4f}.",
            "",
        ]
    lines += [
        "| quantity | measured | target | |",
        "|---|---|---|---|",
        *[
            f"| {q} | {v:.4f} | {t} | {verdict} |"
            for q, v, t, verdict in gate_target_rows(cal, real, exposure, mixes)
        ],
        "",
    ]
    if before is not None and (before / "calibration.json").is_file():
        old_cal = read_json(before / "calibration.json")
        old_real = read_json(before / REAL_SCANS_JSON) if (before / REAL_SCANS_JSON).is_file() else {}
        old, new = gate_figures(old_cal, old_real), gate_figures(cal, real)
        lines += [
            f"Before and after this model (before: the model this one replaced, kept by `make model` in `{before}`; "
            "each at its own shipped threshold; – = not measured then):",
            "",
            "| figure | before | after |",
            "|---|---|---|",
            *[
                f"| {k} | {old[k]:.4f} | {new[k]:.4f} |" if k in old else f"| {k} | – | {new[k]:.4f} |"
                for k in new
            ],
            "",
        ]
    return lines
