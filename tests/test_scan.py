import csv
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from glyphgate.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed_folder(train_corpus, tmp_path_factory):
    """12 corpus glyphs, 12 uniform-noise scans, 4 unusable files, in nested folders."""
    root = tmp_path_factory.mktemp("archive") / "box1"
    (root / "page1").mkdir(parents=True)
    (root / "page2").mkdir()
    with open(train_corpus / "test.npy", "rb") as f:
        glyphs = np.load(f)[:12]
    for i, a in enumerate(glyphs):
        Image.fromarray(a).save(root / "page1" / f"glyph{i:02d}.png")
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(
            root / "page2" / f"noise{i:02d}.png"
        )
    good = (root / "page1" / "glyph00.png").read_bytes()
    (root / "page2" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "page2" / "notes.txt").write_text("not a scan")
    (root / "page2" / "empty.tif").write_bytes(b"")
    (root / "page2" / "old-results.csv").write_text(
        "filename,label,energy\nglyph00.png,a,-3.2\n"
    )  # once read as a URL
    return root


def _check_reports(out, n_files=28):
    with open(out / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_files
    by_path = {r["path"]: r for r in rows}
    assert "not an image" in by_path["page2/notes.txt"]["error"]
    assert "empty file" in by_path["page2/empty.tif"]["error"]
    assert (
        "not an image" in by_path["page2/old-results.csv"]["error"]
        and "URL" not in by_path["page2/old-results.csv"]["error"]
    )
    assert "truncated" in by_path["page2/truncated.png"]["error"]
    noise = [r for p, r in by_path.items() if "noise" in p]
    assert sum(r["is_ood"] == "True" for r in noise) >= 10  # noise is what a far-OOD detector must catch
    summary = json.loads((out / "results.json").read_text(encoding="utf-8"))["summary"]
    assert summary["unreadable"] == 4 and summary["images"] == n_files and summary["flagged"] >= 10
    with Image.open(out / "flagged.png") as im:
        assert im.width > 56 and im.height >= 58
    page = (out / "flagged.html").read_text(encoding="utf-8")
    assert "page2/noise" in page and page.count("<figure>") == summary["flagged"]
    import re

    energies = [float(e) for e in re.findall(r"energy (-?[0-9.]+)", page)]
    assert energies == sorted(energies, reverse=True) and len(energies) == summary["flagged"]  # highest first
    return rows


def test_scan_a_folder_locally(mixed_folder, tiny_calibrated, tmp_path, capsys):
    code = main(
        [
            "scan",
            str(mixed_folder),
            "--artifacts",
            str(tiny_calibrated),
            "--out",
            str(tmp_path / "r"),
            "--batch",
            "8",
        ]
    )
    assert code == 1  # something was flagged
    assert "28 files: 24 scored" in capsys.readouterr().out
    rows = _check_reports(tmp_path / "r")
    glyph_rows = [r for r in rows if "glyph" in r["path"]]
    assert all(r["label"] and float(r["confidence"]) > 0 for r in glyph_rows)


def test_scan_a_zip_gives_the_same_results(mixed_folder, tiny_calibrated, tmp_path):
    archive = tmp_path / "box1.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(mixed_folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(mixed_folder).as_posix())
    common = ["--artifacts", str(tiny_calibrated), "--no-progress"]
    code_a = main(["scan", str(mixed_folder), "--out", str(tmp_path / "a"), *common])
    code_b = main(["scan", str(archive), "--out", str(tmp_path / "b"), *common])
    assert code_a == code_b == 1  # grep-style: 1 when something was flagged or unreadable
    assert (tmp_path / "a" / "results.csv").read_text() == (tmp_path / "b" / "results.csv").read_text()


def test_scan_of_a_missing_path_is_a_one_line_error(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nope: no such folder or ZIP file" in err and "Traceback" not in err


def test_scan_finds_the_shipped_model_from_any_directory(mixed_folder, tmp_path, monkeypatch, capsys):
    from glyphgate.core.contract.artifacts import SHIPPED

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GLYPHGATE_ARTIFACTS", raising=False)
    assert main(["scan", str(mixed_folder / "page1"), "--out", "report", "--no-progress"]) in (0, 1)
    summary = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))["summary"]
    assert summary["scorer"] == str(SHIPPED) and summary["scored"] == 12
    monkeypatch.setenv("GLYPHGATE_ARTIFACTS", str(tmp_path / "nowhere"))
    assert main(["scan", str(mixed_folder / "page1"), "--out", "report2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "--artifacts" in err[0]
        and "GLYPHGATE_ARTIFACTS" in err[0]
        and str(SHIPPED) in err[0]
    )
