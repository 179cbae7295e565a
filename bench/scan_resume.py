"""`glyphgate scan` at archive size: a scan SIGKILLed half way and resumed against one left alone
(rows lost, duplicated, changed), the peak memory of scans of a small and a large folder (it must
not grow with the folder), and a ZIP bomb: a ZIP of a few MB holding one member of many GB of
zeros (refused in one line, peak RSS bounded).

    python bench/scan_resume.py [--files 20000] [--small 10000] [--large 40000] [--zip-gb 20]
                                [--artifacts artifacts/default] [--workdir DIR]

Every scan is a `python -m glyphgate scan` subprocess; peak RSS is that process's ru_maxrss
(os.wait4). Building the bomb costs about 1 s of zlib per GB of zeros; --workdir keeps it.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def distinct_pngs(n: int = 997) -> list[bytes]:
    """Tiny scans of noise, gradients and blobs, encoded once and cycled over the folder."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        size = int(rng.integers(12, 40))
        a = rng.integers(0, 256, (size, size), dtype=np.uint8)
        if i % 3 == 1:
            a = np.sort(a, axis=int(rng.integers(0, 2)))
        elif i % 3 == 2:
            a[:] = 255
            a[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = rng.integers(0, 60)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def make_folder(root: Path, n: int, pngs: list[bytes]) -> Path:
    if root.is_dir() and sum(1 for _ in root.rglob("*.png")) == n:
        return root
    for i in range(n):
        folder = root / f"box{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"scan{i:06d}.png").write_bytes(pngs[i % len(pngs)])
    return root


def make_bomb(path: Path, gigabytes: int, good: bytes) -> float:
    """One good scan and bomb.png: `gigabytes` GB of zeros deflated; seconds it took to build."""
    if path.is_file():
        return 0.0
    t0 = time.perf_counter()
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.png", good)
        with zf.open("bomb.png", "w", force_zip64=True) as member:
            for _ in range(gigabytes * 1024):
                member.write(chunk)
    path.with_suffix(".tmp").rename(path)
    return time.perf_counter() - t0


class Scan:
    """One `glyphgate scan` subprocess: its exit status, stderr and peak RSS once it is reaped."""

    def __init__(self, src: Path, out: Path, artifacts: Path, *extra: str, env: dict | None = None):
        cmd = [sys.executable, "-m", "glyphgate", "scan", str(src), "--out", str(out)]
        cmd += ["--artifacts", str(artifacts), "--no-progress", *extra]
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=self.err
        )
        self.t0 = time.perf_counter()

    def reap(self) -> "Scan":
        _, status, usage = os.wait4(self.p.pid, 0)
        self.p.returncode = self.status = os.waitstatus_to_exitcode(status)
        self.seconds = time.perf_counter() - self.t0
        self.peak_mb = usage.ru_maxrss / 1024
        self.err.seek(0)
        self.stderr = self.err.read().decode("utf-8", "replace")
        return self


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def rows_on_disk(out: Path) -> int:
    try:
        return (out / "results.csv").read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def kill_and_resume(src: Path, n: int, work: Path, artifacts: Path) -> None:
    whole = Scan(src, work / "whole", artifacts, "--overwrite").reap()
    want = rows(work / "whole")
    killed = Scan(src, work / "killed", artifacts, "--overwrite")
    while rows_on_disk(work / "killed") < n // 2 and killed.p.poll() is None:
        time.sleep(0.005)
    killed.p.send_signal(signal.SIGKILL)
    killed.reap()
    at_kill = rows_on_disk(work / "killed")
    resumed = Scan(src, work / "killed", artifacts, "--resume").reap()
    got = rows(work / "killed")
    paths = [r["path"] for r in got]
    lost = len({r["path"] for r in want} - set(paths))
    changed = sum(a != b for a, b in zip(got, want))
    print(
        f"kill -9 at {at_kill:,} of {n:,} rows (status {killed.status}), resumed (status {resumed.status}, "
        f"{resumed.seconds:.1f} s): {len(got):,} rows, {lost} lost, {len(paths) - len(set(paths))} duplicated, "
        f"{changed} differing from the uninterrupted scan ({whole.seconds:.1f} s, status {whole.status}); "
        f"same order: {paths == [r['path'] for r in want]}"
    )


def peak_rss(small: int, large: int, work: Path, pngs: list[bytes], artifacts: Path) -> None:
    peaks = {}
    for n in (small, large):
        scan = Scan(make_folder(work / f"f{n}", n, pngs), work / f"rss{n}", artifacts, "--overwrite")
        peaks[n] = scan.reap().peak_mb
        print(f"scan of {n:,} files: peak RSS {peaks[n]:.0f} MB, {scan.seconds:.1f} s, status {scan.status}")
    print(f"peak RSS {large:,} / {small:,} files: {peaks[large] / peaks[small]:.3f} (target: within 10 %)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000, help="folder killed and resumed (0: skip)")
    ap.add_argument("--small", type=int, default=10000, help="folders whose peak RSS is compared (0: skip)")
    ap.add_argument("--large", type=int, default=40000)
    ap.add_argument("--zip-gb", type=int, default=20, help="GB of zeros in the bomb (0: skip it)")
    ap.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "default")
    ap.add_argument("--workdir", type=Path, default=None, help="keep folders and the bomb here")
    args = ap.parse_args()
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="scan-bench-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    pngs = distinct_pngs()

    if args.files:
        folder = make_folder(work / f"f{args.files}", args.files, pngs)
        kill_and_resume(folder, args.files, work, args.artifacts)
    if args.small and args.large:
        peak_rss(args.small, args.large, work, pngs, args.artifacts)

    if args.zip_gb:
        bomb = work / f"bomb{args.zip_gb}.zip"
        built = make_bomb(bomb, args.zip_gb, pngs[0])
        scan = Scan(bomb, work / "bomb", args.artifacts, "--overwrite").reap()
        errors = [line for line in scan.stderr.splitlines() if line.strip()]
        print(
            f"ZIP of {bomb.stat().st_size / 2**20:.1f} MB holding {args.zip_gb} GB of zeros"
            + (f" (built in {built:.0f} s)" if built else "")
            + f": status {scan.status}, peak RSS {scan.peak_mb:.0f} MB (target <= 500), {scan.seconds:.1f} s, "
            f"stderr {len(errors)} line(s): {errors}"
        )
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
