"""`glyphgate data import-page` on pages the project renders itself (never the real pages)."""

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from corpus.synth.faces import CLASSES
from corpus.synth.page import DEFAULT_TEXT, render_page
from glyphgate.cli import main
from glyphgate.core.errors import RequestError
from glyphgate.core.pages.model import class_of, graphemes


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
    assert "no such PAGE-XML or ALTO file or folder" in capsys.readouterr().err
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
        assert ours[0].get("dataType") == "other" and ours[0].get("dataTypeDetails") == "glyphgate-prediction"
        assert ("source:split;" in g.get("custom")) == (level == "word")
    # the annotated page imports as the page itself: its verdicts never become labels
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
    main(["data", "import-page", str(src), "--out", str(tmp_path / "truth")])
    assert _tree(tmp_path / "again") == _tree(tmp_path / "truth")


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


# -- annotated copies, the page image's size, folders ------------------------------------------
# These score with the shipped model (artifacts/default): seconds, no training.


def _scan_page(xml, out, *extra) -> int:
    from glyphgate.core.contract.artifacts import SHIPPED

    return main(["scan", "--page", str(xml), "--artifacts", str(SHIPPED), "--out", str(out), *extra])


def _import(xml, out, *extra) -> dict:
    assert main(["data", "import-page", str(xml), "--out", str(out), "--no-progress", *extra]) == 0
    return json.loads((out / "import.json").read_text(encoding="utf-8"))


def _classes(tree: Counter) -> Counter:
    return Counter({k: v for k, v in tree.items() if not k.startswith("ood")})


def _without_truth(text: str, level: str) -> str:
    """The page's transcription made incomplete, as an OCR'd page's is. Word level: `kunst` gets a
    letter too many and `buch` none, so their splits match no transcription. Glyph level: the
    Glyphs of both words lose their TextEquiv."""
    for wi, word, wrong in ((7, "kunst", "kunstx"), (4, "buch", "")):
        if level == "word":
            old = f"<Unicode>{word}</Unicode></TextEquiv></Word>"
            assert text.count(old) == 1
            text = text.replace(old, f"<Unicode>{wrong}</Unicode></TextEquiv></Word>")
        else:
            pattern = (
                rf'(<Glyph id="g0_{wi}_\d+"><Coords [^>]*/>)<TextEquiv><Unicode>[^<]*</Unicode></TextEquiv>'
            )
            text, n = re.subn(pattern, r"\1", text)
            assert n == len(word)
    return text


@pytest.fixture(scope="module", params=["word", "glyph"])
def ocr_page(request, tmp_path_factory):
    """A page with gaps in its transcription: those glyphs are not imported, but `scan --page`
    scores them and writes its guesses into the annotated copy."""
    root = tmp_path_factory.mktemp(f"ocr_{request.param}")
    png, xml = render_page(root, "p1", glyph_level=request.param == "glyph")
    xml.write_text(_without_truth(xml.read_text(encoding="utf-8"), request.param), encoding="utf-8")
    assert _scan_page(xml, root / "scan") in (0, 1)
    shutil.copy(png, root / "scan" / "p1.png")
    return root


def test_an_annotated_copy_imports_as_the_page_itself(ocr_page, tmp_path):
    """The issue's bug: importing the copy `scan --page` wrote turned the model's guesses into
    labelled glyphs. Now the copy gives the page's own glyph set, per class and per OOD kind."""
    annotated = ocr_page / "scan" / "p1.glyphgate.xml"
    rows = json.loads((ocr_page / "scan" / "results.json").read_text(encoding="utf-8"))["results"]
    assert sum(not r["text"] for r in rows) >= 9  # kunst and buch were scored, unlabelled
    text = annotated.read_text(encoding="utf-8")
    assert text.count('dataTypeDetails="glyphgate-prediction"') == len(rows)
    split_glyphs = len(rows) if "_g" in rows[0]["glyph"] else 0  # a word level page's Glyphs are ours
    assert text.count("source:split;") == split_glyphs
    original = _import(ocr_page / "p1.xml", tmp_path / "original")
    again = _import(annotated, tmp_path / "again", "--image", str(ocr_page / "scan" / "p1.png"))
    assert _tree(tmp_path / "again") == _tree(tmp_path / "original")
    # the same work done, too: the words are split again, not read as the Glyphs the split made
    assert again["accept_predictions"] is False and again["totals"] == original["totals"]
    # a copy annotated before predictions were marked (no dataType, no source:split) reads the same
    legacy = text.replace(' dataType="other" dataTypeDetails="glyphgate-prediction"', "")
    (ocr_page / "scan" / "legacy.xml").write_text(legacy.replace(" source:split;", ""), encoding="utf-8")
    legacy = _import(
        ocr_page / "scan" / "legacy.xml", tmp_path / "legacy", "--image", str(ocr_page / "scan" / "p1.png")
    )
    assert (
        _tree(tmp_path / "legacy") == _tree(tmp_path / "original") and legacy["totals"] == original["totals"]
    )


