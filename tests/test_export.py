import json

import onnx
import pytest
import torch

from glyphgate.cli import main
from glyphgate.core.contract.artifacts import load_torch_model
from glyphgate.core.model.sgld import synthesize
from training.checkpoint import load_module
from training.export import PARITY_TOL, onnx_parity


@pytest.mark.slow
def test_onnx_matches_torch_at_1_7_and_64(tiny_artifacts):
    model = load_torch_model(tiny_artifacts)
    worst = onnx_parity(model.net, tiny_artifacts / "model.onnx", batches=(1, 7, 64), seed=3)
    assert set(worst) == {1, 7, 64}
    assert max(worst.values()) <= PARITY_TOL


@pytest.mark.slow
def test_onnx_graph_has_the_contracted_names_and_a_dynamic_batch(tiny_artifacts):
    graph = onnx.load(str(tiny_artifacts / "model.onnx")).graph
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["logits", "energy"]
    image, logits, energy = dims(graph.input[0]), dims(graph.output[0]), dims(graph.output[1])
    assert image[1:] == [1, 56, 56] and isinstance(image[0], str)
    assert logits == [image[0], 42] and energy == [image[0]]
    assert json.loads((tiny_artifacts / "classes.json").read_text(encoding="utf-8"))[-1] == "S"


@pytest.mark.slow
def test_model_pt_restores_the_checkpoint_network_and_generates(tiny_run, tiny_artifacts):
    module = load_module(tiny_run / "checkpoints" / "last.ckpt")
    model = load_torch_model(tiny_artifacts)
    x = torch.rand(5, 1, 56, 56) * 2 - 1
    with torch.no_grad():
        assert torch.equal(module.net.get_logits(x), model.net.get_logits(x))
    assert model.mode == "jem" and model.init is not None and model.sgld["steps"] == 2
    samples, chain = synthesize(model, n=4, steps=3, label="a", seed=1, keep_chain=True)
    again, _ = synthesize(model, n=4, steps=3, label="a", seed=1)
    assert samples.shape == (4, 1, 56, 56) and len(chain) == 4 and torch.equal(samples, again)


def test_export_of_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "nope.ckpt: checkpoint not found" in err and "Traceback" not in err


def test_a_corrupt_model_pt_is_a_clear_error(tmp_path):
    from glyphgate.core.errors import ArtifactsError

    (tmp_path / "model.pt").write_bytes(b"\x80not a torch file")
    with pytest.raises(ArtifactsError, match="not a glyphgate model.pt"):
        load_torch_model(tmp_path)
