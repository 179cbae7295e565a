"""The calibration record (calibration/record.py): one builder for full data sets and
collections, checked against the schema; the card and the report rendered from it and from
targets.json, so every figure they print is the record's."""

import json
import shutil

import jsonschema
import numpy as np
import pytest

from calibration.record import CalibrationRecord, Measured, OperatingPoint, build_record
from glyphgate.cli import main
from glyphgate.core.contract.artifacts import calibration_schema
from glyphgate.core.contract.scores import GATE_SCORE

CLASSES = ["a", "b", "c"]


def _measured(labelled: bool = True, scores=(GATE_SCORE, "neg_max_softmax")) -> Measured:
    rng = np.random.default_rng(0)
    s_id = {f: rng.normal(0, 1, 200) for f in scores}
    ood = {n: {f: rng.normal(2, 1, 50) for f in scores} for n in ("blots", "noise")}
    logits = rng.normal(0, 1, (200, len(CLASSES))).astype(np.float32)
    labels = rng.integers(0, len(CLASSES), 200) if labelled else None
    return Measured(s_id, ood, {"blots": "near", "noise": "far"}, logits, labels, s_id[GATE_SCORE])


def _common(m: Measured) -> dict:
    return dict(
        point=OperatingPoint(threshold=1.5, measured_tpr=0.95, target_tpr=0.95, temperature=1.2),
        population={"population": "synthetic", "data": "d (test split)", "n": 200},
        model_sha256="0" * 64,
        classes=CLASSES,
        data="d",
    )


def _round_trips(rec: CalibrationRecord) -> dict:
    written = json.loads(json.dumps(rec.to_dict()))
    jsonschema.validate(written, calibration_schema())
    assert CalibrationRecord.model_validate(written).to_dict() == written
    return written


def test_a_full_data_set_record_validates_and_round_trips():
    m = _measured()
    panel = {"clean": {"accuracy": 0.9, "flagged": 0.05, "d_accuracy": 0.0, "d_flagged": 0.0}}
    rec = build_record(m, **_common(m), split="test", comparison={}, robustness=panel, baselines=[])
    cal = _round_trips(rec)
    assert "robustness" in cal and "collection" not in cal and "target_fpr" not in cal
    assert set(cal["metrics"]["kinds"]) == {"near", "far"} and cal["metrics"]["kinds"]["far"]["sets"] == [
        "noise"
    ]
    assert cal["score_functions"] == [GATE_SCORE, "neg_max_softmax"]
    caught = float(np.mean(m.ood_scores["blots"][GATE_SCORE] > 1.5))
    assert cal["metrics"]["sets"]["blots"]["caught_at_threshold"] == caught
    assert cal["id"]["flagged_at_threshold"] == float(np.mean(m.id_scores[GATE_SCORE] > 1.5))
    assert cal["id_energies"] == sorted(cal["id_energies"]) and len(cal["id_energies"]) == 200


def test_a_collection_record_validates_and_round_trips():
    m = _measured(labelled=False, scores=(GATE_SCORE,))
    m.kinds = {}  # a collection's rejects are of no known kind
    collection = {
        "name": "box 7",
        "data": "d",
        "labelled": False,
        "n_glyphs": 200,
        "classes_present": [],
        "unknown_classes": {},
        "unknown_as_ood": False,
        "warning": None,
    }
    rec = build_record(
        m,
        **_common(m),
        split="collection",
        flag_id=False,
        target_fpr=None,
        collection=collection,
        reference=None,
    )
    cal = _round_trips(rec)
    # the fields a collection sets to null are written as null, the ones it lacks not at all
    assert cal["target_fpr"] is None and cal["reference"] is None and cal["collection"]["warning"] is None
    assert "robustness" not in cal and "flagged_at_threshold" not in cal["id"]
    assert cal["id"]["accuracy"] is None and cal["id"]["ece"] is None
    assert set(cal["metrics"]["kinds"]) == {"unknown"} and set(cal["energy_histogram"]) == {
        "edges",
        "id",
        "unknown",
    }


def test_the_card_steps_name_the_real_pages_from_their_import(tmp_path):
    from calibration.card import real_import

    (tmp_path / "import.json").write_text(
        json.dumps({"source": "/pages/vd", "splits": {"train": ["w1", "w2"]}})
    )
    assert real_import(str(tmp_path), None)["pages"] == "/pages/vd"
    assert real_import(str(tmp_path), "/elsewhere")["pages"] == "/elsewhere"
    assert real_import(str(tmp_path), None)["works"]["train"] == ["w1", "w2"]
    assert real_import(None, "/pages/vd") is None


@pytest.fixture()
def altered(tiny_calibrated, train_corpus, tmp_path):
    """The tiny model with a record altered by hand (threshold, two more classes) and a copy of
    its data whose manifest names two more classes and three typefaces."""
    art, data = tmp_path / "art", tmp_path / "data"
    shutil.copytree(tiny_calibrated, art)
    shutil.copytree(train_corpus, data)
    cal = json.loads((art / "calibration.json").read_text(encoding="utf-8"))
    cal["threshold"] = 12.3456
    cal["classes"] = [*cal["classes"], "ꝛ", "ꝰ"]
    (art / "calibration.json").write_text(json.dumps(cal), encoding="utf-8")
    manifest = json.loads((data / "classes.json").read_text(encoding="utf-8"))
    manifest["classes"] = cal["classes"]
    manifest["generator"]["faces"] = manifest["generator"]["faces"][:3]
    (data / "classes.json").write_text(json.dumps(manifest), encoding="utf-8")
    return art, data, len(cal["classes"])


@pytest.mark.slow
def test_card_and_report_show_the_figures_of_the_record_they_are_given(altered, tiny_run, monkeypatch):
    from calibration.report import rerender_index
    from calibration.targets import TARGETS

    art, data, n = altered
    monkeypatch.setitem(TARGETS["synthetic"]["test accuracy"], "min", 0.1234)
    assert main(["card", "--artifacts", str(art), "--run", str(tiny_run), "--data", str(data)]) == 0
    card = (art / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card.count("energy > **12.3456**") == 2  # the gate section and the measured section
    assert f"classifies {n} classes" in card and f"images, {n} classes (" in card and "42 classes" not in card
    assert "rendered from 3 digital typefaces" in card
    assert "| test accuracy |" in card and "| ≥ 0.1234 |" in card  # the target from targets.json
    rerender_index(art)
    index = (art / "report" / "index.html").read_text(encoding="utf-8")
    assert "<td>12.3456</td>" in index
