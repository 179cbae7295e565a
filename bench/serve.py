"""Serving figures measured in one run, printed with their ratios.

    python bench/serve.py [--artifacts artifacts/default] [--data data/glyphs] [--seconds 20]

1. ONNX Runtime vs torch eager, images/s at batch 1, 64, 256 (same threads, same process);
2. the model's FLOPs per image and the best float32 GEMM GFLOP/s of several sizes on the same
   cores -> ORT as a fraction of that practical peak;
3. a real server on 127.0.0.1: /readyz time after start, images/s through /score_batch
   (64 images/request, concurrency 4), single-image /score p50/p99 at concurrency 8 alone and
   while a /generate (16 x 256 steps) runs, and that generation's wall time.
Load goes only to 127.0.0.1 and every phase is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository, and the tests' live server

from live_server import Server  # noqa: E402

from glyphgate.core.contract.artifacts import load_torch_model  # noqa: E402
from glyphgate.core.model.net import OnnxHead  # noqa: E402
from glyphgate.core.scoring.onnx_session import OnnxModel  # noqa: E402


def rate(fn, n_images: int, seconds: float, min_reps: int = 3) -> float:
    fn()  # warm-up
    reps, t0 = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t0 < seconds:
        fn()
        reps += 1
    return reps * n_images / (time.perf_counter() - t0)


def flops_per_image(net) -> float:
    """2 x multiply-accumulates of every conv and linear layer for one 56x56 image."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += 2 * out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total += 2 * mod.in_features * mod.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        net.get_logits(torch.zeros(1, 1, 56, 56))
    for h in handles:
        h.remove()
    return float(total)


BLAS_SIZES = (256, 512, 1024, 2048)


def matmul_gflops(seconds: float) -> tuple[float, int]:
    """The best float32 GEMM rate of torch's BLAS over several square sizes on these cores (the
    practical peak: a single 1024^3 product is not it, and ORT's small convolutions beat it)."""
    best = (0.0, 0)
    for n in BLAS_SIZES:
        a, b = torch.randn(n, n), torch.randn(n, n)
        best = max(best, (rate(lambda a=a, b=b: a @ b, 1, seconds / len(BLAS_SIZES)) * 2 * n**3 / 1e9, n))
    return best


def engines(artifacts: Path, seconds: float, threads: int) -> dict:
    torch.set_num_threads(threads)
    onnx = OnnxModel(artifacts / "model.onnx", threads=threads, cpu_only=True)
    head = OnnxHead(load_torch_model(artifacts).net).eval()
    out = {}
    for n in (1, 64, 256):
        x = np.random.default_rng(0).random((n, 1, 56, 56), np.float32) * 2 - 1
        xt = torch.from_numpy(x)
        ort_rate = rate(lambda x=x: onnx.run(x), n, seconds)
        with torch.inference_mode():
            torch_rate = rate(lambda xt=xt: head(xt), n, seconds)
        out[n] = (ort_rate, torch_rate)
    return out


