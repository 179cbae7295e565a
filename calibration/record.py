"""calibration.json as one typed record (glyphgate/core/contract/calibration.schema.json), built by
one function from what a calibration measured, for a full data set and a collection alike.

Every model allows extra fields, as the schema does. Fields that one kind of calibration leaves
out (a collection has no robustness panel, a full data set no `collection`) stay out of the file:
the record is written with exclude_unset, so its keys are exactly those the builder set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

from calibration.metrics import caught, expected_calibration_error, ood_metrics
from glyphgate.core.contract.artifacts import (
    CALIBRATION_JSON,
    REAL_SCANS_JSON,
    SCHEMA_VERSION,
    load_calibration,
)
from glyphgate.core.contract.scores import GATE_SCORE, softmax

ORIENTATION = "higher = more OOD; is_ood = energy > threshold"
QUANTILES = ("0.01", "0.5", "0.95", "0.99")


class Open(BaseModel):
    # model_sha256 is a field of the file, not pydantic's namespace
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ScoreFigures(Open):
    auroc: float
    aupr_in: float
    aupr_out: float
    fpr95: float


class OodResult(Open):
    kind: Literal["near", "far", "unknown"]
    n: int
    fpr_at_threshold: float
    caught_at_threshold: float
    scores: dict[str, ScoreFigures]
    sets: list[str] | None = None  # a kind's member sets


class Rank(Open):
    auroc: float
    fpr95: float


class PopulationKind(Rank):
    n: int
    caught_at_threshold: float


class Population(Open):
    population: Literal["real", "synthetic", "collection"]
    data: str
    n: int
    accuracy: float | None = None
    ece_raw: float | None = None
    ece: float | None = None
    flagged_at_threshold: float | None = None
    ood: dict[str, PopulationKind] = {}


class IdFigures(Open):
    n: int
    accuracy: float | None
    ece: float | None
    ece_raw: float | None = None
    flagged_at_threshold: float | None = None
    energy_quantiles: dict[str, float] = {}


class Metrics(Open):
    sets: dict[str, OodResult]
    kinds: dict[str, OodResult]


class PanelRow(Open):
    accuracy: float
    flagged: float
    d_accuracy: float
    d_flagged: float


class Baseline(Open):
    artifacts: str
    mode: str
    model_sha256: str


class Collection(Open):
    name: str
    data: str
    labelled: bool
    n_glyphs: int
    classes_present: list[str]
    unknown_classes: dict[str, int]
    unknown_as_ood: bool
    warning: str | None


class CalibrationRecord(Open):
    schema_version: int = SCHEMA_VERSION
    score: str = GATE_SCORE
    orientation: str = ORIENTATION
    threshold: float
    target_tpr: float
    target_fpr: float | None = None
    measured_tpr: float
    temperature: float = 1.0
    split: str
    threshold_population: Population | None = None
    model_sha256: str
    classes: list[str]
    id: IdFigures
    id_energies: list[float] = []
    score_functions: list[str]
    metrics: Metrics
    comparison: dict[str, dict[str, Rank]]
    robustness: dict[str, PanelRow] = {}
    energy_histogram: dict[str, list[float]] | None = None
    collection: Collection | None = None
    reference: dict[str, Any] | None = None
    baselines: list[Baseline] = []
    data: str = ""
    created: str

    @property
    def population(self) -> Population:
        """The glyphs the threshold rests on (files older than threshold_population: the ID split)."""
        return self.threshold_population or Population(
            population="synthetic", data=self.data or "?", n=self.id.n
        )

    @property
    def id_flagged(self) -> float:
        """Share of the ID split flagged at the threshold (older files hold only the TPR)."""
        f = self.id.flagged_at_threshold
        return 1.0 - self.measured_tpr if f is None else f

    def pooled(self) -> dict[str, OodResult]:
        """Every set, then every kind as "all <kind>": the rows of the per-set tables."""
        return {**self.metrics.sets, **{f"all {k}": v for k, v in self.metrics.kinds.items()}}

    def to_dict(self) -> dict:
        return self.model_dump(exclude_unset=True)


@dataclass
class Measured:
    """A calibration's arrays; every figure of the record is computed from these."""

    id_scores: dict[str, np.ndarray]  # score function -> values on the ID glyphs
    ood_scores: dict[str, dict[str, np.ndarray]]  # OOD set -> score function -> values
    kinds: dict[str, str]  # OOD set -> near / far / unknown
    logits: np.ndarray  # the ID glyphs'
    labels: np.ndarray | None  # None: unlabelled glyphs
    fit_energy: np.ndarray  # the threshold population's energies, which p-values rank against

    def kind(self, name: str) -> str:
        return self.kinds.get(name, "unknown")


