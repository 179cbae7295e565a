"""Head-of-line blocking: does a small /score wait behind big uploads? Its p99 while two clients
keep sending 25-megapixel PNGs, against its p99 alone, over several alternating rounds.

    python bench/hol.py [--artifacts artifacts/default] [--rounds 5] [--requests 300] [--megapixels 25]

Each round measures the small scans alone, then with the two uploaders running (their own
processes, as two other clients would be); rounds alternate so that drift in the machine hits
both. Prints each round's p50/p99 and ratio, then the median and the worst ratio (goal: median
<= 2x), and the big uploads' own latency (what a small scan would wait if it queued behind one).
One client sends the small scans one after the other, so a p99 over 300 requests is the 3rd
slowest: one scheduler hiccup moves it, which is why one round decides nothing.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository, and the tests' live server

from live_server import Server  # noqa: E402

from bench.serve import glyph_pngs  # noqa: E402


def big_png(small: bytes, megapixels: float) -> bytes:
    """A glyph blown up to `megapixels` (nearest neighbour: a few hundred KB on the wire, all
    pixels to decode)."""
    from PIL import Image

    side = int((megapixels * 1e6) ** 0.5)
    buf = io.BytesIO()
    Image.open(io.BytesIO(small)).resize((side, side), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def upload_forever(url: str, data: bytes, took: multiprocessing.Queue, stop) -> None:
    """One uploader: big /score requests back to back until `stop` is set; puts each latency."""
    import httpx

    with httpx.Client(base_url=url, timeout=120) as c:
        while not stop.is_set():
            t = time.perf_counter()
            r = c.post("/score", files={"image": ("big.png", data, "image/png")})
            took.put((r.status_code, time.perf_counter() - t))


def small_latencies(client, png: bytes, n: int) -> list[float]:
    took = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post("/score", files={"image": ("s.png", png, "image/png")})
        r.raise_for_status()
        took.append(time.perf_counter() - t)
        time.sleep(0.005)  # a pipeline's client, not a flood: leave the server idle moments
    return took


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000)


def run(url: str, small: bytes, big: bytes, rounds: int, n: int, uploaders: int) -> dict:
    import httpx

    ctx = multiprocessing.get_context("spawn")
    rows, big_took = [], []
    with httpx.Client(base_url=url, timeout=120) as c:
        small_latencies(c, small, 30)  # warm
        for i in range(rounds):
            alone = small_latencies(c, small, n)
            took, stop = ctx.Queue(), ctx.Event()
            procs = [
                ctx.Process(target=upload_forever, args=(url, big, took, stop)) for _ in range(uploaders)
            ]
            for p in procs:
                p.start()
            time.sleep(1.5)  # the uploaders are sending before the small scans start
            loaded = small_latencies(c, small, n)
            stop.set()
            for p in procs:
                p.join(120)
            answers = [took.get() for _ in range(took.qsize())]  # every uploader has ended
            if any(status != 200 for status, _ in answers):
                raise SystemExit(f"round {i + 1}: a big upload was refused: {answers[:5]}")
            big_took += [s for _, s in answers]
            rows.append((alone, loaded, len(answers)))
    return {"rows": rows, "big_took": big_took}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", default="artifacts/default")
    p.add_argument("--data", default="data/glyphs")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=300, help="small /score requests per phase of a round")
    p.add_argument("--megapixels", type=float, default=25.0)
    p.add_argument("--uploaders", type=int, default=2)
    args = p.parse_args()
    small = glyph_pngs(Path(args.data), 1)[0]
    big = big_png(small, args.megapixels)
    with tempfile.TemporaryDirectory() as tmp, Server(Path(args.artifacts), Path(tmp) / "serve.log") as s:
        res = run(s.url, small, big, args.rounds, args.requests, args.uploaders)
    print(
        f"# bench/hol.py on {os.cpu_count()} CPU cores: small /score alone vs beside {args.uploaders} clients "
        f"sending {args.megapixels:g}-megapixel PNGs ({len(big):,} bytes), {args.requests} small requests per phase"
    )
    print("round | alone p50 / p99 ms | loaded p50 / p99 ms | p99 ratio | big uploads")
    ratios = []
    for i, (alone, loaded, n_big) in enumerate(res["rows"], 1):
        ratio = ms(loaded, 99) / ms(alone, 99)
        ratios.append(ratio)
        print(
            f"{i:5d} | {ms(alone, 50):7.1f} / {ms(alone, 99):6.1f} | {ms(loaded, 50):8.1f} / {ms(loaded, 99):6.1f} "
            f"| {ratio:8.2f}x | {n_big}"
        )
    big_took = res["big_took"]
    print(
        f"p99 ratio: median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x over {len(ratios)} rounds "
        f"(goal: median <= 2x)"
    )
    if big_took:
        print(
            f"big upload latency: p50 {ms(big_took, 50):.0f} ms, min {min(big_took) * 1000:.0f} ms "
            f"({len(big_took)} uploads)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
