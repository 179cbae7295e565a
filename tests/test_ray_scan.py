"""`glyphgate scan --engine ray` on a local Ray runtime (ray.init(num_cpus=2)), against the local
scan of the same files: the same rows, in the same order, with the same verdicts."""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glyphgate.cli import main

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """600 scans the way a segmenter cuts them: the example glyphs at many box sizes and
    aspect ratios, noise, a blank, and three bad files, in nested folders."""
    root = tmp_path_factory.mktemp("crops") / "box"
    rng = np.random.default_rng(7)
    glyphs = [Image.open(p).convert("L") for p in sorted((EXAMPLES / "glyphs").glob("*.png"))]
    for i in range(560):
        h, w = int(rng.integers(12, 90)), int(rng.integers(8, 70))
        folder = root / f"page{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        glyphs[i % len(glyphs)].resize((w, h), Image.BILINEAR).save(folder / f"g{i:04d}.png")
    for i in range(37):
        Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).save(root / f"page0/noise{i:02d}.png")
    good = (root / "page0" / "g0000.png").read_bytes()
    (root / "page1" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "page1" / "notes.txt").write_text("not a scan")
    (root / "page2" / "empty.png").write_bytes(b"")
    return root


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _same_verdicts(a: list[dict], b: list[dict]) -> None:
    """Row for row: path, label, flag and error equal, energy and p-value within 1e-4."""
    assert [r["path"] for r in a] == [r["path"] for r in b]
    for x, y in zip(a, b):
        assert (x["label"], x["is_ood"], x["error"]) == (y["label"], y["is_ood"], y["error"]), x["path"]
        for k in ("energy", "confidence", "p_value"):
            assert (x[k] == "") == (y[k] == "")
            if x[k]:
                assert abs(float(x[k]) - float(y[k])) <= 1e-4, (x["path"], k)


def _scan(path, out, *extra) -> int:
    return main(["scan", str(path), "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def local_rows(crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert _scan(crops, out, "--workers", "0", "--batch", "128") == 1
    return _rows(out)


def test_the_decode_pool_gives_the_single_process_rows_byte_for_byte(crops, local_rows, tmp_path):
    assert _scan(crops, tmp_path, "--workers", "2", "--batch", "128") == 1
    assert _rows(tmp_path) == local_rows
    assert len(local_rows) == 600 and sum(r["error"] != "" for r in local_rows) == 3


def test_ray_scan_gives_the_local_rows_on_a_folder_a_zip_and_the_examples(
    local_ray, crops, local_rows, tmp_path
):
    out = tmp_path / "folder"
    assert _scan(crops, out, "--engine", "ray", "--batch", "128") == 1
    _same_verdicts(_rows(out), local_rows)
    shards = sorted((out / "shards").glob("*.parquet"))
    assert len(shards) >= 2  # written by the workers, not one file by the driver
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["engine"] == "ray" and summary["images"] == 600 and summary["unreadable"] == 3
    assert summary["flagged"] == sum(r["is_ood"] == "True" for r in local_rows)
    assert (out / "flagged.png").is_file() and "noise" in (out / "flagged.html").read_text()

    archive = tmp_path / "crops.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(crops.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(crops).as_posix())
    assert _scan(archive, tmp_path / "zip", "--engine", "ray", "--shards", "csv") == 1
    assert sorted((tmp_path / "zip" / "shards").glob("*.csv"))
    _same_verdicts(_rows(tmp_path / "zip"), local_rows)

    assert _scan(EXAMPLES, tmp_path / "ex-local") == 1
    assert _scan(EXAMPLES, tmp_path / "ex-ray", "--engine", "ray") == 1
    _same_verdicts(_rows(tmp_path / "ex-ray"), _rows(tmp_path / "ex-local"))


def test_ray_scan_resumes_from_its_shards(local_ray, crops, local_rows, tmp_path, capsys):
    out = tmp_path / "scan"
    assert _scan(crops, out, "--engine", "ray", "--batch", "100") == 1
    shards = sorted((out / "shards").glob("*.parquet"))
    assert len(shards) >= 3
    shards[0].unlink()  # as if the run was killed before it wrote these
    shards[1].write_bytes(shards[1].read_bytes()[:100])  # cut short mid-write
    (out / "results.csv").unlink()
    assert _scan(crops, out, "--engine", "ray") == 2  # refused: the shards hold a scan
    assert "--resume" in capsys.readouterr().err
    assert _scan(crops, out, "--engine", "ray", "--resume") == 1
    _same_verdicts(_rows(out), local_rows)
    assert (out / "shards" / (shards[1].name + ".broken")).is_file()
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["complete"] and 100 <= summary["scanned_now"] < 600


def test_a_manifest_of_paths_scans_the_same_locally_and_on_ray(local_ray, crops, local_rows, tmp_path):
    chosen = [r["path"] for r in local_rows[::7]]
    # absolute paths, and paths relative to the manifest's folder
    entries = [str(crops / p) if i % 2 else f"{crops.name}/{p}" for i, p in enumerate(chosen)]
    manifest = crops.parent / "manifest.csv"
    manifest.write_text("path,work\n" + "".join(f"{e},w1\n" for e in entries) + "missing.png,w1\n")
    assert _scan(manifest, tmp_path / "local") == 1
    assert _scan(manifest, tmp_path / "ray", "--engine", "ray") == 1
    local, on_ray = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    _same_verdicts(on_ray, local)
    assert [r["path"] for r in local] == [*entries, "missing.png"]
    assert "No such file" in local[-1]["error"]
    by_name = {r["path"]: r for r in local_rows}
    _same_verdicts(
        [{**r, "path": e} for e, r in zip(entries, local)],
        [{**by_name[p], "path": e} for e, p in zip(entries, chosen)],
    )
