"""`glyphgate generate --evaluate` on tiny models: finite figures that move the right way from an
untrained model to a trained one."""

import json

import numpy as np
import pytest
import torch

from glyphgate.cli import main
from glyphgate.core.contract.artifacts import save_torch_model
from glyphgate.core.model.net import EnergyCNN
from training.gen_quality import diversity, kid

pytestmark = pytest.mark.slow


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    assert abs(kid(a, b)) < 0.05
    assert kid(a, b + 1.0) > 10 * abs(kid(a, b))
    y = np.repeat(np.arange(3), 10)
    assert diversity(np.zeros((30, 4)), y) == 0 and diversity(rng.normal(size=(30, 4)), y) > 1


def test_generate_evaluate_scores_a_trained_model_above_an_untrained_one(
    tiny_run, tiny_classifier_run, train_corpus, tmp_path
):
    baseline = tmp_path / "baseline"
    assert (
        main(
            [
                "export",
                "--ckpt",
                str(tiny_classifier_run / "checkpoints" / "last.ckpt"),
                "--out",
                str(baseline),
            ]
        )
        == 0
    )
    classes = json.loads((baseline / "classes.json").read_text(encoding="utf-8"))
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    torch.manual_seed(0)
    save_torch_model(untrained / "model.pt", EnergyCNN(len(classes), 16), classes, None, {"steps": 2}, "jem")

    def evaluate(model, name):
        out = tmp_path / name / "generation.json"
        args = ["generate", "--evaluate", "--ckpt", str(model), "--baseline", str(baseline)]
        assert main([*args, "--data", str(train_corpus), "--out", str(out), "--per-class", "2"]) == 0
        assert (out.parent / "generation_steps256.png").is_file()
        return json.loads(out.read_text())

    trained = evaluate(tiny_run / "checkpoints" / "last.ckpt", "trained")
    random = evaluate(untrained, "untrained")
    for report in (trained, random):
        assert set(report["steps"]) == {"32", "256", "512"}
        assert all(np.isfinite(v) for s in report["steps"].values() for v in s.values() if v is not None)
    t, r = trained["steps"]["256"], random["steps"]["256"]
    assert t["conditional_accuracy"] > r["conditional_accuracy"] + 0.1
    assert t["kid"] < r["kid"]
