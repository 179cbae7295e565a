"""Start a real `bentoml serve` on 127.0.0.1 in a subprocess and stop it: the tests' server, also
used by bench/serve.py, bench/hol.py and bench/soak.py; and find its worker processes, for the
fault tests that kill them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]  # the repo root, where bentofile.yaml lives


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    pass


class Server:
    """`bentoml serve TARGET` in `cwd`: the service from the source tree by default, or a built
    Bento by tag (then artifacts=None: the Bento's own model)."""

    def __init__(self, artifacts, log_path, target: str = "serving.service:Gate", cwd: Path = ROOT, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.target, self.cwd = target, cwd
        self.env = {
            **os.environ,
            "BENTOML_DO_NOT_TRACK": "True",
            "BENTOML_HOME": str(self.log_path.parent / "bentoml_home"),
            **{k: str(v) for k, v in env.items()},
        }
        if artifacts is None:
            self.env.pop("GLYPHGATE_ARTIFACTS", None)
        else:
            self.env["GLYPHGATE_ARTIFACTS"] = str(artifacts)
        self.proc = None

    def start(self, timeout: float = 90, attempts: int = 3) -> "Server":
        """Start and wait for /readyz. free_port() can race with another process taking the port
        between our probe and BentoML's bind: then the server exits with "address already in use"
        and we try again on a fresh port."""
        for _ in range(attempts):
            try:
                return self._start_once(timeout)
            except PortTaken:
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"no free port after {attempts} attempts")

    def _start_once(self, timeout: float) -> "Server":
        bentoml = Path(sys.executable).with_name("bentoml")
        self.log = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(bentoml), "serve", self.target, "--port", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ours = f"listening on http://127.0.0.1:{self.port}"  # not another process that holds the port
        while time.perf_counter() - self.started < timeout:
            if self.proc.poll() is not None:
                out = self.output()
                self.log.close()
                if "address already in use" in out.lower():
                    raise PortTaken(self.port)
                raise RuntimeError(f"server exited with {self.proc.returncode}: {out[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200 and ours in self.output():
                        self.ready_s = time.perf_counter() - self.started
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s: {self.output()[-2000:]}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def workers(self, service: str = "glyphgate") -> list[psutil.Process]:
        """The live worker processes of one service (glyphgate: the API workers; glyphgate-generator),
        children of the circus arbiter that `bentoml serve` runs; a killed one not yet reaped is left out."""
        out = []
        for p in psutil.Process(self.proc.pid).children():
            try:
                cmd = p.cmdline()
                if p.status() != psutil.STATUS_ZOMBIE and cmd[cmd.index("--service-name") + 1] == service:
                    out.append(p)
            except (psutil.Error, ValueError, IndexError):  # exited meanwhile, or not a worker
                pass
        return out

    @staticmethod
    def worker_id(p: psutil.Process) -> str:
        """Circus's worker id ($CIRCUS.WID): a replacement takes the id of the worker it replaces."""
        cmd = p.cmdline()
        return cmd[cmd.index("--worker-id") + 1]

    def served_by(self, since: int) -> list[str]:
        """Worker ids of the API workers whose access-log lines follow offset `since` of the log."""
        return re.findall(r"\[entry_service:glyphgate:(\d+)\] 127\.0\.0\.1:\d+ ", self.output()[since:])

    def initialized(self, since: int = 0) -> list[str]:
        """Worker ids of the API workers that logged their start after offset `since`."""
        return re.findall(
            r"\[entry_service:glyphgate:(\d+)\] Service glyphgate initialized", self.output()[since:]
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
