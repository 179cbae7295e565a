"""Calibrating on an archive's own collection; conformal p-values; Benjamini-Hochberg in scan."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from calibration.collection import threshold_at_fpr
from glyphgate.cli import main
from glyphgate.core.contract.artifacts import load_calibration
from glyphgate.core.scoring.scorer import p_values
from glyphgate.scan.folder import benjamini_hochberg

pytestmark = pytest.mark.slow


def _calibrate(art, data, *options):
    return main(["calibrate", "--artifacts", str(art), "--data", str(data), *options])


def _write(folder, images, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(((np.asarray(a)[0] + 1) * 127.5).astype(np.uint8)).save(folder / f"{start + i}.png")


@pytest.fixture(scope="module")
def collection(train_corpus, tmp_path_factory):
    """A collection of 9 classes' test glyphs, a folder named for no class, and two reject sets."""
    from corpus.load import load_glyph_data

    d = load_glyph_data(train_corpus)
    x, y = d.splits["test"]
    root = tmp_path_factory.mktemp("collection") / "archive"
    for c in range(9):
        _write(root / d.classes[c], x[y == c])
    _write(root / "ß", x[y == 20][:5])  # a letter the model does not know
    _write(root / "ood" / "blots", d.ood["ink_blots"][:12])
    _write(root.parent / "rejects", d.ood["touching_pairs"][:12])
    return root


