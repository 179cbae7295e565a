"""Soak: many requests mixed across every endpoint to a real server on 127.0.0.1, bounded in
requests and time; reports errors and the server's memory (RSS of its process tree) at the
start and the end.

    python bench/soak.py [--artifacts artifacts/default] [--requests 10000] [--concurrency 4] [--max-minutes 20]

An error is any answer other than the one expected: 200 for good requests, the documented 4xx
for the deliberately bad ones (they are part of the mix, since a real pipeline sends both).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository, and the tests' live server

from live_server import Server  # noqa: E402

from bench.serve import glyph_pngs  # noqa: E402

# (share of requests, name); shares add up to 1
MIX = [
    (0.55, "score"),
    (0.2, "classify"),
    (0.1, "score_batch"),
    (0.05, "classify_batch"),
    (0.06, "bad_image"),
    (0.02, "bad_field"),
    (0.01, "generate"),
    (0.01, "generate_chain"),
]


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def request(client, kind: str, pngs: list[bytes], rng: random.Random) -> tuple[str, bool]:
    png = pngs[rng.randrange(len(pngs))]
    if kind in ("score", "classify"):
        r = client.post(f"/{kind}", files={"image": ("g.png", png, "image/png")})
        return kind, r.status_code == 200 and "energy" in r.json()
    if kind in ("score_batch", "classify_batch"):
        files = [("images", (f"g{i}.png", pngs[rng.randrange(len(pngs))], "image/png")) for i in range(16)]
        r = client.post(f"/{kind}", files=files)
        return kind, r.status_code == 200 and r.json()["n_errors"] == 0
    if kind == "bad_image":
        r = client.post("/score", files={"image": ("bad.png", png[: len(png) // 3], "image/png")})
        return kind, r.status_code == 400 and "error" in r.json()
    if kind == "bad_field":
        r = client.post("/classify", files={"file": ("g.png", png, "image/png")})
        return kind, r.status_code == 400
    body = {"n": 4, "steps": 16, "seed": rng.randrange(1000)}
    r = client.post(f"/{kind}", json=body)
    return kind, r.status_code == 200 and r.headers["content-type"] == "image/png"


def main() -> int:
    import httpx

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", default="artifacts/default")
    p.add_argument("--data", default="data/glyphs")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-minutes", type=float, default=20.0)
    args = p.parse_args()
    pngs = glyph_pngs(Path(args.data), 256)
    rng = random.Random(0)
    kinds = rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX], k=args.requests)

    with (
        tempfile.TemporaryDirectory() as tmp,
        Server(Path(args.artifacts), Path(tmp) / "serve.log") as server,
    ):
        with httpx.Client(base_url=server.url, timeout=120) as c:  # warm every endpoint once
            for kind in dict.fromkeys(k for _, k in MIX):
                request(c, kind, pngs, rng)
        start_mb = rss_mb(server.proc.pid)
        deadline = time.perf_counter() + args.max_minutes * 60
        counts, errors, lock = Counter(), Counter(), threading.Lock()
        t0 = time.perf_counter()

        def worker(w: int) -> None:
            wrng = random.Random(w)
            with httpx.Client(base_url=server.url, timeout=120) as c:
                for kind in kinds[w :: args.concurrency]:
                    if time.perf_counter() > deadline:
                        return
                    try:
                        kind, ok = request(c, kind, pngs, wrng)
                    except Exception as e:  # a dropped connection is an error too
                        kind, ok = f"{kind} ({type(e).__name__})", False
                    with lock:
                        counts[kind] += 1
                        errors[kind] += not ok

        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(worker, range(args.concurrency)))
        seconds = time.perf_counter() - t0
        end_mb = rss_mb(server.proc.pid)
        alive = httpx.get(server.url + "/readyz").status_code == 200

    done = sum(counts.values())
    print(
        f"# bench/soak.py: {done} requests in {seconds:.0f} s ({done / seconds:.0f} req/s), concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPU cores"
    )
    print("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = {k: v for k, v in errors.items() if v}
    print(
        f"errors: {sum(failed.values())}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in failed.items()) + ")" if failed else "")
    )
    print(
        f"server memory (RSS, all processes): {start_mb:.0f} MB after warm-up -> {end_mb:.0f} MB at the end "
        f"({(end_mb / start_mb - 1):+.1%}); ready afterwards: {alive}"
    )
    return 0 if not failed and done == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
