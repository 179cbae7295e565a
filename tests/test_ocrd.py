"""ocrd-glyphgate-gate in a METS workspace built with OCR-D's own CLI from pages the project
renders: its verdicts are `glyphgate scan --page`'s, its output validates, and OCR-D's
conventions (page ranges, derived images, existing-/missing-output policies, `ocrd process`)
hold. Every processor run is a real subprocess on the shipped model."""

import csv
import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("ocrd", reason="the dev extra installs OCR-D; without it there is no processor to test")

from ocrd_validators import XsdPageValidator  # noqa: E402

from corpus.synth.page import render_page  # noqa: E402
from glyphgate.cli import main  # noqa: E402
from glyphgate.core.pages.model import our_fields  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHIPPED = ROOT / "artifacts" / "default"
PAGE_NS = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"
LINES = ["Das ist ein gedruckt buch", "Gott hilf uns"]
CROP = (20, 30)  # the derived image of page 3 starts here on the page


def _run(args, cwd, check=True, **env):
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        # `ocrd process` finds the processors on PATH
        env={
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "GLYPHGATE_ARTIFACTS": str(SHIPPED),
            **env,
        },
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _page_xml(src: Path, image: str, extra: str = "") -> str:
    text = src.read_text(encoding="utf-8").replace(
        f'imageFilename="{src.stem}.png"', f'imageFilename="{image}"'
    )
    return re.sub(r"(<Page [^>]*>)", lambda m: m.group(1) + extra, text, count=1)


def _set_identifier(mets: Path) -> None:
    """What a library's METS always has and `ocrd workspace init` leaves out (validate requires it)."""
    from ocrd_models import OcrdMets

    doc = OcrdMets(filename=str(mets))
    doc.unique_identifier = "urn:glyphgate:test-workspace"
    mets.write_bytes(doc.to_xml(xmllint=True))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Four pages: a glyph-level page, a word-level page, the first page again with a cropped
    derived image (AlternativeImage + Border, as ocrd-*-crop processors leave it) and a page whose
    image is broken; then the processor run over all of them, as an archive would run it (a failed
    page may not abort the others: OCRD_MAX_MISSING_OUTPUTS=-1)."""
    root = tmp_path_factory.mktemp("ocrd")
    src, ws = root / "src", root / "ws"
    render_page(src, "p1", lines=LINES, glyph_level=True)
    render_page(src, "p2", lines=LINES[::-1], glyph_level=False, seed=1)
    for grp in ("OCR-D-IMG", "OCR-D-SEG", "OCR-D-CROP", "OCR-D-ALTO"):
        (ws / grp).mkdir(parents=True)
    for n, name in ((1, "p1"), (2, "p2"), (3, "p1"), (4, "p2")):
        (ws / "OCR-D-IMG" / f"PHYS_000{n}.png").write_bytes((src / f"{name}.png").read_bytes())
    with Image.open(src / "p1.png") as im:
        w, h = im.size
        im.crop((CROP[0], CROP[1], w - 10, h - 20)).save(ws / "OCR-D-CROP" / "PHYS_0003.png")
    broken = (src / "p2.png").read_bytes()
    (ws / "OCR-D-IMG" / "PHYS_0004.png").write_bytes(broken[: len(broken) // 3])
    x0, y0 = CROP
    derived = (
        '<AlternativeImage filename="OCR-D-CROP/PHYS_0003.png" comments="cropped"/>'
        f'<Border><Coords points="{x0},{y0} {w - 11},{y0} {w - 11},{h - 21} {x0},{h - 21}"/></Border>'
    )
    for n, name, extra in ((1, "p1", ""), (2, "p2", ""), (3, "p1", derived), (4, "p2", "")):
        xml = _page_xml(src / f"{name}.xml", f"OCR-D-IMG/PHYS_000{n}.png", extra)
        (ws / "OCR-D-SEG" / f"PHYS_000{n}.xml").write_text(xml, encoding="utf-8")
    render_page(ws / "OCR-D-ALTO", "PHYS_0001", lines=LINES, glyph_level=True, fmt="alto")
    (ws / "OCR-D-ALTO" / "PHYS_0001.png").unlink()  # its image is the workspace's, found by the METS
    _run(["ocrd", "workspace", "-d", str(ws), "init"], root)
    mimetypes = {".png": "image/png", ".xml": "application/vnd.prima.page+xml"}
    files = [
        f"{p.stem} {p.parent.name} {'application/alto+xml' if 'ALTO' in p.parent.name else mimetypes[p.suffix]} "
        f"{p.relative_to(ws)}"
        for p in sorted(ws.glob("OCR-D-*/*.*"))
    ]
    subprocess.run(
        [str(BIN / "ocrd"), "workspace", "-d", str(ws), "bulk-add"]
        + ["-r", r"(?P<page>\S+) (?P<grp>\S+) (?P<mime>\S+) (?P<path>\S+)"]
        + ["-G", "{{ grp }}", "-g", "{{ page }}", "-i", "{{ grp }}_{{ page }}", "-m", "{{ mime }}"]
        + ["-l", "{{ path }}", "-"],
        input="\n".join(files) + "\n",
        cwd=ws,
        check=True,
        capture_output=True,
        text=True,
    )
    _set_identifier(ws / "mets.xml")
    gate = _run(
        ["ocrd-glyphgate-gate", "-m", "mets.xml", "-I", "OCR-D-SEG", "-O", "OCR-D-GATE"],
        ws,
        OCRD_MAX_MISSING_OUTPUTS="-1",
    )
    return {"root": root, "src": src, "ws": ws, "gate": gate}


@pytest.fixture(scope="module")
def scan_page_rows(workspace):
    """`glyphgate scan --page` on the two original pages: glyph id -> its row."""
    out = workspace["root"] / "scan"
    code = main(["scan", "--page", str(workspace["src"]), "--artifacts", str(SHIPPED), "--out", str(out)])
    assert code in (0, 1)
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {page: {r["glyph"]: r for r in rows if r["page"] == f"{page}.xml"} for page in ("p1", "p2")}


def _verdicts(xml: Path) -> dict[str, dict]:
    """Glyph id -> glyphgate's fields, read back from a PAGE file the processor wrote."""
    from defusedxml import ElementTree as SafeET

    root = SafeET.parse(str(xml)).getroot()
    return {
        g.get("id"): our_fields(g.get("custom"))
        for g in root.iter(f"{PAGE_NS}Glyph")
        if our_fields(g.get("custom"))
    }


