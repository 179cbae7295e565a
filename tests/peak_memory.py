"""`glyphgate ARGV` in a fresh process with its peak memory measured the one way that is right.

The peak is the process's own high-water mark (VmHWM in /proc/self/status), read at exit: a
child's rusage ru_maxrss starts from the RSS of the process that forked it (here pytest, which
grows to gigabytes over the suite), so it cannot bound what one command costs. The libraries
every run loads are imported first, so what a command adds on top of them can be told apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import atexit, re, sys
import numpy, PIL.Image, scipy.ndimage
if sys.argv[1] == "scan":
    import onnxruntime
def high_water_kb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1))
base = high_water_kb()
atexit.register(lambda: print("high-water-kb", base, high_water_kb(), file=sys.stderr))
from glyphgate.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str  # without the runner's own line
    peak_mb: float  # the process's high-water mark
    libraries_mb: float  # of which the libraries imported before the command

    @property
    def above_libraries_mb(self) -> float:
        return self.peak_mb - self.libraries_mb


def run_measured(*argv: str, env: dict | None = None, timeout: float = 300) -> Measured:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    found = re.search(r"high-water-kb (\d+) (\d+)\n?", done.stderr)
    assert found, done.stderr
    base, peak = map(int, found.groups())
    err = done.stderr[: found.start()] + done.stderr[found.end() :]
    print(f"glyphgate {argv[0]}: peak RSS {peak / 1024:.0f} MB, {base / 1024:.0f} MB of it libraries")
    return Measured(done.returncode, done.stdout, err, peak / 1024, base / 1024)
