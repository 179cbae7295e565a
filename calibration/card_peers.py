"""The card's peer sections: the JEM against the shipped classifier baseline (accuracy, ECE
before and after the temperature), the peer table of `glyphgate peers`, and the recipe
changes tried to close the accuracy gap (training/recipes_tried.json). Each is a macro of
templates/card/peers.md.j2; the *_lines / *_section functions render one on its own."""

from __future__ import annotations

from pathlib import Path

from calibration.render import Table, Verdict, fmt, macro
from calibration.targets import TARGETS, verdict
from calibration.view import peer_tables
from glyphgate.core.contract.artifacts import read_json

RECIPES_TRIED = Path(__file__).resolve().parents[1] / "training" / "recipes_tried.json"
PEERS_MD = "card/peers.md.j2"
BASELINE = TARGETS["baseline"]

# Why a family of scores can rank a kind above the gate (the card says so where one does).
WHY = {
    "kNN": "a distance to the training glyphs themselves (the 50th nearest, in the network's feature space) "
    "needs no class to be confident about: a shape between classes is far from all of them, while the energy "
    "only sees how much logit mass it gathers",
    "Mahalanobis": "the distance to the nearest class centre in feature space, with one covariance fitted on "
    "the training glyphs, measures the shape directly rather than through the logits",
    "energy": "the classifier's logits were never pushed down on outliers nor shaped by p(x), so on this kind "
    "its logsumexp happens to separate better",
    "−max-softmax": "the winning class's share separates this kind, whose crops spread their logits over "
    "several classes more than glyphs do",
    "Tesseract": "the OCR engine's language-independent shape model has seen far more kinds of print",
}


def _why(peer: str) -> str:
    return next((why for key, why in WHY.items() if key in peer), "")


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n") + [""] if text.strip() else []


def baseline_table(real: dict) -> Table | None:
    """The JEM beside the shipped classifier baseline on each collection, against the targets."""
    rows = [(n, r) for n, r in real.items() if "baseline" in r]
    if not rows:
        return None
    t = Table(
        ["collection", "JEM accuracy", "baseline accuracy", "gap", "target", "JEM ECE raw → at T"]
        + ["baseline ECE at T", "ECE target"]
    )
    for name, r in rows:
        b = r["baseline"]
        bound = max(b["accuracy"] - BASELINE["accuracy_gap"], BASELINE["accuracy_min"].get(name, 0.0))
        ece_max = BASELINE["ece_max"].get(name, BASELINE["ece_max_other"])
        ok = r["accuracy"] >= bound
        acc = Verdict(ok, None if ok else f"{100 * (bound - r['accuracy']):.1f} pt", f"≥ {bound:.4f}")
        t.rows.append(
            [name, fmt(r["accuracy"]), fmt(b["accuracy"]), f"{100 * (b['accuracy'] - r['accuracy']):+.1f} pt"]
            + [acc, f"{r.get('ece_raw', float('nan')):.4f} → {r['ece']:.4f} (T = {r['temperature']:.3f})"]
            + [fmt(b["ece"]), verdict(r["ece"], {"max": ece_max}, 4, f"≤ {ece_max}")]
        )
    return t


def beaten(peers: dict | None) -> list[dict]:
    """peers.json's rows that rank a kind above the gate, largest margin first, with the reason."""
    found = sorted((peers or {}).get("beaten", []), key=lambda b: -b["by"])
    return [{**b, "why": _why(b["peer"])} for b in found]


def tried(path: Path = RECIPES_TRIED) -> tuple[dict, Table] | None:
    if not path.is_file():
        return None
    recipes = read_json(path)
    t = Table(["recipe", *recipes["columns"], "shipped"])
    for run in recipes["runs"]:
        cells = [run["figures"].get(c, "") for c in recipes["columns"]]
        t.rows.append(
            [
                run["recipe"],
                *(fmt(v) if isinstance(v, float) else str(v) for v in cells),
                run.get("shipped", ""),
            ]
        )
    return recipes, t


def baseline_lines(real: dict) -> list[str]:
    return _lines(macro(PEERS_MD, "baseline", baseline_table(real)))


def peers_section(peers: dict | None, n_classes: int | None = None) -> list[str]:
    return _lines(macro(PEERS_MD, "peers", peers, peer_tables(peers), beaten(peers), n_classes))


def tried_section(path: Path = RECIPES_TRIED) -> list[str]:
    return _lines(macro(PEERS_MD, "tried", tried(path)))
