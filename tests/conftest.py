import os

import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A small synthetic corpus in the course layout (6 images per class and split at least)."""
    from training.synth.corpus import synthesize

    out = tmp_path_factory.mktemp("corpus")
    synthesize(out, seed=0, total=420, ood_per_kind=12, workers=1)
    return out


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory):
    """Enough images (about 21 per class for training) for a tiny training run to learn."""
    from training.synth.corpus import synthesize

    out = tmp_path_factory.mktemp("train_corpus")
    synthesize(out, seed=1, total=1260, ood_per_kind=16, workers=1)
    return out
