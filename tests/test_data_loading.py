import json

import numpy as np
import pytest
import torch
from PIL import Image

from corpus.load import load_glyph_data
from glyphgate.cli import main
from glyphgate.core.errors import DataError
from training.datamodule import GlyphDataModule


def _write_split(path, x, y):
    with open(path, "wb") as f:
        np.save(f, x)
        np.save(f, y)


def _tiny_arrays(n=30, classes=3, size=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    y = np.arange(n) % classes
    return x, y


def _course(root, n=30, classes=3):
    root.mkdir(parents=True, exist_ok=True)
    for i, split in enumerate(("train", "val", "test")):
        _write_split(root / f"{split}.npy", *_tiny_arrays(n, classes, seed=i))
    return root


def _folders_from_course(course, root):
    """The same images as PNG files in root/{split}/<class>/."""
    for split in ("train", "val", "test"):
        with open(course / f"{split}.npy", "rb") as f:
            x, y = np.load(f), np.load(f)
        for i, (img, label) in enumerate(zip(x, y)):
            d = root / split / f"c{label:02d}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i:05d}.png")
    return root


def test_loads_the_synthetic_corpus(tiny_corpus):
    data = load_glyph_data(tiny_corpus)
    assert data.layout == "course" and data.num_classes == 42
    x, y = data.splits["train"]
    from glyphgate.core.image.preprocess import preprocess

    with open(tiny_corpus / "train.npy", "rb") as f:  # the source: uint8 images, then their labels
        raw, labels = np.load(f), np.load(f)
    assert x.shape == (len(y), 1, 56, 56) and len(y) == len(raw) > 0
    assert torch.equal(x, preprocess(raw)) and torch.equal(y, torch.from_numpy(labels).long())
    assert data.ood_kind["ood_ta"] == "near" and data.ood_kind["ood_tb"] == "far"
    assert data.ood_kind["uniform_noise"] == "far" and data.ood["half_glyphs"].shape[1:] == (1, 56, 56)


def test_both_layouts_load_to_the_same_tensors(tmp_path):
    course = _course(tmp_path / "course")
    folders = _folders_from_course(course, tmp_path / "folders")
    a, b = load_glyph_data(course), load_glyph_data(folders)
    assert b.layout == "folders" and b.classes == ["c00", "c01", "c02"]
    for split in ("train", "val", "test"):
        xa, ya = a.splits[split]
        xb, yb = b.splits[split]
        # ImageFolder orders by class, then file name: sort the course arrays the same way.
        order = torch.from_numpy(np.lexsort((np.arange(len(ya)), ya.numpy())))
        assert torch.equal(ya[order], yb)
        assert torch.allclose(xa[order], xb, atol=1e-6)


def test_single_class_tree_is_split_70_15_15(tmp_path):
    for c in range(3):
        d = tmp_path / f"class{c}"
        d.mkdir()
        for i in range(20):
            Image.fromarray(np.full((30, 20), 10 * i + c, np.uint8)).save(d / f"{i}.tif")
    data = load_glyph_data(tmp_path)
    sizes = {s: len(y) for s, (_, y) in data.splits.items()}
    assert sizes == {"train": 42, "val": 9, "test": 9}
    for _, y in data.splits.values():
        assert torch.bincount(y).tolist() == [len(y) // 3] * 3
    again = load_glyph_data(tmp_path)
    assert torch.equal(again.splits["val"][0], data.splits["val"][0])


def test_folder_images_of_any_mode_and_size(tmp_path):
    modes = {"rgb": "RGB", "rgba": "RGBA", "onebit": "1", "palette": "P", "gray": "L"}
    for c in ("a", "b"):
        for name, mode in modes.items():
            d = tmp_path / c
            d.mkdir(exist_ok=True)
            Image.fromarray(np.random.default_rng(0).integers(0, 255, (33, 71), dtype=np.uint8)).convert(
                mode
            ).save(d / f"{name}.png")
        Image.fromarray(np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40).save(
            tmp_path / c / "sixteen.png"
        )
        Image.new("RGB", (50, 20), (200, 190, 180)).save(tmp_path / c / "photo.jpg")
    data = load_glyph_data(tmp_path)
    assert sum(len(y) for _, y in data.splits.values()) == 14


def test_datamodule_batches(tiny_corpus):
    dm = GlyphDataModule(str(tiny_corpus), batch_size=16, ood_val_set="ood_tb")
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 56, 56) and y.dtype == torch.int64
    val, ood = dm.val_dataloader()  # the ID split, and the OOD suite validation AUROC is scored against
    assert len(val.dataset) == len(dm.data.splits["val"][1])
    x_ood, y_ood = ood.dataset.tensors
    assert torch.equal(x_ood, dm.data.ood["ood_tb"]) and (y_ood == -1).all()


