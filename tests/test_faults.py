"""The server under faults: a real `bentoml serve` on 127.0.0.1 whose processes are SIGKILLed
while clients send requests. Its own server, since the kills would disturb the other tests' one.

What SIGKILL allows: requests in flight on a killed API worker lose their connection (the
process that held it is gone; no server can answer them, so a client retries them); every other
request is answered, none hangs. A killed generator leaves the API workers standing, so the
request it was running gets a 503 to retry. circus, which `bentoml serve` runs its workers
under, starts a replacement for each (not when BENTOML_CONTAINERIZED is set: there BentoML
turns circus's respawn off and leaves restarts to the container's orchestrator)."""

import collections
import io
import threading
import time

import httpx
import psutil
import pytest
from live_server import ROOT, Server
from PIL import Image

pytestmark = pytest.mark.slow
TIMEOUT_S = 30  # per request: an answer later than this counts as a hang
# what a client sees of a request whose worker was killed under it: the connection drops
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The shipped model: these tests are about processes, not about what a model answers, and
    so they need no training run of their own."""
    with Server(ROOT / "artifacts" / "default", tmp_path_factory.mktemp("faults") / "serve.log") as s:
        yield s


@pytest.fixture(scope="module")
def uploads():
    glyph = ROOT / "examples" / "glyphs" / "a.png"
    # 36 megapixels: decoded in the worker's below-scoring helper process, which the kill orphans
    with Image.open(glyph) as im:
        return {"small": glyph.read_bytes(), "big": png(im.resize((6000, 6000), Image.NEAREST))}


class Load:
    """Client threads sending /score, /score_batch and big /score uploads until stopped; every
    answer recorded as (kind, start, seconds, status or the exception's name)."""

    def __init__(self, url: str, uploads: dict):
        self.url, self.uploads = url, uploads
        self.answers: list[tuple[str, float, float, int | str]] = []
        self.stop = threading.Event()
        kinds = ["score", "score", "score_batch", "score_batch", "big"]
        self.threads = [threading.Thread(target=self._send, args=(k,), daemon=True) for k in kinds]

    def _request(self, c: httpx.Client, kind: str) -> int:
        small = ("g.png", self.uploads["small"], "image/png")
        if kind == "score_batch":
            return c.post("/score_batch", files=[("images", small)] * 16).status_code
        upload = ("big.png", self.uploads["big"], "image/png") if kind == "big" else small
        return c.post("/score", files={"image": upload}).status_code

    def _send(self, kind: str) -> None:
        with httpx.Client(base_url=self.url, timeout=TIMEOUT_S) as c:
            while not self.stop.is_set():
                t = time.perf_counter()
                try:
                    outcome = self._request(c, kind)
                except httpx.HTTPError as e:  # a timeout lands here too, as a hang
                    outcome = type(e).__name__
                self.answers.append((kind, t, time.perf_counter() - t, outcome))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in self.threads), "a client is still waiting for an answer"


def wait_for(condition, timeout: float, step: float = 0.1):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if found := condition():
            return found
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {condition.__doc__ or condition}")


def heavy_helper(worker: psutil.Process) -> psutil.Process | None:
    """The worker's below-scoring decode process (serving/priority.py), once a big upload started it."""
    for p in worker.children():
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                return p
        except psutil.Error:  # exited meanwhile
            pass
    return None


