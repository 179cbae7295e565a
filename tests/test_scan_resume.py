"""`glyphgate scan` as a pipeline runs it: killed, stopped and resumed without losing or repeating
a row, a ZIP bomb refused within bounded memory, and the exit status a script branches on.
Scans that are signalled or measured are real `python -m glyphgate scan` subprocesses; the rest
run the same command in this process. All score with the shipped model."""

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from peak_memory import run_measured
from PIL import Image

from glyphgate.core.contract.artifacts import SHIPPED
from glyphgate.scan.folder import benjamini_hochberg

ROOT = Path(__file__).resolve().parents[1]
N_CROPS = 2000
pytestmark = pytest.mark.slow


def glyphgate(*args, env=None, **popen):
    """`python -m glyphgate scan ...` started (not waited for) on the shipped model."""
    return subprocess.Popen(
        [sys.executable, "-m", "glyphgate", "scan", *map(str, args), "--artifacts", str(SHIPPED)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run(*args, env=None) -> subprocess.CompletedProcess:
    p = glyphgate(*args, env=env)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def scan_here(capsys, *args) -> subprocess.CompletedProcess:
    """The same command in this process, for the tests that send no signal and measure no memory
    (a subprocess costs its start-up)."""
    from glyphgate.cli import main

    capsys.readouterr()
    code = main(["scan", *map(str, args), "--artifacts", str(SHIPPED)])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def rows_of(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))["summary"]


def rows_on_disk(out: Path) -> int:
    try:
        return (out / "results.csv").read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def wait_for_rows(p: subprocess.Popen, out: Path, at_least: int) -> int:
    """Polls results.csv until it holds `at_least` rows; the scan must still be running then."""
    deadline = time.monotonic() + 60
    while (n := rows_on_disk(out)) < at_least:
        assert p.poll() is None, f"the scan ended (status {p.returncode}) before {at_least} rows"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return n


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """N_CROPS tiny PNGs in two folders: noise, gradients and blobs of a few sizes, so energies
    differ from file to file (a row mixed up with another shows)."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for i in range(N_CROPS):
        size = int(rng.integers(12, 40))
        a = rng.integers(0, 256, (size, size), dtype=np.uint8)
        if i % 3 == 1:
            a = np.sort(a, axis=int(rng.integers(0, 2)))  # a gradient with grain
        elif i % 3 == 2:
            a[:] = 255
            a[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = rng.integers(0, 60)  # a blob
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        Image.fromarray(a).save(folder / f"crop{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def whole_scan(crops, tmp_path_factory) -> Path:
    """The report folder of one uninterrupted scan of `crops`."""
    out = tmp_path_factory.mktemp("whole") / "r"
    done = run(crops, "--out", out, "--batch", "64", "--no-progress")
    assert done.returncode == 1, done.stderr  # noise is flagged
    assert summary_of(out)["complete"] is True
    return out


@pytest.fixture(scope="module")
def uninterrupted(whole_scan) -> list[dict]:
    rows = rows_of(whole_scan)
    assert len(rows) == N_CROPS
    return rows


def same_rows(got: list[dict], want: list[dict]) -> None:
    """0 lost, 0 duplicated, the same verdicts, in source order."""
    paths = [r["path"] for r in got]
    assert len(paths) == len(set(paths)) == N_CROPS
    assert paths == [r["path"] for r in want]
    assert [(r["energy"], r["is_ood"]) for r in got] == [(r["energy"], r["is_ood"]) for r in want]


def test_a_scan_killed_with_sigkill_resumes_without_losing_or_repeating_a_row(
    crops, whole_scan, uninterrupted, tmp_path
):
    out = tmp_path / "r"
    p = glyphgate(crops, "--out", out, "--batch", "8", "--no-progress")
    wait_for_rows(p, out, 200)
    p.kill()
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    kept = rows_on_disk(out)
    assert 200 <= kept < N_CROPS and not (out / "results.json").exists()
    # flushed chunk by chunk: the kill left whole chunks of 8 rows, not a buffer's worth of bytes
    assert kept % 8 == 0 and (out / "results.csv").read_bytes().endswith(b"\n")
    # and what SIGKILL in the middle of a write leaves: half a row, no newline ("a/crop0NNNN.p")
    with open(out / "results.csv", "a", encoding="utf-8") as f:
        f.write(uninterrupted[kept]["path"][:-2])

    again = run(crops, "--out", out, "--batch", "8", "--resume")
    assert again.returncode == 1, again.stderr
    same_rows(rows_of(out), uninterrupted)
    assert f"{N_CROPS - kept}/{N_CROPS - kept}" in again.stderr  # the bar counts what remains
    summary = summary_of(out)
    assert summary["complete"] is True and summary["images"] == N_CROPS
    assert summary["scored"] + summary["unreadable"] == N_CROPS
    assert summary["flagged"] == sum(r["is_ood"] == "True" for r in uninterrupted)
    # the sheet's scans from the killed run were read again from the folder: the same sheet
    assert (out / "flagged.png").read_bytes() == (whole_scan / "flagged.png").read_bytes()


@pytest.mark.parametrize("stop, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_finish_the_chunk_write_an_incomplete_summary_and_resume(
    crops, uninterrupted, tmp_path, stop, status
):
    out = tmp_path / "r"
    p = glyphgate(crops, "--out", out, "--batch", "8")
    wait_for_rows(p, out, 200)
    p.send_signal(stop)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status
    last = err.strip().splitlines()[-1]
    assert "--resume" in last and stop.name in last and "Traceback" not in err
    summary, rows = summary_of(out), rows_of(out)
    assert summary["complete"] is False and summary["stopped_by"] == stop.name
    assert summary["remaining"] == N_CROPS - len(rows) > 0 and len(rows) % 8 == 0  # whole chunks
    assert f"{summary['remaining']} files not scanned yet" in last
    assert "not finished" in (out / "flagged.html").read_text(encoding="utf-8")
    if stop == signal.SIGINT:
        return  # resuming is the same after either
    again = run(crops, "--out", out, "--batch", "8", "--resume", "--no-progress")
    assert again.returncode == 1, again.stderr
    same_rows(rows_of(out), uninterrupted)
    assert summary_of(out)["complete"] is True and summary_of(out)["remaining"] == 0


def test_an_existing_results_csv_is_refused_without_resume_or_overwrite(whole_scan, tmp_path, capsys):
    out = tmp_path / "r"
    shutil.copytree(whole_scan, out)
    before = (out / "results.csv").read_bytes()
    glyphs = ROOT / "examples" / "glyphs"
    refused = scan_here(capsys, glyphs, "--out", out, "--no-progress")
    err = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(err) == 1
    assert "results.csv exists" in err[0] and "--resume" in err[0] and "--overwrite" in err[0]
    assert (out / "results.csv").read_bytes() == before
    again = scan_here(capsys, glyphs, "--out", out, "--no-progress", "--overwrite")
    assert again.returncode == 0 and [r["path"] for r in rows_of(out)] == sorted(
        p.name for p in glyphs.iterdir()
    )
    assert not (out / "flagged.png").exists()  # the earlier scan's sheet: nothing is flagged now


def test_fdr_is_cut_once_over_the_whole_resumed_scan(crops, uninterrupted, tmp_path):
    """A scan stopped part way and resumed flags by Benjamini-Hochberg over all its scans, once."""
    src, halves = tmp_path / "src", tmp_path / "halves"
    src.mkdir()
    for p in sorted((crops / "a").iterdir())[:500]:
        shutil.copy(p, src)
    p = glyphgate(src, "--out", halves, "--fdr", "0.05", "--batch", "8", "--no-progress")
    wait_for_rows(p, halves, 100)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    assert p.returncode == 143 and "for now" in summary_of(halves)["rule"]
    assert run(src, "--out", halves, "--fdr", "0.05", "--resume", "--no-progress").returncode == 1
    rule = summary_of(halves)["rule"]
    assert rule.startswith("Benjamini-Hochberg") and "500 scored" in rule
    rows = rows_of(halves)
    scores = {r["path"].removeprefix("a/"): (r["energy"], r["p_value"]) for r in uninterrupted}
    assert [(r["energy"], r["p_value"]) for r in rows] == [scores[r["path"]] for r in rows]
    cut = benjamini_hochberg(np.array([float(r["p_value"]) for r in rows]), 0.05)
    assert [r["is_ood"] == "True" for r in rows] == list(cut) and 0 < sum(cut) < len(rows)


def test_the_contact_sheet_shows_at_most_the_512_of_highest_energy(whole_scan, uninterrupted):
    out = whole_scan
    flagged = sorted((float(r["energy"]) for r in uninterrupted if r["is_ood"] == "True"), reverse=True)
    assert len(flagged) > 512  # else this test shows nothing
    page = (out / "flagged.html").read_text(encoding="utf-8")
    assert page.count("<figure>") == 512 and f"all {len(flagged)} are in results.csv" in page
    import re

    shown = [float(e) for e in re.findall(r"energy (-?[0-9.]+)", page)]
    assert shown == pytest.approx([round(e, 2) for e in flagged[:512]], abs=0.006)


def _zip_bomb(path: Path, good_png: bytes, zeros_mb: int) -> None:
    """bomb.png: `zeros_mb` MB of zeros (deflated to a few MB), liar.png: 5 MB of zeros whose
    central directory declares 100 bytes, and one good scan."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("good.png", good_png)
        zf.writestr("liar.png", bytes(5 << 20))
        chunk = bytes(1 << 20)
        with zf.open("bomb.png", "w", force_zip64=True) as member:
            for _ in range(zeros_mb):
                member.write(chunk)
    data = bytearray(path.read_bytes())
    # liar.png's entry in the central directory (its name's last occurrence), the one zipfile reads
    at = data.rindex(b"PK\x01\x02", 0, data.rindex(b"liar.png"))
    assert data[at + 46 : at + 46 + 8] == b"liar.png"
    data[at + 24 : at + 28] = struct.pack("<I", 100)  # uncompressed size
    path.write_bytes(bytes(data))


def test_a_zip_bomb_is_one_error_row_within_bounded_memory(tmp_path):
    archive = tmp_path / "box.zip"
    _zip_bomb(archive, (ROOT / "examples" / "glyphs" / "a.png").read_bytes(), zeros_mb=600)
    p = run_measured(
        "scan",
        archive,
        "--out",
        tmp_path / "r",
        "--no-progress",
        "--artifacts",
        SHIPPED,
        env={"GLYPHGATE_MAX_UPLOAD_MB": "1"},
    )
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1
    by_path = {r["path"]: r for r in rows_of(tmp_path / "r")}
    assert by_path["good.png"]["label"] and not by_path["good.png"]["error"]
    assert by_path["bomb.png"]["error"] == (
        "bomb.png: declares 600.0 MB uncompressed, more than the 1 MB allowed (GLYPHGATE_MAX_UPLOAD_MB)"
    )
    assert "liar.png: unreadable (Bad CRC-32" in by_path["liar.png"]["error"]
    assert len(err) == 2 and err[0].startswith("glyphgate: bomb.png: declares")
    assert p.peak_mb < 500, f"peak RSS {p.peak_mb:.0f} MB"


def test_a_file_over_the_cap_in_a_folder_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "examples" / "glyphs" / "a.png", src / "a.png")
    (src / "big.tif").write_bytes(b"II*\x00" + bytes(int(1.5 * (1 << 20))))
    monkeypatch.setenv("GLYPHGATE_MAX_UPLOAD_MB", "1")
    done = scan_here(capsys, src, "--out", tmp_path / "r", "--no-progress")
    assert done.returncode == 1
    by_path = {r["path"]: r for r in rows_of(tmp_path / "r")}
    assert (
        by_path["big.tif"]["error"] == "big.tif: 1.5 MB, more than the 1 MB allowed (GLYPHGATE_MAX_UPLOAD_MB)"
    )
    assert not by_path["a.png"]["error"]


