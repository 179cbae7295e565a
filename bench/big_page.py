"""A 150-megapixel page (a rendered page scaled up 8x: 9,600 x 15,704 px, 21 lines) through
`glyphgate scan --page` and a live server's /scan_page: answered, how long, and the peak RSS of
the process that cut it (the scan's own high-water mark; for the server, the API workers').

    python bench/big_page.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository, and the tests' live server and runner

from live_server import Server  # noqa: E402
from peak_memory import run_measured  # noqa: E402

from corpus.synth.page import DEFAULT_TEXT, render_page  # noqa: E402

SCALE, LINES = 8, 21


def big_page(folder: Path) -> tuple[Path, Path]:
    png, xml = render_page(folder / "small", "p", lines=(DEFAULT_TEXT * 10)[:LINES], glyph_level=False)
    with Image.open(png) as im:
        im.resize((im.width * SCALE, im.height * SCALE), Image.NEAREST).save(
            folder / "big.png", compress_level=1
        )

    def scale(m):
        return " ".join(",".join(str(int(v) * SCALE) for v in p.split(",")) for p in m.group(1).split())

    text = re.sub(r'points="([^"]+)"', lambda m: f'points="{scale(m)}"', xml.read_text(encoding="utf-8"))
    text = re.sub(
        r'(imageWidth|imageHeight)="(\d+)"', lambda m: f'{m.group(1)}="{int(m.group(2)) * SCALE}"', text
    )
    (folder / "big.xml").write_text(
        text.replace(f'imageFilename="{png.name}"', 'imageFilename="big.png"'), "utf-8"
    )
    return folder / "big.png", folder / "big.xml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="glyphgate-bigpage-"))
    work.mkdir(parents=True, exist_ok=True)
    png, xml = big_page(work)
    with Image.open(png) as im:
        w, h = im.size
    print(f"page {w} x {h} = {w * h / 1e6:.1f} Mpx, PNG {png.stat().st_size / 1e6:.1f} MB")
    t = time.perf_counter()
    done = run_measured("scan", "--page", xml, "--out", work / "scan")
    print(
        f"scan --page: exit {done.returncode} in {time.perf_counter() - t:.1f} s, peak RSS {done.peak_mb:.0f} MB"
    )
    artifacts = ROOT / "artifacts" / "default"
    with Server(artifacts, work / "serve.log") as server:
        files = {
            "image": ("big.png", png.read_bytes(), "image/png"),
            "page": ("big.xml", xml.read_bytes(), "application/xml"),
        }
        t = time.perf_counter()
        r = httpx.post(f"{server.url}/scan_page", files=files, timeout=600)
        seconds = time.perf_counter() - t
        peaks = [
            int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{p.pid}/status").read_text()).group(1)) / 1024
            for p in server.workers()
        ]
        body = r.json()
        print(
            f"/scan_page: HTTP {r.status_code} in {seconds:.1f} s, {body.get('n')} glyphs, {body.get('flagged')} flagged; "
            f"API workers' peak RSS {', '.join(f'{m:.0f}' for m in peaks)} MB"
        )


if __name__ == "__main__":
    main()