def test_accept_predictions_labels_unflagged_guesses_and_never_flagged_ones(ocr_page, tmp_path):
    annotated = ocr_page / "scan" / "p1.glyphgate.xml"
    rows = json.loads((ocr_page / "scan" / "results.json").read_text(encoding="utf-8"))["results"]
    guesses = [r for r in rows if not r["text"] and not r["is_ood"]]
    assert len(guesses) >= 2
    # one more verdict flagged, so the copy surely holds a flagged guess whatever the model says
    flip = guesses.pop()
    text = annotated.read_text(encoding="utf-8")
    before = f'<Glyph id="{flip["glyph"]}" custom="'
    at = text.index(before)
    end = text.index('"', at + len(before))
    custom = text[at + len(before) : end]
    text = text[: at + len(before)] + custom.replace("is_ood:false;", "is_ood:true;") + text[end:]
    flagged_copy = ocr_page / "scan" / "flagged.xml"
    flagged_copy.write_text(text, encoding="utf-8")
    _import(ocr_page / "p1.xml", tmp_path / "original")
    summary = _import(
        flagged_copy,
        tmp_path / "accepted",
        "--image",
        str(ocr_page / "scan" / "p1.png"),
        "--accept-predictions",
    )
    expected = _classes(_tree(tmp_path / "original")) + Counter(r["label"] for r in guesses)
    assert _classes(_tree(tmp_path / "accepted")) == expected
    assert summary["accept_predictions"] is True
    assert summary["totals"]["predictions as labels"] == len(guesses)
    assert (
        summary["totals"]["predictions flagged, not labels"]
        == sum(not r["text"] and r["is_ood"] for r in rows) + 1
    )


def test_scanning_an_annotated_copy_writes_the_same_copy(ocr_page, tmp_path):
    """Its old verdicts and split Glyphs are replaced, not added to."""
    annotated = ocr_page / "scan" / "p1.glyphgate.xml"
    shutil.copy(annotated, tmp_path / "p1.xml")
    _scan_page(tmp_path / "p1.xml", tmp_path / "scan", "--image", str(ocr_page / "scan" / "p1.png"))
    assert (tmp_path / "scan" / "p1.glyphgate.xml").read_text(encoding="utf-8") == annotated.read_text(
        encoding="utf-8"
    )


