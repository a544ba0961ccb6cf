"""Tests of anovit.data: synthetic generator, MVTec-layout reader, one-class protocol, front door."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from anovit.data import (
    CATEGORIES, DATASETS, DEFECT_TYPES, MVTecLayoutDataset, get_dataset, has_masks, list_categories, list_classes,
    one_class_split, split_indices,
)
from anovit.data import synthetic
from anovit.data.digits import digit_pools
from anovit.data.imageio import read_mask, read_rgb, resize_mask
from anovit.utils.errors import DatasetError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # ../shared beside the repo


# ---------------------------------------------------------------- synthetic generator

def test_synthetic_layout_and_counts(synthetic_root: Path) -> None:
    assert (synthetic_root / synthetic.MARKER).is_file()
    assert not list(synthetic_root.glob(".partial-*"))
    assert list_categories(synthetic_root) == sorted(CATEGORIES)
    assert {synthetic.CATEGORY_KIND[c] for c in CATEGORIES} == {"texture", "object"}
    for category in CATEGORIES:
        folder = synthetic_root / category
        assert len(list((folder / "train" / "good").glob("*.png"))) == 12
        assert sorted(p.name for p in (folder / "test").iterdir()) == sorted(("good",) + DEFECT_TYPES[category])
        assert sorted(p.name for p in (folder / "ground_truth").iterdir()) == sorted(DEFECT_TYPES[category])
        assert len(list((folder / "test" / "good").iterdir())) == synthetic.N_TEST_GOOD
        for defect in DEFECT_TYPES[category]:
            images = sorted((folder / "test" / defect).iterdir())
            masks = sorted((folder / "ground_truth" / defect).iterdir())
            assert len(images) == len(masks) == synthetic.N_PER_DEFECT
            assert [m.name for m in masks] == [f"{p.stem}_mask.png" for p in images]
        with Image.open(folder / "test" / "good" / "000.png") as im:
            assert (im.mode, im.size) == ("RGB", (256, 256))


def test_synthetic_is_deterministic_and_order_independent(synthetic_root: Path, tmp_path: Path) -> None:
    other = synthetic.generate(tmp_path, categories=("washer", "weave"), n_train=3)
    for rel in ("washer/train/good/002.png", "weave/train/good/000.png", "washer/test/missing/007.png",
                "washer/ground_truth/extra/015_mask.png", "weave/test/stain/003.png", "weave/test/good/029.png"):
        assert (other / rel).read_bytes() == (synthetic_root / rel).read_bytes(), rel
    assert not (other / "tiles").exists()
    later = synthetic.make_sample("tiles", "test", "hole", 4)  # rendered after other samples: same pixels
    assert np.array_equal(later[1], read_rgb(synthetic_root / "tiles/test/hole/004.png"))
    assert not np.array_equal(synthetic.make_sample("tiles", "test", "hole", 4, seed=1)[1], later[1])


@pytest.mark.parametrize("category", CATEGORIES)
def test_synthetic_masks_are_exactly_the_painted_pixels(category: str, synthetic_root: Path) -> None:
    for defect in DEFECT_TYPES[category]:
        for index in range(3):
            base, image, mask = synthetic.make_sample(category, "test", defect, index)
            assert np.array_equal((base != image).any(-1), mask)
            assert 30 <= mask.sum() <= 0.05 * mask.size, (defect, index, mask.sum())
            on_disk = read_mask(synthetic_root / category / "ground_truth" / defect / f"{index:03d}_mask.png")
            assert np.array_equal(on_disk, mask)
            changed = np.abs(base.astype(int) - image.astype(int)).max(-1)[mask]
            assert changed.min() >= 24  # visibly different everywhere
    base, image, mask = synthetic.make_sample(category, "test", "good", 0)
    assert np.array_equal(base, image) and not mask.any()


def test_ensure_synthetic_uses_marker_and_redoes_interrupted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic, "N_TRAIN", 2)
    monkeypatch.setattr(synthetic, "CATEGORIES", ("washer",))
    root = tmp_path / "syn"
    (root / "washer" / "stale").mkdir(parents=True)  # an interrupted earlier run: no marker
    assert synthetic.ensure_synthetic(root) == root
    assert not (root / "washer" / "stale").exists()
    assert len(list((root / "washer" / "train" / "good").iterdir())) == 2
    marker = root / synthetic.MARKER
    stamp = marker.stat().st_mtime_ns
    synthetic.ensure_synthetic(root)
    assert marker.stat().st_mtime_ns == stamp
    monkeypatch.setenv("ANOVIT_DATA_DIR", str(tmp_path / "elsewhere"))
    assert synthetic.default_data_dir() == tmp_path / "elsewhere"


def test_ensure_synthetic_generates_under_a_lock_and_once(tmp_path: Path, monkeypatch) -> None:
    import fcntl

    monkeypatch.setattr(synthetic, "N_TRAIN", 2)
    monkeypatch.setattr(synthetic, "CATEGORIES", ("washer",))
    root, held = tmp_path / "syn", []
    real_generate = synthetic.generate

    def generate(*args, **kwargs):
        with open(synthetic.lock_path(root)) as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:  # another process (here: the caller) holds it
                held.append(True)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate", generate)
    synthetic.ensure_synthetic(root)
    synthetic.ensure_synthetic(root)  # complete: no second generation
    assert held == [True]


def test_synthetic_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="marble"):
        synthetic.generate(tmp_path, categories=["marble"])
    with pytest.raises(DatasetError, match="crack"):
        synthetic.make_sample("washer", "test", "crack", 0)


# ---------------------------------------------------------------- layout dataset

def test_layout_item_contract(synthetic_root: Path) -> None:
    train = MVTecLayoutDataset(synthetic_root, "washer", "train", image_size=64)
    test = MVTecLayoutDataset(synthetic_root, "washer", "test", image_size=128)
    assert len(train) == 12 and train.labels == [0] * 12 and train.defect_types == ["good"]
    n_bad = synthetic.N_PER_DEFECT * len(DEFECT_TYPES["washer"])
    assert len(test) == synthetic.N_TEST_GOOD + n_bad and sum(test.labels) == n_bad
    assert test.defect_types == sorted(("good",) + DEFECT_TYPES["washer"])
    for dataset, index in ((train, 0), (test, 0), (test, len(test) - 1)):
        item = dataset[index]
        size = dataset.image_size
        assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        assert item["mask"].shape == (1, size, size) and item["mask"].dtype == torch.float32
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        path, defect, mask_path = dataset.samples[index]
        assert (item["label"], item["defect_type"], item["path"]) == (int(defect != "good"), defect, str(path))
        assert (item["mask"].sum() > 0) == (item["label"] == 1) == (mask_path is not None)
    assert torch.equal(test[3]["image"], test[3]["image"])  # cached
    batch = next(iter(DataLoader(test, batch_size=4)))
    assert batch["image"].shape == (4, 3, 128, 128) and batch["label"].tolist() == test.labels[:4]
    flipped = MVTecLayoutDataset(synthetic_root, "washer", "train", 64, transform=lambda x: x.flip(-1))
    assert torch.equal(flipped[0]["image"], train[0]["image"].flip(-1))


def test_layout_masks_survive_downscaling(synthetic_root: Path) -> None:
    for category in CATEGORIES:  # the masks alone, resized as the dataset resizes them
        test = MVTecLayoutDataset(synthetic_root, category, "test", image_size=128)
        for path, _, mask_path in test.samples:
            if mask_path is not None:
                assert resize_mask(torch.from_numpy(read_mask(mask_path)), 128).any(), path


def _write_layout(root: Path, train: dict[str, Image.Image], test: dict[str, Image.Image],
                  masks: dict[str, Image.Image]) -> Path:
    for folder, files in ((root / "cat" / "train" / "good", train), (root / "cat" / "test" / "bad", test),
                          (root / "cat" / "ground_truth" / "bad", masks)):
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in files.items():
            image.save(folder / name)
    return root


def test_mode_conversions(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((8, 8), 77, np.uint8))
    rgba = Image.fromarray(np.dstack([np.full((8, 8), v, np.uint8) for v in (10, 200, 30, 0)]), "RGBA")
    palette = Image.fromarray(np.ones((8, 8), np.uint8), "P")
    palette.putpalette([0, 0, 0, 90, 20, 240])
    deep = Image.fromarray(np.array([[1000, 30000], [60000, 65535]], np.uint16))
    jpeg_mask = Image.fromarray(np.where(np.arange(32) < 16, 200, 30).astype(np.uint8)[None].repeat(32, 0))
    root = _write_layout(tmp_path, {"a.png": grey, "b.PNG": rgba, "c.bmp": palette, "d.png": deep},
                         {"x.png": grey.resize((32, 32))}, {"x_mask.jpg": jpeg_mask})
    assert read_rgb(root / "cat/train/good/a.png").tolist() == np.full((8, 8, 3), 77).tolist()
    assert (read_rgb(root / "cat/train/good/b.PNG") == (10, 200, 30)).all()
    assert (read_rgb(root / "cat/train/good/c.bmp") == (90, 20, 240)).all()
    with Image.open(root / "cat/train/good/d.png") as im:
        assert im.mode.startswith("I")
    assert read_rgb(root / "cat/train/good/d.png")[..., 0].tolist() == [[4, 117], [233, 255]]
    train = MVTecLayoutDataset(root, "cat", "train", image_size=8)
    assert [p.name for p, _, _ in train.samples] == ["a.png", "b.PNG", "c.bmp", "d.png"]
    assert torch.allclose(train[1]["image"][:, 0, 0], torch.tensor([10, 200, 30]) / 255)
    test = MVTecLayoutDataset(root, "cat", "test", image_size=32)
    mask = test[0]["mask"][0]
    assert mask[:, :16].eq(1).all() and mask[:, 16:].eq(0).all()


def test_layout_errors_name_the_path(tmp_path: Path) -> None:
    good = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    root = _write_layout(tmp_path / "ok", {"n.png": good}, {"x.png": good, "y.png": good},
                         {"x_mask.png": good.convert("L"), "y_mask.png": good.convert("L").resize((8, 16))})
    with pytest.raises(DatasetError, match="nowhere"):
        MVTecLayoutDataset(tmp_path / "nowhere", "cat")
    with pytest.raises(DatasetError, match=r"categories .*: cat$"):
        MVTecLayoutDataset(root, "dog")
    with pytest.raises(DatasetError, match="split"):
        MVTecLayoutDataset(root, "cat", "val")
    bad = MVTecLayoutDataset(root, "cat", "test", image_size=16)
    bad[0]
    with pytest.raises(DatasetError, match=r"y_mask\.png.* 8x16 .*y\.png.* 16x16"):
        bad[1]

    (root / "cat" / "ground_truth" / "bad" / "x_mask.png").unlink()
    with pytest.raises(DatasetError, match=r"x\.png.*expected '.*ground_truth/bad/x_mask\.png'"):
        MVTecLayoutDataset(root, "cat", "test")

    (root / "cat" / "train" / "good" / "n.png").write_bytes(b"this is not a png")
    corrupt = MVTecLayoutDataset(root, "cat", "train")
    with pytest.raises(DatasetError, match=r"cannot read image file '.*train/good/n\.png'") as info:
        corrupt[0]
    assert "\n" not in str(info.value)

    (root / "cat" / "train" / "good" / "n.png").unlink()
    with pytest.raises(DatasetError, match=r"train/good' holds no images"):
        MVTecLayoutDataset(root, "cat", "train")
    (root / "cat" / "train" / "good").rmdir()
    with pytest.raises(DatasetError, match=r"train/good' is missing"):
        MVTecLayoutDataset(root, "cat", "train")
    with pytest.raises(DatasetError, match="available categories .*: none"):
        MVTecLayoutDataset(root, "dog")

    only_train = _write_layout(tmp_path / "t", {"n.png": good}, {}, {})
    (only_train / "cat" / "test" / "bad").rmdir()
    (only_train / "cat" / "test").rmdir()
    with pytest.raises(DatasetError, match=r"cat/test' is missing"):
        MVTecLayoutDataset(only_train, "cat", "test")


@pytest.mark.skipif(not (SHARED_DATA / "cookies" / "cookie").is_dir(),
                    reason=f"real cookie photos absent: {SHARED_DATA / 'cookies'} (../shared/data beside the repo)")
def test_real_cookie_photos() -> None:
    root = SHARED_DATA / "cookies"
    assert list_categories(root) == ["cookie"]
    train = get_dataset("mvtec", "train", category="cookie", image_size=64, root=root)
    test = get_dataset("mvtec", "test", category="cookie", image_size=128, root=root)
    assert len(train) == 31 and len(test) == 46 and sum(test.labels) == 32
    assert test.defect_types == ["anomaly", "good"]
    assert train[0]["image"].shape == (3, 64, 64)
    for index, label in enumerate(test.labels):
        item = test[index]
        assert (item["mask"].sum() > 0) == bool(label), item["path"]


# ---------------------------------------------------------------- one-class protocol

def test_split_indices() -> None:
    train, val = split_indices(10, 0.2, seed=3)
    assert len(train) == 8 and len(val) == 2 and sorted(train + val) == list(range(10))
    assert (train, val) == split_indices(10, 0.2, seed=3)
    assert split_indices(100, 0.2, seed=4) != split_indices(100, 0.2, seed=5)
    assert len(split_indices(10, 3, seed=0)[1]) == 3
    assert split_indices(5, 0.01, seed=0)[1] != [] and split_indices(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    for n, val_fraction in ((1, 0.2), (5, 1.0), (5, 5), (5, -1), (5, True)):
        with pytest.raises(DatasetError):
            split_indices(n, val_fraction, seed=0)


def test_one_class_split_semantics() -> None:
    rng = np.random.default_rng(0)
    train_x, train_y = rng.integers(0, 256, (50, 6, 6), dtype=np.uint8), np.repeat(np.arange(5), 10)
    test_x, test_y = rng.integers(0, 256, (15, 6, 6, 3), dtype=np.uint8), np.tile(np.arange(5), 3)
    names = ["a", "b", "c", "d", "e"]
    make = lambda split, **kw: one_class_split(train_x, train_y, test_x, test_y, normal_class=2,  # noqa: E731
                                               class_names=names, split=split, image_size=12, name="toy", **kw)
    train, val, test = make("train"), make("val"), make("test")
    assert (len(train), len(val), len(test)) == (8, 2, 15)
    assert set(train.indices).isdisjoint(val.indices) and set(train.indices + val.indices) == set(range(20, 30))
    assert train.labels == [0] * 8 and val.labels == [0] * 2
    assert test.labels == [int(y != 2) for y in test_y] and test.defect_types == ["a", "b", "d", "e", "good"]
    item = test[2]
    assert (item["label"], item["defect_type"], item["path"]) == (0, "good", "toy/test/2")
    assert item["image"].shape == (3, 12, 12) and item["mask"].shape == (1, 12, 12) and not item["mask"].any()
    grey = train[0]["image"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2]) and 0 <= grey.min() <= grey.max() <= 1
    assert train[0]["path"] == f"toy/train/{train.indices[0]}" and test[0]["defect_type"] == "a"
    assert make("train", seed=1).indices != train.indices and len(make("val", val_fraction=3)) == 3
    batch = next(iter(DataLoader(test, batch_size=5)))
    assert batch["image"].shape == (5, 3, 12, 12) and batch["defect_type"][2] == "good"
    with pytest.raises(DatasetError, match="normal class"):
        one_class_split(train_x, train_y, test_x, test_y, normal_class=5, class_names=names, split="train",
                        image_size=12)
    with pytest.raises(DatasetError, match="uint8"):
        one_class_split(train_x.astype(float), train_y, test_x, test_y, normal_class=1, class_names=names,
                        split="train", image_size=12)


def test_digits_splits() -> None:
    train_x, train_y, test_x, test_y = digit_pools()
    assert len(train_x) + len(test_x) == 1797 and 355 <= len(test_x) <= 365 and train_x.max() == 255
    train = get_dataset("digits", "train", category="3", image_size=32)
    val = get_dataset("digits", "val", category="3", image_size=32)
    test = get_dataset("digits", "test", category=3, image_size=32)
    n_normal = int((train_y == 3).sum())
    assert len(train) + len(val) == n_normal and len(val) == round(0.2 * n_normal)
    assert set(train.indices).isdisjoint(val.indices)
    assert len(test) == len(test_x) and sorted(set(test_y.tolist())) == list(range(10))
    assert test.defect_types == ["0", "1", "2", "4", "5", "6", "7", "8", "9", "good"]
    assert sum(test.labels) == int((test_y != 3).sum())
    item = test[0]
    assert item["image"].shape == (3, 32, 32) and item["path"] == "digits/test/0"
    assert get_dataset("digits", "train", category="3", image_size=32, seed=1).indices != train.indices


# ---------------------------------------------------------------- front door

def test_front_door(synthetic_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ANOVIT_DATA_DIR", str(tmp_path))  # no downloaded MVTec AD to fall back on
    assert DATASETS == ("synthetic", "digits", "mvtec", "visa", "mvtec3d", "mvtec-loco", "folder", "mnist",
                        "fashion-mnist", "cifar10")
    assert list_classes("digits") == [str(d) for d in range(10)]
    assert list_classes("synthetic") == list(CATEGORIES)
    assert list_classes("mvtec", root=synthetic_root) == sorted(CATEGORIES)
    assert len(list_classes("mvtec")) == 15 and list_classes("cifar10") == [str(d) for d in range(10)]
    assert [has_masks(n) for n in DATASETS] == [True, False, True, True, True, True, False, False, False, False]
    train = get_dataset("synthetic", "train", category="weave", image_size=32, root=synthetic_root)
    val = get_dataset("synthetic", "val", category="weave", image_size=32, root=synthetic_root)
    assert val.samples == train.samples and val.split == "train"
    test = get_dataset("mvtec", "test", category="tiles", image_size=32, root=synthetic_root)
    assert test.defect_types == ["good", "hole", "scratch", "stain"]
    with pytest.raises(DatasetError, match="needs root"):
        get_dataset("mvtec", "train", category="cookie", image_size=32)
    with pytest.raises(DatasetError, match="unknown"):
        get_dataset("cifar", "train", category="0", image_size=32)
    with pytest.raises(DatasetError, match="split"):
        get_dataset("digits", "dev", category="0", image_size=32)
    with pytest.raises(DatasetError, match="digits category"):
        get_dataset("digits", "train", category="10", image_size=32)
    with pytest.raises(DatasetError, match="available categories"):
        get_dataset("synthetic", "train", category="marble", image_size=32, root=synthetic_root)