@pytest.fixture()
def art(tiny_calibrated, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(tiny_calibrated, folder)
    return folder


def test_a_class_subset_calibrates_and_lists_unknown_classes(art, collection, tiny_calibrated, capsys):
    synthetic = load_calibration(tiny_calibrated)
    assert _calibrate(art, collection) == 0
    cal = load_calibration(art)  # schema and model hash still hold
    c = cal["collection"]
    assert c["name"] == "archive" and c["labelled"] and c["unknown_classes"] == {"ß": 5}
    assert len(c["classes_present"]) == 9 and cal["id"]["n"] == c["n_glyphs"]
    assert 0.95 <= cal["measured_tpr"] < 0.95 + 1 / cal["id"]["n"] + 1e-9
    assert set(cal["metrics"]["sets"]) == {"blots"}
    assert cal["reference"]["threshold"] == synthetic["threshold"]  # the synthetic suites kept beside it
    assert len(cal["id_energies"]) == cal["id"]["n"] and cal["id_energies"] == sorted(cal["id_energies"])
    assert c["warning"] and "fewer than 200" in c["warning"]  # a tiny collection is warned about
    index = (art / "report" / "index.html").read_text(encoding="utf-8")
    assert "archive" in index and "fewer than 200" in index and "ß (5)" in index
    out = capsys.readouterr().out
    assert "left out" in out and "ß (5)" in out


def test_unknown_classes_as_ood_and_extra_reject_folders(art, collection):
    assert _calibrate(art, collection, "--unknown-as-ood", "--ood", str(collection.parent / "rejects")) == 0
    sets = load_calibration(art)["metrics"]["sets"]
    assert set(sets) == {"blots", "unknown_classes", "rejects"} and sets["unknown_classes"]["n"] == 5
    from corpus.folders import load_files, read_named_classes
    from glyphgate.core.contract.artifacts import read_json
    from glyphgate.core.scoring.onnx_session import OnnxModel

    runner = OnnxModel(art / "model.onnx", cpu_only=True)
    x_id = read_named_classes(collection, read_json(art / "classes.json"), "glyphs")[0]
    e_id = runner.run(x_id.numpy(), batch=256)[1]
    folders = {"blots": collection / "ood" / "blots", "unknown_classes": collection / "ß"}
    for name, folder in {**folders, "rejects": collection.parent / "rejects"}.items():
        e = runner.run(load_files(sorted(map(str, folder.glob("*.png"))), name).numpy(), batch=256)[1]
        # AUROC by hand: the share of (reject, glyph) pairs the energy ranks right, ties counted half
        right = (e[:, None] > e_id[None, :]).mean() + 0.5 * (e[:, None] == e_id[None, :]).mean()
        assert sets[name]["n"] == len(e) and sets[name]["scores"]["energy"]["auroc"] == pytest.approx(right)


def test_unlabelled_glyphs_give_a_threshold_only(art, collection, tmp_path):
    flat = tmp_path / "flat"
    for i, f in enumerate(
        sorted(p for p in collection.rglob("*.png") if "ood" not in p.parts and p.parent.name != "ß")
    ):
        flat.mkdir(exist_ok=True)
        shutil.copy(f, flat / f"{i}.png")
    assert _calibrate(art, flat, "--unlabelled", "--name", "box 7") == 0
    cal = load_calibration(art)
    assert (
        cal["id"]["accuracy"] is None
        and cal["collection"]["name"] == "box 7"
        and not cal["collection"]["labelled"]
    )
    assert cal["id"]["n"] == len(list(flat.glob("*.png")))


def test_target_fpr_bounds_the_share_of_rejects_accepted(art, collection):
    assert (
        _calibrate(art, collection, "--target-fpr", "0.25", "--ood", str(collection.parent / "rejects")) == 0
    )
    cal = load_calibration(art)
    accepted = cal["metrics"]["kinds"]["unknown"]["fpr_at_threshold"]
    assert cal["target_fpr"] == 0.25 and accepted <= 0.25
    assert accepted > 0.25 - 1 / cal["metrics"]["kinds"]["unknown"]["n"] - 1e-9  # the largest such threshold


def test_collection_errors_are_one_line(art, tmp_path, capsys):
    (tmp_path / "nothing" / "zz").mkdir(parents=True)
    Image.new("L", (8, 8), 255).save(tmp_path / "nothing" / "zz" / "a.png")
    assert _calibrate(art, tmp_path / "nothing") == 2
    assert "none of its class folders names a class" in capsys.readouterr().err
    assert _calibrate(art, tmp_path / "nothing", "--unlabelled", "--target-fpr", "0.1") == 2
    assert "--target-fpr needs rejects" in capsys.readouterr().err


def test_threshold_at_fpr_by_hand():
    for dtype in (np.float32, np.float64):
        e = np.array([3.0, 1.0, 2.0, 2.0, 2.0, 5.0, 6.0, 7.0], dtype)
        assert np.mean(e <= threshold_at_fpr(e, 0.0)) == 0
        assert np.mean(e <= threshold_at_fpr(e, 0.25)) == 0.125  # ties at 2.0 cannot be split
        assert np.mean(e <= threshold_at_fpr(e, 0.5)) == 0.5
        assert np.mean(e <= threshold_at_fpr(e, 0.99)) == 7 / 8


def test_p_values_of_held_out_glyphs_are_uniform(tiny_artifacts, train_corpus):
    """Conformal p-values from the test split's energies, on the val split (same distribution):
    Kolmogorov-Smirnov against the uniform distribution does not reject."""
    from scipy.stats import kstest

    from corpus.load import load_glyph_data
    from glyphgate.core.scoring.onnx_session import OnnxModel

    d = load_glyph_data(train_corpus)
    run = OnnxModel(tiny_artifacts / "model.onnx").run
    cal = np.sort(run(d.splits["test"][0].numpy())[1])
    held_out = run(d.splits["val"][0].numpy())[1]
    p = p_values(cal, held_out)
    assert kstest(p, "uniform").pvalue > 0.01
    ood = p_values(cal, run(d.ood["uniform_noise"].numpy())[1])
    assert np.median(ood) < np.median(p)  # and noise looks unusual
    assert p_values(np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 9.0])).tolist() == [1.0, 0.75, 0.25]


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5, 0.2])
    # sorted 0.01 0.03 0.04 0.2 0.5 vs q*k/m = 0.02 0.04 0.06 0.08 0.1 -> the first three
    assert benjamini_hochberg(p, 0.1).tolist() == [True, True, True, False, False]
    assert not benjamini_hochberg(p, 0.001).any() and benjamini_hochberg(np.array([]), 0.1).size == 0


