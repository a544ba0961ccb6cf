"""The disk cache of resized images (anovit.data.image_cache) behind the folder datasets: a new dataset over
the same files reads them from it with equal items, an edited file is decoded again, ``off`` turns it off;
a batch's images decoded in threads equal those decoded one by one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from anovit.data import get_dataset, samples
from anovit.data.image_cache import CACHE_ENV


def _tree(root: Path) -> Path:
    """An MVTec-layout category "part": 4 normal training images, 2 normal and 2 defective test images with masks."""
    rng = np.random.default_rng(0)
    folder = root / "part"
    for split, defect, n in (("train", "good", 4), ("test", "good", 2), ("test", "crack", 2)):
        for i in range(n):
            path = folder / split / defect / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
            if defect != "good":
                mask = np.zeros((40, 56), np.uint8)
                mask[5:15, 20:30] = 255
                (folder / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(folder / "ground_truth" / defect / f"{i:03d}_mask.png")
    return root


def _items(dataset) -> list[dict]:
    return [dataset[i] for i in range(len(dataset))]


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"]) for x, y in zip(a, b))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def test_a_new_dataset_reads_the_disk_cache_and_an_edited_file_is_decoded_again(tmp_path, cache, monkeypatch):
    root = _tree(tmp_path / "data")
    first = _items(get_dataset("mvtec", "test", category="part", image_size=32, root=root))
    assert len(list(cache.rglob("*.npz"))) == 4 and all(item["mask"].sum() > 0 for item in first if item["label"])
    decoded: list[Path] = []
    read_rgb = samples.read_rgb
    monkeypatch.setattr(samples, "read_rgb", lambda path: decoded.append(path) or read_rgb(path))
    again = _items(get_dataset("mvtec", "test", category="part", image_size=32, root=root))
    assert decoded == [] and _same(first, again)  # nothing decoded: every image and mask came from the cache
    edited = root / "part" / "test" / "good" / "000.png"
    Image.fromarray(np.full((40, 56, 3), 7, np.uint8)).save(edited)
    os.utime(edited, ns=(1, 1))  # another modification time (and content)
    fresh = get_dataset("mvtec", "test", category="part", image_size=32, root=root)
    paths = [item["path"] for item in fresh]
    assert decoded == [edited] and torch.all(fresh[paths.index(str(edited))]["image"] == 7 / 255)
    _items(get_dataset("mvtec", "test", category="part", image_size=16, root=root))  # another size: its own entries
    assert len(list(cache.rglob("*.npz"))) == 4 + 1 + 4


def test_off_writes_no_cache_and_threads_decode_as_one_by_one(tmp_path, monkeypatch):
    root = _tree(tmp_path / "data")
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("ANOVIT_DATA_DIR", str(tmp_path / "data-dir"))
    dataset = get_dataset("mvtec", "test", category="part", image_size=32, root=root)
    one_by_one = _items(dataset)
    threaded = get_dataset("mvtec", "test", category="part", image_size=32, root=root)
    monkeypatch.setattr(samples, "DECODE_THREADS", 2)
    batch = next(iter(DataLoader(threaded, batch_size=len(threaded))))  # __getitems__: decoded in 2 threads
    assert torch.equal(batch["image"], torch.stack([item["image"] for item in one_by_one]))
    assert torch.equal(batch["mask"], torch.stack([item["mask"] for item in one_by_one]))
    assert not (tmp_path / "data-dir").exists() and len(threaded._cache) == len(threaded)
