import hashlib
import json

import numpy as np
import pytest

from corpus.synth import ood, ood_page
from corpus.synth.corpus import DEFAULT_TOTAL, split_labels, split_sizes, synthesize
from corpus.synth.faces import (
    BLACKLETTER_FILES,
    CLASSES,
    FONT_DIR,
    MACRON,
    PRINT_FACES,
    faces_for,
)


def _hashes(folder):
    files = sorted(p for p in folder.rglob("*.npy"))
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_classes_are_the_42_of_the_corpus():
    assert len(CLASSES) == 42 == len(set(CLASSES))
    assert CLASSES[26] == "ſ" and CLASSES[27:32] == list("āēīōū") and CLASSES[32:] == list("ABCDEIMNPS")


def test_every_class_has_many_typefaces():
    assert len(PRINT_FACES) >= 8
    assert all(len(faces_for(c)) >= 8 for c in CLASSES)
    assert any(f.name.startswith("STIX-Fraktur") for f in PRINT_FACES)
    # textura / rotunda (Gamaliel, Blankenburg, Grenze Gotisch) and Fraktur (Unifraktur) faces
    names = {f.name for f in PRINT_FACES}
    assert {
        "Gamaliel",
        "Blankenburg",
        "GrenzeGotisch-Regular",
        "UnifrakturMaguntia",
        "UnifrakturCook-Bold",
    } <= names
    assert len(names) == len(PRINT_FACES)


def _ink(font, text):
    from PIL import Image, ImageDraw

    im = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(im).text((40, 110), text, font=font, fill=255, anchor="ls")
    return np.asarray(im)


@pytest.mark.parametrize("face", PRINT_FACES, ids=lambda f: f.name)
def test_every_print_face_draws_each_class_it_claims(face):
    """Opens with Pillow; every class the face claims draws ink that is not the .notdef box."""
    from PIL import ImageFont

    font = ImageFont.truetype(str(face.path), 56)
    tofu = _ink(font, "\U0010fffd")  # unmapped: FreeType draws glyph 0
    claimed = [c for c in CLASSES if face.char_for(c) is not None]
    assert len(claimed) >= 36, f"{face.name} claims only {claimed}"
    for symbol in claimed:
        text, macron = face.char_for(symbol)
        assert ord(text) in face.cmap
        native = ord(symbol) in face.cmap and not face.fraktur  # STIX Fraktur: base letter + bar
        assert macron == (symbol in MACRON and not native)
        px = _ink(font, text)
        assert px.sum() > 0, f"{face.name}: no ink for {symbol!r}"
        assert not np.array_equal(px, tofu), f"{face.name}: {symbol!r} draws the .notdef box"


def test_long_s_is_never_synthesised():
    for face in PRINT_FACES:
        glyph = face.char_for("ſ")
        assert glyph is None or (glyph[1] is False and ord(glyph[0]) in face.cmap)
    lacking = {f.name for f in PRINT_FACES if f.char_for("ſ") is None}
    assert {"UnifrakturMaguntia", "UnifrakturCook-Bold"} <= lacking
    assert not {"Gamaliel", "Blankenburg", "GrenzeGotisch-Regular", "GrenzeGotisch-Bold"} & lacking


def test_bundled_blackletter_faces_come_with_their_licences():
    sources = (FONT_DIR / "SOURCES.txt").read_text(encoding="utf-8")
    for _, file in BLACKLETTER_FILES:
        assert (FONT_DIR / file).is_file() and file.split("-")[0].split(".")[0] in sources
    for licence in (
        "OFL-1.1-Gamaliel-copyright.txt",
        "OFL-1.1-Blankenburg-copyright.txt",
        "OFL-1.1-GrenzeGotisch.txt",
        "OFL-1.1-UnifrakturMaguntia.txt",
        "OFL-1.1-UnifrakturCook.txt",
    ):
        text = (FONT_DIR / licence).read_text(encoding="utf-8")
        assert "open font license" in text.lower() and "PERMISSION & CONDITIONS" in text.upper()
        assert licence in sources


def test_default_split_sizes_match_the_course():
    assert split_sizes(DEFAULT_TOTAL) == {"train": 11319, "val": 2426, "test": 2426}


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_default_splits_are_class_balanced_within_10_percent(split):
    n = split_sizes(DEFAULT_TOTAL)[split]
    counts = np.bincount(split_labels(0, split, n), minlength=42)
    assert counts.sum() == n
    assert counts.max() <= 1.1 * counts.mean() and counts.min() >= 0.9 * counts.mean()


def test_same_seed_is_byte_identical_whatever_the_worker_count(tmp_path, tiny_corpus):
    synthesize(tmp_path / "again", seed=0, total=420, ood_per_kind=12, workers=2)
    assert _hashes(tmp_path / "again") == _hashes(tiny_corpus)


