"""Sample files a newcomer can send at once, and any course-layout split as PNG folders.

`write_examples` renders with the corpus' own code (same faces, same scan degradations): a few
glyph scans, a few scans that are not glyphs (one per far and near kind), and one printed page
with its PAGE-XML, for `curl`, `glyphgate scan` and `glyphgate scan --page`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from glyphgate.core.errors import DataError

EXAMPLE_GLYPHS = {
    "a": "a",
    "e": "e",
    "g": "g",
    "ſ": "long-s",
    "ā": "a-macron",
    "S": "capital-S",
}  # ASCII file names
EXAMPLE_OOD = (
    "uniform_noise",
    "ink_blots",
    "blank_paper",
    "foreign_capitals",
    "touching_pairs",
    "rotated_mirrored",
    "solid_shapes",
    "rules_lines",
    "handwriting",
)


def write_examples(out: str | Path, seed: int = 0) -> list[Path]:
    from corpus.synth import ood
    from corpus.synth.corpus import OUT, glyph_sample
    from corpus.synth.faces import CLASSES
    from corpus.synth.page import render_page

    out = Path(out)
    written = []
    for i, symbol in enumerate(EXAMPLE_GLYPHS):
        rng = np.random.default_rng([seed, 7, i])
        path = out / "glyphs" / f"{EXAMPLE_GLYPHS[symbol]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(glyph_sample(rng, CLASSES.index(symbol))).save(path)
        written.append(path)
    for i, kind in enumerate(EXAMPLE_OOD):
        rng = np.random.default_rng([seed, 8, i])
        path = out / "not-glyphs" / f"{ood.KIND[kind]}_{kind}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ood.GENERATORS[kind](rng, OUT)).save(path)
        written.append(path)
    written += list(render_page(out / "page", "page", seed=seed))
    return written


def export_png(
    data: str | Path, out: str | Path, splits: tuple[str, ...] = ("test",), limit: int | None = None
) -> dict:
    """Course layout (what `data synth` writes) -> out/<split>/<class>/NNNNN.png and out/ood/<set>/NNNNN.png."""
    from corpus.load import _manifest

    data, out = Path(data), Path(out)
    if not (data / "train.npy").is_file():
        raise DataError(f"{data}: not a course-layout folder (no train.npy); image folders are PNGs already")
    classes = _manifest(data).get("classes")
    counts = {}
    for split in splits:
        if not (data / f"{split}.npy").is_file():
            raise DataError(f"{data / f'{split}.npy'}: file not found")
        with open(data / f"{split}.npy", "rb") as f:  # the corpus' own files: images, then labels
            x, y = np.load(f), np.load(f)
        names = classes or [str(c) for c in range(int(y.max()) + 1)]
        seen: dict[int, int] = {}
        for i, (img, label) in enumerate(zip(x, y)):
            k = seen.get(int(label), 0)
            if limit is not None and k >= limit:
                continue
            seen[int(label)] = k + 1
            path = out / split / names[int(label)] / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(img, np.uint8)).save(path)
        counts[split] = sum(seen.values())
    for path in sorted((data / "ood").glob("*.npy")):
        imgs = np.load(path)
        for i, img in enumerate(imgs[:limit] if limit else imgs):
            p = out / "ood" / path.stem / f"{i:05d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(img, np.uint8)).save(p)
        counts[f"ood/{path.stem}"] = min(len(imgs), limit or len(imgs))
    return counts