@pytest.mark.parametrize("synthetic_share", [None, 0.5])
def test_the_exposure_draw_gives_synthetic_and_real_negatives_their_shares(
    tiny_corpus, tmp_path, synthetic_share
):
    rng = np.random.default_rng(0)
    for folder, n in (("train/a", 4), ("train/ood/words", 30)):
        (tmp_path / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (20, 14), dtype=np.uint8)).save(
                tmp_path / folder / f"{i}.png"
            )
    dm = GlyphDataModule(
        str(tiny_corpus),
        batch_size=8,
        real_dir=str(tmp_path),
        exposure_kinds=("solid_shapes", "rules_lines"),
        exposure_share=0.2,
        exposure_synthetic_share=synthetic_share,
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    # each part's summed draw weight: corpus glyphs, real glyphs, synthetic negatives, real ones
    sizes = [len(d) for d in loader.dataset.datasets]
    bounds = np.cumsum([0] + sizes)
    weights = loader.sampler.weights.numpy()
    shares = [weights[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]
    n_synthetic = len(dm.data.ood["solid_shapes"]) + len(dm.data.ood["rules_lines"])
    assert sizes[2:] == [n_synthetic, 30]
    synthetic = 0.5 if synthetic_share is not None else n_synthetic / (n_synthetic + 30)
    assert shares[2] == pytest.approx(0.2 * synthetic) and shares[3] == pytest.approx(0.2 * (1 - synthetic))
    assert sum(shares) == pytest.approx(1.0)


# --- every bad-data case gets one clear error naming the file ---------------------------------


def _missing_file(root):
    _course(root)
    (root / "val.npy").unlink()
    return root / "val.npy", "file not found"


def _length_mismatch(root):
    _course(root)
    x, y = _tiny_arrays()
    _write_split(root / "test.npy", x, y[:-2])
    return root / "test.npy", "30 images but 28 labels"


def _label_out_of_range(root):
    _course(root)
    (root / "classes.json").write_text(json.dumps({"classes": ["a", "b", "c"]}))
    x, y = _tiny_arrays()
    y[4] = 7
    _write_split(root / "val.npy", x, y)
    return root / "val.npy", "label 7 out of range 0..2"


def _not_2d(root):
    _course(root)
    _write_split(root / "train.npy", np.zeros((30, 20, 20, 3), np.uint8), np.zeros(30, np.int64))
    return root / "train.npy", "not 2-D"


def _labels_missing(root):
    _course(root)
    np.save(root / "train.npy", _tiny_arrays()[0])
    return root / "train.npy", "no labels array"


def _empty_class_folder(root):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    Image.new("L", (10, 10)).save(root / "a" / "x.png")
    (root / "b" / "notes.txt").write_text("no images here")
    return root / "b", "class folder holds no images"


def _unreadable_image(root):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.new("L", (10, 10)).save(root / c / "ok.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return root / "b" / "broken.png", "damaged or truncated PNG"


def _truncated_png(root):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.new("L", (10, 10)).save(root / c / "ok.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(
        root / "a" / "big.png"
    )
    data = (root / "a" / "big.png").read_bytes()
    (root / "a" / "big.png").write_bytes(data[: len(data) // 2])
    return root / "a" / "big.png", "damaged or truncated image"


BAD_CASES = [
    _missing_file,
    _length_mismatch,
    _label_out_of_range,
    _not_2d,
    _labels_missing,
    _empty_class_folder,
    _unreadable_image,
    _truncated_png,
]


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda f: f.__name__.strip("_"))
def test_bad_data_raises_one_clear_error(tmp_path, case):
    path, message = case(tmp_path / "data")
    with pytest.raises(DataError) as err:
        load_glyph_data(tmp_path / "data")
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


@pytest.mark.parametrize("case", BAD_CASES[:3], ids=lambda f: f.__name__.strip("_"))
def test_cli_prints_one_line_without_traceback(tmp_path, case, capsys):
    path, message = case(tmp_path / "data")
    assert main(["data", "check", "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and message in err and "Traceback" not in err


def test_cli_check_summarises_a_good_folder(tiny_corpus, capsys):
    assert main(["data", "check", "--data", str(tiny_corpus)]) == 0
    out = capsys.readouterr().out
    assert "42 classes" in out and "ood_ta (near)" in out


def test_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_glyph_data(tmp_path / "nope")
