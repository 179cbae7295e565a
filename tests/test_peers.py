"""The shipped classifier baseline, `glyphgate evaluate --baseline` and `glyphgate peers` (the
gate beside its peers) on a tiny JEM, a tiny classifier and a page the project renders itself."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from glyphgate.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("folder", ["default", "baseline"])
def test_the_shipped_models_are_bound_to_their_calibration(folder):
    from glyphgate.core.contract.artifacts import (
        SHIPPED,
        load_calibration,
        load_torch_model,
        read_json,
        sha256,
    )

    path = SHIPPED.parent / folder
    cal = load_calibration(path)  # raises when model_sha256 does not match model.onnx
    assert cal["model_sha256"] == sha256(path / "model.onnx")
    assert read_json(path / "classes.json") == read_json(SHIPPED / "classes.json") == cal["classes"]
    assert load_torch_model(path).mode == ("classifier" if folder == "baseline" else "jem")
    # both rest on the real validation works and carry a temperature for their confidence
    assert cal["threshold_population"]["population"] == "real" and cal["temperature"] > 0


@pytest.fixture(scope="module")
def two_models(tiny_calibrated, tiny_classifier_run, train_corpus, imported_page, tmp_path_factory):
    """The tiny JEM and the tiny classifier, both calibrated with the page as the 'real' works."""
    from calibration.calibrate import calibrate
    from training.export import export

    root = tmp_path_factory.mktemp("two")
    real = root / "real"
    for split in ("train", "val"):
        shutil.copytree(imported_page, real / split)
    jem, base = root / "jem", root / "baseline"
    shutil.copytree(tiny_calibrated, jem)
    export(tiny_classifier_run / "checkpoints" / "last.ckpt", base)
    for folder in (base, jem):
        calibrate(folder, train_corpus, rbm=False, real=real, log=lambda *_: None)
    return jem, base, real


def test_evaluate_measures_the_baseline_on_the_same_crops(two_models, imported_page):
    from corpus.folders import read_named_classes, read_ood_folders
    from glyphgate.core.contract.artifacts import load_calibration
    from glyphgate.core.contract.scores import softmax
    from glyphgate.core.scoring.onnx_session import OnnxModel

    jem, base, _ = two_models
    args = ["evaluate", "--artifacts", str(jem), "--data", str(imported_page), "--name", "page"]
    assert main([*args, "--baseline", str(base)]) == 0
    r = json.loads((jem / "real_scans.json").read_text(encoding="utf-8"))["page"]
    b, bcal = r["baseline"], load_calibration(base)
    x, y, _ = read_named_classes(imported_page, bcal["classes"], "page")
    logits, energy = OnnxModel(base / "model.onnx").run(x.numpy())
    assert b["model_sha256"] == bcal["model_sha256"] and b["artifacts"] == str(base)
    assert b["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == y.numpy())))
    assert b["flagged_at_threshold"] == pytest.approx(float(np.mean(energy > bcal["threshold"])))
    for kind, xo in read_ood_folders(imported_page).items():
        eo = OnnxModel(base / "model.onnx").run(xo.numpy())[1]
        assert b["ood"][kind]["caught_at_threshold"] == pytest.approx(float(np.mean(eo > bcal["threshold"])))
    # the temperature moves the confidence only: ECE at T against a hand-made softmax(logits / T)
    from calibration.metrics import expected_calibration_error

    probs = softmax(logits / bcal["temperature"])
    assert b["ece"] == pytest.approx(expected_calibration_error(probs, y.numpy()))
    assert (jem / "report" / "real_page_reliability.png").stat().st_size > 1000


def test_peers_table_on_tiny_models(two_models, train_corpus, imported_page, capsys):
    from calibration.metrics import ood_metrics
    from corpus.folders import read_named_classes, read_ood_folders
    from glyphgate.core.contract.artifacts import read_json
    from glyphgate.core.contract.scores import softmax
    from glyphgate.core.scoring.onnx_session import OnnxModel

    jem, base, real = two_models
    args = ["peers", "--artifacts", str(jem), "--baseline", str(base), "--data", str(train_corpus)]
    assert main([*args, "--real", str(real), "--collection", f"page={imported_page}"]) == 0
    out = json.loads((jem / "peers.json").read_text(encoding="utf-8"))
    table = out["collections"]["page"]
    rows = table["rows"]
    for net in ("JEM", "baseline"):
        for score in ("energy", "−max-softmax", "Mahalanobis", "kNN (k = 50)"):
            assert f"{net} {score}" in rows
    classes = read_json(jem / "classes.json")
    x, y, _ = read_named_classes(imported_page, classes, "page")
    ood = read_ood_folders(imported_page)
    for net, folder in (("JEM", jem), ("baseline", base)):
        runner = OnnxModel(folder / "model.onnx")
        logits, energy = runner.run(x.numpy())
        r = rows[f"{net} energy"]
        assert r["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == y.numpy())))
        # the row's threshold flags at most 5 % of the glyphs, and one step below it more
        assert np.mean(energy > r["threshold"]) <= 0.05 < np.mean(energy > r["threshold"] - 1e-4)
        for kind, xo in ood.items():
            e_o = runner.run(xo.numpy())[1]
            assert r["auroc"][kind] == pytest.approx(ood_metrics(energy, e_o)["auroc"])
            assert r["caught"][kind] == pytest.approx(sum(e > r["threshold"] for e in e_o) / len(e_o))
        lo = rows[f"{net} −max-softmax"]
        kind = next(iter(ood))
        s_o = -softmax(runner.run(ood[kind].numpy())[0]).max(1)
        assert lo["auroc"][kind] == pytest.approx(ood_metrics(-softmax(logits).max(1), s_o)["auroc"])
    assert out["fit"]["n"] > len(y)  # the corpus' train split plus the page as 'real' training works
    printed = capsys.readouterr().out
    assert "JEM energy" in printed and "wrote" in printed
    if out["ocr"].get("skipped"):
        print(f"Tesseract rows not measured: {out['ocr']['skipped']}")
    else:
        t = rows["Tesseract frk 100 − confidence"]
        assert 0 <= t["accuracy"] <= 1 and set(t["auroc"]) == set(ood)


def test_tesseract_list_mode_lines_up_with_one_crop_at_a_time(imported_page):
    """The peer reads thousands of crops per process; each crop's reading must be the one a
    single-crop run gives (a shifted page number would mislabel every crop after it)."""
    from calibration import tesseract
    from corpus.folders import named_class_samples
    from glyphgate.core.contract.artifacts import SHIPPED, read_json

    if why := tesseract.unavailable():
        pytest.skip(f"Tesseract rows not tested: {why}")
    classes = read_json(SHIPPED / "classes.json")
    files = [p for p, _ in named_class_samples(imported_page, classes)][:12]
    labels, score = tesseract.read_crops(files, classes, jobs=2)
    whitelist = "".join(sorted(set("".join(classes))))
    for f, label, s in zip(files, labels, score):
        cmd = [
            "tesseract",
            f,
            "stdout",
            "--psm",
            "10",
            "-l",
            "frk",
            "-c",
            f"tessedit_char_whitelist={whitelist}",
        ]
        text = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        assert (classes[label] if label >= 0 else None) == (text if text in classes else None), f
        assert 0 <= s <= 100


def test_card_sections_mark_each_target_and_say_where_a_peer_wins():
    from calibration.card_peers import baseline_lines, peers_section, tried_section

    real = {
        "vd-sbb-test": {
            "accuracy": 0.955,
            "ece_raw": 0.07,
            "ece": 0.02,
            "temperature": 1.4,
            "baseline": {"accuracy": 0.962, "ece": 0.01},
        },
        "kant-bin": {
            "accuracy": 0.85,
            "ece_raw": 0.1,
            "ece": 0.06,
            "temperature": 1.2,
            "baseline": {"accuracy": 0.90, "ece": 0.03},
        },
    }
    text = "\n".join(baseline_lines(real))
    vd, kant = (line for line in text.splitlines() if line.startswith(("| vd-sbb", "| kant")))
    # within 1 point of the baseline but under 0.96: missed by 0.5 pt; ECE 0.02 <= 0.03 met
    assert "**missed** by 0.5 pt" in vd and vd.endswith("≤ 0.03: met |")
    assert "**missed** by 5.0 pt" in kant and "≤ 0.05: **missed** by 0.0100" in kant
    row = lambda auroc: {"accuracy": 0.9, "threshold": 1.0, "flagged": 0.05, "auroc": auroc, "caught": auroc}  # noqa: E731
    peers = {
        "flag_share": 0.05,
        "fit": {"n": 10, "data": ["d"]},
        "ocr": {"skipped": "tesseract is not installed"},
        "collections": {
            "c": {
                "n_glyphs": 5,
                "n_ood": {"words": 3},
                "rows": {"JEM energy": row({"words": 0.9}), "baseline kNN (k = 50)": row({"words": 0.95})},
            }
        },
        "beaten": [
            {
                "collection": "c",
                "kind": "words",
                "peer": "baseline kNN (k = 50)",
                "peer_auroc": 0.95,
                "gate_auroc": 0.9,
                "by": 0.05,
            }
        ],
    }
    text = "\n".join(peers_section(peers))
    assert "| **JEM energy** | 0.9000 | 0.050 | 0.900 / 0.900 |" in text
    assert "Tesseract rows not measured: tesseract is not installed." in text
    assert "- c, words: baseline kNN (k = 50) 0.950 against the gate's 0.900 (+0.050): a distance" in text
    tried = "\n".join(tried_section())
    assert "## What we tried" in tried and "SAM" in tried and "SADA" in tried
