import json
import shutil

import numpy as np
import pytest
from PIL import Image

from calibration.metrics import (
    expected_calibration_error,
    fit_temperature,
    fit_threshold,
    fpr_at_tpr,
    ood_metrics,
)
from glyphgate.cli import main
from glyphgate.core.contract.artifacts import load_calibration, sha256
from glyphgate.core.errors import ArtifactsError


def test_ood_metrics_match_a_hand_computed_case():
    s_id, s_ood = [0, 1, 2, 3], [2.5, 4, 5]
    m = ood_metrics(s_id, s_ood)
    assert m["auroc"] == pytest.approx(11 / 12)  # 11 of the 12 (OOD, ID) pairs are ordered right
    assert m["fpr95"] == pytest.approx(1 / 3)  # keeping all 4 ID (t = 3) lets 2.5 through
    assert m["aupr_out"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert m["aupr_in"] == pytest.approx((1 + 1 + 1 + 4 / 5) / 4)


def test_fpr_at_tpr_on_a_perfectly_separated_pair_is_zero():
    assert fpr_at_tpr(np.arange(100), np.arange(100) + 1000) == 0.0
    assert fpr_at_tpr(np.arange(100) + 1000, np.arange(100)) == 1.0


def test_ece_matches_a_hand_computed_case():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    labels = np.array([0, 1, 0])
    # bin 0.9: accuracy 1/2, confidence 0.9 -> 0.4 * 2/3; bin 0.6: accuracy 1, confidence 0.6 -> 0.4 * 1/3
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_temperature_recovers_how_overconfident_the_logits_are(true_t):
    """Labels drawn from softmax(z); logits handed over as z / T: the fit must find T again, and
    the confidence it gives is calibrated where the raw one is not."""
    from glyphgate.core.contract.scores import softmax

    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(20000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(z)])
    logits = z / true_t
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(1 / true_t, rel=0.05)
    assert expected_calibration_error(softmax(logits, t), labels) < 0.02
    if true_t != 1.0:
        assert expected_calibration_error(softmax(logits), labels) > 0.05


@pytest.mark.parametrize("n", [37, 1000, 2426])
@pytest.mark.parametrize("target", [0.9, 0.95, 0.99])
def test_threshold_gives_the_target_tpr_within_one_over_n(n, target):
    s = np.random.default_rng(n).normal(size=n)
    t, measured = fit_threshold(s, target)
    assert measured == pytest.approx(np.mean(s <= t))
    assert target <= measured < target + 1 / n


@pytest.fixture(scope="module")
def calibrated(tiny_artifacts, tiny_classifier_run, train_corpus, tmp_path_factory):
    from training.export import export

    folder = tmp_path_factory.mktemp("cal") / "jem"
    shutil.copytree(tiny_artifacts, folder)
    baseline = tmp_path_factory.mktemp("cal") / "classifier"
    export(tiny_classifier_run / "checkpoints" / "last.ckpt", baseline)
    assert (
        main(
            [
                "calibrate",
                "--artifacts",
                str(folder),
                "--data",
                str(train_corpus),
                "--baseline",
                str(baseline),
            ]
        )
        == 0
    )
    return folder


@pytest.mark.slow
def test_calibration_json_validates_and_matches_its_model(calibrated, train_corpus):
    cal = load_calibration(calibrated)  # schema + hash
    assert cal["model_sha256"] == sha256(calibrated / "model.onnx")
    assert cal["split"] == "test" and cal["target_tpr"] == 0.95 and len(cal["classes"]) == 42
    n = cal["id"]["n"]
    assert 0.95 <= cal["measured_tpr"] < 0.95 + 1 / n
    assert set(cal["metrics"]["kinds"]) == {"near", "far"}
    assert {"uniform_noise", "ood_ta", "ood_tb"} <= set(cal["metrics"]["sets"])
    detectors = set(cal["comparison"])
    assert {
        "jem · energy",
        "classifier · neg_max_softmax",
        "classifier · energy",
        "BernoulliRBM · free energy",
    } <= detectors
    from pathlib import Path

    from corpus.load import load_glyph_data
    from glyphgate.core.scoring.onnx_session import OnnxModel

    data = load_glyph_data(train_corpus)
    far = [name for name, kind in data.ood_kind.items() if kind == "far"]
    for detector, folder in (
        ("jem · energy", calibrated),
        ("classifier · energy", Path(cal["baselines"][0]["artifacts"])),
    ):
        runner = OnnxModel(folder / "model.onnx", cpu_only=True)
        e_id = runner.run(data.splits["test"][0].numpy(), batch=256)[1]
        e_far = {name: runner.run(data.ood[name].numpy(), batch=256)[1] for name in far}
        for name, e in {**e_far, "all far": np.concatenate(list(e_far.values()))}.items():
            # AUROC by hand: the share of (OOD, glyph) pairs the energy ranks right, ties counted half
            right = (e[:, None] > e_id[None, :]).mean() + 0.5 * (e[:, None] == e_id[None, :]).mean()
            assert cal["comparison"][detector][name]["auroc"] == pytest.approx(right), (detector, name)


