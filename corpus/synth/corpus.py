"""`glyphgate data synth`: the embedded synthetic letterpress corpus in the course layout.

Every image is a pure function of (seed, stream, index), so the arrays are byte-identical
for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from corpus.synth import ood
from corpus.synth.degrade import scan
from corpus.synth.faces import CLASSES, PRINT_FACES, faces_for
from corpus.synth.render import compose

OUT = 64
DEFAULT_TOTAL = 16171
DEFAULT_OOD_PER_KIND = 600
SPLITS = ("train", "val", "test")
_STREAM = {"train": 1, "val": 2, "test": 3, **{k: 100 + i for i, k in enumerate(ood.STREAM_ORDER)}}


def split_sizes(total: int) -> dict[str, int]:
    """70/15/15 as in the course: 16,171 -> 11,319 / 2,426 / 2,426."""
    val = round(total * 0.15)
    return {"train": total - 2 * val, "val": val, "test": val}


def split_labels(seed: int, split: str, n: int) -> np.ndarray:
    """Balanced labels (counts differ by at most one), in a seeded random order."""
    labels = np.arange(n) % len(CLASSES)
    return np.random.default_rng([seed, _STREAM[split], 2**31]).permutation(labels).astype(np.int64)


def glyph_sample(rng: np.random.Generator, label: int) -> np.ndarray:
    symbol = CLASSES[label]
    faces = faces_for(symbol)
    face = faces[int(rng.integers(len(faces)))]
    return scan(rng, compose(rng, face, [face.char_for(symbol)]), OUT)


def _render(job: tuple[int, str, int, int]) -> np.ndarray:
    seed, stream, index, label = job
    rng = np.random.default_rng([seed, _STREAM[stream], index])
    if stream in ood.GENERATORS:
        return ood.GENERATORS[stream](rng, OUT)
    return glyph_sample(rng, label)


def _render_chunk(jobs: list[tuple[int, str, int, int]]) -> np.ndarray:
    return np.stack([_render(j) for j in jobs])


def render_all(jobs: list, workers: int, desc: str) -> np.ndarray:
    chunks = [jobs[i : i + 128] for i in range(0, len(jobs), 128)]
    out = np.empty((len(jobs), OUT, OUT), dtype=np.uint8)
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=None)
    pos = 0
    if workers <= 1 or len(chunks) < 2:
        results = map(_render_chunk, chunks)
        pool = None
    else:
        # forkserver: workers start clean, never inheriting a parent's torch/OpenMP threads.
        pool = mp.get_context("forkserver").Pool(workers)
        results = pool.imap(_render_chunk, chunks)
    try:
        for arr in results:
            out[pos : pos + len(arr)] = arr
            pos += len(arr)
            bar.update(len(arr))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return out


def _save_xy(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> None:
    with open(path, "wb") as f:
        np.save(f, x)
        if y is not None:
            np.save(f, y)


def _preview(path: Path, images: np.ndarray, n: int = 64) -> None:
    from glyphgate.core.image.grid import save_grid

    save_grid(images.astype(np.uint8), path, nrow=8, limit=n)


def synthesize(
    out_dir: str | os.PathLike,
    seed: int = 0,
    total: int = DEFAULT_TOTAL,
    ood_per_kind: int = DEFAULT_OOD_PER_KIND,
    workers: int | None = None,
) -> dict:
    """Write the corpus; returns the manifest that is also saved as classes.json."""
    if total < 3 * len(CLASSES):
        raise ValueError(f"--total must be at least {3 * len(CLASSES)} (one image per class and split)")
    if ood_per_kind < 1:
        raise ValueError("--ood-per-kind must be at least 1")
    out = Path(out_dir)
    (out / "ood").mkdir(parents=True, exist_ok=True)
    (out / "preview").mkdir(exist_ok=True)
    workers = workers or os.cpu_count() or 1

    sizes = split_sizes(total)
    jobs, spans = [], {}
    for split in SPLITS:
        labels = split_labels(seed, split, sizes[split])
        spans[split] = (len(jobs), labels)
        jobs += [(seed, split, i, int(lab)) for i, lab in enumerate(labels)]
    for kind in ood.GENERATORS:
        spans[kind] = (len(jobs), None)
        jobs += [(seed, kind, i, -1) for i in range(ood_per_kind)]
    images = render_all(jobs, workers, "synth corpus")

    def take(name: str, n: int) -> np.ndarray:
        return images[spans[name][0] : spans[name][0] + n]

    for split in SPLITS:
        x, y = take(split, sizes[split]), spans[split][1]
        _save_xy(out / f"{split}.npy", x, y)
        _preview(out / "preview" / f"{split}.png", x)
    manifest_ood = {}
    for kind in ood.GENERATORS:
        x = take(kind, ood_per_kind)
        _save_xy(out / "ood" / f"{kind}.npy", x)
        _preview(out / "preview" / f"ood_{kind}.png", x)
        manifest_ood[kind] = {"kind": ood.KIND[kind], "file": f"ood/{kind}.npy", "n": ood_per_kind}
    # The course's two OOD files: one near mix (ta) and one far mix (tb), round-robin over kinds.
    for name, kinds, kind in (("ood_ta", ood.COURSE_NEAR, "near"), ("ood_tb", ood.COURSE_FAR, "far")):
        idx = [(k, i // len(kinds)) for i, k in zip(range(ood_per_kind), _cycle(kinds))]
        x = np.stack([take(k, ood_per_kind)[j] for k, j in idx])
        x = x[np.random.default_rng([seed, 7, len(name)]).permutation(len(x))]
        _save_xy(out / f"{name}.npy", x)
        _preview(out / "preview" / f"{name}.png", x)
        manifest_ood[name] = {"kind": kind, "file": f"{name}.npy", "n": len(x), "mix": kinds}

    manifest = {
        "classes": CLASSES,
        "splits": sizes,
        "ood": manifest_ood,
        "generator": {
            "command": "glyphgate data synth",
            "seed": seed,
            "total": total,
            "ood_per_kind": ood_per_kind,
            "image_size": OUT,
            "faces": [f.name for f in PRINT_FACES],
        },
    }
    (out / "classes.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _cycle(items):
    while True:
        yield from items
