"""Reading and writing an artifacts folder, the contract between export, calibration, serving.

`artifacts/<name>/` = model.onnx (scoring), model.pt (weights + sampler settings, for SGLD
and input-gradient scores), classes.json, calibration.json, report/, MODEL_CARD.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glyphgate.core.contract.scores import SCORES, gate_scores
from glyphgate.core.errors import ArtifactsError, DataError

if TYPE_CHECKING:  # torch is imported where it is used: checking a folder should not cost seconds
    import torch

    from glyphgate.core.model.net import EnergyCNN
    from glyphgate.core.model.sampler import InformativeInit, SGLDSampler

MODEL_ONNX, MODEL_PT, CLASSES_JSON, CALIBRATION_JSON = (
    "model.onnx",
    "model.pt",
    "classes.json",
    "calibration.json",
)
REAL_SCANS_JSON = "real_scans.json"  # `glyphgate evaluate`: the gate on imported real pages
PEERS_JSON = "peers.json"  # `glyphgate peers`: the gate beside the scores a user could pick instead
FORMAT = 1


def sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# The shipped model beside the package (an editable install or a source checkout): found from
# any working directory, not only the repository root.
SHIPPED = Path(__file__).resolve().parents[3] / "artifacts" / "default"


def require(folder: str | Path, *names: str) -> Path:
    """The folder, after checking every named file is there (one message listing the missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactsError(
            f"{folder}: artifacts folder not found (pass --artifacts DIR or set GLYPHGATE_ARTIFACTS; "
            f"the shipped model is {SHIPPED})"
        )
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ArtifactsError(
            f"{folder}: missing {', '.join(missing)} (make it with `glyphgate export`"
            + (" and `glyphgate calibrate`" if CALIBRATION_JSON in missing else "")
            + ")"
        )
    return folder


def read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable ({e})") from None


SCHEMA = Path(__file__).with_name("calibration.schema.json")
SCHEMA_VERSION = 1  # calibration.json's `schema_version`, written by every calibration


def calibration_schema() -> dict:
    """The schema file with its score enums filled from the score registry."""
    schema = read_json(SCHEMA)
    props = schema["properties"]
    props["score"] = {"enum": gate_scores(), "description": props["score"]["description"]}
    props["score_functions"]["items"] = {"enum": list(SCORES)}
    return schema


def load_calibration(folder: str | Path, check_hash: bool = True) -> dict:
    """calibration.json, validated against its schema and (by default) against model.onnx's hash."""
    import jsonschema

    folder = require(folder, MODEL_ONNX, CALIBRATION_JSON)
    cal = read_json(folder / CALIBRATION_JSON)
    try:
        jsonschema.validate(cal, calibration_schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "top level"
        raise ArtifactsError(f"{folder / CALIBRATION_JSON}: invalid at {where}: {e.message}") from None
    if check_hash and cal["model_sha256"] != sha256(folder / MODEL_ONNX):
        raise ArtifactsError(
            f"{folder / CALIBRATION_JSON} was made for another model (its model_sha256 does not match "
            f"{folder / MODEL_ONNX}); re-run `glyphgate calibrate --artifacts {folder}`"
        )
    return cal


@dataclass
class TorchModel:
    """The exported network with what SGLD needs: informative init and sampler settings."""

    net: EnergyCNN
    classes: list[str]
    init: InformativeInit | None
    sgld: dict = field(default_factory=dict)
    mode: str = "jem"

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device) -> "TorchModel":
        self.net.to(device)
        if self.init is not None:
            self.init.to(device)
        return self

    def sampler(self, **overrides) -> SGLDSampler:
        from glyphgate.core.model.sampler import SGLDSampler

        kw = {**self.sgld, **overrides}
        return SGLDSampler(self.net, len(self.classes), init=self.init, **kw)


def save_torch_model(
    path: Path, net: EnergyCNN, classes: list[str], init: InformativeInit | None, sgld: dict, mode: str
) -> None:
    import torch

    torch.save(
        {
            "format": FORMAT,
            "mode": mode,
            "num_classes": net.num_classes,
            "width": net.width,
            "classes": list(classes),
            "state_dict": net.state_dict(),
            "sgld": dict(sgld),
            # float16 halves the file (the per-class axes are 8 MB in float32); it only shapes SGLD
            # start points, and loading copies it back into float32 buffers
            "init": (
                {k: v.half() if v.is_floating_point() else v for k, v in init.state_dict().items()}
                if init is not None and bool(init.fitted)
                else None
            ),
        },
        path,
    )


def load_torch_model(folder: str | Path, device: str | torch.device = "cpu") -> TorchModel:
    import torch

    from glyphgate.core.model.net import EnergyCNN
    from glyphgate.core.model.sampler import InformativeInit

    path = require(folder, MODEL_PT) / MODEL_PT
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != FORMAT:
            raise ValueError(f"format {blob.get('format')!r}, expected {FORMAT}")
        net = EnergyCNN(blob["num_classes"], blob["width"])
        net.load_state_dict(blob["state_dict"])
        init = None
        if blob["init"] is not None:
            init = InformativeInit(len(blob["classes"]), blob["init"]["axes"].shape[2])
            init.load_state_dict(blob["init"])
    except Exception as e:  # a truncated or foreign file raises many types
        raise ArtifactsError(f"{path}: not a glyphgate model.pt ({type(e).__name__}: {e})") from None
    return TorchModel(net.eval(), list(blob["classes"]), init, blob["sgld"], blob["mode"]).to(device)