def test_the_wrong_page_image_is_refused_unless_rescale_says_it_is_a_copy(tmp_path, capsys):
    png, xml = render_page(tmp_path, "p1", lines=["der kunst"], glyph_level=False)
    Image.new("L", (64, 64), 200).save(tmp_path / "other.jpg")
    want = (
        f"other.jpg is 64 × 64 but {xml}'s Page says 1200 × 303; pass --rescale if the image is a scaled copy"
    )
    for argv in (
        ["data", "import-page", str(xml), "--out", str(tmp_path / "o")],
        ["scan", "--page", str(xml), "--out", str(tmp_path / "s")],
    ):
        assert main([*argv, "--image", str(tmp_path / "other.jpg")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(want), err
    assert not list((tmp_path / "o").rglob("*.png"))  # refused before a crop was cut
    # a scaled copy, declared as one: coordinates scaled, as before
    with Image.open(png) as im:
        im.resize((600, 152)).save(tmp_path / "half.png")
    summary = _import(xml, tmp_path / "half", "--image", str(tmp_path / "half.png"), "--rescale")
    assert summary["rescale"] is True and summary["totals"]["glyphs"] == 8
    assert any("coordinates scaled" in w for w in summary["pages"][0]["warnings"])


def test_a_scaled_copy_keeps_the_pages_coordinates_in_the_annotated_xml(tmp_path):
    """Glyphs a word split finds on a half-size copy are written back in the XML's own pixels."""
    from defusedxml import ElementTree as SafeET

    png, xml = render_page(tmp_path, "p1", lines=["der kunst"], glyph_level=False)
    with Image.open(png) as im:
        im.resize((600, 152), Image.LANCZOS).save(tmp_path / "half.png")
    _scan_page(xml, tmp_path / "full")
    _scan_page(xml, tmp_path / "half", "--image", str(tmp_path / "half.png"), "--rescale")

    def boxes(folder):
        root = SafeET.parse(str(folder / "p1.glyphgate.xml")).getroot()
        return {
            g.get("id"): np.array([[float(v) for v in pt.split(",")] for pt in c.get("points").split()])
            for g in root.iter("{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}Glyph")
            for c in g
            if c.tag.endswith("Coords")
        }

    full, half = boxes(tmp_path / "full"), boxes(tmp_path / "half")
    assert full.keys() == half.keys() and len(full) == 8
    for gid in full:
        assert np.abs(full[gid] - half[gid]).max() <= 4, gid  # within the rounding of half size


def test_a_larger_jpeg_copy_decodes_reduced_to_the_pages_size(tmp_path):
    from glyphgate.core.pages.cuts import PageCuts
    from glyphgate.core.pages.formats import read_page

    png, xml = render_page(tmp_path, "p1", lines=["der kunst"], glyph_level=False)
    with Image.open(png) as im:
        im.convert("RGB").resize((2400, 606)).save(tmp_path / "double.jpg", quality=90)
    page, warnings = read_page(xml)
    cuts = PageCuts(page, tmp_path / "double.jpg", "box", warnings, rescale=True)
    assert cuts.gray.shape == (303, 1200) and cuts.gray.dtype == np.uint8
    assert np.array_equal(cuts.to_image, np.eye(3))  # decoded at the page's own size: nothing scaled


def test_a_folder_import_shows_progress_and_exits_2_when_no_page_is_usable(tmp_path, capsys):
    src = tmp_path / "src"
    for name in ("a", "b"):
        render_page(src, name, lines=["kurz"])
    assert main(["data", "import-page", str(src), "--out", str(tmp_path / "good")]) == 0
    err = capsys.readouterr().err
    assert "import-page: 100%" in err and "2/2" in err and "page/s" in err  # tqdm: count, rate
    for name in ("a", "b"):
        (src / f"{name}.png").unlink()
    assert main(["data", "import-page", str(src), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("glyphgate: error: ") for line in err)
    assert "a.xml" in err[0] and "b.xml" in err[1] and "no page could be imported (2 errors)" in err[2]


def test_scan_page_upload_refuses_another_pages_image_with_a_400_message(tmp_path):
    """/scan_page's own function (the live server answers its BadImage as a 400)."""
    from glyphgate.core.contract.artifacts import SHIPPED, load_calibration
    from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS, BadImage
    from glyphgate.core.scoring.scorer import Scorer
    from serving.page_upload import scan_uploaded_page
    from serving.rescale import read_rescale

    png, xml = render_page(tmp_path, "p1", lines=["der kunst"], glyph_level=False)
    Image.new("L", (64, 64), 200).save(tmp_path / "upload-image", format="JPEG")  # saved as the server does
    names = ("p1.png", "p1.xml")
    with pytest.raises(BadImage) as refused:
        scan_uploaded_page(xml, tmp_path / "upload-image", names, None, DEFAULT_MAX_PIXELS)
    assert str(refused.value) == (
        "p1.png is 64 × 64 but p1.xml's Page says 1200 × 303; "
        "send the form field rescale=true if the image is a scaled copy"
    )
    assert refused.value.file == "p1.png"
    with Image.open(png) as im:
        im.resize((600, 152)).save(tmp_path / "upload-image", format="PNG")
    scorer = Scorer.from_calibration(SHIPPED, load_calibration(SHIPPED), 1)
    result = scan_uploaded_page(
        xml, tmp_path / "upload-image", names, scorer, DEFAULT_MAX_PIXELS, rescale=True
    )
    assert result["n"] == 8 and any("coordinates scaled" in w for w in result["warnings"])
    assert [read_rescale(v) for v in (None, "", "true", "1", "False", "no")] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(RequestError, match="rescale 'maybe': expected true or false"):
        read_rescale("maybe")


def test_blank_squares_are_the_ones_a_pixel_mask_finds(tmp_path, monkeypatch):
    """The blank map is kept per square of the grid (a 150 Mpx page's pixel mask is 150 MB): the
    squares it picks are the ones a mask of every pixel under a region or line leaves free."""
    from corpus.page_import import BLANK_PER_PAGE, PageImporter
    from glyphgate.core.pages.cuts import PageCuts
    from glyphgate.core.pages.formats import read_page

    render_page(tmp_path, "p", lines=["der kunst", "und lere"])
    page, warnings = read_page(tmp_path / "p.xml")
    page.regions.append((300, 420, 130, 777))  # a region off the grid's lines: partly covered squares
    cuts = PageCuts(page, None, "box", warnings)
    list(cuts.words())
    picked = []
    importer = PageImporter(tmp_path / "out", list(CLASSES))
    monkeypatch.setattr(importer, "_write", lambda folder, name, crop: picked.append(name))
    n = importer._blanks(cuts.gray, page, cuts.scale, cuts.heights, tmp_path, "p")

    side, (h, w) = int(np.median(cuts.heights)), cuts.gray.shape
    taken = np.zeros((h, w), bool)
    for b in [cuts.scale(r) for r in page.regions] + [cuts.scale(line.box) for line in page.lines]:
        taken[max(0, b[0]) : max(0, b[1]), max(0, b[2]) : max(0, b[3])] = True
    spots = [
        (y, x)
        for y in range(0, h - side, side)
        for x in range(0, w - side, side)
        if not taken[y : y + side, x : x + side].any()
    ]
    pick = sorted(set(np.linspace(0, len(spots) - 1, min(BLANK_PER_PAGE, len(spots))).round().astype(int)))
    assert n == len(pick) > 0 and picked == [f"p_blank{k}" for k in pick]