def test_a_killed_api_worker_loses_only_its_requests_in_flight_and_is_replaced(server, uploads):
    with Load(server.url, uploads) as load:

        def decoding_big():
            """an API worker decodes a big upload in its helper process"""
            return next((w for w in server.workers() if heavy_helper(w)), None)

        victim = wait_for(decoding_big, 30)
        wait_for(lambda: sum(a[3] == 200 for a in load.answers) >= 20, 30)
        wid, orphans = server.worker_id(victim), victim.children(recursive=True)
        mark = len(server.output())
        killed_at = time.perf_counter()
        victim.kill()
        readyz = []  # the other worker answers for the server meanwhile (a fresh connection each)

        def replaced():
            """the killed worker's replacement started"""
            readyz.append(httpx.get(server.url + "/readyz", timeout=TIMEOUT_S).status_code)
            return wid in server.initialized(mark)

        wait_for(replaced, 60, step=0.2)
        back_at = time.perf_counter()
        workers = server.workers()
        assert len(workers) == 2 and victim.pid not in [w.pid for w in workers]
        back = len(server.output())

        def serving():
            """the clients reach the replacement (its id in the access log after its start):
            their kept-alive connections all went to the survivor meanwhile, and get spread
            again only because the server closes each after its 100th answer"""
            return wid in server.served_by(back)

        wait_for(serving, 30)
        gone = psutil.wait_procs(orphans, timeout=20)[1]
        assert not gone, f"the killed worker's helper processes outlived it: {gone}"
        orphaned_at = time.perf_counter()
        wait_for(lambda: any(a[0] == "big" and a[1] > orphaned_at and a[3] == 200 for a in load.answers), 30)
    outcomes = collections.Counter(a[3] for a in load.answers)
    assert set(outcomes) <= {200} | {e.__name__ for e in DROPPED}, outcomes
    assert max(a[2] for a in load.answers) < TIMEOUT_S
    dropped = [a for a in load.answers if a[3] != 200]
    # at most one request per client connection was in flight on the killed worker, and only
    # those that started before the kill (a reused keep-alive connection to it fails at once)
    assert len(dropped) <= len(load.threads) and all(a[1] < killed_at + 1.0 for a in dropped), dropped
    assert any(a[3] == 200 and a[1] > killed_at and a[1] + a[2] < back_at for a in load.answers), (
        "no request answered by the surviving worker while the killed one was down"
    )
    assert readyz and set(readyz) == {200}, readyz
    assert "Traceback" not in server.output()[mark:]


def test_a_killed_generator_answers_503_and_generation_comes_back(server, uploads):
    generator = server.workers("glyphgate-generator")
    assert len(generator) == 1
    mark = len(server.output())
    answer = {}

    def generate():
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as c:
            answer["r"] = c.post("/generate", json={"n": 64, "steps": 1024})  # minutes of SGLD on CPU

    def busy() -> float:
        t = generator[0].cpu_times()
        return t.user + t.system

    idle = busy()
    g = threading.Thread(target=generate, daemon=True)
    g.start()
    # The request is in the generator once that spends CPU; on a machine kept busy by others the
    # generator (SCHED_IDLE) may get none for a while, and after 5 s it has the request anyway.
    started = time.perf_counter()
    while busy() - idle < 0.1 and time.perf_counter() - started < 5:
        time.sleep(0.02)
    assert "r" not in answer, "the generation ended before the kill"
    killed_at = time.perf_counter()
    generator[0].kill()
    g.join(TIMEOUT_S)
    r = answer["r"]
    assert r.status_code == 503 and time.perf_counter() - killed_at < 10, r.text
    assert r.json()["error"].startswith(
        "generation unavailable: the generator process stopped or is restarting"
    )
    assert int(r.headers["retry-after"]) > 0
    with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as c:
        small = {"image": ("g.png", uploads["small"], "image/png")}
        assert c.post("/score", files=small).status_code == 200  # scoring never depended on it
        probes = []

        def ready():
            """/readyz 200 again: the replacement generator is up"""
            t = time.perf_counter()
            r = c.get("/readyz")
            probes.append((r.status_code, time.perf_counter() - t, r.text))
            return r.status_code == 200

        wait_for(ready, 90, step=0.5)
        # while it restarted (torch alone takes seconds to import), /readyz said so in seconds;
        # BentoML alone held such a probe for its 600 s request timeout, then answered 500. The
        # first probe is usually a 503, but circus may respawn the generator within the probe's
        # own wait (a fresh clone on a quiet machine: 200 after 5.0 s), so only "never hangs" and
        # "a 503 says why" hold on every run.
        assert all(s in (200, 503) and took < 10 for s, took, _ in probes), probes
        assert all("generator did not answer" in text for s, _, text in probes if s == 503), probes
        again = c.post("/generate", json={"n": 1, "steps": 2})
        assert again.status_code == 200 and again.headers["content-type"] == "image/png", again.text
    assert len(server.workers("glyphgate-generator")) == 1
    log = server.output()[mark:]
    assert "Traceback" not in log, log[-3000:]
    assert log.count("glyphgate INFO 503 POST /generate: generation unavailable") == 1
