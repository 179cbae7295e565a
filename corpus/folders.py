"""Image-folder layout: root/{train,val,test}/<class>/* or one root/<class>/* tree split 70/15/15."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
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


@dataclass
class Skipped:
    """The unreadable files a folder command passed over. Each is reported on stderr as it is
    met (through tqdm.write, so a running bar is redrawn below it, not torn), and all are kept
    for what the command writes and its exit status. A loader given no Skipped raises on the
    first bad file instead: callers that line files up with the loaded tensor (an OCR peer
    reading the same files) keep that guarantee unless they ask to skip."""

    files: list[dict[str, str]] = field(default_factory=list)

    def add(self, file: str | Path, error: DataError) -> None:
        reason = str(error).removeprefix(f"{file}: ")
        self.files.append({"file": str(file), "reason": reason})
        tqdm.write(f"glyphgate: skipped {file}: {reason}", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.files)

    def paths(self) -> set[str]:
        return {f["file"] for f in self.files}

    def record(self) -> dict:
        """The count and the files, as real_scans.json and calibration.json hold them."""
        return {"skipped": len(self.files), "skipped_files": list(self.files)}


def skip_record(skipped: Skipped | None) -> dict:
    """What a load recorded; a strict one (no Skipped) stopped at any bad file, so skipped none."""
    return (skipped if skipped is not None else Skipped()).record()


def _decode(files: list[str], desc: str, skipped: Skipped | None) -> tuple[torch.Tensor, list[int]]:
    """The readable files as model inputs, packed from the front, and their indexes in `files`."""
    out = torch.empty(len(files), 1, 56, 56)
    kept: list[int] = []
    for i, f in enumerate(tqdm(files, desc=desc, unit="img", disable=None, leave=False)):
        try:
            out[len(kept)] = preprocess(open_gray(f))[0]
        except DataError as e:
            if skipped is None:
                raise
            skipped.add(f, e)
            continue
        kept.append(i)
    return out[: len(kept)], kept


def _nothing_readable(folder: str | Path, n: int) -> DataError:
    return DataError(f"{folder}: no readable image among its {n} files (each reported above)")


def load_files(files: list[str], desc: str, skipped: Skipped | None = None) -> torch.Tensor:
    """The files as model inputs [N, 1, 56, 56]; with `skipped`, unreadable ones are left out
    and recorded there, and a list of which none is readable is an error."""
    x, kept = _decode(files, desc, skipped)
    if files and not kept:
        raise _nothing_readable(os.path.commonpath([os.path.dirname(f) for f in files]), len(files))
    return x


def _load_samples(
    root: Path, samples: list[tuple[str, int]], desc: str, skipped: Skipped | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of (file, label) samples; a class folder none of whose images is
    readable is an error, since the class would silently vanish from what is measured."""
    x, kept = _decode([p for p, _ in samples], desc, skipped)
    labels = [samples[i][1] for i in kept]
    if lost := ({c for _, c in samples} - set(labels) if len(kept) < len(samples) else set()):
        files = [p for p, c in samples if c == min(lost)]
        raise _nothing_readable(root / Path(files[0]).relative_to(root).parts[0], len(files))
    return x, torch.tensor(labels, dtype=torch.int64)


def read_class_tree(
    root: Path, class_to_idx: dict[str, int], desc: str, skipped: Skipped | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    for name in class_folders(root):
        if name not in class_to_idx:
            raise DataError(f"{root / name}: class folder not among the training classes")
    samples = make_dataset(str(root), class_to_idx, extensions=EXTENSIONS, allow_empty=True)
    return _load_samples(root, samples, desc, skipped)


def read_named_classes(
    root: Path, classes: list[str], desc: str, skipped: Skipped | None = None
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
    return (*_load_samples(root, samples, desc, skipped), unknown)


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


def read_ood_folders(root: Path, skipped: Skipped | None = None) -> dict[str, torch.Tensor]:
    return {kind: load_files(files, f"ood/{kind}", skipped) for kind, files in ood_files(root).items()}