def _output(ws: Path, grp: str, page: str) -> Path:
    return ws / grp / f"{grp}_{page}.xml"


def test_the_tool_description_validates_and_help_names_its_parameters(tmp_path):
    tool = json.loads(_run(["ocrd-glyphgate-gate", "--dump-json"], tmp_path).stdout)
    bundled = json.loads((ROOT / "glyphgate" / "ocrd" / "ocrd-tool.json").read_text(encoding="utf-8"))
    assert bundled["version"] == version("glyphgate")
    wrapped = tmp_path / "ocrd-tool.json"
    wrapped.write_text(json.dumps({**bundled, "tools": {tool["executable"]: tool}}), encoding="utf-8")
    report = _run(["ocrd", "ocrd-tool", str(wrapped), "validate"], tmp_path).stdout
    assert 'valid="true"' in report, report
    assert tool["input_file_grp_cardinality"] == tool["output_file_grp_cardinality"] == 1
    assert set(tool["parameters"]) == {"artifacts", "level", "alpha", "crop"}


def test_every_page_is_gated_as_scan_page_gates_it(workspace, scan_page_rows):
    ws = workspace["ws"]
    for page, name in (("PHYS_0001", "p1"), ("PHYS_0002", "p2"), ("PHYS_0003", "p1")):
        got, want = _verdicts(_output(ws, "OCR-D-GATE", page)), scan_page_rows[name]
        assert sorted(got) == sorted(want) and want, page
        for gid, v in got.items():
            assert v["label"] == want[gid]["label"], (page, gid)
            assert abs(float(v["energy"]) - float(want[gid]["energy"])) < 1e-3, (page, gid)
            assert v["is_ood"] == want[gid]["is_ood"].lower(), (page, gid)
        # the word-level page's glyphs come from the word split, marked as glyphgate's
        assert all((v.get("source") == "split") == (name == "p2") for v in got.values())


