"""Per-page time of `ocrd-glyphgate-gate` against `glyphgate scan --page` on the same real pages.

The Kant pages (../shared/real/kant_aufklaerung_1784: PAGE-XML word level, binarised and
greyscale images) are laid out as an OCR-D workspace under --workdir (never in the repository),
once with each image; each is scanned by `scan --page` and by the processor, as PAGE and as ALTO
(converted with ocrd-page-to-alto's `page-to-alto`, when it is installed). Both are timed as the
whole command a user runs (start-up included), --repeat times, median; the processor's verdicts
are checked against scan --page's (energies within 1e-3, same flags).

    python bench/ocrd_pages.py --workdir /tmp/ocrd_bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from defusedxml import ElementTree as SafeET

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KANT = ROOT.parent / "shared" / "real" / "kant_aufklaerung_1784"
PAGES = ("0017", "0020")
IMAGES = {"BIN": "OCR-D-IMG-BIN/BIN_{n}.png", "NRM": "OCR-D-IMG-NRM/NRM_{n}.png"}
MIMETYPE = {"PAGE": "application/vnd.prima.page+xml", "ALTO": "application/alto+xml"}


def run(args: list[str], cwd: Path, **env) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc


def workspace(workdir: Path, variant: str, fmt: str) -> Path:
    """An OCR-D workspace of the two pages with the variant's image as Page/@imageFilename (the
    published AlternativeImages name files this copy does not hold), in PAGE or in ALTO."""
    ws = workdir / f"{variant}-{fmt}"
    shutil.rmtree(ws, ignore_errors=True)
    (ws / "OCR-D-IMG").mkdir(parents=True)
    (ws / "OCR-D-GT").mkdir()
    for n in PAGES:
        image = f"OCR-D-IMG/{variant}_{n}.png"
        shutil.copy(KANT / IMAGES[variant].format(n=n), ws / image)
        xml = (KANT / "OCR-D-GT-WORD" / f"INPUT_{n}.xml").read_text(encoding="utf-8")
        xml = re.sub(r"<AlternativeImage[^>]*/>", "", xml)
        xml = re.sub(r'imageFilename="[^"]*"', f'imageFilename="{image}"', xml)
        (ws / "OCR-D-GT" / f"{n}.xml").write_text(xml, encoding="utf-8")
    if fmt == "ALTO":
        for n in PAGES:
            page = ws / "OCR-D-GT" / f"{n}.xml"
            run(
                ["page-to-alto", "--alto-version", "4.2", "-O", str(page.with_suffix(".alto")), str(page)], ws
            )
            page.with_suffix(".alto").replace(page)
    run(["ocrd", "workspace", "-d", str(ws), "init"], ws)
    for n in PAGES:
        for grp, name, mimetype in (
            ("OCR-D-IMG", f"{variant}_{n}.png", "image/png"),
            ("OCR-D-GT", f"{n}.xml", MIMETYPE[fmt]),
        ):
            run(
                ["ocrd", "workspace", "-d", str(ws), "add", "-G", grp, "-i", f"{grp}_{n}", "-g", f"PHYS_{n}"]
                + ["-m", mimetype, f"{grp}/{name}"],
                ws,
            )
    return ws


def scan_rows(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        return {(r["page"].removesuffix(".xml"), r["glyph"]): r for r in csv.DictReader(f)}


def gate_verdicts(ws: Path) -> dict[tuple[str, str], dict]:
    from glyphgate.core.pages.model import our_fields

    out = {}
    for xml in sorted((ws / "OCR-D-GATE").glob("*.xml")):
        n = re.search(r"(\d{4})", xml.stem).group(1)
        root = SafeET.parse(str(xml)).getroot()
        for el in root.iter():
            if el.tag.endswith("}Glyph"):
                fields = our_fields(el.get("custom"))
                if fields:
                    out[(n, el.get("id"))] = fields
            elif el.tag.endswith("}OtherTag") and (el.get("TYPE") or "").startswith("glyphgate"):
                fields = our_fields(el.get("DESCRIPTION"))
                if fields:
                    out[(n, fields.get("glyph", el.get("ID")))] = fields
    return out


def measure(workdir: Path, variant: str, fmt: str, repeat: int, artifacts: Path) -> dict:
    ws = workspace(workdir, variant, fmt)
    scans, gates, scan_work, gate_work = [], [], [], []
    for _ in range(repeat):
        out = workdir / f"{variant}-{fmt}-scan"
        wall, _ = run(
            ["glyphgate", "scan", "--page", str(ws / "OCR-D-GT"), "--artifacts", str(artifacts)]
            + ["--out", str(out), "--overwrite"],
            ws,
        )
        scans.append(wall)
        scan_work.append(json.loads((out / "results.json").read_text(encoding="utf-8"))["summary"]["seconds"])
        wall, proc = run(
            ["ocrd-glyphgate-gate", "-m", "mets.xml", "-I", "OCR-D-GT", "-O", "OCR-D-GATE", "--overwrite"],
            ws,
            GLYPHGATE_ARTIFACTS=str(artifacts),
        )
        gates.append(wall)
        # OCR-D's own profile line: the pages' processing, without the interpreter's start
        gate_work.append(float(re.search(r"took ([\d.]+)s \(wall\)", proc.stderr).group(1)))
    want, got = scan_rows(out), gate_verdicts(ws)
    same = sum(
        1
        for key, r in want.items()
        if key in got
        and abs(float(got[key]["energy"]) - float(r["energy"])) < 1e-3
        and got[key]["is_ood"] == r["is_ood"].lower()
    )
    scan_s, gate_s = statistics.median(scans) / len(PAGES), statistics.median(gates) / len(PAGES)
    return {
        "variant": variant,
        "format": fmt,
        "glyphs": len(want),
        "same_verdicts": same,
        "scan_page_s_per_page": round(scan_s, 3),
        "processor_s_per_page": round(gate_s, 3),
        "overhead_s_per_page": round(gate_s - scan_s, 3),
        "scan_page_work_s_per_page": round(statistics.median(scan_work) / len(PAGES), 3),
        "processor_work_s_per_page": round(statistics.median(gate_work) / len(PAGES), 3),
        "runs": repeat,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "default")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not KANT.is_dir():
        sys.exit(f"bench/ocrd_pages.py: {KANT} not found (the real pages live beside the repository)")
    formats = ["PAGE"] + (["ALTO"] if shutil.which("page-to-alto", path=str(BIN)) else [])
    rows = [
        measure(args.workdir, variant, fmt, args.repeat, args.artifacts.resolve())
        for fmt in formats
        for variant in IMAGES
    ]
    print(
        f"{'pages':<10}{'glyphs':>7}{'same':>7}{'scan --page':>13}{'processor':>11}{'overhead':>10}"
        f"{'scan work':>11}{'proc. work':>12}  (s per page; work: without the command's start)"
    )
    for r in rows:
        print(
            f"{r['variant'] + ' ' + r['format']:<10}{r['glyphs']:>7}{r['same_verdicts']:>7}"
            f"{r['scan_page_s_per_page']:>13.2f}{r['processor_s_per_page']:>11.2f}{r['overhead_s_per_page']:>10.2f}"
            f"{r['scan_page_work_s_per_page']:>11.2f}{r['processor_work_s_per_page']:>12.2f}"
        )
    if "ALTO" not in formats:
        print("ALTO rows skipped: page-to-alto (pip install ocrd-page-to-alto) is not installed")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
