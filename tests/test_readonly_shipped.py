"""The shipped model is read-only: `evaluate` and `calibrate` refuse to write into it unless
given --in-place, and with --out DIR write there and leave it byte-identical. A copy of the tiny
calibrated model stands in for artifacts/default (the real one is never touched)."""

import hashlib
import json
import shutil

import pytest

from glyphgate.cli import main
from glyphgate.core.contract import artifacts as contract

pytestmark = pytest.mark.slow


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def shipped(tiny_calibrated, tmp_path, monkeypatch):
    folder = tmp_path / "pkg" / "artifacts" / "default"
    shutil.copytree(tiny_calibrated, folder)
    monkeypatch.setattr(contract, "SHIPPED", folder.resolve())
    return folder


def _args(command, artifacts, data):
    extra = ["--name", "page"] if command == "evaluate" else []
    return [command, "--artifacts", str(artifacts), "--data", str(data), *extra]


@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_writing_into_the_shipped_model_is_refused(shipped, imported_page, capsys, command):
    before = _digest(shipped)
    # spelled another way, it is still the shipped folder
    roundabout = shipped.parent / ".." / "artifacts" / "default"
    for artifacts in (shipped, roundabout):
        assert main(_args(command, artifacts, imported_page)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"glyphgate: error: {artifacts}: the shipped model")
        assert "--out DIR" in err and "--in-place" in err
    # nor may --out point at it
    assert main([*_args(command, "elsewhere", imported_page), "--out", str(roundabout)]) == 2
    assert "the shipped model is read-only" in capsys.readouterr().err
    assert _digest(shipped) == before


def test_evaluate_out_writes_real_scans_and_report_to_a_fresh_folder(shipped, imported_page):
    before = _digest(shipped)
    out = shipped.parent.parent / "new" / "eval"
    assert main([*_args("evaluate", shipped, imported_page), "--out", str(out)]) == 0
    assert _digest(shipped) == before
    assert set(json.loads((out / "real_scans.json").read_text(encoding="utf-8"))) == {"page"}
    index = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "real_page_reliability.png" in index and (out / "report" / "real_page_reliability.png").is_file()
    # the calibration's own figures come along, so the report in DIR shows them
    figures = json.loads((out / "report" / "figures.json").read_text(encoding="utf-8"))
    assert figures and all((out / "report" / name).is_file() for name in figures.values())


def test_calibrate_out_writes_a_calibrated_copy(shipped, imported_page):
    from glyphgate.core.contract.artifacts import load_calibration

    before = _digest(shipped)
    out = shipped.parent.parent / "mine"
    assert main([*_args("calibrate", shipped, imported_page), "--out", str(out)]) == 0
    assert _digest(shipped) == before
    after = _digest(out)
    assert all(after[name] == before[name] for name in ("model.onnx", "model.pt", "classes.json"))
    cal = load_calibration(out)  # bound to the copied model's hash
    assert cal["collection"]["data"] == str(imported_page) and (out / "report" / "index.html").is_file()
    # the synthetic calibration it replaced is kept as the reference, as in place
    assert cal["reference"]["threshold"] == load_calibration(shipped)["threshold"]


def test_in_place_updates_the_shipped_model(shipped, imported_page):
    before = _digest(shipped)
    assert main([*_args("calibrate", shipped, imported_page), "--in-place"]) == 0
    assert main([*_args("evaluate", shipped, imported_page), "--in-place"]) == 0
    after = _digest(shipped)
    assert after["calibration.json"] != before["calibration.json"] and "real_scans.json" in after
    with pytest.raises(SystemExit):  # one or the other, not both
        main([*_args("evaluate", shipped, imported_page), "--in-place", "--out", "x"])
