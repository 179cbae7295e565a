"""ALTO v2, v3 and v4 beside PAGE-XML, on pages the project renders itself in both formats: an
ALTO page imports and scans as its PAGE twin does, and its verdicts go back into a copy that
re-imports as the page itself. Scored by the shipped model (artifacts/default): seconds."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from PIL import Image

from corpus.synth.page import DEFAULT_TEXT, render_page
from glyphgate.cli import main
from glyphgate.core.contract.artifacts import SHIPPED
from glyphgate.core.pages.formats import annotate, page_files, read_page
from glyphgate.core.pages.model import our_fields
from glyphgate.core.pages.to_score import PageToScore

# name -> render_page arguments; each is compared with the PAGE page of the same glyph level
VARIANTS = {
    "v4-glyph": dict(version="4", glyph_level=True),
    "v4-string": dict(version="4", glyph_level=False),
    "v3-string": dict(version="3", glyph_level=False),
    "v2-string": dict(version="2", glyph_level=False),
    "v4-glyph-mm10": dict(version="4", glyph_level=True, unit="mm10"),
    "v2-string-mm10": dict(version="2", glyph_level=False, unit="mm10"),
}
LETTERS = [ch for line in DEFAULT_TEXT for ch in line if not ch.isspace()]


def _ns(root) -> str:
    return root.tag[: root.tag.index("}") + 1]


def _crops(root: Path) -> dict[str, bytes]:
    """Every image an import wrote, by its path in the import: what training reads."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _import(xml: Path, out: Path, *extra) -> dict:
    assert main(["data", "import-page", str(xml), "--out", str(out), "--no-progress", *extra]) == 0
    return json.loads((out / "import.json").read_text(encoding="utf-8"))


def _scan(xml: Path, out: Path, *extra) -> list[dict]:
    assert main(["scan", "--page", str(xml), "--artifacts", str(SHIPPED), "--out", str(out), *extra]) in (
        0,
        1,
    )
    return json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]