def test_a_page_whose_image_is_broken_is_reported_and_the_others_still_written(workspace):
    ws, gate = workspace["ws"], workspace["gate"]
    assert not _output(ws, "OCR-D-GATE", "PHYS_0004").exists()
    log = gate.stdout + gate.stderr
    failure = [line for line in log.splitlines() if "PHYS_0004" in line and "ERROR" in line]
    assert len(failure) == 1 and "OCR-D-IMG/PHYS_0004.png: unreadable page image" in failure[0], log[-2000:]
    assert "Traceback" not in log  # one line, as a bad file gets everywhere in glyphgate
    mets = (ws / "mets.xml").read_text(encoding="utf-8")
    assert mets.count('FILEID="OCR-D-GATE_PHYS_000') == 3  # in the METS, one per page written


def test_outputs_validate_and_carry_the_processing_step(workspace):
    ws = workspace["ws"]
    for page in ("PHYS_0001", "PHYS_0002", "PHYS_0003"):
        out = _output(ws, "OCR-D-GATE", page)
        report = XsdPageValidator.validate(out.read_bytes())
        assert report.is_valid, (page, report.errors[:3])
        text = out.read_text(encoding="utf-8")
        assert re.search(r'<(pc:)?MetadataItem [^>]*value="ocrd-glyphgate-gate"', text), text[:1500]
    # the output file group (the input holds the broken page on purpose); the rendered pages carry
    # no resolution (a scan's TIFF would): the one check skipped
    report = _run(
        ["ocrd", "workspace", "-d", str(ws), "validate", "-s", "pixel_density", "-q", "OCR-D-GATE"],
        ws,
        check=False,
    )
    assert 'valid="true"' in report.stdout, report.stdout[-3000:]


def test_ocrd_process_chains_it_with_a_page_range_level_and_alpha(workspace):
    ws = workspace["ws"]
    _run(
        ["ocrd", "process", "-m", "mets.xml", "-g", "PHYS_0001,PHYS_0002"]
        + [
            "dummy -I OCR-D-SEG -O OCR-D-COPY",
            "glyphgate-gate -I OCR-D-COPY -O OCR-D-GATE2 -P level glyph -P alpha 0.9",
        ],
        ws,
    )
    assert not _output(ws, "OCR-D-GATE2", "PHYS_0003").exists()  # outside the page range
    first = _verdicts(_output(ws, "OCR-D-GATE", "PHYS_0001"))
    again = _verdicts(_output(ws, "OCR-D-GATE2", "PHYS_0001"))
    assert sorted(again) == sorted(first)
    for gid, v in again.items():
        assert v["energy"] == first[gid]["energy"]
        assert v["is_ood"] == str(float(v["p_value"]) < 0.9).lower(), gid
    # the rule did change: glyphs the threshold passes are flagged at alpha 0.9
    assert any(v["is_ood"] == "true" and first[gid]["is_ood"] == "false" for gid, v in again.items())
    # level glyph: a page without Glyph elements gets no word split, hence no verdicts
    assert _verdicts(_output(ws, "OCR-D-GATE2", "PHYS_0002")) == {}


def test_existing_output_is_refused_in_one_line_and_replaced_with_overwrite(workspace):
    ws = workspace["ws"]
    out = _output(ws, "OCR-D-GATE", "PHYS_0001")
    before, verdicts = out.stat().st_mtime_ns, _verdicts(out)
    args = ["ocrd-glyphgate-gate", "-m", "mets.xml", "-I", "OCR-D-SEG", "-O", "OCR-D-GATE", "-g", "PHYS_0001"]
    refused = _run(args, ws, check=False)
    assert refused.returncode != 0 and out.stat().st_mtime_ns == before
    assert refused.stderr.strip().splitlines()[-1].startswith("ocrd-glyphgate-gate: error: Output fileGrp")
    assert "Traceback" not in refused.stderr and "--overwrite" in refused.stderr
    _run(args + ["--overwrite"], ws)
    assert out.stat().st_mtime_ns != before and _verdicts(out) == verdicts


