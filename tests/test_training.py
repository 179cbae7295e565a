import json

import pytest
import torch
from conftest import TINY
from PIL import Image

from glyphgate.cli import main
from glyphgate.core.errors import ConfigError, DivergenceError
from training.config import TrainConfig
from training.module import JEMModule
from training.train import run_training


@pytest.mark.slow
def test_tiny_train_run_learns_and_leaves_its_files(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    # 42 classes, chance is 2.4 %; 14 short epochs on 21 images per class get well above it
    assert metrics["test_acc"] > 0.15
    assert set(metrics["energy_auroc"]) >= {"ood_ta", "ood_tb", "uniform_noise"}
    assert (tiny_run / "checkpoints" / "last.ckpt").is_file() and (
        tiny_run / "checkpoints" / "best.ckpt"
    ).is_file()
    assert json.loads((tiny_run / "config.json").read_text())["sgld_steps"] == 2
    assert any((tiny_run / "samples").glob("epoch*.png"))


@pytest.mark.slow
def test_generate_turns_the_checkpoint_into_pngs(tiny_run, tmp_path):
    out = tmp_path / "grid.png"
    ckpt = str(tiny_run / "checkpoints" / "last.ckpt")
    assert (
        main(
            [
                "generate",
                "--ckpt",
                ckpt,
                "--out",
                str(out),
                "--n",
                "9",
                "--steps",
                "8",
                "--label",
                "ā",
                "--chain",
            ]
        )
        == 0
    )
    with Image.open(out) as im:
        assert im.size == (3 * 56 + 4 * 2, 3 * 56 + 4 * 2)
    with Image.open(tmp_path / "grid_chain.png") as im:
        assert im.width == 9 * 56 + 10 * 2


@pytest.mark.slow
def test_generate_rejects_an_unknown_label(tiny_run, tmp_path, capsys):
    ckpt = str(tiny_run / "checkpoints" / "last.ckpt")
    assert main(["generate", "--ckpt", ckpt, "--out", str(tmp_path / "g.png"), "--label", "Ж"]) == 2
    assert "not a class of this model" in capsys.readouterr().err


@pytest.mark.slow
def test_checkpoint_restores_weights_and_buffer(tiny_run):
    ckpt = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    module = JEMModule.load_from_checkpoint(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert torch.equal(module.buffer.chains, ckpt["state_dict"]["buffer.chains"])
    assert torch.equal(module.net.head.weight, ckpt["state_dict"]["net.head.weight"])
    assert bool(module.init.fitted)
    assert module.buffer.chains.shape == (1, 128, 1, 56, 56)
    # a new module starts from fresh noise: the chains really come from the checkpoint
    assert not torch.equal(JEMModule(42, **TINY).buffer.chains, module.buffer.chains)


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(train_corpus, tmp_path):
    out = tmp_path / "run"
    run_training(str(train_corpus), str(out), TrainConfig(**{**TINY, "max_epochs": 1}))
    first = JEMModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", map_location="cpu")
    metrics = run_training(str(train_corpus), str(out), TrainConfig(**{**TINY, "max_epochs": 2}), resume=True)
    second = JEMModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", map_location="cpu")
    assert metrics["epochs"] == 2
    assert not torch.equal(first.buffer.chains, second.buffer.chains)


class _PoisonAfter:
    """Lightning callback that sets a weight to NaN once a checkpoint exists."""

    def __init__(self, step):
        self.step = step

    def __call__(self, trainer, module):
        if trainer.global_step == self.step:
            with torch.no_grad():
                module.net.head.weight[0, 0] = float("nan")


def test_divergence_guard_fires_on_nan():
    module = JEMModule(42, **{**TINY})
    with torch.no_grad():
        module.net.head.weight[0, 0] = float("nan")
    module.log = module.log_dict = lambda *a, **k: None
    x, y = torch.rand(8, 1, 56, 56) * 2 - 1, torch.randint(0, 42, (8,))
    with pytest.raises(DivergenceError, match="NaN"):
        module.training_step((x, y), 0)


@pytest.mark.slow
def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(train_corpus, tmp_path, monkeypatch):

    poison = _PoisonAfter(step=30)  # the first epoch (27 steps) has been checkpointed by then
    monkeypatch.setattr(
        JEMModule, "on_train_batch_start", lambda self, batch, idx: poison(self.trainer, self)
    )
    out = tmp_path / "run"
    with pytest.raises(DivergenceError, match="last good checkpoint is .*last.ckpt"):
        run_training(str(train_corpus), str(out), TrainConfig(**{**TINY, "max_epochs": 3}))
    kept = JEMModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", map_location="cpu")
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    # the checkpoint is the one before the poison (epoch 0, 27 steps), not a later, broken one
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 0 and saved["global_step"] < poison.step


def test_train_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"widht": 3}')
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--config",
                str(tmp_path / "bad.json"),
            ]
        )
        == 2
    )
    assert "unknown setting(s) widht" in capsys.readouterr().err


def test_config_rejects_a_bad_mode():
    with pytest.raises(ConfigError):
        TrainConfig(mode="gan")


