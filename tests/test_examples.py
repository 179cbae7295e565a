"""The sample files in examples/ and `data export-png`."""

from pathlib import Path

import numpy as np
from PIL import Image

from glyphgate.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_examples_folder_is_what_the_command_renders(tmp_path):
    assert main(["data", "examples", "--out", str(tmp_path / "ex")]) == 0
    made = sorted(p.relative_to(tmp_path / "ex") for p in (tmp_path / "ex").rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(ROOT / "examples") for p in (ROOT / "examples").rglob("*") if p.is_file())
    assert made == shipped and len(made) == 17
    for rel in made:
        assert (tmp_path / "ex" / rel).read_bytes() == (ROOT / "examples" / rel).read_bytes(), rel


def test_export_png_writes_splits_and_ood_sets(tiny_corpus, tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "export-png",
                "--data",
                str(tiny_corpus),
                "--out",
                str(tmp_path / "png"),
                "--split",
                "val",
                "--limit",
                "2",
            ]
        )
        == 0
    )
    import json

    names = json.loads((tiny_corpus / "classes.json").read_text(encoding="utf-8"))["classes"]
    with open(tiny_corpus / "val.npy", "rb") as f:
        x, y = np.load(f), np.load(f)
    for c, name in enumerate(names):
        written = (
            list((tmp_path / "png" / "val" / name).glob("*.png"))
            if (tmp_path / "png" / "val" / name).is_dir()
            else []
        )
        assert len(written) == min(2, int((y == c).sum())), name
    first = sorted((tmp_path / "png" / "val" / "a").glob("*.png"))[0]
    assert np.array_equal(
        np.asarray(Image.open(first)), x[int(first.stem)]
    )  # the stored pixels, not a re-render
    assert len(list((tmp_path / "png" / "ood" / "ink_blots").glob("*.png"))) == 2
    assert main(["data", "export-png", "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a course-layout folder" in capsys.readouterr().err
