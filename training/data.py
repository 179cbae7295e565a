"""Glyph data in either layout, loaded once into tensors, and the LightningDataModule over it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from . import data_course, data_folders
from .errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class GlyphData:
    root: Path
    layout: str  # "course" or "folders"
    classes: list[str]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # (images (N,1,56,56) in [-1,1], labels)
    ood: dict[str, torch.Tensor] = field(default_factory=dict)
    ood_kind: dict[str, str] = field(default_factory=dict)  # "near" / "far" / "unknown"

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _manifest(root: Path) -> dict:
    path = root / "classes.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if isinstance(manifest, list):  # a bare list of class names is accepted too
        manifest = {"classes": manifest}
    if not isinstance(manifest, dict) or not isinstance(manifest.get("classes", []), list):
        raise DataError(f"{path}: expected {{\"classes\": [names...]}}")
    return manifest


def _check_labels(path: Path, y: torch.Tensor, num_classes: int) -> None:
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise DataError(f"{path}: label {int(bad[0])} out of range 0..{num_classes - 1} ({len(bad)} such labels)")


def _load_course(root: Path, manifest: dict) -> GlyphData:
    splits = {s: data_course.read_split(root / f"{s}.npy") for s in SPLITS}
    classes = manifest.get("classes") or [str(i) for i in range(int(splits["train"][1].max()) + 1)]
    for s in SPLITS:
        _check_labels(root / f"{s}.npy", splits[s][1], len(classes))
    ood, kinds = {}, {}
    described = manifest.get("ood", {})
    files = {name: root / info["file"] for name, info in described.items() if "file" in info}
    for name in ("ood_ta", "ood_tb"):
        files.setdefault(name, root / f"{name}.npy")
    for path in sorted((root / "ood").glob("*.npy")):
        files.setdefault(path.stem, path)
    for name, path in files.items():
        if path.is_file():
            ood[name] = data_course.read_images(path)
            kinds[name] = described.get(name, {}).get("kind", "unknown")
    return GlyphData(root, "course", list(classes), splits, ood, kinds)


def _load_folders(root: Path, manifest: dict, seed: int) -> GlyphData:
    if all((root / s).is_dir() for s in SPLITS):
        classes = data_folders.class_folders(root / "train")
        index = {c: i for i, c in enumerate(classes)}
        splits = {s: data_folders.read_class_tree(root / s, index, s) for s in SPLITS}
    else:
        classes = data_folders.class_folders(root)
        x, y = data_folders.read_class_tree(root, {c: i for i, c in enumerate(classes)}, "images")
        splits = {s: (x[i], y[i]) for s, i in data_folders.stratified_split(y, seed).items()}
    ood = data_folders.read_ood_folders(root)
    described = manifest.get("ood", {})
    kinds = {name: described.get(name, {}).get("kind", "unknown") for name in ood}
    return GlyphData(root, "folders", classes, splits, ood, kinds)


def load_glyph_data(root: str | Path, seed: int = 0) -> GlyphData:
    """Read a data folder in the course (npy) layout or as image folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    manifest = _manifest(root)
    if any((root / f"{s}.npy").exists() for s in SPLITS):
        return _load_course(root, manifest)
    return _load_folders(root, manifest, seed)


class GlyphDataModule(pl.LightningDataModule):
    def __init__(self, data_dir: str, batch_size: int = 64, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.data_dir, self.batch_size, self.seed, self.num_workers = data_dir, batch_size, seed, num_workers
        self.data: GlyphData | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = load_glyph_data(self.data_dir, self.seed)

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        assert self.data is not None, "call setup() first"
        x, y = self.data.splits[split]
        return DataLoader(TensorDataset(x, y), batch_size=self.batch_size, shuffle=train,
                          drop_last=train and len(x) > self.batch_size, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
