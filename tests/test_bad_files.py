"""One rule for unreadable files in the folder commands (`data check`, `evaluate`, `calibrate`):
each is reported on one stderr line and left out, the command finishes and counts them in what it
writes; exit status 1 when some were skipped, 2 when nothing usable is left."""

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from corpus.folders import Skipped
from corpus.load import load_glyph_data
from glyphgate.cli import main
from glyphgate.core.errors import DataError

REASONS = {"x.png": "not an image in a supported format", "t.png": "damaged or truncated image"}


def _spoil(folder):
    """A corrupt PNG (not an image at all) and a truncated one (a real PNG cut in half)."""
    (folder / "x.png").write_bytes(b"not a png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(buf, "PNG")
    (folder / "t.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return [folder / name for name in REASONS]


def _assert_reported(err: str, bad) -> None:
    """Exactly one `glyphgate: skipped FILE: reason` line per bad file, and no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("glyphgate: skipped ")]
    assert len(lines) == len(bad), err
    for path in bad:
        (line,) = [line for line in lines if line.startswith(f"glyphgate: skipped {path}: ")]
        assert REASONS[path.name] in line
    assert "Traceback" not in err


def _tree(root, classes=("a", "b", "c"), per_class=10):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((30, 20), 20 * i + c, np.uint8)).save(root / name / f"{i}.png")
    return root


def test_the_loaders_leave_bad_files_out_and_keep_the_labels_in_line(tmp_path):
    clean = load_glyph_data(_tree(tmp_path / "clean"))
    spoilt = _tree(tmp_path / "spoilt")
    bad = _spoil(spoilt / "b")
    skipped = Skipped()
    data = load_glyph_data(spoilt, skipped=skipped)
    # the same images under the same labels in the same splits as the tree without the bad files
    for split, (x, y) in clean.splits.items():
        assert torch.equal(data.splits[split][0], x) and torch.equal(data.splits[split][1], y), split
    assert sorted(f["file"] for f in skipped.files) == sorted(map(str, bad))
    assert skipped.record()["skipped"] == 2
    with pytest.raises(DataError, match="t.png: damaged or truncated"):
        load_glyph_data(spoilt)  # a caller that asks for no Skipped still stops on the first


def test_data_check_reports_each_bad_file_and_exits_1(tmp_path, capsys):
    root = _tree(tmp_path / "data")
    bad = _spoil(root / "b")
    assert main(["data", "check", "--data", str(root)]) == 1
    out, err = capsys.readouterr()
    _assert_reported(err, bad)
    assert "3 classes, 2 unreadable files skipped" in out
    counts = [int(line.split()[1]) for line in out.splitlines()[1:4]]  # train, val, test
    assert sum(counts) == 30  # every good image, none of the bad


def test_data_check_of_a_good_folder_exits_0(tmp_path, capsys):
    assert main(["data", "check", "--data", str(_tree(tmp_path / "data"))]) == 0
    assert "0 unreadable files skipped" in capsys.readouterr().out


@pytest.mark.parametrize("everything_bad", [False, True], ids=["one class folder bad", "every file bad"])
def test_data_check_exits_2_when_nothing_usable_is_left(tmp_path, capsys, everything_bad):
    root = _tree(tmp_path / "data", classes=() if everything_bad else ("a", "b"))
    (root / "z").mkdir(parents=True)
    bad = _spoil(root / "z")
    assert main(["data", "check", "--data", str(root)]) == 2
    err = capsys.readouterr().err
    _assert_reported(err, bad)
    (error,) = [line for line in err.splitlines() if line.startswith("glyphgate: error: ")]
    assert f"{root / 'z'}: no readable image among its 2 files" in error


@pytest.fixture()
def spoilt_page(imported_page, tmp_path):
    """The imported pages with a bad crop pair in their first class folder, and the count of
    their good glyphs."""
    from corpus.folders import EXTENSIONS

    root = tmp_path / "page"
    shutil.copytree(imported_page, root)
    first = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "ood")[0]
    n_good = sum(
        1 for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.relative_to(root).parts[0] != "ood"
    )
    return root, _spoil(first), n_good


def _only_bad(tmp_path, imported_page):
    """A collection whose one class folder (a class of the model) holds only bad files."""
    first = sorted(p.name for p in imported_page.iterdir() if p.is_dir() and p.name != "ood")[0]
    (tmp_path / "bad" / first).mkdir(parents=True)
    return tmp_path / "bad", _spoil(tmp_path / "bad" / first)


@pytest.mark.slow
def test_evaluate_skips_bad_crops_counts_them_and_exits_1(tiny_calibrated, spoilt_page, tmp_path, capsys):
    root, bad, n_good = spoilt_page
    out = tmp_path / "eval"
    args = ["evaluate", "--artifacts", str(tiny_calibrated), "--data", str(root), "--name", "page"]
    assert main([*args, "--out", str(out)]) == 1
    stdout, err = capsys.readouterr()
    _assert_reported(err, bad)
    r = json.loads((out / "real_scans.json").read_text(encoding="utf-8"))["page"]
    assert r["skipped"] == 2 and sorted(f["file"] for f in r["skipped_files"]) == sorted(map(str, bad))
    assert r["n_glyphs"] == n_good
    assert "2 unreadable files skipped" in stdout.splitlines()[0]


@pytest.mark.slow
def test_calibrate_on_a_collection_skips_bad_files_counts_them_and_exits_1(
    tiny_calibrated, spoilt_page, tmp_path, capsys
):
    from glyphgate.core.contract.artifacts import load_calibration

    root, bad, n_good = spoilt_page
    out = tmp_path / "cal"
    assert (
        main(["calibrate", "--artifacts", str(tiny_calibrated), "--data", str(root), "--out", str(out)]) == 1
    )
    stdout, err = capsys.readouterr()
    _assert_reported(err, bad)
    cal = load_calibration(out)  # schema and model hash hold with the count in it
    assert cal["skipped"] == 2 and sorted(f["file"] for f in cal["skipped_files"]) == sorted(map(str, bad))
    assert cal["collection"]["n_glyphs"] == n_good
    assert stdout.splitlines()[-1].endswith("; 2 unreadable files skipped")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_a_collection_of_only_bad_files_exits_2(tiny_calibrated, imported_page, tmp_path, capsys, command):
    root, bad = _only_bad(tmp_path, imported_page)
    args = [command, "--artifacts", str(tiny_calibrated), "--data", str(root), "--out", str(tmp_path / "o")]
    assert main([*args, *(["--name", "bad"] if command == "evaluate" else [])]) == 2
    err = capsys.readouterr().err
    _assert_reported(err, bad)
    (error,) = [line for line in err.splitlines() if line.startswith("glyphgate: error: ")]
    assert "no readable image among its 2 files" in error
