"""The card's peer sections: the JEM against the shipped classifier baseline (accuracy, ECE
before and after the temperature), the peer table of `glyphgate peers`, and the recipe
changes tried to close the accuracy gap (training/recipes_tried.json)."""

from __future__ import annotations

from pathlib import Path

from glyphgate.core.contract.artifacts import read_json

RECIPES_TRIED = Path(__file__).resolve().parents[1] / "training" / "recipes_tried.json"
KINDS = ("words", "fragments", "other_symbols", "blank")

# Targets of the JEM against its baseline, per real collection: accuracy within ACC_GAP of the
# baseline and at least ACC_MIN, ECE at the fitted temperature at most ECE_MAX.
ACC_GAP = 0.01
ACC_MIN = {"vd-sbb-test": 0.96, "kant-bin": 0.90, "kant-nrm": 0.90}
ECE_MAX = {"vd-sbb-test": 0.03, "kant-bin": 0.05, "kant-nrm": 0.05}

# Why a family of scores can rank a kind above the gate (the card says so where one does).
WHY = {
    "kNN": "a distance to the training glyphs themselves (the 50th nearest, in the network's feature space) "
    "needs no class to be confident about: a shape between classes is far from all of them, while the energy "
    "only sees how much logit mass it gathers",
    "Mahalanobis": "the distance to the nearest class centre in feature space, with one covariance fitted on "
    "the training glyphs, measures the shape directly rather than through the 42 logits",
    "energy": "the classifier's logits were never pushed down on outliers nor shaped by p(x), so on this kind "
    "its logsumexp happens to separate better",
    "−max-softmax": "the winning class's share separates this kind, whose crops spread their logits over "
    "several classes more than glyphs do",
    "Tesseract": "the OCR engine's language-independent shape model has seen far more kinds of print",
}


def _why(peer: str) -> str:
    return next((why for key, why in WHY.items() if key in peer), "")


def _mark(ok: bool, gap: str) -> str:
    return "met" if ok else f"**missed** by {gap}"


def baseline_lines(real: dict) -> list[str]:
    """The JEM beside the shipped classifier baseline on each collection, against the targets."""
    rows = [(n, r) for n, r in real.items() if "baseline" in r]
    if not rows:
        return []
    lines = [
        "### The JEM and the classifier baseline on the same crops",
        "",
        "`artifacts/baseline` is the classifier trained on the same data and epochs, calibrated the same way "
        "(threshold and temperature on the real validation works); `glyphgate evaluate --baseline` measured both. "
        "Confidence = softmax(logits / T); the energy and the gate use the raw logits.",
        "",
        "| collection | JEM accuracy | baseline accuracy | gap | target | JEM ECE raw → at T | baseline ECE at T | ECE target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        b = r["baseline"]
        gap = b["accuracy"] - r["accuracy"]
        bound = max(b["accuracy"] - ACC_GAP, ACC_MIN.get(name, 0.0))
        ece_max = ECE_MAX.get(name, 0.05)
        acc_mark = _mark(r["accuracy"] >= bound, f"{100 * (bound - r['accuracy']):.1f} pt")
        ece_mark = _mark(r["ece"] <= ece_max, f"{r['ece'] - ece_max:.4f}")
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {b['accuracy']:.4f} | {100 * gap:+.1f} pt | "
            f"≥ {bound:.4f}: {acc_mark} | "
            f"{r.get('ece_raw', float('nan')):.4f} → {r['ece']:.4f} (T = {r['temperature']:.3f}) | {b['ece']:.4f} | "
            f"≤ {ece_max}: {ece_mark} |"
        )
    return [*lines, ""]


def peers_section(peers: dict | None) -> list[str]:
    if not peers:
        return [
            "## Peers on real pages",
            "",
            "Not measured: `make peers` writes peers.json when the real pages are present.",
            "",
        ]
    share = peers["flag_share"]
    lines = [
        "## Peers on real pages",
        "",
        "Every score a user could gate with, on the same crops (`glyphgate peers`). Mahalanobis and kNN are "
        f"pytorch-ood's detectors on each network's penultimate features, fitted on the {peers['fit']['n']} training "
        f"glyphs ({', '.join(peers['fit']['data'])}); Tesseract reads each crop as one character "
        "(`--psm 10`, `frk`, the 42 classes as whitelist), its character the label and 100 − its confidence the "
        f"score. *Caught* is at each row's own threshold that flags {share:.0%} of the collection's glyphs "
        "(*flagged* shows where ties make that impossible). The gate is **JEM energy**.",
        "",
    ]
    if skipped := peers["ocr"].get("skipped"):
        lines += [f"Tesseract rows not measured: {skipped}.", ""]
    for name, table in peers["collections"].items():
        kinds = [k for k in KINDS if any(k in r["auroc"] for r in table["rows"].values())]
        lines += [
            f"**{name}** ({table['n_glyphs']} glyphs; "
            + ", ".join(f"{k} {n}" for k, n in table["n_ood"].items())
            + ")",
            "",
            "| score | accuracy | flagged | " + " | ".join(f"{k}: AUROC / caught" for k in kinds) + " |",
            "|---|---|---|" + "---|" * len(kinds),
        ]
        for row, r in table["rows"].items():
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            name_cell = f"**{row}**" if row == "JEM energy" else row
            lines.append(
                f"| {name_cell} | {acc} | {r['flagged']:.3f} | "
                + " | ".join(
                    f"{r['auroc'][k]:.3f} / {r['caught'][k]:.3f}" if k in r["auroc"] else "" for k in kinds
                )
                + " |"
            )
        lines.append("")
    beaten = peers.get("beaten", [])
    if beaten:
        lines += ["Where a peer ranks a kind above the gate (AUROC), and why it can:", ""]
        for b in sorted(beaten, key=lambda b: -b["by"]):
            lines.append(
                f"- {b['collection']}, {b['kind']}: {b['peer']} {b['peer_auroc']:.3f} against the gate's "
                f"{b['gate_auroc']:.3f} (+{b['by']:.3f}): {_why(b['peer'])}."
            )
    else:
        lines.append("No peer ranks words, fragments or other symbols above the gate on any collection.")
    return [*lines, ""]


def tried_section(path: Path = RECIPES_TRIED) -> list[str]:
    if not path.is_file():
        return []
    tried = read_json(path)
    lines = [
        "## What we tried",
        "",
        tried["how"],
        "",
        "| recipe | " + " | ".join(tried["columns"]) + " | shipped |",
        "|---|" + "---|" * (len(tried["columns"]) + 1),
    ]
    for run in tried["runs"]:
        cells = [run["figures"].get(c, "") for c in tried["columns"]]
        lines.append(
            f"| {run['recipe']} | "
            + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells)
            + f" | {run.get('shipped', '')} |"
        )
    return [*lines, "", *(tried.get("notes") or []), ""]
