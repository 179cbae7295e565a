"""The score registry is the one place a score is declared: a new entry (and nothing else)
reaches calibrate's per-set metrics and comparison, the schema, and the server's gate."""

import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score


def _neg_margin(logits, energy):
    top = np.sort(logits, 1)
    return -(top[:, -1] - top[:, -2])  # a small margin between the two best classes = more OOD


def test_a_new_score_is_one_registry_entry(tiny_artifacts, train_corpus, tmp_path, monkeypatch):
    from calibration.calibrate import calibrate
    from corpus.load import load_glyph_data
    from glyphgate.core.contract import scores as registry
    from glyphgate.core.contract.artifacts import load_calibration
    from glyphgate.core.errors import ArtifactsError
    from glyphgate.core.scoring.onnx_session import OnnxModel
    from glyphgate.core.scoring.scorer import Scorer

    new = registry.Score(
        "neg_margin", "−margin", "-(best - second best logit)", of_outputs=_neg_margin, compared=True
    )
    monkeypatch.setitem(registry.SCORES, new.name, new)
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_artifacts, folder)
    calibrate(folder, train_corpus, rbm=False, log=lambda *_: None)
    cal = load_calibration(folder)  # validates: the schema's enum is read from the registry

    assert "neg_margin" in cal["score_functions"]
    data, runner = load_glyph_data(train_corpus), OnnxModel(folder / "model.onnx")
    s_id = _neg_margin(*runner.run(data.splits[cal["split"]][0].numpy()))
    for name, x in data.ood.items():
        s_ood = _neg_margin(*runner.run(x.numpy()))
        labels = np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))]
        expected = roc_auc_score(labels, np.r_[s_id, s_ood])
        assert cal["metrics"]["sets"][name]["scores"]["neg_margin"]["auroc"] == pytest.approx(expected)
    assert any(row.endswith("· neg_margin") for row in cal["comparison"])

    # The server gates on whichever registry score calibration.json names.
    x = data.splits["test"][0][:64].numpy()
    margin = _neg_margin(*runner.run(x))
    threshold = float(np.median(margin))
    scorer = Scorer.from_calibration(
        folder, {**cal, "score": "neg_margin", "threshold": threshold}, threads=1
    )
    assert [v["is_ood"] for v in scorer.score(x)] == list(margin > threshold)

    # Without its entry, the same calibration.json is refused: the enum is the registry.
    monkeypatch.delitem(registry.SCORES, "neg_margin")
    with pytest.raises(ArtifactsError, match="score_functions"):
        load_calibration(folder)
