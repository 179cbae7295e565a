import json
import os

import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A small synthetic corpus in the course layout (6 images per class and split at least)."""
    from corpus.synth.corpus import synthesize

    out = tmp_path_factory.mktemp("corpus")
    synthesize(out, seed=0, total=420, ood_per_kind=12, workers=1)
    return out


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory):
    """Enough images (about 21 per class for training) for a tiny training run to learn."""
    from corpus.synth.corpus import synthesize

    out = tmp_path_factory.mktemp("train_corpus")
    synthesize(
        out, seed=1, total=1260, ood_per_kind=16, workers=2
    )  # byte-identical to workers=1 (test_synth)
    return out


@pytest.fixture(scope="session")
def imported_page(tmp_path_factory):
    """Two pages the project renders itself, imported as a real collection would be:
    <class>/ glyph crops and ood/<kind>/ (words, fragments, blanks, other symbols). Read-only."""
    from corpus.synth.page import render_page
    from glyphgate.cli import main

    root = tmp_path_factory.mktemp("real")
    render_page(root / "pages", "p1", glyph_level=False)
    render_page(root / "pages", "p2", lines=["Sic incipit liber secundus", "de arte bona et mala"], seed=1)
    assert main(["data", "import-page", str(root / "pages"), "--out", str(root / "glyphs")]) == 0
    return root / "glyphs"


# A tiny training config: two SGLD steps and a small buffer so a run takes seconds; deterministic,
# so a quality threshold a test puts on it holds on every run, not by chance.
TINY = dict(
    width=16,
    batch_size=32,
    sgld_steps=2,
    buffer_size=128,
    max_epochs=2,
    warmup_steps=5,
    max_time=None,
    deterministic=True,
    # the default exposure margin (6) is set for 45-epoch runs on real pages; 14 tiny epochs on
    # 1,260 rendered glyphs spend themselves on it and leave max-softmax unranked (AUROC 0.52
    # on blended glyphs), so the tiny runs keep the margin they were written for
    oe_m_out=0.5,
)


def _train(corpus, out, mode=None, **overrides):
    """`glyphgate train` with TINY + overrides as its config file (`mode` as its --mode flag)."""
    from glyphgate.cli import main

    out.mkdir(parents=True, exist_ok=True)
    (out / "cfg.json").write_text(json.dumps({**TINY, **overrides}))
    args = ["train", "--data", str(corpus), "--out", str(out / "run"), "--config", str(out / "cfg.json")]
    assert main([*args, *(["--mode", mode] if mode else [])]) == 0
    return out / "run"


@pytest.fixture(scope="session")
def tiny_run(train_corpus, tmp_path_factory):
    """A tiny JEM trained on train_corpus (14 short epochs)."""
    return _train(train_corpus, tmp_path_factory.mktemp("jem"), max_epochs=14, lr=3e-3)


@pytest.fixture(scope="session")
def tiny_icd_run(train_corpus, tmp_path_factory):
    """A tiny JEM trained with improved contrastive divergence. Its tests check that the mode
    trains, logs its loss terms and exports, not how well it learns: 3 epochs (test accuracy 0.25,
    chance 0.024) instead of tiny_run's 14 save about a minute of every `make test`."""
    return _train(
        train_corpus, tmp_path_factory.mktemp("icd"), mode="icd", max_epochs=3, lr=3e-3, icd_kl_batch=8
    )


@pytest.fixture(scope="session")
def tiny_classifier_run(train_corpus, tmp_path_factory):
    """The classifier-mode baseline. Its tests use it as a baseline and a feature extractor, and a
    classifier needs no SGLD to learn: 6 epochs (about 10 s) instead of tiny_run's 14 (24 s)."""
    return _train(
        train_corpus, tmp_path_factory.mktemp("classifier"), mode="classifier", max_epochs=6, lr=3e-3
    )


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_run, tmp_path_factory):
    """tiny_run exported: model.onnx, model.pt, classes.json (no calibration yet)."""
    from training.export import export

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    export(tiny_run / "checkpoints" / "last.ckpt", out)
    return out


@pytest.fixture(scope="session")
def tiny_calibrated(tiny_artifacts, train_corpus, tmp_path_factory):
    """tiny_artifacts copied and calibrated (no RBM): a complete artifacts folder for serving."""
    import shutil

    from calibration.calibrate import calibrate

    out = tmp_path_factory.mktemp("served") / "tiny"
    shutil.copytree(tiny_artifacts, out)
    calibrate(out, train_corpus, rbm=False, log=lambda *_: None)
    return out
