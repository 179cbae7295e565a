"""Glyph data in either layout (course npy or image folders), loaded once into tensors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from corpus import course, folders
from corpus.folders import Skipped
from glyphgate.core.errors import DataError

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
    splits = {s: course.read_split(root / f"{s}.npy") for s in SPLITS}
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
            ood[name] = course.read_images(path)
            kinds[name] = described.get(name, {}).get("kind", "unknown")
    return GlyphData(root, "course", list(classes), splits, ood, kinds)


def _load_named(root: Path, classes: list[str], seed: int, skipped: Skipped | None) -> GlyphData:
    """Folders of any subset of `classes` (a collection to fine-tune on), labelled in that order."""
    if all((root / s).is_dir() for s in SPLITS):
        splits = {s: folders.read_named_classes(root / s, classes, s, skipped)[:2] for s in SPLITS}
    else:
        x, y, _ = folders.read_named_classes(root, classes, "images", skipped)
        splits = {s: (x[i], y[i]) for s, i in folders.stratified_split(y, seed).items()}
    if len(splits["train"][1]) == 0:
        raise DataError(f"{root}: no class folder names a class of the model")
    ood = folders.read_ood_folders(root, skipped)
    return GlyphData(root, "folders", list(classes), splits, ood, {name: "unknown" for name in ood})


def _load_folders(root: Path, manifest: dict, seed: int, skipped: Skipped | None) -> GlyphData:
    if all((root / s).is_dir() for s in SPLITS):
        classes = folders.class_folders(root / "train")
        index = {c: i for i, c in enumerate(classes)}
        splits = {s: folders.read_class_tree(root / s, index, s, skipped) for s in SPLITS}
    else:
        classes = folders.class_folders(root)
        x, y = folders.read_class_tree(root, {c: i for i, c in enumerate(classes)}, "images", skipped)
        splits = {s: (x[i], y[i]) for s, i in folders.stratified_split(y, seed).items()}
    ood = folders.read_ood_folders(root, skipped)
    described = manifest.get("ood", {})
    kinds = {name: described.get(name, {}).get("kind", "unknown") for name in ood}
    return GlyphData(root, "folders", classes, splits, ood, kinds)


def is_course_layout(root: Path) -> bool:
    return any((root / f"{s}.npy").exists() for s in SPLITS)


def is_full_dataset(root: Path) -> bool:
    """The course layout or split image folders: a data set in the model's own layout."""
    return is_course_layout(root) or all((root / s).is_dir() for s in SPLITS)


def load_glyph_data(
    root: str | Path, seed: int = 0, classes: list[str] | None = None, skipped: Skipped | None = None
) -> GlyphData:
    """Read a data folder in the course (npy) layout or as image folders; with `classes`, image
    folders may hold any subset of them (labels follow `classes`' order). With `skipped`, an
    unreadable image file is recorded there and left out instead of stopping the load (the
    course layout's arrays have no such files: a bad .npy always stops it)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    manifest = _manifest(root)
    if classes is not None and not is_course_layout(root):
        return _load_named(root, classes, seed, skipped)
    if is_course_layout(root):
        return _load_course(root, manifest)
    return _load_folders(root, manifest, seed, skipped)


def load_real_splits(
    root: str | Path, classes: list[str], skipped: Skipped | None = None
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
            x, y, _ = folders.read_named_classes(root / split, classes, f"real {split}", skipped)
            out[split] = (x, y)
    negatives = folders.read_ood_folders(root / "train", skipped)
    if negatives:
        out["ood"] = torch.cat(list(negatives.values()))
    return out
