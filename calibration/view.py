"""The one view the card and the report are rendered over: the calibration record, the files
beside it (real_scans.json, peers.json, generation.json, report/figures.json) and, for the card,
the training run and the data folder. The tables both show are built here once, as data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from calibration.record import CalibrationRecord, read_record
from calibration.render import Code, Strong, Table, Verdict, fmt, pt
from calibration.targets import TARGETS, bounds, label, verdict
from glyphgate.core.contract.artifacts import PEERS_JSON, REAL_SCANS_JSON
from glyphgate.core.contract.scores import GATE_SCORE, SCORES

GENERATION_JSON = "generation.json"  # `glyphgate generate --evaluate --out <artifacts>/generation.json`
PEER_KINDS = ("words", "fragments", "other_symbols", "blank")  # what a page segmenter emits, in that order


def read_optional(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def score_label(name: str) -> str:
    return SCORES[name].label if name in SCORES else name


@dataclass
class Run:
    """A training run folder: its config, its metrics and the fit's wall time."""

    path: Path
    cfg: dict
    metrics: dict
    wall_s: float


@dataclass
class DataSummary:
    """A data folder as the card describes it; `typefaces` from its manifest, when it names them."""

    path: str
    layout: str
    classes: list[str]
    splits: dict[str, int]
    ood: dict[str, tuple[str, int]]  # set -> (kind, images)
    typefaces: int | None = None


@dataclass
class View:
    record: CalibrationRecord
    real: dict = field(default_factory=dict)  # real_scans.json
    peers: dict | None = None
    generation: dict | None = None
    figures: dict[str, str] = field(default_factory=dict)
    run: Run | None = None
    data: DataSummary | None = None
    exposure: set[str] = field(default_factory=set)  # OOD kinds the run saw as negatives
    mixes: set[str] = field(default_factory=set)  # OOD sets that mix several kinds

    @classmethod
    def read(cls, folder: str | Path, record: CalibrationRecord | None = None, **inputs) -> View:
        """What an artifacts folder holds now, for `inputs` not given."""
        folder = Path(folder)
        inputs.setdefault("real", read_optional(folder / REAL_SCANS_JSON) or {})
        inputs.setdefault("peers", read_optional(folder / PEERS_JSON))
        inputs.setdefault("generation", read_optional(folder / GENERATION_JSON))
        inputs.setdefault("figures", read_optional(folder / "report" / "figures.json") or {})
        return cls(record or read_record(folder), **inputs)

    @property
    def n_classes(self) -> int:
        return len(self.record.classes)

    def role(self, name: str) -> str:
        if name.startswith("all "):
            return ""
        return "exposure" if name in self.exposure else "mix" if name in self.mixes else "evaluation"

    @property
    def evaluation_sets(self) -> list[str]:
        return sorted(n for n in self.record.metrics.sets if self.role(n) == "evaluation")

    def energy_auroc(self) -> tuple[dict[str, float], dict[str, float]]:
        """(far, near) energy AUROC per set, near restricted to the evaluation sets: kinds seen as
        outlier exposure in training, and the mixes that contain them, are left out."""
        sets = self.record.metrics.sets
        far = {n: m.scores[GATE_SCORE].auroc for n, m in sets.items() if m.kind == "far"}
        near = {
            n: m.scores[GATE_SCORE].auroc
            for n, m in sets.items()
            if m.kind == "near" and self.role(n) == "evaluation"
        }
        return far, near

    def ood_sets(self, detail: bool = False) -> Table:
        """One row per OOD set and per kind; `detail` adds every score function and the AUPRs."""
        rec, roles = self.record, self.run is not None
        others = [s for s in rec.score_functions if s != GATE_SCORE] if detail else []
        t = Table(
            ["OOD set", "kind", *(["role"] if roles else []), "N", "caught at threshold"]
            + ["energy AUROC", "energy FPR95"]
            + (["missed at threshold", *(f"{score_label(s)} AUROC" for s in others)] if detail else [])
            + (["energy AUPR-in", "energy AUPR-out"] if detail else [])
        )
        for n, m in rec.pooled().items():
            e = m.scores[GATE_SCORE]
            t.rows.append(
                [n, m.kind, *([self.role(n)] if roles else []), m.n, fmt(m.caught_at_threshold)]
                + [fmt(e.auroc), fmt(e.fpr95)]
                + ([fmt(m.fpr_at_threshold), *(fmt(m.scores[s].auroc) for s in others)] if detail else [])
                + ([fmt(e.aupr_in), fmt(e.aupr_out)] if detail else [])
            )
        return t

    def robustness(self) -> Table:
        limit = TARGETS["robustness"]["max_change"]
        t = Table(["perturbation", "accuracy", "Δ accuracy", "flagged at threshold", "Δ flagged", ""])
        for n, r in self.record.robustness.items():
            ok = r.d_accuracy >= -limit and r.d_flagged <= limit
            mark = "" if n == "clean" else Verdict(ok)
            t.rows.append([n, fmt(r.accuracy), pt(r.d_accuracy), fmt(r.flagged), pt(r.d_flagged), mark])
        return t

    @property
    def real_kinds(self) -> list[str]:
        return sorted({k for r in self.real.values() for k in r["ood"]})

    def real_pages(self) -> Table:
        """Each collection of real_scans.json, this model and (when measured) the baseline."""
        kinds = self.real_kinds
        t = Table(
            ["collection", "model", "glyphs", "classes", "accuracy", "ECE raw → at T", "glyphs flagged"]
            + [f"{k}: caught / AUROC" for k in kinds]
        )
        for n, r in self.real.items():
            for who, m in [("this model", r), *([("baseline", r["baseline"])] if "baseline" in r else [])]:
                t.rows.append(
                    [n, who, r["n_glyphs"], r["n_classes"], fmt(m["accuracy"])]
                    + [f"{m['ece_raw']:.3f} → {m['ece']:.3f}" if "ece_raw" in m else ""]
                    + [fmt(m["flagged_at_threshold"])]
                    + [
                        f"{m['ood'][k].get('caught_at_threshold', float('nan')):.3f} / {m['ood'][k]['auroc']:.3f}"
                        if k in m["ood"]
                        else ""
                        for k in kinds
                    ]
                )
        return t

    def real_figures(self):
        """(collection, what, quantity, measured, target) for every real-page target that was
        measured: what is accuracy, flagged, caught or auroc. The card's gate rows and the
        real-pages tables of card and report read this one walk."""
        for name, targets in bounds(TARGETS["real"]).items():
            r = self.real.get(name)
            if not r:
                continue
            for q, target in bounds(targets).items():
                what, _, kind = q.partition(" ")
                if q == "flagged":
                    yield name, what, "glyphs flagged", r["flagged_at_threshold"], target
                elif q == "accuracy":
                    yield name, what, "accuracy", r["accuracy"], target
                elif what == "caught" and "caught_at_threshold" in r["ood"].get(kind, {}):
                    yield name, what, f"{kind} caught", r["ood"][kind]["caught_at_threshold"], target
                elif what == "auroc" and kind in r["ood"]:
                    yield name, what, f"AUROC vs {kind}", r["ood"][kind]["auroc"], target

    def real_targets(self) -> Table:
        """The real collections' AUROC targets (accuracy, flagged and caught are the gate's)."""
        t = Table(["collection", "quantity", "measured", "target", ""])
        for name, what, quantity, v, target in self.real_figures():
            if what == "auroc":
                t.rows.append([name, quantity, fmt(v), label(target), verdict(v, target, None)])
        return t

    def detectors(self) -> Table:
        """calibrate's comparison: every detector's AUROC / FPR95, pooled kinds first."""
        rows = self.record.comparison
        cols = list(next(iter(rows.values()))) if rows else []
        cols = sorted((c for c in cols if c.startswith("all ")), key=cols.index) + [
            c for c in cols if not c.startswith("all ")
        ]
        t = Table(["detector", *cols])
        for det, row in rows.items():
            t.rows.append([det, *(f"{row[c].auroc:.3f} / {row[c].fpr95:.3f}" for c in cols)])
        return t

    def peer_tables(self) -> list[dict]:
        return peer_tables(self.peers)