def test_other_seed_differs(tmp_path):
    synthesize(tmp_path / "a", seed=0, total=126, ood_per_kind=1, workers=1)
    synthesize(tmp_path / "b", seed=1, total=126, ood_per_kind=1, workers=1)
    assert _hashes(tmp_path / "a")["train.npy"] != _hashes(tmp_path / "b")["train.npy"]


def test_course_layout_files(tiny_corpus):
    for split, n in split_sizes(420).items():
        with open(tiny_corpus / f"{split}.npy", "rb") as f:
            x, y = np.load(f), np.load(f)
        assert x.shape == (n, 64, 64) and x.dtype == np.uint8 and y.shape == (n,)
        counts = np.bincount(y, minlength=42)
        assert counts.max() - counts.min() <= 1
        # dark ink on light paper: the median pixel is paper
        assert np.median(x) > 128
    for name in ("ood_ta", "ood_tb"):
        assert np.load(tiny_corpus / f"{name}.npy").shape == (12, 64, 64)


def test_manifest_names_every_ood_set_and_its_kind(tiny_corpus):
    manifest = json.loads((tiny_corpus / "classes.json").read_text(encoding="utf-8"))
    assert manifest["classes"] == CLASSES
    kinds = {name: info["kind"] for name, info in manifest["ood"].items()}
    assert {k for k, v in kinds.items() if v == "far"} == set(ood.FAR) | {"ood_tb"}
    assert {k for k, v in kinds.items() if v == "near"} == set(ood.NEAR) | {"ood_ta"}
    assert (
        manifest["ood"]["ood_ta"]["mix"] == ood.COURSE_NEAR
        and manifest["ood"]["ood_tb"]["mix"] == ood.COURSE_FAR
    )
    for info in manifest["ood"].values():
        assert (tiny_corpus / info["file"]).is_file()


def test_previews_are_written(tiny_corpus):
    from PIL import Image

    names = {p.name for p in (tiny_corpus / "preview").glob("*.png")}
    assert {"train.png", "val.png", "test.png", "ood_ta.png", "ood_tb.png"} <= names
    assert {f"ood_{k}.png" for k in ood.GENERATORS} <= names
    with Image.open(tiny_corpus / "preview" / "train.png") as im:
        assert im.width > 64 and np.asarray(im).std() > 10


def test_ood_kinds_are_distinct_from_each_other(tiny_corpus):
    """Each kind has its own generator and its own draws: no kind repeats another's images (two
    names bound to one generator, or one seed reused across kinds, would), and each kind's
    images differ among themselves."""
    assert len({id(f) for f in ood.GENERATORS.values()}) == len(ood.GENERATORS)
    sets = {k: np.load(tiny_corpus / "ood" / f"{k}.npy").astype(np.int16) for k in ood.GENERATORS}
    for a, xa in sets.items():
        assert len({im.tobytes() for im in xa}) == len(xa), f"{a}: repeated images"
        for b, xb in sets.items():
            if a < b:
                closest = np.abs(xa[:, None] - xb[None]).mean((2, 3)).min()
                assert closest > 2, (
                    f"{a} and {b} share an image (mean |difference| {closest:.2f} grey levels)"
                )


def test_some_scans_are_bitonal(tmp_path):
    synthesize(tmp_path, seed=3, total=420, ood_per_kind=1, workers=1)
    with open(tmp_path / "train.npy", "rb") as f:
        x = np.load(f)
    bitonal = [np.isin(im, (0, 255)).all() for im in x]
    assert 0.05 < np.mean(bitonal) < 0.3


@pytest.mark.parametrize("kind", ood_page.FAR + ood_page.NEAR)
def test_segmenter_non_glyphs_render_with_their_kind_deterministically(kind):
    gen = ood.GENERATORS[kind]
    a = [gen(np.random.default_rng([3, i]), 64) for i in range(8)]
    b = [gen(np.random.default_rng([3, i]), 64) for i in range(8)]
    assert all(x.shape == (64, 64) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # a pure function of the seed
    assert len({x.tobytes() for x in a}) == 8  # and seeds differ
    assert all(int(x.max()) - int(x.min()) > 40 for x in a)  # something is drawn on the paper
    assert ood.KIND[kind] == ("far" if kind in ood_page.FAR else "near")


def test_solid_shapes_and_rules_are_mostly_ink_or_mostly_paper_shapes():
    """A filled shape is a large dark connected area; a rule is long and thin: the properties
    that make them low-complexity images likelihood models like."""
    rng = np.random.default_rng(0)
    dark = [np.mean(ood.GENERATORS["solid_shapes"](rng, 64) < 128) for _ in range(30)]
    assert np.median(dark) > 0.08
    rules = [ood.GENERATORS["rules_lines"](rng, 64) < 128 for _ in range(30)]
    # a rule spans most of the crop in one direction (or turns a corner)
    spans = [max(r.any(0).mean(), r.any(1).mean()) for r in rules]
    assert np.median(spans) > 0.6
