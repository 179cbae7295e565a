"""Image-folder layout: root/{train,val,test}/<class>/* or one root/<class>/* tree split 70/15/15."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.folder import find_classes, make_dataset
from tqdm import tqdm

from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import DEFAULT_MAX_PIXELS, open_image
from glyphgate.core.image.preprocess import pil_to_gray, preprocess

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


def open_gray(path: str | Path) -> np.ndarray:
    """Decode any PNG/JPEG/TIFF (first frame) to a float32 grayscale array, or a DataError."""
    with open_image(path, str(path), DEFAULT_MAX_PIXELS, error=DataError) as im:
        return pil_to_gray(im)


def class_folders(root: Path) -> list[str]:
    """torchvision's class folders (sorted directory names), less ood/ and hidden folders."""
    try:
        found, _ = find_classes(str(root))
    except FileNotFoundError:
        found = []
    names = [n for n in found if not n.startswith(".") and n != "ood"]
    if not names:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/*.png)")
    for name in names:
        if not any(f.suffix.lower() in EXTENSIONS for f in (root / name).rglob("*") if f.is_file()):
            raise DataError(f"{root / name}: class folder holds no images ({'/'.join(EXTENSIONS)})")
    return names


def load_files(files: list[str], desc: str) -> torch.Tensor:
    out = torch.empty(len(files), 1, 56, 56)
    for i, f in enumerate(tqdm(files, desc=desc, unit="img", disable=None, leave=False)):
        out[i] = preprocess(open_gray(f))[0]
    return out


def read_class_tree(root: Path, class_to_idx: dict[str, int], desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    for name in class_folders(root):
        if name not in class_to_idx:
            raise DataError(f"{root / name}: class folder not among the training classes")
    samples = make_dataset(str(root), class_to_idx, extensions=EXTENSIONS, allow_empty=True)
    x = load_files([p for p, _ in samples], desc)
    return x, torch.tensor([c for _, c in samples], dtype=torch.int64)


def read_named_classes(
    root: Path, classes: list[str], desc: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """root/<class>/* where the folders are any subset of `classes` (a collection rarely holds
    all of them) -> images, labels in `classes`' order, and {unknown folder: image count}."""
    index = {c: i for i, c in enumerate(classes)}
    found = class_folders(root)
    unknown = {
        n: sum(1 for f in (root / n).rglob("*") if f.suffix.lower() in EXTENSIONS)
        for n in found
        if n not in index
    }
    samples = named_class_samples(root, classes, found)
    x = load_files([p for p, _ in samples], desc)
    return x, torch.tensor([c for _, c in samples], dtype=torch.int64), unknown


def named_class_samples(
    root: Path, classes: list[str], found: list[str] | None = None
) -> list[tuple[str, int]]:
    """(file, label in `classes`' order) for root/<class>/*, in the order read_named_classes
    loads them (a peer that reads the files itself, such as an OCR engine, lines up with it)."""
    index = {c: i for i, c in enumerate(classes)}
    known = {n: index[n] for n in (found if found is not None else class_folders(root)) if n in index}
    return make_dataset(str(root), known, extensions=EXTENSIONS, allow_empty=True) if known else []


def stratified_split(labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Indices of a 70/15/15 split that keeps every class in every split where it can."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in torch.unique(labels).tolist():
        idx = rng.permutation(np.flatnonzero(labels.numpy() == c))
        n_val = round(len(idx) * SPLIT_FRACTIONS[1])
        n_test = round(len(idx) * SPLIT_FRACTIONS[2])
        n_train = len(idx) - n_val - n_test
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train : n_train + n_val])
        parts["test"].append(idx[n_train + n_val :])
    return {k: torch.from_numpy(np.sort(np.concatenate(v))) for k, v in parts.items()}


def ood_files(root: Path) -> dict[str, list[str]]:
    """root/ood/<kind>/* -> {kind: sorted files}, the order read_ood_folders loads them."""
    ood = root / "ood"
    if not ood.is_dir():
        return {}
    sets = {}
    for sub in sorted(p for p in ood.iterdir() if p.is_dir()):
        files = sorted(str(f) for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS)
        if files:
            sets[sub.name] = files
    return sets


def read_ood_folders(root: Path) -> dict[str, torch.Tensor]:
    return {kind: load_files(files, f"ood/{kind}") for kind, files in ood_files(root).items()}
