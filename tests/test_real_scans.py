"""Real-page figures (`glyphgate evaluate`), the robustness panel and the card that shows both,
on a tiny model and a page the project renders itself."""

import json
import shutil

import numpy as np
import pytest

from glyphgate.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated(tiny_calibrated, imported_page, tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "art"
    shutil.copytree(tiny_calibrated, folder)
    assert (
        main(
            [
                "evaluate",
                "--artifacts",
                str(folder),
                "--data",
                str(imported_page),
                "--name",
                "rendered",
                "--source",
                "pages rendered by the test",
            ]
        )
        == 0
    )
    return folder


def test_evaluate_measures_what_the_onnx_model_says(evaluated, imported_page):
    from corpus.folders import read_named_classes, read_ood_folders
    from glyphgate.core.contract.artifacts import load_calibration, read_json
    from glyphgate.core.scoring.onnx_session import OnnxModel

    r = json.loads((evaluated / "real_scans.json").read_text(encoding="utf-8"))["rendered"]
    cal = load_calibration(evaluated)
    classes = read_json(evaluated / "classes.json")
    x, y, unknown = read_named_classes(imported_page, classes, "test")
    logits, energy = OnnxModel(evaluated / "model.onnx").run(x.numpy())
    assert r["n_glyphs"] == len(y) > 100 and unknown == {} and r["source"] == "pages rendered by the test"
    assert r["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == y.numpy())))
    assert r["flagged_at_threshold"] == pytest.approx(float(np.mean(energy > cal["threshold"])))
    assert (
        set(r["ood"])
        == set(read_ood_folders(imported_page))
        >= {"words", "fragments", "blank", "other_symbols"}
    )
    runner = OnnxModel(evaluated / "model.onnx")
    for kind, xo in read_ood_folders(imported_page).items():
        e_ood = runner.run(xo.numpy(), batch=256)[1]
        # AUROC by hand: the share of (non-glyph, glyph) pairs the energy ranks right, ties counted half
        right = (e_ood[:, None] > energy[None, :]).mean() + 0.5 * (e_ood[:, None] == energy[None, :]).mean()
        assert r["ood"][kind]["n"] == len(e_ood) and r["ood"][kind]["auroc"] == pytest.approx(right), kind
    assert sum(v["n"] for v in r["per_class"].values()) == r["n_glyphs"]


def test_report_and_card_show_the_real_pages_and_the_panel(evaluated, tiny_run, train_corpus):
    index = (evaluated / "report" / "index.html").read_text(encoding="utf-8")
    assert "Robustness panel" in index and "binarised (Sauvola)" in index
    assert "<b>rendered</b>: pages rendered by the test" in index and "real_rendered_misses.png" in index
    assert (evaluated / "report" / "real_rendered_misses.png").stat().st_size > 500
    assert (
        main(["card", "--artifacts", str(evaluated), "--run", str(tiny_run), "--data", str(train_corpus)])
        == 0
    )
    card = (evaluated / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Robustness panel" in card and "| 16 px downsample |" in card
    assert "## Real pages" in card and "| rendered |" in card
    assert "**No real glyphs**" in card  # the tiny run saw only the synthetic corpus, and the card says so


def test_recalibrating_drops_real_figures_made_at_the_old_threshold(evaluated, train_corpus, tmp_path):
    folder = tmp_path / "again"
    shutil.copytree(evaluated, folder)
    assert main(["calibrate", "--artifacts", str(folder), "--data", str(train_corpus), "--no-rbm"]) == 0
    assert not (folder / "real_scans.json").exists()


def test_robustness_panel_rows_in_calibration_json(tiny_calibrated, train_corpus):
    import torch

    from corpus.augment import PANEL, apply_panel
    from corpus.load import load_glyph_data
    from glyphgate.core.scoring.onnx_session import OnnxModel

    cal = json.loads((tiny_calibrated / "calibration.json").read_text(encoding="utf-8"))
    panel = cal["robustness"]
    assert list(panel) == ["clean", *PANEL]
    assert panel["clean"]["d_accuracy"] == 0 and panel["clean"]["accuracy"] == pytest.approx(
        cal["id"]["accuracy"]
    )
    x, y = (t.numpy() for t in load_glyph_data(train_corpus).splits["test"])  # the split calibrated on
    runner = OnnxModel(tiny_calibrated / "model.onnx", cpu_only=True)
    for name, row in panel.items():
        # each row counted again: the test split under that perturbation, scored at the threshold
        xp = x if name == "clean" else apply_panel(torch.as_tensor(x), name).numpy()
        logits, energy = runner.run(xp, batch=256)
        assert row["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y)), name
        assert row["flagged"] == pytest.approx(np.mean(energy > cal["threshold"])), name
        assert row["d_flagged"] == pytest.approx(row["flagged"] - panel["clean"]["flagged"])


def test_card_puts_two_modes_side_by_side_and_names_the_default(
    evaluated, tiny_run, tiny_icd_run, train_corpus, tmp_path
):
    other = tmp_path / "icd"
    assert (
        main(["export", "--ckpt", str(tiny_icd_run / "checkpoints" / "last.ckpt"), "--out", str(other)]) == 0
    )
    assert main(["calibrate", "--artifacts", str(other), "--data", str(train_corpus), "--no-rbm"]) == 0
    card_args = ["card", "--artifacts", str(evaluated), "--run", str(tiny_run), "--data", str(train_corpus)]
    assert main([*card_args, "--compare", str(other), str(tiny_icd_run)]) == 0
    card = (evaluated / "MODEL_CARD.md").read_text(encoding="utf-8")
    section = card[card.index("## Training modes compared") :]
    assert "| | `jem` | `icd` |" in section and "| rendered: accuracy |" in section
    # icd has no generation figures here, so the rule cannot pick it
    assert "generation not measured" in section and "so the default is **`jem`**." in section
    assert main([*card_args, "--compare", str(tmp_path / "missing"), str(tiny_icd_run)]) == 2


def _column(**changes):
    column = {
        "mode": "jem",
        "accuracy": 0.95,
        "far_min": 0.99,
        "near_mean": 0.80,
        "near_min": 0.70,
        "real_ood_mean": 0.98,
        "panel_worst_accuracy": -0.03,
        "panel_worst_flagged": 0.05,
        "generation": {"256": {"kid": 0.05}},
    }
    return {**column, **changes}


@pytest.mark.parametrize(
    "changes, ships",
    [
        ({}, True),
        ({"accuracy": 0.944}, False),  # 0.6 point of accuracy lost
        ({"accuracy": 0.946}, True),  # 0.4 point: allowed
        ({"real_ood_mean": 0.97}, False),
        ({"panel_worst_flagged": 0.06}, False),
        ({"near_min": 0.69}, False),
        ({"far_min": 0.98}, False),
        ({"generation": {"256": {"kid": 0.06}}}, False),
        ({"generation": {}}, False),
    ],
)
def test_the_challenger_ships_only_when_better_on_every_count(changes, ships):
    from calibration.modes import decide

    better = {"near_mean": 0.85, "near_min": 0.75, "generation": {"256": {"kid": 0.04}}, "mode": "icd"}
    challenger = _column(**{**better, **changes})
    ship, why = decide(_column(), challenger)
    assert ship is ships and why.startswith("`icd` against `jem`")


def _hand_count(energies, threshold) -> float:
    """The share above the threshold, counted one by one (not the code under test's mean)."""
    energies = [float(e) for e in energies]
    return sum(1 for e in energies if e > threshold) / len(energies)


def test_threshold_and_p_values_rest_on_the_real_validation_glyphs(
    tiny_artifacts, tiny_calibrated, train_corpus, imported_page, tmp_path
):
    from corpus.folders import read_named_classes, read_ood_folders
    from corpus.load import load_glyph_data
    from glyphgate.core.contract.artifacts import load_calibration, read_json
    from glyphgate.core.scoring.onnx_session import OnnxModel

    real = tmp_path / "real"
    shutil.copytree(imported_page, real / "val")  # the page stands for the validation works
    folder = tmp_path / "art"
    shutil.copytree(tiny_artifacts, folder)
    args = ["calibrate", "--artifacts", str(folder), "--data", str(train_corpus), "--no-rbm"]
    assert main([*args, "--real", str(real)]) == 0
    cal = load_calibration(folder)
    runner = OnnxModel(folder / "model.onnx")
    x, _, _ = read_named_classes(real / "val", read_json(folder / "classes.json"), "val")
    _, e_real = runner.run(x.numpy())
    pop = cal["threshold_population"]
    assert pop["population"] == "real" and pop["n"] == len(e_real) and cal["split"] == "real val"
    # the 95 % quantile of the real glyphs, not of the synthetic test split
    assert _hand_count(e_real, cal["threshold"]) <= 0.05 < _hand_count(e_real, cal["threshold"] - 1e-4)
    assert np.allclose(cal["id_energies"], np.sort(e_real), atol=1e-5)
    _, e_syn = runner.run(load_glyph_data(train_corpus).splits["test"][0].numpy())
    assert cal["id"]["flagged_at_threshold"] == pytest.approx(_hand_count(e_syn, cal["threshold"]))
    for kind, xo in read_ood_folders(real / "val").items():
        caught = _hand_count(runner.run(xo.numpy())[1], cal["threshold"])
        assert pop["ood"][kind]["caught_at_threshold"] == pytest.approx(caught)
    for name, xo in load_glyph_data(train_corpus).ood.items():
        caught = _hand_count(runner.run(xo.numpy())[1], cal["threshold"])
        assert cal["metrics"]["sets"][name]["caught_at_threshold"] == pytest.approx(caught)

    # without real glyphs the threshold falls back to the synthetic split, and says so (the same
    # model calibrated on the same corpus without --real: the fixture, one calibration less)
    assert load_calibration(tiny_calibrated)["threshold_population"]["population"] == "synthetic"


def test_evaluate_reports_each_kind_caught_at_the_shipped_threshold(evaluated, imported_page):
    from corpus.folders import read_ood_folders
    from glyphgate.core.contract.artifacts import load_calibration
    from glyphgate.core.scoring.onnx_session import OnnxModel

    r = json.loads((evaluated / "real_scans.json").read_text(encoding="utf-8"))["rendered"]
    threshold = load_calibration(evaluated)["threshold"]
    runner = OnnxModel(evaluated / "model.onnx")
    for kind, xo in read_ood_folders(imported_page).items():
        assert r["ood"][kind]["caught_at_threshold"] == pytest.approx(
            _hand_count(runner.run(xo.numpy())[1], threshold)
        )
