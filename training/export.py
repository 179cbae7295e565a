"""`glyphgate export`: checkpoint -> artifacts folder (model.onnx, model.pt, classes.json).

ONNX parity with torch is checked here, at export time, so a bad graph never leaves the
build: max |difference| <= 1e-4 on logits and energy at N = 1, 7 and 64.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from glyphgate.core.contract.artifacts import (
    CLASSES_JSON,
    MODEL_ONNX,
    MODEL_PT,
    save_torch_model,
)
from glyphgate.core.errors import ExportError
from glyphgate.core.image.preprocess import SHAPE
from glyphgate.core.model.net import EnergyCNN, OnnxHead

PARITY_TOL = 1e-4
PARITY_BATCHES = (1, 7, 64)


def export_onnx(net: EnergyCNN, path: Path) -> None:
    head = OnnxHead(net).eval()
    n = torch.export.Dim("N", min=1, max=65536)
    torch.onnx.export(
        head,
        (torch.zeros(2, *SHAPE),),
        str(path),
        dynamo=True,
        input_names=["image"],
        output_names=["logits", "energy"],
        dynamic_shapes={"image": {0: n}},
        external_data=False,
        verbose=False,
    )
    _strip_source_metadata(path)


def _strip_source_metadata(path: Path) -> None:
    """The dynamo exporter records, per node, the Python class path and call stack it came from
    ("training.model.OnnxHead/..."): moving a module then changed the file's bytes (and its
    hash, which calibration is bound to) with the graph unchanged. Without them the bytes depend
    on the graph and the weights only."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


def onnx_parity(net: EnergyCNN, path: Path, batches=PARITY_BATCHES, seed: int = 0) -> dict[int, float]:
    """Max abs difference between ONNX Runtime and torch over logits and energy, per batch size."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    head = OnnxHead(net).eval()
    worst = {}
    for n in batches:
        x = torch.rand(n, *SHAPE, generator=gen) * 2 - 1
        logits, energy = session.run(["logits", "energy"], {"image": x.numpy()})
        with torch.no_grad():
            t_logits, t_energy = head(x)
        worst[n] = float(
            max(np.abs(logits - t_logits.numpy()).max(), np.abs(energy - t_energy.numpy()).max())
        )
    return worst


def export(ckpt: str | Path, out: str | Path) -> dict:
    from training.checkpoint import load_module

    module = load_module(ckpt)
    net = module.net.cpu().eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / MODEL_ONNX
    export_onnx(net, onnx_path)
    parity = onnx_parity(net, onnx_path)
    if max(parity.values()) > PARITY_TOL:
        onnx_path.unlink()
        raise ExportError(
            f"{ckpt}: ONNX export disagrees with torch (max |diff| per batch size {parity}, "
            f"tolerance {PARITY_TOL:g}); nothing exported"
        )
    c = module.cfg
    init = module.init if c.init == "informative" else None
    save_torch_model(out / MODEL_PT, net, module.classes, init, c.sampler_kwargs("fresh"), c.mode)
    (out / CLASSES_JSON).write_text(json.dumps(module.classes, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"out": str(out), "mode": c.mode, "classes": len(module.classes), "parity_max_abs_diff": parity}