def glyph_pngs(data: Path | None, n: int) -> list[bytes]:
    from PIL import Image

    if data is not None and (data / "test.npy").is_file():
        with open(data / "test.npy", "rb") as f:
            x = np.load(f)[:n]
    else:  # any grey 64x64 images do for throughput
        x = (np.random.default_rng(0).random((n, 64, 64)) * 255).astype(np.uint8)
    out = []
    for a in x:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def server_figures(artifacts: Path, pngs: list[bytes], seconds: float, max_requests: int) -> dict:
    import httpx

    res = {}
    with tempfile.TemporaryDirectory() as tmp, Server(artifacts, Path(tmp) / "serve.log") as s:
        res["readyz_s"] = s.ready_s
        batch = [("images", (f"g{i}.png", pngs[i % len(pngs)], "image/png")) for i in range(64)]

        def batch_worker(deadline):
            done = 0
            with httpx.Client(base_url=s.url, timeout=60) as c:
                while time.perf_counter() < deadline and done < max_requests // 4:
                    r = c.post("/score_batch", files=batch)
                    r.raise_for_status()
                    done += 1
            return done

        with ThreadPoolExecutor(4) as pool:  # warm-up, then the measured phase
            list(pool.map(batch_worker, [time.perf_counter() + 2] * 4))
            t0 = time.perf_counter()
            n_req = sum(pool.map(batch_worker, [t0 + seconds] * 4))
            res["batch_images_per_s"] = n_req * 64 / (time.perf_counter() - t0)

        def single_latencies(deadline, stop=None):
            lat = []
            with httpx.Client(base_url=s.url, timeout=60) as c:
                i = 0
                while (
                    time.perf_counter() < deadline
                    and len(lat) < max_requests // 8
                    and not (stop and stop.is_set())
                ):
                    t = time.perf_counter()
                    c.post(
                        "/score", files={"image": ("g.png", pngs[i % len(pngs)], "image/png")}
                    ).raise_for_status()
                    lat.append(time.perf_counter() - t)
                    i += 1
            return lat

        with ThreadPoolExecutor(8) as pool:
            lat = sum(pool.map(single_latencies, [time.perf_counter() + seconds] * 8), [])
        res["score_alone"] = (percentile_ms(lat, 50), percentile_ms(lat, 99), len(lat))

        gen_time, stop = {}, threading.Event()

        def generate():
            t = time.perf_counter()
            with httpx.Client(base_url=s.url, timeout=600) as c:
                c.post("/generate", json={"n": 16, "steps": 256, "seed": 0}).raise_for_status()
            gen_time["s"] = time.perf_counter() - t
            stop.set()

        g = threading.Thread(target=generate)
        g.start()
        time.sleep(0.5)  # the generation is under way before the clients start
        with ThreadPoolExecutor(8) as pool:
            lat = sum(pool.map(lambda d: single_latencies(d, stop), [time.perf_counter() + 120] * 8), [])
        g.join()
        res["score_while_generating"] = (percentile_ms(lat, 50), percentile_ms(lat, 99), len(lat))
        res["generate_16x256_s"] = gen_time["s"]
        with httpx.Client(base_url=s.url, timeout=600) as c:  # and alone, for comparison
            t = time.perf_counter()
            c.post("/generate", json={"n": 16, "steps": 256, "seed": 0}).raise_for_status()
            res["generate_alone_s"] = time.perf_counter() - t
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", default="artifacts/default")
    p.add_argument("--data", default="data/glyphs", help="corpus for realistic request images (optional)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    p.add_argument("--max-requests", type=int, default=20000, help="upper bound on requests per phase")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    artifacts = Path(args.artifacts)

    print(
        f"# bench/serve.py on {os.cpu_count()} CPU cores, torch {torch.__version__}, {args.threads} threads"
    )
    model = load_torch_model(artifacts)
    flops = flops_per_image(model.net)
    peak, size = matmul_gflops(min(args.seconds, 8))
    print(
        f"model: {flops / 1e6:.1f} MFLOP per image; best float32 GEMM of {'/'.join(map(str, BLAS_SIZES))}^3 on these "
        f"cores: {peak:.1f} GFLOP/s (at {size}^3)"
    )
    print("batch | ORT img/s | torch img/s | ORT/torch | ORT GFLOP/s | of best GEMM")
    for n, (o, t) in engines(artifacts, min(args.seconds, 5), args.threads).items():
        print(
            f"{n:5d} | {o:9.0f} | {t:11.0f} | {o / t:8.2f}x | {o * flops / 1e9:11.2f} | {o * flops / 1e9 / peak:7.1%}"
        )
    res = server_figures(artifacts, glyph_pngs(Path(args.data), 256), args.seconds, args.max_requests)
    print(f"server /readyz after start: {res['readyz_s']:.1f} s")
    print(f"server /score_batch, 64 images/request, concurrency 4: {res['batch_images_per_s']:.0f} images/s")
    a, g = res["score_alone"], res["score_while_generating"]
    print(
        f"single /score, concurrency 8, alone:            p50 {a[0]:.1f} ms, p99 {a[1]:.1f} ms ({a[2]} requests)"
    )
    print(
        f"single /score, concurrency 8, while generating: p50 {g[0]:.1f} ms, p99 {g[1]:.1f} ms ({g[2]} requests); "
        f"p99 ratio {g[1] / a[1]:.2f}x"
    )
    print(
        f"/generate 16 x 256 steps: {res['generate_16x256_s']:.1f} s under scoring load, {res['generate_alone_s']:.1f} s alone"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