def test_a_missing_model_is_one_line(workspace, tmp_path):
    proc = _run(
        [
            "ocrd-glyphgate-gate",
            "-m",
            "mets.xml",
            "-I",
            "OCR-D-SEG",
            "-O",
            "OCR-D-NONE",
            "-P",
            "artifacts",
            str(tmp_path),
        ],
        workspace["ws"],
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"ocrd-glyphgate-gate: error: {tmp_path}"), (
        proc.stderr
    )


def test_pages_in_parallel_through_a_mets_server_give_the_same_verdicts(workspace):
    """OCRD_MAX_PARALLEL_PAGES=2 forks two page workers (OCR-D requires a METS server for it);
    each opens its own ONNX Runtime session."""
    ws, sock = workspace["ws"], workspace["root"] / "mets.sock"
    server = subprocess.Popen(
        [str(BIN / "ocrd"), "workspace", "-d", str(ws), "-U", str(sock), "server", "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        pages = "PHYS_0001,PHYS_0002,PHYS_0003"
        args = [
            "ocrd-glyphgate-gate",
            "-U",
            str(sock),
            "-m",
            "mets.xml",
            "-I",
            "OCR-D-SEG",
            "-O",
            "OCR-D-PAR",
        ]
        par = _run(args + ["-g", pages, "-l", "DEBUG"], ws, OCRD_MAX_PARALLEL_PAGES="2")
        assert "with 2 workers" in par.stderr
    finally:
        _run(["ocrd", "workspace", "-d", str(ws), "-U", str(sock), "server", "stop"], ws, check=False)
        server.wait(timeout=30)
    for page in pages.split(","):
        assert _verdicts(_output(ws, "OCR-D-PAR", page)) == _verdicts(_output(ws, "OCR-D-GATE", page)), page


def test_an_alto_input_file_gets_an_alto_copy_with_scan_pages_verdicts(workspace, scan_page_rows):
    from defusedxml import ElementTree as SafeET

    ws = workspace["ws"]
    _run(["ocrd-glyphgate-gate", "-m", "mets.xml", "-I", "OCR-D-ALTO", "-O", "OCR-D-GATE-ALTO"], ws)
    out = _output(ws, "OCR-D-GATE-ALTO", "PHYS_0001")
    root = SafeET.parse(str(out)).getroot()
    assert root.tag == "{http://www.loc.gov/standards/alto/ns-v4#}alto"
    tags = [our_fields(t.get("DESCRIPTION")) for t in root.iter() if t.tag.endswith("}OtherTag")]
    got = {f["glyph"]: f for f in tags if f}
    want = scan_page_rows["p1"]
    assert sorted(got) == sorted(want)
    for gid, v in got.items():
        assert (
            abs(float(v["energy"]) - float(want[gid]["energy"])) < 1e-3
            and v["is_ood"] == want[gid]["is_ood"].lower()
        )
    assert 'MIMETYPE="application/alto+xml"' in (ws / "mets.xml").read_text(encoding="utf-8")


def test_process_page_pcgts_gives_what_the_cli_writes(workspace, monkeypatch):
    """The v3 API's per-page entry (what OCR-D's processing workers call, in process), on the
    page with a derived image: the verdicts the command wrote."""
    from ocrd import Resolver
    from ocrd_modelfactory import page_from_file
    from ocrd_models.ocrd_page import to_xml

    from glyphgate.ocrd.processor import GlyphgateGate

    ws = workspace["ws"]
    monkeypatch.chdir(ws)
    monkeypatch.setenv("GLYPHGATE_ARTIFACTS", str(SHIPPED))
    processor = GlyphgateGate(None, parameter={})
    processor.workspace = Resolver().workspace_from_url(str(ws / "mets.xml"))
    page = next(processor.workspace.mets.find_files(fileGrp="OCR-D-SEG", pageId="PHYS_0003"))
    result = processor.process_page_pcgts(page_from_file(page), page_id="PHYS_0003")
    out = ws.parent / "pcgts.xml"
    out.write_text(to_xml(result.pcgts), encoding="utf-8")
    assert _verdicts(out) == _verdicts(_output(ws, "OCR-D-GATE", "PHYS_0003")) != {}