def kind_pool(values: dict[str, np.ndarray], kinds: dict[str, str]) -> dict[str, np.ndarray]:
    pools: dict[str, list] = {}
    for name, v in values.items():
        pools.setdefault(kinds.get(name, "unknown"), []).append(v)
    return {k: np.concatenate(v) for k, v in sorted(pools.items())}


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


def _ood_result(kind: str, s_id: dict, s: dict, threshold: float) -> dict:
    e = s[GATE_SCORE]
    return {
        "kind": kind,
        "n": int(len(e)),
        "fpr_at_threshold": float(np.mean(e <= threshold)),
        "caught_at_threshold": caught(e, threshold),
        "scores": {f: ood_metrics(s_id[f], s[f]) for f in s_id},
    }


def _metrics(m: Measured, threshold: float) -> dict:
    sets = {n: _ood_result(m.kind(n), m.id_scores, s, threshold) for n, s in m.ood_scores.items()}
    kinds = {}
    for kind in sorted({m.kind(n) for n in m.ood_scores}):
        members = [n for n in m.ood_scores if m.kind(n) == kind]
        pooled = {f: np.concatenate([m.ood_scores[n][f] for n in members]) for f in m.id_scores}
        kinds[kind] = {**_ood_result(kind, m.id_scores, pooled, threshold), "sets": members}
    return {"sets": sets, "kinds": kinds}


def _id_figures(m: Measured, threshold: float, temperature: float, flag_id: bool) -> dict:
    e, y = m.id_scores[GATE_SCORE], m.labels
    probs = softmax(m.logits, temperature)
    return {
        "n": int(len(e)),
        "accuracy": None if y is None else float(np.mean(probs.argmax(1) == y)),
        "ece": None if y is None else expected_calibration_error(probs, y),
        "ece_raw": None if y is None else expected_calibration_error(softmax(m.logits), y),
        # a collection's glyphs are the threshold's own population: their flag rate is 1 - TPR
        **({"flagged_at_threshold": caught(e, threshold)} if flag_id else {}),
        "energy_quantiles": {q: float(np.quantile(e, float(q))) for q in QUANTILES},
    }


class OperatingPoint(NamedTuple):
    """What a calibration fits: the threshold at a target TPR (and the TPR it gets), the temperature."""

    threshold: float
    measured_tpr: float
    target_tpr: float
    temperature: float


def build_record(
    m: Measured,
    point: OperatingPoint,
    *,
    split: str,
    population: dict,
    model_sha256: str,
    classes: list[str],
    data: str,
    comparison: dict | None = None,
    flag_id: bool = True,
    **sections,
) -> CalibrationRecord:
    """The record of one calibration. `sections`: the fields only one kind of calibration has
    (robustness, baselines, collection, reference, target_fpr); they are written as given."""
    threshold, measured_tpr, target_tpr, temperature = point
    e_ood = {n: s[GATE_SCORE] for n, s in m.ood_scores.items()}
    fields = dict(
        schema_version=SCHEMA_VERSION,
        score=GATE_SCORE,
        orientation=ORIENTATION,
        threshold=float(threshold),
        target_tpr=target_tpr,
        measured_tpr=measured_tpr,
        temperature=temperature,
        split=split,
        threshold_population=population,
        model_sha256=model_sha256,
        classes=classes,
        id=_id_figures(m, threshold, temperature, flag_id),
        id_energies=np.sort(m.fit_energy).round(6).tolist(),
        score_functions=list(m.id_scores),
        metrics=_metrics(m, threshold),
        comparison=comparison or {},
        energy_histogram=energy_histogram(m.fit_energy, kind_pool(e_ood, m.kinds)),
        baselines=[],
        data=data,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return CalibrationRecord(**{**fields, **sections})


def write_record(folder: Path, record: CalibrationRecord) -> Path:
    # real-page figures were measured at the old threshold: `glyphgate evaluate` makes them again
    (folder / REAL_SCANS_JSON).unlink(missing_ok=True)
    path = folder / CALIBRATION_JSON
    path.write_text(json.dumps(record.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_record(folder: str | Path, check_hash: bool = True) -> CalibrationRecord:
    """calibration.json checked against its schema (and model.onnx's hash), as a record."""
    return CalibrationRecord.model_validate(load_calibration(folder, check_hash))
