"""Glyph data in either layout, loaded once into tensors, and the LightningDataModule over it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    TensorDataset,
    WeightedRandomSampler,
)

from glyphgate.core.errors import DataError

from . import data_course, data_folders
from .config import uses_exposure

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
        raise DataError(f'{path}: expected {{"classes": [names...]}}')
    return manifest


def _check_labels(path: Path, y: torch.Tensor, num_classes: int) -> None:
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise DataError(
            f"{path}: label {int(bad[0])} out of range 0..{num_classes - 1} ({len(bad)} such labels)"
        )


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


def _load_named(root: Path, classes: list[str], seed: int) -> GlyphData:
    """Folders of any subset of `classes` (a collection to fine-tune on), labelled in that order."""
    if all((root / s).is_dir() for s in SPLITS):
        splits = {s: data_folders.read_named_classes(root / s, classes, s)[:2] for s in SPLITS}
    else:
        x, y, _ = data_folders.read_named_classes(root, classes, "images")
        splits = {s: (x[i], y[i]) for s, i in data_folders.stratified_split(y, seed).items()}
    if len(splits["train"][1]) == 0:
        raise DataError(f"{root}: no class folder names a class of the model")
    ood = data_folders.read_ood_folders(root)
    return GlyphData(root, "folders", list(classes), splits, ood, {name: "unknown" for name in ood})


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


def is_course_layout(root: Path) -> bool:
    return any((root / f"{s}.npy").exists() for s in SPLITS)


def is_full_dataset(root: Path) -> bool:
    """The course layout or split image folders: a data set in the model's own layout."""
    return is_course_layout(root) or all((root / s).is_dir() for s in SPLITS)


def load_glyph_data(root: str | Path, seed: int = 0, classes: list[str] | None = None) -> GlyphData:
    """Read a data folder in the course (npy) layout or as image folders; with `classes`, image
    folders may hold any subset of them (labels follow `classes`' order)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    manifest = _manifest(root)
    if classes is not None and not is_course_layout(root):
        return _load_named(root, classes, seed)
    if is_course_layout(root):
        return _load_course(root, manifest)
    return _load_folders(root, manifest, seed)


def load_real_splits(
    root: str | Path, classes: list[str]
) -> dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """Real glyphs imported by `data import-page --split-by-work` (root/{train,val}/<class>/),
    labelled in the corpus' class order (a split may hold any subset of the classes), and the
    training works' own non-glyphs (root/train/ood/<kind>/) as "ood"."""
    root = Path(root)
    if not (root / "train").is_dir():
        raise DataError(
            f"{root}: no train/ folder of real glyphs (import pages with "
            "`glyphgate data import-page --split-by-work`)"
        )
    out: dict = {}
    for split in ("train", "val"):
        if (root / split).is_dir():
            x, y, _ = data_folders.read_named_classes(root / split, classes, f"real {split}")
            out[split] = (x, y)
    negatives = data_folders.read_ood_folders(root / "train")
    if negatives:
        out["ood"] = torch.cat(list(negatives.values()))
    return out


OOD_LABEL = -1  # exposure negatives in a training batch: no class, pushed above the energy margin


