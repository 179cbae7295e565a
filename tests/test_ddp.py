"""`glyphgate train --devices 2 --strategy ddp` on CPU (gloo): two real processes, launched by
Lightning from the console command the way a user types it, on the tiny corpus. One run of an
epoch, its resume for a second, and `glyphgate export` of the first run's checkpoint."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY

from glyphgate.cli import main
from training.checkpoint import CHAINS_KEY, RANK_CHAINS, restore_rank_chains, state_sha256, store_rank_chains

GLYPHGATE = Path(sys.executable).with_name("glyphgate")
# a leftover rank or port of an outer launcher would make the run join that one instead
LAUNCHER_VARS = ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def ddp_train(corpus, run: Path, *extra: str) -> subprocess.Popen:
    """`glyphgate train --devices 2 --strategy ddp` started in a session of its own: Lightning
    starts rank 1 as its child, and a hung run is killed with both ranks."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    args = ["train", "--data", str(corpus), "--out", str(run), "--devices", "2", "--strategy", "ddp"]
    return subprocess.Popen(
        [str(GLYPHGATE), *args, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: int = 240) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-3000:]
    return out


def load_ckpt(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def ddp_runs(tiny_corpus, tmp_path_factory):
    """The first run (folder, stdout, metrics, checkpoint as it was), the resumed run's metrics and
    checkpoint, and the first run's export."""
    root = tmp_path_factory.mktemp("ddp")
    # one warm-up step: TINY's five would make the 1-epoch run's schedule a plain cosine (its 4
    # steps are too few to warm up) and the 2-epoch resume's warm-up + cosine, and a schedule
    # of another kind cannot load the checkpoint's
    (root / "cfg.json").write_text(json.dumps({**TINY, "max_epochs": 1, "warmup_steps": 1}))
    run = root / "run"
    first_out = finish(ddp_train(tiny_corpus, run, "--config", str(root / "cfg.json")))
    first_metrics = json.loads((run / "metrics.json").read_text())
    first_ckpt = load_ckpt(run)
    exported, kept = root / "artifacts", root / "first.ckpt"
    shutil.copyfile(run / "checkpoints" / "last.ckpt", kept)  # the resume replaces last.ckpt
    resume = ddp_train(tiny_corpus, run, "--resume", "--max-epochs", "2")
    try:
        # exported here while the resume's rank 0 starts up on one core (imports, data) and
        # its rank 1 has not been launched yet
        assert main(["export", "--ckpt", str(kept), "--out", str(exported)]) == 0
    finally:
        finish(resume)
    return {
        "run": run,
        "stdout": first_out,
        "metrics": first_metrics,
        "ckpt": first_ckpt,
        "resumed": json.loads((run / "metrics.json").read_text()),
        "resumed_ckpt": load_ckpt(run),
        "exported": exported,
    }


@pytest.mark.slow
def test_both_ranks_train_one_model(ddp_runs):
    dist = ddp_runs["metrics"]["distributed"]
    assert dist["world_size"] == 2 and dist["strategy"] == "DDPStrategy"
    ranks = dist["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    # each rank took a shard of the epoch, and the same number of steps, and timed them
    assert ranks[0]["end_step"] == ranks[1]["end_step"] == ddp_runs["ckpt"]["global_step"] > 0
    assert all(r["step_s"] > 0 and r["threads"] >= 1 for r in ranks)
    # DDP averaged the gradients: one set of weights, and one informative init (fitted alike)
    assert ranks[0]["net_sha256"] == ranks[1]["net_sha256"]
    assert ranks[0]["init_sha256"] == ranks[1]["init_sha256"]
    # rank 1 ran the whole command too, but only rank 0 reports
    assert ddp_runs["stdout"].count("trained in") == 1
    assert json.loads((ddp_runs["run"] / "config.json").read_text())["devices"] == 2


@pytest.mark.slow
def test_each_rank_keeps_its_own_replay_buffer_and_the_checkpoint_all_of_them(ddp_runs):
    ranks, ckpt = ddp_runs["metrics"]["distributed"]["ranks"], ddp_runs["ckpt"]
    assert ranks[0]["buffer_sha256_start"] != ranks[1]["buffer_sha256_start"]
    assert ranks[0]["buffer_sha256_end"] != ranks[1]["buffer_sha256_end"]
    # rank 0's chains where checkpoints keep them, rank 1's beside them, each as its rank left it
    assert state_sha256({"chains": ckpt["state_dict"][CHAINS_KEY]}) == ranks[0]["buffer_sha256_end"]
    assert set(ckpt[RANK_CHAINS]) == {1}
    assert state_sha256({"chains": ckpt[RANK_CHAINS][1]}) == ranks[1]["buffer_sha256_end"]


@pytest.mark.slow
def test_resume_continues_every_rank_where_it_stopped(ddp_runs):
    before = ddp_runs["metrics"]["distributed"]["ranks"]
    after = ddp_runs["resumed"]["distributed"]["ranks"]
    assert ddp_runs["resumed"]["epochs"] == 2 and ddp_runs["resumed_ckpt"]["epoch"] == 1
    for b, a in zip(before, after, strict=True):
        assert a["start_step"] == b["end_step"] and a["end_step"] == 2 * b["end_step"]
        # the chains each rank had, not rank 0's for both nor fresh ones
        assert a["buffer_sha256_start"] == b["buffer_sha256_end"]
    assert after[0]["net_sha256"] == after[1]["net_sha256"] != before[0]["net_sha256"]
    # the optimiser went on from its moments: Adam's step count doubled with the global step
    steps = ddp_runs["resumed_ckpt"]["optimizer_states"][0]["state"][0]["step"]
    assert int(steps) == ddp_runs["resumed_ckpt"]["global_step"]


@pytest.mark.slow
def test_export_holds_rank_zeros_weights(ddp_runs):
    import onnxruntime as ort

    from glyphgate.core.contract.artifacts import load_torch_model
    from glyphgate.core.model.net import EnergyCNN, OnnxHead

    rank0 = ddp_runs["metrics"]["distributed"]["ranks"][0]["net_sha256"]
    model = load_torch_model(ddp_runs["exported"])
    assert state_sha256(model.net.state_dict()) == rank0
    # and the ONNX graph computes what rank 0's weights compute
    state = {k[4:]: v for k, v in ddp_runs["ckpt"]["state_dict"].items() if k.startswith("net.")}
    assert state_sha256(state) == rank0
    net = EnergyCNN(model.net.num_classes, model.net.width)
    net.load_state_dict(state)
    x = torch.rand(5, 1, 56, 56, generator=torch.Generator().manual_seed(0)) * 2 - 1
    session = ort.InferenceSession(
        str(ddp_runs["exported"] / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    logits, energy = session.run(["logits", "energy"], {"image": x.numpy()})
    with torch.no_grad():
        t_logits, t_energy = OnnxHead(net.eval())(x)
    assert np.abs(logits - t_logits.numpy()).max() < 1e-4 and np.abs(energy - t_energy.numpy()).max() < 1e-4


def test_rank_chains_go_back_to_their_own_rank():
    gathered = torch.arange(3.0).view(3, 1, 1)  # three ranks' chains, rank r's all r
    ckpt = {"state_dict": {CHAINS_KEY: gathered[0]}}
    store_rank_chains(ckpt, gathered)
    assert sorted(ckpt[RANK_CHAINS]) == [1, 2]
    for rank in (0, 1, 2):
        mine = {"state_dict": dict(ckpt["state_dict"]), RANK_CHAINS: ckpt[RANK_CHAINS]}
        restore_rank_chains(mine, rank, fresh=torch.full((1, 1), -1.0))
        assert mine["state_dict"][CHAINS_KEY].item() == rank
    # a rank the checkpoint has no chains for (resumed on more processes) keeps its fresh ones
    restore_rank_chains(ckpt, 3, fresh=torch.full((1, 1), -1.0))
    assert ckpt["state_dict"][CHAINS_KEY].item() == -1


def test_bad_device_settings_are_one_line_errors(tiny_corpus, tmp_path, capsys):
    args = ["train", "--data", str(tiny_corpus), "--out", str(tmp_path / "o")]
    assert main([*args, "--devices", "0"]) == 2
    assert "devices 0: expected 1 or more processes" in capsys.readouterr().err
    if not torch.cuda.is_available():
        (tmp_path / "gpu.json").write_text(json.dumps({"accelerator": "cuda"}))
        assert main([*args, "--devices", "2", "--config", str(tmp_path / "gpu.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("glyphgate: error: accelerator 'cuda', devices 2") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main([*args, "--strategy", "fsdp"])
    assert "invalid choice: 'fsdp'" in capsys.readouterr().err