def test_only_the_classifier_loads_in_a_worker_and_the_step_gets_the_other_cores(monkeypatch):
    import os

    from training.train import step_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert TrainConfig(mode="classifier").data_workers() == 1
    assert TrainConfig(mode="jem").data_workers() == 0  # the SGLD step keeps both cores busy
    assert TrainConfig(mode="classifier", augment=False).data_workers() == 0
    assert TrainConfig(mode="classifier", loader_workers=0).data_workers() == 0
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert TrainConfig(mode="classifier").data_workers() == 0
    with pytest.raises(ConfigError):
        TrainConfig(loader_workers=-1)
    threads = torch.get_num_threads()
    with step_threads(1):
        inside = torch.get_num_threads()
    assert inside == max(1, threads - 1) and torch.get_num_threads() == threads


@pytest.mark.slow
def test_last_checkpoint_is_the_newest_epoch(tiny_run):
    last = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert last["epoch"] == metrics["epochs"] - 1
    assert metrics["last"]["checkpoint"].endswith("last.ckpt") and metrics["last"]["test_acc"] is not None


@pytest.mark.slow
def test_icd_mode_trains_and_logs_its_loss_terms(tiny_icd_run, tmp_path):
    """glyphgate train --mode icd: JEM plus improved CD's KL term (energy of a few samples taken
    one more SGLD step with the graph kept, minus their nearest-neighbour entropy) and
    augmentation transitions; it still classifies, and its export keeps the transitions."""
    import csv

    from glyphgate.core.contract.artifacts import load_torch_model

    run = tiny_icd_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["mode"] == "icd" and metrics["test_acc"] > 0.15  # chance is 0.024
    rows = list(csv.DictReader(open(next((run / "logs").rglob("metrics.csv")))))
    logged = [r for r in rows if r.get("train/kl")]
    assert logged and {"train/kl_energy", "train/kl_entropy", "train/cdiv", "train/ce"} <= set(rows[0])
    assert all(float(r["train/kl_entropy"]) > 0 for r in logged)  # log NN distance: samples stay apart
    out = tmp_path / "art"
    assert main(["export", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--out", str(out)]) == 0
    model = load_torch_model(out)
    assert model.mode == "icd" and model.sgld["transition_every"] == 32
    assert model.sampler().transition_every == 32


def test_informative_init_mixes_real_glyphs_at_their_share():
    import torch

    from training.module import mix_for_init

    x, y = torch.zeros(300, 1, 4, 4), torch.zeros(300, dtype=torch.long)
    xr, yr = torch.ones(1000, 1, 4, 4), torch.ones(1000, dtype=torch.long)
    mx, my = mix_for_init(x, y, xr, yr, 0.4, seed=0)
    assert len(mx) == 500 and int((my == 1).sum()) == 200  # 200 real beside 300 rendered
    assert torch.equal(mix_for_init(x, y, xr, yr, 0.4, seed=0)[0], mx)  # seeded
    assert len(mix_for_init(x, y, xr, yr, 0.9, seed=0)[0]) == 1300  # capped at every real glyph
    assert torch.equal(mix_for_init(x, y, xr, yr, 1.0, seed=0)[1], yr)  # real alone


def test_sam_step_takes_the_gradient_at_the_perturbed_weights():
    """With SGD the update is lr times the gradient, so after one SAM step the weights must
    equal w - lr * grad L(w + rho * g / ||g||), computed here by hand."""
    torch.manual_seed(0)
    module = JEMModule(42, mode="classifier", width=8, sam_rho=0.05)
    assert not module.automatic_optimization
    x, y = torch.rand(16, 1, 56, 56) * 2 - 1, torch.randint(0, 42, (16,))
    w0 = [p.detach().clone() for p in module.net.parameters()]

    def loss_at(weights):
        with torch.no_grad():
            for p, w in zip(module.net.parameters(), weights):
                p.copy_(w)
        module.net.zero_grad()
        loss, _ = module.objective((x, y))
        loss.backward()
        return [p.grad.detach().clone() for p in module.net.parameters()]

    g = loss_at(w0)
    norm = torch.norm(torch.stack([t.norm() for t in g]))
    g_sharp = loss_at([w + 0.05 * t / norm for w, t in zip(w0, g)])
    expected = [w - 0.1 * t for w, t in zip(w0, g_sharp)]

    loss_at(w0)  # back to w0
    opt = torch.optim.SGD(module.net.parameters(), lr=0.1)
    module.optimizers = lambda: opt
    module.lr_schedulers = lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    module.manual_backward = lambda loss: loss.backward()
    module.sam_step((x, y))
    for p, e in zip(module.net.parameters(), expected):
        assert torch.allclose(p, e, atol=1e-6)


def test_px_plain_hands_p_x_the_images_before_augmentation(train_corpus):
    from training.datamodule import GlyphDataModule

    dm = GlyphDataModule(str(train_corpus), batch_size=8, augment=True, px_plain=True)
    dm.setup("fit")
    x, y, plain = next(iter(dm.train_dataloader()))
    assert x.shape == plain.shape and len(y) == len(x)
    assert not torch.equal(x, plain)  # augmented for cross-entropy, plain for p(x)
    train_x = dm.data.splits["train"][0]
    # each plain image is one of the training images, untouched
    assert all(any(torch.equal(p, t) for t in train_x) for p in plain[:3])
