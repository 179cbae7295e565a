"""Batch-scoring throughput, measured in one run on one folder of PNG crops, with the ratios:

    python bench/scan.py [--files 20480] [--source data/real/vd-sbb/test data/real/vd-sbb/val]
                         [--against REV] [--server] [--no-ray]

1. raw ONNX Runtime at batch 256 on every core (inputs already prepared): the ceiling;
2. `glyphgate scan` (local: worker processes decode while ORT scores), and with --workers 0
   (decode in the scan's own process, as before this engine): images/s and share of (1);
3. `glyphgate scan --engine ray` on a local Ray runtime of 1 and of 2 CPUs: the scaling a
   reader sizes a cluster by; rows compared with the local scan's;
4. with --server: a real server's /score_batch (64 images a request, 4 clients) as share of (1);
5. with --against REV: the largest energy difference between this preprocessing and REV's on
   the folder (the verdicts "as before").

The folder is `--files` crops taken in order from the --source folders (the real VD-SBB crops
by default: cut by a segmenter, of every size), hard-linked into a temporary folder; without
them, the example glyphs at random box sizes. Each scan is its own process, one at a time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from glyphgate.core.contract.artifacts import SHIPPED  # noqa: E402
from glyphgate.core.image.decode import load_gray  # noqa: E402
from glyphgate.core.image.preprocess import prepare_many  # noqa: E402
from glyphgate.core.scoring.onnx_session import OnnxModel  # noqa: E402
from glyphgate.scan.decode_pool import default_workers  # noqa: E402

DEFAULT_SOURCES = [ROOT / "data/real/vd-sbb/test", ROOT / "data/real/vd-sbb/val"]


def build_folder(sources: list[Path], n: int, dest: Path) -> str:
    pngs = [p for s in sources if s.is_dir() for p in sorted(s.rglob("*.png"))]
    if pngs:
        for i in range(n):
            src = pngs[i % len(pngs)]
            target = dest / f"{i // 1000:03d}" / f"{i:06d}-{src.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, target)
        return f"{n} crops from {', '.join(str(s) for s in sources if s.is_dir())}"
    from PIL import Image

    rng = np.random.default_rng(0)
    glyphs = [Image.open(p).convert("L") for p in sorted((ROOT / "examples/glyphs").glob("*.png"))]
    for i in range(n):
        target = dest / f"{i // 1000:03d}" / f"{i:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        size = (int(rng.integers(8, 70)), int(rng.integers(12, 90)))
        glyphs[i % len(glyphs)].resize(size, Image.BILINEAR).save(target)
    return f"{n} example glyphs at random box sizes (no --source folders found)"


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def raw_ort(artifacts: Path, x: np.ndarray, threads: int, seconds: float) -> float:
    model = OnnxModel(artifacts / "model.onnx", threads=threads, cpu_only=True)
    batches = [x[i : i + 256] for i in range(0, len(x) - 255, 256)]
    for b in batches[:4]:
        model.run(b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in batches:
            model.run(b)
            n += len(b)
    return n / (time.perf_counter() - t0)


def run_scan(folder: Path, out: Path, artifacts: Path, *extra: str, env: dict | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "glyphgate",
        "scan",
        str(folder),
        "--out",
        str(out),
        "--artifacts",
        str(artifacts),
    ]
    t0 = time.perf_counter()
    p = subprocess.run(
        [*cmd, "--overwrite", "--no-progress", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({p.returncode}): {p.stderr[-2000:]}")
    summary = json.loads((out / "results.json").read_text())["summary"]
    return {"rate": summary["images_per_s"], "wall": wall, "rows": rows_of(out)}


def rows_of(out: Path) -> list[dict]:
    with open(out / "results.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare(a: list[dict], b: list[dict]) -> str:
    same_order = [r["path"] for r in a] == [r["path"] for r in b]
    same = sum(
        (x["label"], x["is_ood"], x["error"]) == (y["label"], y["is_ood"], y["error"]) for x, y in zip(a, b)
    )
    de = max((abs(float(x["energy"]) - float(y["energy"])) for x, y in zip(a, b) if x["energy"]), default=0.0)
    return (
        f"{same:,}/{len(a):,} rows same label/flag/error, same order {same_order}, max |energy diff| {de:.1e}"
    )


RAY_SCAN = """
import sys, ray
from glyphgate.scan.ray_engine import scan_with_ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, configure_logging=False, log_to_driver=False)
scan_with_ray(sys.argv[2], sys.argv[3], sys.argv[4], overwrite=True, progress=False)
"""


def ray_scan(folder: Path, out: Path, artifacts: Path, cpus: int) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", RAY_SCAN, str(cpus), str(folder), str(out), str(artifacts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if p.returncode:
        raise SystemExit(f"ray scan failed: {p.stderr[-2000:]}")
    summary = json.loads((out / "results.json").read_text())["summary"]
    return {"rate": summary["images_per_s"], "wall": time.perf_counter() - t0, "rows": rows_of(out)}


def preprocessing_of(rev: str) -> types.ModuleType:
    """REV's glyphgate/core/image/preprocess.py as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:glyphgate/core/image/preprocess.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"preprocess_{rev}")
    exec(compile(source, f"{rev}:preprocess.py", "exec"), module.__dict__)
    return module