def _verdicts(rows: list[dict]) -> list[tuple]:
    return [(r["line"], r["word"], r["glyph"], r["text"], r["label"], round(r["energy"], 5)) for r in rows]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The PAGE pages (glyph and word level), each imported and scanned once, and every ALTO
    variant of them. Every page is named p1 in a folder of its own, so crops compare by name."""
    root = tmp_path_factory.mktemp("alto")
    for level, glyph_level in (("glyph", True), ("word", False)):
        render_page(root / "page" / level, "p1", glyph_level=glyph_level)
        _import(root / "page" / level / "p1.xml", root / "page" / level / "import")
        _scan(root / "page" / level / "p1.xml", root / "page" / level / "scan")
    for name, kw in VARIANTS.items():
        render_page(root / name, "p1", fmt="alto", **kw)
    return root


def _twin(pages: Path, name: str) -> Path:
    return pages / "page" / ("glyph" if VARIANTS[name]["glyph_level"] else "word")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_an_alto_page_imports_the_crops_its_page_xml_twin_imports(pages, tmp_path, name):
    summary = _import(pages / name / "p1.xml", tmp_path / "import")
    twin = _twin(pages, name)
    assert _crops(tmp_path / "import") == _crops(twin / "import"), name
    original = json.loads((twin / "import" / "import.json").read_text(encoding="utf-8"))
    assert summary["totals"] == original["totals"] and summary["totals"]["glyphs"] > 100


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_scan_writes_the_verdicts_into_the_alto_and_the_copy_round_trips(pages, tmp_path, name):
    """The same verdicts as the PAGE twin's; in the copy, a tag per glyph (GC on v4 Glyphs, new
    Glyphs for a v4 split, the box in the tag in v2/v3); the copy re-imports as the page itself
    and scanning it writes the same copy."""
    rows = _scan(pages / name / "p1.xml", tmp_path / "scan")
    twin = _twin(pages, name)
    assert _verdicts(rows) == _verdicts(json.loads((twin / "scan" / "results.json").read_text())["results"])
    assert [r["text"] for r in rows] == LETTERS
    annotated = tmp_path / "scan" / "p1.glyphgate.xml"
    root = SafeET.parse(str(annotated)).getroot()
    ns = _ns(root)
    assert [c.tag for c in root] == [f"{ns}Description", f"{ns}Tags", f"{ns}Layout"]  # the schema's order
    tags = {t.get("ID"): t for t in root.find(f"{ns}Tags")}
    assert len(tags) == len(rows)
    refs = [r for s in root.iter(f"{ns}String") for r in s.get("TAGREFS", "").split()]
    assert refs == [f"glyphgate_{r['glyph']}" for r in rows]  # each glyph's String names its tag
    glyphs = {g.get("ID"): g for g in root.iter(f"{ns}Glyph")}
    for r in rows:
        tag = tags[f"glyphgate_{r['glyph']}"]
        fields = our_fields(tag.get("DESCRIPTION"))
        assert tag.get("TYPE") == "glyphgate-verdict" and tag.get("LABEL") == r["label"] == fields["label"]
        assert float(fields["energy"]) == pytest.approx(r["energy"], abs=1e-4)
        assert fields["is_ood"] == str(r["is_ood"]).lower() and fields["glyph"] == r["glyph"]
        split = not VARIANTS[name]["glyph_level"]
        assert (fields.get("source") == "split") == split
        if VARIANTS[name]["version"] == "4":
            assert float(glyphs[r["glyph"]].get("GC")) == pytest.approx(r["confidence"], abs=1e-4)
            assert glyphs[r["glyph"]].get("CONTENT") == r["text"]
        else:
            assert not glyphs and {"hpos", "vpos", "width", "height"} <= set(fields)
    # the copy imports as the page itself: its split Glyphs are left out, predictions never labels
    # (named p1.xml, so its crops are named as the page's are)
    (tmp_path / "copy").mkdir()
    shutil.copy(annotated, tmp_path / "copy" / "p1.xml")
    shutil.copy(pages / name / "p1.png", tmp_path / "copy" / "p1.png")
    summary = _import(tmp_path / "copy" / "p1.xml", tmp_path / "again")
    assert _crops(tmp_path / "again") == _crops(twin / "import")
    assert summary["totals"].get("words split", 0) == (0 if VARIANTS[name]["glyph_level"] else 29)
    _scan(tmp_path / "copy" / "p1.xml", tmp_path / "rescan")
    assert (tmp_path / "rescan" / "p1.glyphgate.xml").read_bytes() == annotated.read_bytes()


def test_a_split_that_misses_the_transcription_writes_labels_that_never_come_back_as_truth(pages, tmp_path):
    """An OCR'd ALTO whose `kunst` has a letter too many: its split Glyphs take the model's
    labels (content:label), and the copy still imports as the page, without them."""
    src = tmp_path / "src"
    shutil.copytree(pages / "v4-string", src)
    text = (src / "p1.xml").read_text(encoding="utf-8")
    assert text.count('CONTENT="kunst"') == 1
    (src / "p1.xml").write_text(text.replace('CONTENT="kunst"', 'CONTENT="kunstx"'), encoding="utf-8")
    original = _import(src / "p1.xml", tmp_path / "original")
    rows = _scan(src / "p1.xml", tmp_path / "scan")
    unlabelled = [r for r in rows if r["word"] == "w0_7"]
    assert len(unlabelled) == 5 and all(r["text"] == "" for r in unlabelled)
    root = SafeET.parse(str(tmp_path / "scan" / "p1.glyphgate.xml")).getroot()
    ns = _ns(root)
    made = {g.get("ID"): g.get("CONTENT") for g in root.iter(f"{ns}Glyph")}
    assert [made[r["glyph"]] for r in unlabelled] == [r["label"] for r in unlabelled]
    content = {t.get("ID"): our_fields(t.get("DESCRIPTION"))["content"] for t in root.find(f"{ns}Tags")}
    assert content[f"glyphgate_{unlabelled[0]['glyph']}"] == "label"
    assert content[f"glyphgate_{rows[0]['glyph']}"] == "transcription"
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "scan" / "p1.glyphgate.xml", tmp_path / "copy" / "p1.xml")
    shutil.copy(src / "p1.png", tmp_path / "copy" / "p1.png")
    for extra in ((), ("--accept-predictions",)):
        again = _import(tmp_path / "copy" / "p1.xml", tmp_path / f"again{len(extra)}", *extra)
        if not extra:
            assert _crops(tmp_path / "again0") == _crops(tmp_path / "original")
            assert again["totals"] == original["totals"]
    # the split Glyphs hold the boxes the split cut (read back as the page's own Glyphs are)
    split_boxes = {g.id: g.box for _, g in PageToScore.cut(src / "p1.xml", None).glyphs}
    page, _ = read_page(tmp_path / "copy" / "p1.xml")
    assert {g.id: g.box for line in page.lines for w in line.words for g in w.glyphs if g.ours} == split_boxes
    # accepted predictions: the unflagged labels of kunst's Glyphs, never their CONTENT as truth
    accepted = again["totals"].get("predictions as labels", 0)
    assert accepted == sum(not r["is_ood"] for r in unlabelled)


def test_a_glyphs_own_gc_is_kept_and_restored(pages, tmp_path):
    src = tmp_path / "p1.xml"
    text = (pages / "v4-glyph" / "p1.xml").read_text(encoding="utf-8")
    src.write_text(text.replace('<Glyph ID="g0_0_0" ', '<Glyph ID="g0_0_0" GC="0.42" '), encoding="utf-8")
    shutil.copy(pages / "v4-glyph" / "p1.png", tmp_path / "p1.png")
    rows = _scan(src, tmp_path / "scan")
    annotated = (tmp_path / "scan" / "p1.glyphgate.xml").read_bytes()
    glyph = re.search(rb'<Glyph ID="g0_0_0"[^>]*>', annotated).group(0).decode()
    assert f'GC="{rows[0]["confidence"]:.4f}"' in glyph
    assert re.search(rb'DESCRIPTION="glyphgate \{glyph:g0_0_0; [^"]* gc:0.42;\}"', annotated)
    # what the annotation wrote comes off whole: no verdicts on either gives the same file
    bare, again = tmp_path / "bare.xml", tmp_path / "again.xml"
    annotate(src, {}, {}, bare)
    annotate(annotated, {}, {}, again)
    assert again.read_bytes() == bare.read_bytes() and b'GC="0.42"' in bare.read_bytes()


def test_missing_ids_are_made_from_the_place_the_same_way_every_time(pages, tmp_path):
    text = (pages / "v4-glyph" / "p1.xml").read_text(encoding="utf-8")
    text = re.sub(r'<(TextLine|String|Glyph) ID="[^"]*"', r"<\1", text)
    (tmp_path / "p1.xml").write_text(text, encoding="utf-8")
    shutil.copy(pages / "v4-glyph" / "p1.png", tmp_path / "p1.png")
    rows = _scan(tmp_path / "p1.xml", tmp_path / "scan")
    page_rows = json.loads((pages / "page" / "glyph" / "scan" / "results.json").read_text())["results"]
    assert [(r["text"], r["label"], round(r["energy"], 5)) for r in rows] == [
        (r["text"], r["label"], round(r["energy"], 5)) for r in page_rows
    ]
    assert rows[0]["glyph"] == "r0_line0_string0_glyph0" and rows[-1]["line"] == "r0_line3"
    annotated = tmp_path / "scan" / "p1.glyphgate.xml"
    assert annotated.read_text(encoding="utf-8").count("glyphgate-verdict") == len(rows)
    shutil.copy(annotated, tmp_path / "copy.xml")
    _scan(tmp_path / "copy.xml", tmp_path / "rescan")
    assert (tmp_path / "rescan" / "copy.glyphgate.xml").read_bytes() == annotated.read_bytes()


def test_shape_polygons_read_in_either_point_form_and_bytes_read_as_the_file(pages):
    text = (pages / "v4-string" / "p1.xml").read_text(encoding="utf-8")
    first = '<String ID="w0_0" CONTENT="Das" HPOS="85" VPOS="119" WIDTH="88" HEIGHT="39">'
    assert first in text
    page, _ = read_page(pages / "v4-string" / "p1.xml")
    word = page.lines[0].words[0]
    for points in ("85,119 173,119 173,158 85,158", "85 119 173 119 173 158 85 158"):
        shaped = text.replace(
            first, first.replace(' HPOS="85"', "") + f'<Shape><Polygon POINTS="{points}"/></Shape>'
        )
        got, warnings = read_page("named.xml", shaped.encode("utf-8"))
        assert got.xml == Path("named.xml") and not warnings
        assert got.lines[0].words[0].box == word.box and (got.lines[0].words[0].polygon == word.polygon).all()
    assert page.units == "pixel" and page.size == (Image.open(pages / "v4-string" / "p1.png").size[::-1])
    mm10, _ = read_page(pages / "v4-glyph-mm10" / "p1.xml")
    assert mm10.units == "mm10" and mm10.size[1] == pytest.approx(1200 * 254 / 300)


def test_an_image_of_another_size_is_refused_in_pixels_and_scaled_in_mm10(pages, tmp_path, capsys):
    with Image.open(pages / "page" / "word" / "p1.png") as im:
        im.resize((im.width * 2, im.height * 2), Image.LANCZOS).save(tmp_path / "double.png")
    double = ["--image", str(tmp_path / "double.png")]
    assert (
        main(
            [
                "data",
                "import-page",
                str(pages / "v2-string" / "p1.xml"),
                "--out",
                str(tmp_path / "a"),
                *double,
            ]
        )
        == 2
    )
    assert "pass --rescale" in capsys.readouterr().err
    summary = _import(pages / "v2-string-mm10" / "p1.xml", tmp_path / "b", *double)
    assert (
        summary["totals"]["glyphs"]
        == json.loads((pages / "page" / "word" / "import" / "import.json").read_text())["totals"]["glyphs"]
    )


BAD_ALTO = {
    "entity": (
        '<?xml version="1.0"?><!DOCTYPE alto [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout>&x;</Layout></alto>',
        "not well-formed ALTO (DTDForbidden",  # the DTD that would declare it is refused first
    ),
    "dtd": (
        '<?xml version="1.0"?><!DOCTYPE alto><alto xmlns="http://www.loc.gov/standards/alto/ns-v3#"/>',
        "not well-formed ALTO (DTDForbidden",
    ),
    "wrong_root": ('<alto xmlns="http://www.loc.gov/standards/alto/ns-v1#"/>', "not a PAGE-XML or ALTO file"),
    "no_page": (
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout/></alto>',
        "no Layout/Page element",
    ),
    "mm10_without_size": (
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#"><Description><MeasurementUnit>mm10'
        '</MeasurementUnit></Description><Layout><Page ID="p" PHYSICAL_IMG_NR="1"/></Layout></alto>',
        "no Page/@WIDTH and @HEIGHT",
    ),
    "unknown_unit": (
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description><MeasurementUnit>cm'
        '</MeasurementUnit></Description><Layout><Page ID="p" PHYSICAL_IMG_NR="1"/></Layout></alto>',
        "MeasurementUnit 'cm' is none of pixel, mm10, inch1200",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ALTO))
def test_a_bad_alto_is_refused_in_one_line(tmp_path, capsys, case):
    text, message = BAD_ALTO[case]
    (tmp_path / "p.xml").write_text(text, encoding="utf-8")
    code = main(
        ["scan", "--page", str(tmp_path / "p.xml"), "--artifacts", str(SHIPPED), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and str(tmp_path / "p.xml") in err[0], err


def test_a_folder_holds_alto_and_page_xml_pages_and_passes_over_other_xml(pages, tmp_path):
    shutil.copy(pages / "page" / "word" / "p1.xml", tmp_path / "a.xml")
    shutil.copy(pages / "v3-string" / "p1.xml", tmp_path / "b.xml")
    (tmp_path / "mets.xml").write_text('<mets:mets xmlns:mets="http://www.loc.gov/METS/"/>', encoding="utf-8")
    assert page_files(tmp_path) == [tmp_path / "a.xml", tmp_path / "b.xml"]


@pytest.mark.skipif(
    importlib.util.find_spec("ocrd_page_to_alto") is None,
    reason="ocrd-page-to-alto (the dev extra) converts PAGE to ALTO; it is not installed",
)
@pytest.mark.parametrize("alto_version", ["4.2", "2.1"])
def test_a_page_converted_by_page_to_alto_scans_as_the_page(pages, tmp_path, alto_version):
    """The registries' converter (OCR-D's page-to-alto) writes String-level ALTO with Shape
    polygons: its pages give the word-level PAGE page's verdicts, word split and all."""
    twin = pages / "page" / "word"
    converted = tmp_path / "p1.xml"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "page-to-alto"),
            "--alto-version",
            alto_version,
            str(twin / "p1.xml"),
        ]
        + ["-O", str(converted)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert b"alto/ns-v" in converted.read_bytes()[:1000]
    rows = _scan(converted, tmp_path / "scan", "--image", str(twin / "p1.png"))
    assert _verdicts(rows) == _verdicts(json.loads((twin / "scan" / "results.json").read_text())["results"])
