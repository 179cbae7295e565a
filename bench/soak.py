"""Soak: many requests mixed across every endpoint to a real server on 127.0.0.1, bounded in
requests and time, with one API worker SIGKILLed every --kill-every requests; reports errors,
answers lost, 503s, how long each killed worker took to come back, and the server's memory (RSS
of its process tree) at the start and the end.

    python bench/soak.py [--artifacts artifacts/default] [--requests 10000] [--concurrency 4]
                         [--kill-every 2000] [--max-minutes 20]

An error is any answer other than the one expected: 200 for good requests, the documented 4xx
for the deliberately bad ones (they are part of the mix, since a real pipeline sends both); a
503 (retry later) is counted apart. A request whose connection drops (it was in flight on the
worker that was killed: no server can answer it) is retried once, as a client would; it is
lost when the retry gets no HTTP answer either, or when any request hangs past --timeout.
Recovery: from the kill to the replacement's start (circus respawns it), and to its first
answer (a fresh connection: the clients' kept-alive ones stay with the surviving worker).
--kill-every 0 runs the soak without kills.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
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


class Killer:
    """SIGKILLs one API worker each time the clients have sent `every` more requests, then times
    its replacement: started (its log line) and answering (its id in the access log)."""

    def __init__(self, server: Server, every: int, probe_png: bytes):
        self.server, self.every, self.probe_png = server, every, probe_png
        self.recoveries: list[tuple[float, float]] = []  # (to started, to answering) seconds
        self.replacement_share: list[float] = []  # of the requests after it came back
        self.spawned: list[float] = []  # seconds from the kill to circus's new process
        self.failures: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, count) -> None:
        self._count = count  # callable: requests answered so far
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(120)

    def _run(self) -> None:
        import httpx

        next_kill, rng = self.every, random.Random(1)
        while not self._done.wait(0.05):
            if self._count() < next_kill:
                continue
            next_kill += self.every
            workers = self.server.workers()
            if len(workers) != 2:
                self.failures.append(f"{len(workers)} API workers at a kill")
                continue
            victim = rng.choice(workers)
            wid, mark = self.server.worker_id(victim), len(self.server.output())
            t0 = time.perf_counter()
            victim.kill()
            spawned = None
            while wid not in self.server.initialized(mark) and time.perf_counter() - t0 < 120:
                if spawned is None and any(
                    w.pid != victim.pid and self._wid(w) == wid for w in self.server.workers()
                ):
                    spawned = time.perf_counter() - t0
                time.sleep(0.05)
            started = time.perf_counter() - t0
            self.spawned.append(spawned if spawned is not None else started)
            back = len(self.server.output())
            while wid not in self.server.served_by(back) and time.perf_counter() - t0 < 180:
                files = {"image": ("g.png", self.probe_png, "image/png")}
                httpx.post(self.server.url + "/score", files=files, timeout=30)  # a fresh connection
            answering = time.perf_counter() - t0
            if answering >= 180:
                self.failures.append(f"worker {wid} not back 180 s after its kill")
            self.recoveries.append((started, answering))
            self._share_after(wid, len(self.server.output()))

    def _wid(self, worker) -> str | None:
        try:
            return self.server.worker_id(worker)
        except psutil.Error:
            return None

    def _share_after(self, wid: str, mark: int) -> None:
        """The replacement's share of the next requests (of `every`/2 or 20 s): ~1/2 when clients
        spread back over both workers, ~0 when they stay with the survivor."""
        t0, begin = time.perf_counter(), self._count()
        while self._count() - begin < self.every // 2 and time.perf_counter() - t0 < 20:
            time.sleep(0.1)
        ids = self.server.served_by(mark)
        if ids:
            self.replacement_share.append(ids.count(wid) / len(ids))


def orphans(server: Server) -> list[psutil.Process]:
    """Helper processes of killed workers still running: in the server's process group, no
    longer under its arbiter."""
    pgid, ours = os.getpgid(server.proc.pid), {server.proc.pid}
    ours |= {p.pid for p in psutil.Process(server.proc.pid).children(recursive=True)}
    out = []
    for p in psutil.process_iter():
        try:
            if p.pid not in ours and os.getpgid(p.pid) == pgid:
                out.append(p)
        except (psutil.Error, OSError):
            pass
    return out


def main() -> int:
    import httpx

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", default="artifacts/default")
    p.add_argument("--data", default="data/glyphs")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--kill-every", type=int, default=2000, help="requests between SIGKILLs of an API worker")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds after which a request counts as hung"
    )
    p.add_argument("--max-minutes", type=float, default=20.0)
    args = p.parse_args()
    pngs = glyph_pngs(Path(args.data), 256)
    rng = random.Random(0)
    kinds = rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX], k=args.requests)
    dropped_errors = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)

    with (
        tempfile.TemporaryDirectory() as tmp,
        Server(Path(args.artifacts), Path(tmp) / "serve.log") as server,
    ):
        with httpx.Client(base_url=server.url, timeout=args.timeout) as c:  # warm every endpoint once
            for kind in dict.fromkeys(k for _, k in MIX):
                request(c, kind, pngs, rng)
        start_mb = rss_mb(server.proc.pid)
        deadline = time.perf_counter() + args.max_minutes * 60
        counts, errors, lock = Counter(), Counter(), threading.Lock()
        outcomes = Counter()  # answered, retried (dropped, then answered), lost
        sent = [0]  # requests done so far, for the killer
        mark = len(server.output())
        killer = Killer(server, args.kill_every, pngs[0]) if args.kill_every else None
        t0 = time.perf_counter()

        def one(c, kind, wrng) -> tuple[str, bool, str]:
            for attempt in ("answered", "retried"):
                try:
                    name, ok = request(c, kind, pngs, wrng)
                    return name, ok, attempt
                except dropped_errors:
                    continue
                except httpx.HTTPError as e:  # a timeout: the request hung
                    return f"{kind} ({type(e).__name__})", False, "lost"
            return f"{kind} (dropped twice)", False, "lost"

        def worker(w: int) -> None:
            wrng = random.Random(w)
            with httpx.Client(base_url=server.url, timeout=args.timeout) as c:
                for kind in kinds[w :: args.concurrency]:
                    if time.perf_counter() > deadline:
                        return
                    name, ok, outcome = one(c, kind, wrng)
                    with lock:
                        counts[name] += 1
                        errors[name] += not ok
                        outcomes[outcome] += 1
                        sent[0] += 1

        if killer:
            killer.start(lambda: sent[0])
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(worker, range(args.concurrency)))
        seconds = time.perf_counter() - t0
        if killer:
            killer.stop()
        end_mb = rss_mb(server.proc.pid)
        alive = httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        unavailable = server.output()[mark:].count("glyphgate INFO 503 ")
        left_over = orphans(server)

    done = sum(counts.values())
    print(
        f"# bench/soak.py: {done} requests in {seconds:.0f} s ({done / seconds:.0f} req/s), concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPU cores, an API worker SIGKILLed every {args.kill_every or 'never'} requests"
    )
    print("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = {k: v for k, v in errors.items() if v}
    print(
        f"errors: {sum(failed.values())}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in failed.items()) + ")" if failed else "")
    )
    print(
        f"answers lost: {outcomes['lost']}; connections dropped by a kill and answered on retry: "
        f"{outcomes['retried']}; 503 answers: {unavailable}"
    )
    if killer:
        started = [r[0] for r in killer.recoveries]
        answering = [r[1] for r in killer.recoveries]
        if killer.recoveries:
            print(
                f"kills: {len(killer.recoveries)}; new process after median {statistics.median(killer.spawned):.1f} s, "
                f"replacement started after median {statistics.median(started):.1f} s "
                f"(max {max(started):.1f} s), answering after median {statistics.median(answering):.1f} s "
                f"(max {max(answering):.1f} s)"
            )
        if killer.replacement_share:
            print(
                "replacement's share of the requests after it came back: "
                + ", ".join(f"{share:.0%}" for share in killer.replacement_share)
            )
        for failure in killer.failures:
            print(f"kill failure: {failure}")
    print(f"helper processes left behind by killed workers: {len(left_over)}")
    print(
        f"server memory (RSS, all processes): {start_mb:.0f} MB after warm-up -> {end_mb:.0f} MB at the end "
        f"({(end_mb / start_mb - 1):+.1%}); ready afterwards: {alive}"
    )
    clean = not failed and not outcomes["lost"] and not left_over and not (killer and killer.failures)
    return 0 if clean and done == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