def test_scan_with_fdr_flags_by_benjamini_hochberg(tiny_calibrated, collection, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(collection / "a", folder / "glyphs")
    shutil.copytree(collection / "ood" / "blots", folder / "blots")
    code = main(
        [
            "scan",
            str(folder),
            "--artifacts",
            str(tiny_calibrated),
            "--out",
            str(tmp_path / "r"),
            "--fdr",
            "0.2",
            "--no-progress",
        ]
    )
    res = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    rows = res["results"]
    p = np.array([r["p_value"] for r in rows])
    assert [r["is_ood"] for r in rows] == benjamini_hochberg(p, 0.2).tolist()
    assert code == (1 if any(r["is_ood"] for r in rows) else 0)
    assert "Benjamini-Hochberg at FDR 0.2" in res["summary"]["rule"]
    assert (
        main(
            [
                "scan",
                str(folder),
                "--artifacts",
                str(tiny_calibrated),
                "--out",
                str(tmp_path / "r2"),
                "--fdr",
                "2",
            ]
        )
        == 2
    )


def test_fine_tune_from_an_exported_model_on_a_class_subset(tiny_artifacts, collection, tmp_path, capsys):
    import torch

    from glyphgate.core.contract.artifacts import load_torch_model
    from training.module import JEMModule

    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "width": 16,
                "batch_size": 16,
                "sgld_steps": 2,
                "buffer_size": 64,
                "max_epochs": 2,
                "warmup_steps": 2,
                "max_time": None,
            }
        )
    )

    def fine_tune(out):
        init = str(tiny_artifacts / "model.pt")
        return main(
            ["train", "--init", init, "--data", str(collection), "--out", str(out), "--config", str(cfg)]
        )

    run = tmp_path / "run"
    assert fine_tune(run) == 0
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert saved["init_from"] == str(tiny_artifacts / "model.pt")
    start = load_torch_model(tiny_artifacts)
    tuned = JEMModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert tuned.classes == start.classes and tuned.net.get_logits(torch.zeros(1, 1, 56, 56)).shape == (1, 42)
    absent = start.classes.index("S")  # not in the collection: keeps the shipped model's informative init
    present = start.classes.index("a")  # refitted on the collection's glyphs
    assert torch.allclose(tuned.init.mean[absent], start.init.mean[absent], atol=1e-3)
    assert not torch.allclose(tuned.init.mean[present], start.init.mean[present], atol=1e-3)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    from corpus.load import load_glyph_data

    # test accuracy counted again: the last checkpoint on the collection's own test split
    x_test, y_test = load_glyph_data(collection, saved["seed"], classes=start.classes).splits["test"]
    with torch.no_grad():
        acc = (tuned.net.get_logits(x_test).argmax(1) == y_test).float().mean().item()
    assert len(y_test) > 0 and metrics["last"]["test_acc"] == pytest.approx(acc, abs=1e-6), len(y_test)
    assert "blots" in metrics["last"]["energy_auroc"]
    cfg.write_text(json.dumps({"width": 32, "max_epochs": 1}))
    assert fine_tune(tmp_path / "bad") == 2
    assert "of width 16" in capsys.readouterr().err


def test_recalibrating_after_a_new_export_replaces_the_old_calibration(art, collection, capsys):
    """calibration.json of an earlier export (its model_sha256 no longer matches) is what a
    recalibration replaces: it must not stop the run that would mend it."""
    cal = json.loads((art / "calibration.json").read_text(encoding="utf-8"))
    cal["model_sha256"] = "0" * 64  # as if model.onnx had been re-exported since
    (art / "calibration.json").write_text(json.dumps(cal), encoding="utf-8")
    assert _calibrate(art, collection, "--name", "archive") == 0, capsys.readouterr().err
    fresh = load_calibration(art)  # matches the model again
    assert fresh["collection"]["name"] == "archive" and fresh["reference"] is None