def peer_tables(peers: dict | None) -> list[dict]:
    """peers.json's collections: {name, n_glyphs, n_ood, table}; the gate's row (the first) in bold."""
    out = []
    for name, coll in (peers or {}).get("collections", {}).items():
        seen = {k for r in coll["rows"].values() for k in r["auroc"]}
        kinds = [k for k in PEER_KINDS if k in seen] + sorted(seen - set(PEER_KINDS))
        t = Table(["score", "accuracy", "flagged", *(f"{k}: AUROC / caught" for k in kinds)])
        for i, (row, r) in enumerate(coll["rows"].items()):
            t.rows.append(
                [Strong(row) if i == 0 else row, "—" if r["accuracy"] is None else fmt(r["accuracy"])]
                + [f"{r['flagged']:.3f}"]
                + [f"{r['auroc'][k]:.3f} / {r['caught'][k]:.3f}" if k in r["auroc"] else "" for k in kinds]
            )
        out.append({"name": name, "n_glyphs": coll["n_glyphs"], "n_ood": coll["n_ood"], "table": t})
    return out


def summary(view: View) -> Table:
    """The report's first table: the threshold, what it rests on, the ID figures, the model."""
    rec, p = view.record, view.record.population
    c = rec.collection
    rows = [
        ["score", f"{rec.score} (higher = more OOD; flagged when energy > threshold)"],
        ["threshold", fmt(rec.threshold)],
        [
            "fitted on",
            f"{p.population} glyphs: {p.data} (N = {p.n})"
            + "".join(f"; {k} caught {v.caught_at_threshold:.1%}" for k, v in p.ood.items()),
        ],
    ]
    if rec.id.flagged_at_threshold is not None:
        rows.append(["synthetic ID glyphs flagged at threshold", fmt(rec.id.flagged_at_threshold)])
    rows += [
        [
            f"target / measured TPR on ID {rec.split}",
            f"{rec.target_tpr:.3f} / {rec.measured_tpr:.4f}  (N = {rec.id.n})",
        ],
        [
            "ID accuracy / ECE",
            "unlabelled" if rec.id.accuracy is None else f"{rec.id.accuracy:.4f} / {rec.id.ece:.4f}",
        ],
    ]
    if c is not None:
        unknown = ", ".join(f"{k} ({v})" for k, v in c.unknown_classes.items())
        rows.append(
            [
                "collection",
                f"{c.name} ({c.data}): {c.n_glyphs} glyphs"
                + (f"; classes {' '.join(c.classes_present)}" if c.classes_present else "")
                + (f"; not classes of the model: {unknown}" if unknown else ""),
            ]
        )
        if c.warning:
            rows.append([Strong("warning"), c.warning])
    rows.append(["model.onnx sha256", Code(rec.model_sha256)])
    return Table(["", ""], rows)
