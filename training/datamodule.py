"""The LightningDataModule over the loaded glyph data: corpus, real glyphs and outlier-exposure
negatives mixed into every training epoch."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    TensorDataset,
    WeightedRandomSampler,
)

from corpus.load import GlyphData, load_glyph_data, load_real_splits
from glyphgate.core.model.modes import uses_exposure

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
        exposure_synthetic_share: float | None = None,
        classes: list[str] | None = None,
        ood_val_set: str | None = None,
    ):
        super().__init__()
        self.classes, self.ood_val_set = classes, ood_val_set
        self.data_dir, self.batch_size, self.seed, self.num_workers = data_dir, batch_size, seed, num_workers
        self.augment, self.real_dir, self.real_share = augment, real_dir, real_share
        self.px_plain = px_plain and augment
        self.exposure_kinds, self.exposure_share = tuple(exposure_kinds), exposure_share
        self.exposure_synthetic_share = exposure_synthetic_share
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
            num_workers=cfg.data_workers(),
            augment=cfg.augment,
            px_plain=cfg.px_plain,
            real_dir=cfg.real_dir,
            classes=classes,
            real_share=cfg.real_share,
            exposure_kinds=kinds if uses_exposure(cfg.mode, cfg.oe_weight) else (),
            exposure_share=cfg.exposure_share,
            exposure_synthetic_share=cfg.exposure_synthetic_share,
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

    def exposure_negatives(self) -> list[tuple[torch.Tensor, float]]:
        """The negatives as (images, share of the exposure draw) parts: the synthetic kinds and
        the real training works' own non-glyphs, pooled by size unless exposure_synthetic_share
        fixes the synthetic kinds' share."""
        assert self.data is not None, "call setup() first"
        synthetic = [self.data.ood[k] for k in self.exposure_kinds]
        real = [self.real["ood"]] if self.exposure_kinds and "ood" in self.real else []
        parts = [torch.cat(p) for p in (synthetic, real) if p]
        share = self.exposure_synthetic_share
        if len(parts) == 2 and share is not None:
            return [(parts[0], share), (parts[1], 1.0 - share)]
        total = sum(len(p) for p in parts)
        return [(p, len(p) / total) for p in parts]

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        assert self.data is not None, "call setup() first"
        x, y = self.data.splits[split]
        return DataLoader(
            TensorDataset(x, y),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(x) > self.batch_size,
            # workers only pay where samples are augmented; a tensor split needs none
            num_workers=self.num_workers if train else 0,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.data is not None, "call setup() first"
        neg = self.exposure_negatives()
        if not (self.augment or self.real or neg):
            return self._loader("train", train=True)
        from corpus.augment import scan_augment

        transform = scan_augment() if self.augment else None
        x, y = self.data.splits["train"]
        plain = self.px_plain
        parts = [(_Augmented(x, y, transform, plain), 1.0)]
        if "train" in self.real:
            parts = [
                (parts[0][0], 1.0 - self.real_share),
                (_Augmented(*self.real["train"], transform, plain), self.real_share),
            ]
        if neg:
            parts = [(d, w * (1 - self.exposure_share)) for d, w in parts]
            for images, share in neg:
                labels = torch.full((len(images),), OOD_LABEL)
                parts.append((_Augmented(images, labels, transform, plain), self.exposure_share * share))
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
            loaders.append(DataLoader(TensorDataset(ood, labels), batch_size=512))
        return loaders

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