def energies_against(rev: str, files: list[Path], artifacts: Path, x_now: np.ndarray) -> float:
    from PIL import Image

    old = preprocessing_of(rev)
    grays = []
    for f in files:
        with Image.open(f) as im:
            grays.append(old.pil_to_gray(im))
    x_old = old.prepare_many(grays)
    model = OnnxModel(artifacts / "model.onnx", threads=default_workers(), cpu_only=True)
    e_now = np.concatenate([model.run(x_now[i : i + 256])[1] for i in range(0, len(x_now), 256)])
    e_old = np.concatenate([model.run(x_old[i : i + 256])[1] for i in range(0, len(x_old), 256)])
    return float(np.abs(e_now - e_old).max())


def score_batch_rate(artifacts: Path, files: list[Path], seconds: float) -> float:
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from live_server import Server

    batch = [("images", (f.name, f.read_bytes(), "image/png")) for f in files[:64]]
    with tempfile.TemporaryDirectory() as tmp, Server(artifacts, Path(tmp) / "serve.log") as s:

        def client(deadline: float) -> int:
            done = 0
            with httpx.Client(base_url=s.url, timeout=60) as c:
                while time.perf_counter() < deadline:
                    c.post("/score_batch", files=batch).raise_for_status()
                    done += 1
            return done

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(client, [time.perf_counter() + 2] * 4))  # warm-up
            t0 = time.perf_counter()
            n = sum(pool.map(client, [t0 + seconds] * 4))
            return n * 64 / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", type=Path, default=SHIPPED)
    p.add_argument("--files", type=int, default=20480)
    p.add_argument("--source", type=Path, nargs="*", default=DEFAULT_SOURCES)
    p.add_argument("--seconds", type=float, default=10.0, help="raw ORT and /score_batch phases")
    p.add_argument(
        "--against", default=None, metavar="REV", help="git revision whose preprocessing to compare"
    )
    p.add_argument("--server", action="store_true", help="also measure a real server's /score_batch")
    p.add_argument("--no-ray", action="store_true")
    args = p.parse_args()
    cores = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "crops"
        what = build_folder(args.source, args.files, folder)
        files = files_of(folder)
        print(f"folder: {what}; {cores} cores")
        x = prepare_many([load_gray(f.read_bytes(), f.name, 10**9) for f in files])
        ceiling = raw_ort(args.artifacts, x, cores, args.seconds)
        print(f"raw ONNX Runtime, batch 256, {cores} threads: {ceiling:,.0f} images/s")
        local = run_scan(folder, tmp / "local", args.artifacts)
        print(
            f"glyphgate scan (local, {cores} decode workers): {local['rate']:,.0f} images/s "
            f"= {local['rate'] / ceiling:.0%} of raw ORT ({local['wall']:.1f} s wall for the command)"
        )
        single = run_scan(folder, tmp / "single", args.artifacts, "--workers", "0")
        print(
            f"glyphgate scan --workers 0 (one process): {single['rate']:,.0f} images/s "
            f"= {single['rate'] / ceiling:.0%} of raw ORT"
        )
        print(f"  local vs --workers 0: {compare(local['rows'], single['rows'])}")
        if args.against:
            print(
                f"  energies against {args.against}'s preprocessing: max |diff| {energies_against(args.against, files, args.artifacts, x):.1e}"
            )
        if not args.no_ray:
            rates = {}
            for cpus in (1, 2):
                r = ray_scan(folder, tmp / f"ray{cpus}", args.artifacts, cpus)
                rates[cpus] = r["rate"]
                print(
                    f"glyphgate scan --engine ray, local runtime of {cpus} CPU(s): {r['rate']:,.0f} images/s "
                    f"= {r['rate'] / ceiling:.0%} of raw ORT ({r['wall']:.1f} s wall with Ray's start)"
                )
                print(f"  vs local: {compare(r['rows'], local['rows'])}")
            print(f"  Ray 2 CPUs / 1 CPU: {rates[2] / rates[1]:.2f}x")
        if args.server:
            rate = score_batch_rate(args.artifacts, files, args.seconds)
            print(
                f"/score_batch (64 a request, 4 clients): {rate:,.0f} images/s = {rate / ceiling:.0%} of raw ORT"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