@pytest.mark.slow
def test_every_score_function_ranks_blended_glyphs_above_glyphs(tiny_artifacts, train_corpus):
    """Orientation: two different glyphs printed over each other are no glyph. The classifier is
    split between two classes and the energy rises, so every score (higher = more OOD) must rank
    them above real glyphs. (Uniform noise would not do: max-softmax is confidently wrong on it.)"""
    from calibration.calibrate import score_artifacts
    from corpus.load import load_glyph_data

    x, y = (t.numpy() for t in load_glyph_data(train_corpus).splits["test"])
    rng = np.random.default_rng(0)
    partner = np.array([rng.choice(np.flatnonzero(y != label)) for label in y])
    blended = (0.5 * x + 0.5 * x[partner]).astype(np.float32)
    _, scores = score_artifacts(tiny_artifacts, {"id": x, "blend": blended})
    assert set(scores["id"]) == {"energy", "neg_max_softmax", "neg_max_logit", "grad_norm"}
    for name in scores["id"]:
        auroc = ood_metrics(scores["id"][name], scores["blend"][name])["auroc"]
        assert auroc > 0.55, (name, auroc)


@pytest.mark.slow
def test_report_pngs_are_real_images_and_the_index_links_them(calibrated):
    report = calibrated / "report"
    pngs = sorted(report.glob("*.png"))
    names = {p.name for p in pngs}
    assert {
        "energy_histograms.png",
        "roc_curves.png",
        "reliability.png",
        "false_alarms.png",
        "misses_far.png",
        "misses_near.png",
    } <= names
    index = (report / "index.html").read_text(encoding="utf-8")
    for p in pngs:
        with Image.open(p) as im:
            im.load()
            lo, hi = im.convert("L").getextrema()
            assert im.width >= 100 and im.height >= 100 and hi - lo > 50, p.name
        assert f"src='{p.name}'" in index


@pytest.mark.slow
def test_a_changed_model_no_longer_matches_its_calibration(calibrated, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(calibrated, folder)
    with open(folder / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactsError, match="model_sha256 does not match"):
        load_calibration(folder)
    cal = json.loads((calibrated / "calibration.json").read_text(encoding="utf-8"))
    del cal["threshold"]
    (folder / "calibration.json").write_text(json.dumps(cal))
    with pytest.raises(ArtifactsError, match="threshold"):
        load_calibration(folder, check_hash=False)


def test_calibrate_without_an_export_is_a_one_line_error(tmp_path, tiny_corpus, capsys):
    (tmp_path / "a").mkdir()
    assert main(["calibrate", "--artifacts", str(tmp_path / "a"), "--data", str(tiny_corpus)]) == 2
    err = capsys.readouterr().err
    assert "missing model.onnx, model.pt, classes.json" in err and "Traceback" not in err


@pytest.mark.slow
def test_confidence_and_top_k_follow_the_calibrated_temperature(tiny_calibrated, train_corpus, tmp_path):
    """The temperature in calibration.json reaches what a user reads; label and energy stay."""
    from corpus.load import load_glyph_data
    from glyphgate.core.contract.scores import softmax
    from glyphgate.core.scoring.onnx_session import OnnxModel
    from glyphgate.core.scoring.scorer import Scorer

    folder = tmp_path / "art"
    shutil.copytree(tiny_calibrated, folder)
    cal = json.loads((folder / "calibration.json").read_text(encoding="utf-8"))
    x = load_glyph_data(train_corpus).splits["test"][0][:20].numpy()
    logits, energy = OnnxModel(folder / "model.onnx").run(x)
    verdicts = {}
    for t in (1.0, 2.5):
        cal["temperature"] = t
        (folder / "calibration.json").write_text(json.dumps(cal), encoding="utf-8")
        from glyphgate.scan.folder import LocalScorer

        scorer = LocalScorer(folder).scorer
        assert isinstance(scorer, Scorer) and scorer.temperature == t
        verdicts[t] = scorer.classify(x)
        p = softmax(logits / t)
        for v, row, e in zip(verdicts[t], p, energy):
            assert v["confidence"] == pytest.approx(float(row.max()), abs=1e-5)
            assert [k["p"] for k in v["top_k"]] == pytest.approx(sorted(row, reverse=True)[:5], abs=1e-5)
            assert v["energy"] == pytest.approx(float(e), abs=1e-5)
    assert [v["label"] for v in verdicts[1.0]] == [v["label"] for v in verdicts[2.5]]
    assert any(a["confidence"] > b["confidence"] for a, b in zip(verdicts[1.0], verdicts[2.5]))
