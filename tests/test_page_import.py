"""`glyphgate data import-page` on pages the project renders itself (never the real pages)."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from corpus.synth.faces import CLASSES
from corpus.synth.page import DEFAULT_TEXT, render_page
from glyphgate.cli import main
from glyphgate.core.pages.pagexml import class_of, graphemes


def _tree(root):
    """{class folder: image count} of an import, ood/<kind> included."""
    out = Counter()
    for p in root.rglob("*.png"):
        out[str(p.parent.relative_to(root))] += 1
    return out


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    render_page(root / "glyph", "p1", glyph_level=True)
    render_page(root / "word", "p1", glyph_level=False)
    render_page(root / "old", "p1", glyph_level=True, namespace="2013")
    return root


def _expected_classes():
    letters = [ch for line in DEFAULT_TEXT for ch in line if not ch.isspace()]
    return Counter(ch for ch in letters if ch in CLASSES), sum(ch not in CLASSES for ch in letters)


def test_glyph_level_page_lands_in_class_folders(pages, tmp_path):
    assert main(["data", "import-page", str(pages / "glyph" / "p1.xml"), "--out", str(tmp_path / "out")]) == 0
    tree = _tree(tmp_path / "out")
    classes, others = _expected_classes()
    assert {k: v for k, v in tree.items() if not k.startswith("ood")} == dict(classes)
    assert tree["ood/other_symbols"] == others  # the capital G is not among the classes
    words = sum(len(w) >= 3 for line in DEFAULT_TEXT for w in line.split())
    assert tree["ood/words"] == words and tree["ood/fragments"] > 0 and tree["ood/blank"] > 0
    summary = json.loads((tmp_path / "out" / "import.json").read_text(encoding="utf-8"))
    assert summary["errors"] == [] and summary["totals"]["glyphs"] == sum(classes.values())


def test_word_level_split_recovers_the_glyph_level_truth(pages, tmp_path):
    """Connected components (dots and macron bars merged into their stems) give the same glyphs."""
    main(
        [
            "data",
            "import-page",
            str(pages / "glyph" / "p1.xml"),
            "--out",
            str(tmp_path / "g"),
            "--crop",
            "tight",
        ]
    )
    main(
        [
            "data",
            "import-page",
            str(pages / "word" / "p1.xml"),
            "--out",
            str(tmp_path / "w"),
            "--crop",
            "tight",
        ]
    )
    assert _tree(tmp_path / "w") == _tree(tmp_path / "g")
    assert (tmp_path / "w" / "ā").is_dir() and (tmp_path / "w" / "i").is_dir()
    # the same ink box either way, within a pixel of anti-aliasing
    for g in (tmp_path / "g" / "ā").glob("*.png"):
        w = next((tmp_path / "w" / "ā").glob("*.png"))
        assert abs(Image.open(g).size[0] - Image.open(w).size[0]) <= 2
        assert abs(Image.open(g).size[1] - Image.open(w).size[1]) <= 2


def test_2013_namespace_reads_the_same(pages, tmp_path):
    main(["data", "import-page", str(pages / "glyph" / "p1.xml"), "--out", str(tmp_path / "a")])
    main(["data", "import-page", str(pages / "old" / "p1.xml"), "--out", str(tmp_path / "b")])
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_crop_conventions_and_grey_stays_grey(pages, tmp_path):
    sizes = {}
    for crop in ("tight", "box", "line"):
        main(
            [
                "data",
                "import-page",
                str(pages / "glyph" / "p1.xml"),
                "--out",
                str(tmp_path / crop),
                "--crop",
                crop,
            ]
        )
        files = sorted((tmp_path / crop / "l").glob("*.png"))
        sizes[crop] = [Image.open(f).size for f in files]
    for (tw, th), (bw, bh), (lw, lh) in zip(sizes["tight"], sizes["box"], sizes["line"]):
        assert bw > tw and bh > th  # the margin
        assert lw == bw and lh >= bh  # the line band reaches at least as high and low
    o = sorted((tmp_path / "line" / "o").glob("*.png"))
    t = sorted((tmp_path / "tight" / "o").glob("*.png"))
    assert Image.open(o[0]).size[1] > 1.5 * Image.open(t[0]).size[1]  # x-height letter in a full line band
    grey = np.asarray(Image.open(o[0]))
    assert len(np.unique(grey)) > 20  # cut from the greyscale page, not binarised


def test_graphemes_and_abbreviations():
    assert graphemes("Aufklaͤrung") == ["A", "u", "f", "k", "l", "aͤ", "r", "u", "n", "g"]
    assert class_of("ã", set(CLASSES)) == "ā" and class_of("ũ", set(CLASSES)) == "ū"
    assert class_of("aͤ", set(CLASSES)) is None and class_of("\ue8bf", set(CLASSES)) is None  # MUFI ligature
    assert class_of("ſ", set(CLASSES)) == "ſ" and class_of("G", set(CLASSES)) is None


BAD_PAGES = {
    "missing_image": lambda d: (d / "p.png").unlink(),
    "malformed_xml": lambda d: (d / "p.xml").write_text("<PcGts><Page>", encoding="utf-8"),
    "not_page_xml": lambda d: (d / "p.xml").write_text(
        '<mets xmlns="http://www.loc.gov/METS/"/>', encoding="utf-8"
    ),
    "entity_bomb": lambda d: (d / "p.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
        'pagecontent/2019-07-15"><Page imageFilename="p.png">&a;</Page></PcGts>',
        encoding="utf-8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
def test_a_bad_page_is_one_line_and_the_others_still_import(pages, tmp_path, capsys, case):
    src = tmp_path / "src"
    shutil.copytree(pages / "glyph", src / "good")
    render_page(src / "bad", "p", lines=["kurz"])
    BAD_PAGES[case](src / "bad")
    code = main(["data", "import-page", str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr()
    if case == "not_page_xml":  # passed over in a folder, like a workspace's mets.xml
        assert code == 0
    else:
        assert code == 1
        lines = [x for x in (err.out + err.err).splitlines() if "error" in x]
        assert len(lines) == 1 and "bad/p" in lines[0] and "Traceback" not in err.err
    assert _tree(tmp_path / "out")["l"] == _tree(tmp_path / "out")["l"] > 0  # the good page is there
    assert (tmp_path / "out" / "import.json").is_file()


def test_polygons_outside_the_image_and_empty_words_are_skipped_with_a_warning(pages, tmp_path):
    src = tmp_path / "src"
    render_page(src, "p", lines=["der kunst"], glyph_level=False)
    xml = (src / "p.xml").read_text(encoding="utf-8")
    first = xml.index('<Word id="w0_0">')
    coords = xml.index("<Coords", first)
    end = xml.index("/>", coords)
    xml = xml[:coords] + '<Coords points="9000,9000 9100,9000 9100,9100 9000,9100"/>' + xml[end + 2 :]
    xml = xml.replace("<Unicode>kunst</Unicode>", "<Unicode> </Unicode>")
    (src / "p.xml").write_text(xml, encoding="utf-8")
    assert main(["data", "import-page", str(src / "p.xml"), "--out", str(tmp_path / "out")]) == 0
    warnings = json.loads((tmp_path / "out" / "import.json").read_text(encoding="utf-8"))["pages"][0][
        "warnings"
    ]
    assert any("w0_0" in w and "outside the image" in w for w in warnings)
    assert any("w0_1" in w and "empty transcription" in w for w in warnings)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "import-page", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such PAGE-XML file or folder" in capsys.readouterr().err
    render_page(tmp_path, "p")
    assert (
        main(
            [
                "data",
                "import-page",
                str(tmp_path / "p.xml"),
                "--out",
                str(tmp_path / "o"),
                "--image",
                str(tmp_path / "missing.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.png" in err[0] and "not found" in err[0]


def test_image_folder_is_matched_by_page_number_and_split_by_work(tmp_path):
    src = tmp_path / "works"
    for work in ("alpha", "beta", "gamma"):
        png, xml = render_page(src / work / "PAGE", f"PAGE_0001{ord(work[0])}", lines=["der kunst"])
        (src / work / "IMG").mkdir(parents=True)
        png.rename(src / work / "IMG" / f"IMG_0001{ord(work[0])}.jpg")  # a converted workspace image
    splits = tmp_path / "splits.json"
    splits.write_text(
        json.dumps({"_comment": "x", "train": ["alpha", "beta"], "test": ["gamma"]}), encoding="utf-8"
    )
    assert (
        main(
            ["data", "import-page", str(src), "--out", str(tmp_path / "out"), "--split-by-work", str(splits)]
        )
        == 2
    )
    # the images are not where Page/@imageFilename says: resolved by the XML's folder or --image only
    for work in ("alpha", "beta", "gamma"):
        (src / work / "IMG" / f"IMG_0001{ord(work[0])}.jpg").rename(
            src / work / "PAGE" / f"PAGE_0001{ord(work[0])}.jpg"
        )
    assert (
        main(
            ["data", "import-page", str(src), "--out", str(tmp_path / "out"), "--split-by-work", str(splits)]
        )
        == 0
    )
    assert _tree(tmp_path / "out" / "train")["k"] == 2 and _tree(tmp_path / "out" / "test")["k"] == 1
    assert not (tmp_path / "out" / "val").exists()


@pytest.mark.slow
@pytest.mark.parametrize("level", ["glyph", "word"])
def test_scan_page_writes_verdicts_into_a_copy_of_the_page(pages, tiny_calibrated, tmp_path, level):
    from defusedxml import ElementTree as SafeET

    src = pages / level / "p1.xml"
    code = main(
        ["scan", "--page", str(src), "--artifacts", str(tiny_calibrated), "--out", str(tmp_path / "scan")]
    )
    res = json.loads((tmp_path / "scan" / "results.json").read_text(encoding="utf-8"))
    rows = res["results"]
    letters = [ch for line in DEFAULT_TEXT for ch in line if not ch.isspace()]
    assert len(rows) == len(letters) and code == (1 if res["summary"]["flagged"] else 0)
    assert [r["text"] for r in rows] == letters  # the transcription rides along, in reading order
    assert all(r["line"] and r["word"] and r["glyph"] and 0 < r["p_value"] <= 1 for r in rows)
    annotated = tmp_path / "scan" / "p1.glyphgate.xml"
    ns = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"
    glyphs = list(SafeET.parse(str(annotated)).getroot().iter(f"{ns}Glyph"))
    assert len(glyphs) == len(rows)
    by_id = {r["glyph"]: r for r in rows}
    for g in glyphs:
        r = by_id[g.get("id")]
        assert f"is_ood:{str(r['is_ood']).lower()};" in g.get("custom") and "glyphgate {label:" in g.get(
            "custom"
        )
        ours = [t for t in g.findall(f"{ns}TextEquiv") if t.get("index") == "2"]
        assert len(ours) == 1 and ours[0].find(f"{ns}Unicode").text == r["label"]
        assert float(ours[0].get("conf")) == pytest.approx(r["confidence"], abs=1e-4)
    # the annotated page round-trips through the importer: same glyphs, ground truth first
    shutil.copy(pages / level / "p1.png", tmp_path / "scan" / "p1.png")
    assert (
        main(
            [
                "data",
                "import-page",
                str(annotated),
                "--image",
                str(tmp_path / "scan" / "p1.png"),
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    main(["data", "import-page", str(pages / "glyph" / "p1.xml"), "--out", str(tmp_path / "truth")])
    assert {k: v for k, v in _tree(tmp_path / "again").items() if not k.startswith("ood")} == {
        k: v for k, v in _tree(tmp_path / "truth").items() if not k.startswith("ood")
    }


def test_scan_page_refuses_hostile_xml(tiny_calibrated, tmp_path, capsys):
    render_page(tmp_path, "p", lines=["kurz"])
    (tmp_path / "p.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE PcGts [<!ENTITY x SYSTEM "file:///etc/passwd">]><PcGts xmlns="http://schema.'
        'primaresearch.org/PAGE/gts/pagecontent/2019-07-15"><Page imageFilename="p.png">&x;</Page></PcGts>',
        encoding="utf-8",
    )
    assert (
        main(
            [
                "scan",
                "--page",
                str(tmp_path / "p.xml"),
                "--artifacts",
                str(tiny_calibrated),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not well-formed PAGE-XML" in err[0] and "Traceback" not in err[0]