def test_exit_status_0_when_everything_scored_and_nothing_flagged(tmp_path, capsys):
    done = scan_here(capsys, ROOT / "examples" / "glyphs", "--out", tmp_path / "r", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 files: 6 scored, 0 flagged, 0 unreadable" in done.stdout and done.stderr == ""


def test_exit_status_1_when_one_file_is_bad(tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "glyphs", src)
    (src / "notes.txt").write_text("not a scan")
    done = scan_here(capsys, src, "--out", tmp_path / "r", "--no-progress")
    assert done.returncode == 1 and "0 flagged, 1 unreadable" in done.stdout
    assert done.stderr.strip().splitlines() == [
        "glyphgate: notes.txt: not an image in a supported format (PNG, JPEG, TIFF, BMP, GIF, WEBP, PPM)"
    ]


@pytest.mark.parametrize("contents", ["empty", "unreadable"])
def test_exit_status_2_when_nothing_is_usable(tmp_path, contents, capsys):
    src = tmp_path / "src"
    src.mkdir()
    if contents == "unreadable":
        for i in range(3):
            (src / f"notes{i}.txt").write_text("not a scan")
    done = scan_here(capsys, src, "--out", tmp_path / "r", "--no-progress")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and last.startswith("glyphgate: error: ") and "Traceback" not in done.stderr
    if contents == "empty":
        assert last == f"glyphgate: error: {src}: no files in it" and not (tmp_path / "r").exists()
    else:
        assert "none of its 3 files could be scored" in last and len(rows_of(tmp_path / "r")) == 3


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """Three copies of the example page, each with noise pasted over a few of its glyphs (what
    the shipped model flags), each naming its own image."""
    import re

    root = tmp_path_factory.mktemp("pages")
    xml = (ROOT / "examples" / "page" / "page.xml").read_text(encoding="utf-8")
    boxes = [
        tuple(map(int, m.groups()))
        for m in re.finditer(r'<Glyph id="[^"]+"><Coords points="(\d+),(\d+) \d+,\d+ (\d+),(\d+)', xml)
    ]
    rng = np.random.default_rng(1)
    for n in (1, 2, 3):
        page = np.array(Image.open(ROOT / "examples" / "page" / "page.png").convert("L"))
        for x0, y0, x1, y1 in boxes[n * 7 : n * 7 + 4]:
            page[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0))
        Image.fromarray(page).save(root / f"p{n}.png")
        (root / f"p{n}.xml").write_text(
            xml.replace('imageFilename="page.png"', f'imageFilename="p{n}.png"'), encoding="utf-8"
        )
    return root


