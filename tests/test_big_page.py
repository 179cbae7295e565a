"""An archive-resolution page (10,000 x 15,000 = 150 Mpx): `scan --page` and `import-page` take it
under the default GLYPHGATE_MAX_PIXELS, in bounded memory, and no Pillow warning reaches stderr.

The page is mostly blank paper with one line of type (a rendered page scaled up 8x), so its PNG is
small and decodes in about a second; each command runs in its own process, whose peak RSS is that
process's own high-water mark, not the test process's."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from peak_memory import run_measured
from PIL import Image

from corpus.synth.page import render_page

WIDTH, HEIGHT, SCALE = 10_000, 15_000, 8
LINE = "der kunst gedruckt"
# What a command may add to its libraries' footprint for the page: 2 bytes a pixel (the decoded
# image and the array cut from it, 300 MB) and 100 MB. Measured on the 2-core dev machine: scan
# --page 388 MB peak (316 MB above its libraries), import-page 354 MB (301 MB). Before pages were
# held once as 8-bit grey the same page took 665 MB and 631 MB and Pillow printed its
# DecompressionBombWarning; with np.asarray(image) for the copy (tobytes underneath), 521 and 488 MB.
MAX_ABOVE_LIBRARIES_MB = 2 * WIDTH * HEIGHT / 2**20 + 100


def _scaled_points(match: re.Match) -> str:
    points = (",".join(str(int(v) * SCALE) for v in p.split(",")) for p in match.group(1).split())
    return 'points="' + " ".join(points) + '"'


@pytest.fixture(scope="module")
def big_page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    png, xml = render_page(root / "small", "p1", lines=[LINE], glyph_level=False)
    with Image.open(png) as im:
        line = im.resize((im.width * SCALE, im.height * SCALE), Image.NEAREST)
        small = im.size
    page = Image.new("L", (WIDTH, HEIGHT), int(np.median(np.asarray(line))))
    page.paste(line, (0, 0))
    page.save(root / "big.png", compress_level=1)
    del page, line
    text = re.sub(r'points="([^"]+)"', _scaled_points, xml.read_text(encoding="utf-8"))
    declared = f'imageFilename="p1.png" imageWidth="{small[0]}" imageHeight="{small[1]}"'
    assert declared in text
    text = text.replace(declared, f'imageFilename="big.png" imageWidth="{WIDTH}" imageHeight="{HEIGHT}"')
    (root / "big.xml").write_text(text, encoding="utf-8")
    return root / "big.xml"


def _run(*argv: str) -> tuple[int, str, float]:
    """`glyphgate ARGV` in a fresh process -> (exit status, stderr, MB its peak RSS rose above the
    libraries' baseline)."""
    done = run_measured(*argv, env={"GLYPHGATE_MAX_PIXELS": ""})  # the default cap, whatever the shell says
    return done.returncode, done.stderr, done.above_libraries_mb


def test_scan_page_takes_a_150_megapixel_page_in_bounded_memory(big_page, tmp_path):
    from glyphgate.core.contract.artifacts import SHIPPED

    code, err, above = _run(
        "scan", "--page", str(big_page), "--artifacts", str(SHIPPED), "--out", str(tmp_path)
    )
    assert code in (0, 1), err
    assert "Warning" not in err and "GLYPHGATE_MAX_PIXELS" not in err, err
    rows = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]
    assert [r["text"] for r in rows] == list(LINE.replace(" ", ""))
    assert above < MAX_ABOVE_LIBRARIES_MB, f"{above:.0f} MB above the libraries"


def test_import_page_takes_a_150_megapixel_page_in_bounded_memory(big_page, tmp_path):
    code, err, above = _run("data", "import-page", str(big_page), "--out", str(tmp_path))
    assert code == 0 and "Warning" not in err, err
    totals = json.loads((tmp_path / "import.json").read_text(encoding="utf-8"))["totals"]
    assert totals["glyphs"] == len(LINE.replace(" ", "")) and totals["blank"] > 0
    assert above < MAX_ABOVE_LIBRARIES_MB, f"{above:.0f} MB above the libraries"


def test_a_page_over_glyphgate_max_pixels_is_refused_naming_the_setting(
    big_page, tmp_path, monkeypatch, capsys
):
    from glyphgate.cli import main

    monkeypatch.setenv("GLYPHGATE_MAX_PIXELS", "100000000")
    assert main(["data", "import-page", str(big_page), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"glyphgate: error: {big_page.with_suffix('.png')}: 10000 × 15000 = 150,000,000 pixels, "
        "more than GLYPHGATE_MAX_PIXELS=100000000 (refused before decoding)"
    ]