class _Augmented(Dataset):
    """(image, label) pairs with an optional per-sample transform; with `plain`, (image, label,
    untransformed image) triples, for a p(x) branch that learns from plain images."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform=None, plain: bool = False):
        self.x, self.y, self.transform, self.plain = x, y, transform, plain

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        seen = self.transform(x) if self.transform is not None else x
        return (seen, self.y[i], x) if self.plain else (seen, self.y[i])


class GlyphDataModule(pl.LightningDataModule):
    """The corpus, plus optionally real glyphs and outlier-exposure negatives mixed into every
    training epoch at fixed shares (the epoch keeps the corpus' length, so its cost is fixed)."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
        augment: bool = False,
        px_plain: bool = False,
        real_dir: str | None = None,
        real_share: float = 0.4,
        exposure_kinds: tuple[str, ...] = (),
        exposure_share: float = 0.125,
        classes: list[str] | None = None,
        ood_val_set: str | None = None,
    ):
        super().__init__()
        self.classes, self.ood_val_set = classes, ood_val_set
        self.data_dir, self.batch_size, self.seed, self.num_workers = data_dir, batch_size, seed, num_workers
        self.augment, self.real_dir, self.real_share = augment, real_dir, real_share
        self.px_plain = px_plain and augment
        self.exposure_kinds, self.exposure_share = tuple(exposure_kinds), exposure_share
        self.data: GlyphData | None = None
        self.real: dict = {}

    @classmethod
    def from_config(cls, data_dir: str, cfg, classes: list[str] | None = None) -> "GlyphDataModule":
        # Fine-tuning on a collection: its own ood/ folders (words, fragments, blanks, other
        # symbols) are the negatives, or the gate forgets what is not a glyph.
        kinds = ("*",) if cfg.init_from else cfg.exposure_kinds
        return cls(
            data_dir,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            augment=cfg.augment,
            px_plain=cfg.px_plain,
            real_dir=cfg.real_dir,
            classes=classes,
            real_share=cfg.real_share,
            exposure_kinds=kinds if uses_exposure(cfg.mode, cfg.oe_weight) else (),
            exposure_share=cfg.exposure_share,
            ood_val_set=cfg.ood_val_set,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = load_glyph_data(self.data_dir, self.seed, classes=self.classes)
            if self.real_dir:
                self.real = load_real_splits(self.real_dir, self.data.classes)
            # Exposure kinds a data folder lacks (an image folder, a course folder) are skipped;
            # "*" takes every OOD set of the folder (a collection's own rejects, when fine-tuning).
            if "*" in self.exposure_kinds:
                self.exposure_kinds = tuple(self.data.ood)
            self.exposure_kinds = tuple(k for k in self.exposure_kinds if k in self.data.ood)

    def exposure_negatives(self) -> torch.Tensor | None:
        assert self.data is not None, "call setup() first"
        parts = [self.data.ood[k] for k in self.exposure_kinds]
        if self.exposure_kinds and "ood" in self.real:
            parts.append(self.real["ood"])
        return torch.cat(parts) if parts else None

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        assert self.data is not None, "call setup() first"
        x, y = self.data.splits[split]
        return DataLoader(
            TensorDataset(x, y),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(x) > self.batch_size,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.data is not None, "call setup() first"
        neg = self.exposure_negatives()
        if not (self.augment or self.real or neg is not None):
            return self._loader("train", train=True)
        from .augment import scan_augment

        transform = scan_augment() if self.augment else None
        x, y = self.data.splits["train"]
        plain = self.px_plain
        parts = [(_Augmented(x, y, transform, plain), 1.0)]
        if "train" in self.real:
            parts = [
                (parts[0][0], 1.0 - self.real_share),
                (_Augmented(*self.real["train"], transform, plain), self.real_share),
            ]
        if neg is not None:
            parts = [(d, w * (1 - self.exposure_share)) for d, w in parts]
            labels = torch.full((len(neg),), OOD_LABEL)
            parts.append((_Augmented(neg, labels, transform, plain), self.exposure_share))
        # Each part gets its share of every epoch whatever its size: 40k real glyphs must not
        # drown the corpus, nor 11k corpus glyphs drown 3k real ones.
        weights = torch.cat([torch.full((len(d),), w / len(d), dtype=torch.float64) for d, w in parts])
        sampler = WeightedRandomSampler(
            weights, num_samples=len(x), replacement=True, generator=torch.Generator().manual_seed(self.seed)
        )
        return DataLoader(
            ConcatDataset([d for d, _ in parts]),
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=len(x) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> list[DataLoader]:
        """The ID validation split, and the OOD suite validation scores energy AUROC against
        (`ood_val_set`, else the folder's first; none when the folder has no OOD sets)."""
        loaders = [self._loader("val")]
        ood = self.data.ood.get(self.ood_val_set) if self.ood_val_set else None
        if ood is None and self.data.ood:
            ood = next(iter(self.data.ood.values()))
        if ood is not None:
            labels = torch.full((len(ood),), OOD_LABEL, dtype=torch.long)
            loaders.append(
                DataLoader(TensorDataset(ood, labels), batch_size=512, num_workers=self.num_workers)
            )
        return loaders

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