def test_scan_page_resumes_by_page_and_redoes_the_last_one(pages, tmp_path, capsys):
    whole, out = tmp_path / "whole", tmp_path / "r"
    done = scan_here(capsys, "--page", pages, "--out", whole)
    assert done.returncode == 1, done.stderr
    rows = rows_of(whole)
    assert [r["page"] for r in rows].count("p2.xml") > 10 and summary_of(whole)["flagged"] >= 6
    # a kill part way through p2's rows, in the middle of a line
    out.mkdir()
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(
            [r for r in rows if r["page"] == "p1.xml"] + [r for r in rows if r["page"] == "p2.xml"][:10]
        )
        f.write("p2.xml,l1,w1_0")
    again = scan_here(capsys, "--page", pages, "--out", out, "--resume")
    assert again.returncode == 1, again.stderr
    assert "p1.xml" not in again.stdout and "p2.xml" in again.stdout  # p1 was done: skipped
    assert rows_of(out) == rows
    assert not (out / "p1.glyphgate.xml").exists() and (out / "p2.glyphgate.xml").exists()
    summary = summary_of(out)
    assert summary["pages"] == 3 and summary["flagged"] == summary_of(whole)["flagged"]
    # p1's flagged glyphs were cut again for the sheet: the same sheet as one whole run's
    assert (out / "flagged.png").read_bytes() == (whole / "flagged.png").read_bytes()


def test_scan_page_exit_status_and_one_line_per_bad_page(pages, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(pages, src)
    (src / "p4.xml").write_text("<PcGts>cut off", encoding="utf-8")
    done = scan_here(capsys, "--page", src, "--out", tmp_path / "r")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"glyphgate: error: {src / 'p4.xml'}: not well-formed PAGE-XML (ParseError: no element found: line 1, column 14)"
    ]
    for n in (1, 2, 3):
        (src / f"p{n}.xml").write_text("<PcGts>cut off", encoding="utf-8")
    none = scan_here(capsys, "--page", src, "--out", tmp_path / "r2")
    err = none.stderr.strip().splitlines()
    assert (
        none.returncode == 2
        and len(err) == 5
        and err[-1] == f"glyphgate: error: {src}: no page could be scanned (4 errors)"
    )
