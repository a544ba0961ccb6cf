"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's dataset classes, under the paper's
one-class protocol (sec. 4.1.1): one class is normal, the other nine anomalous.

- MNIST and Fashion-MNIST: 80% of the normal class's training images train, 20% validate.
- CIFAR-10: 4,500 of the normal class's 5,000 training images train, 500 validate.
- Test: all 10,000 test images, label 1 for every class but the normal one.

Where the files come from, in order: `root` when given, else the cache folder
``<data dir>/<name>`` and known system folders (Debian's dataset-fashion-mnist package). MNIST-style
sets are accepted as the original ``*-idx?-ubyte.gz`` files (decompressed once into the cache,
which is laid out as torchvision expects) or already in torchvision's ``<Class>/raw`` layout; their
decompressed contents are checked against pinned SHA-256 sums, since mirrors recompress the gz
files. CIFAR-10 is accepted as ``cifar-10-batches-py/`` (torchvision checks each batch's MD5 before
it unpickles it, so only the genuine files are ever unpickled) or as ``cifar-10-python.tar.gz``.
Nothing found: download when the source is reachable, else one sentence saying what to fetch.
"""

from __future__ import annotations

import functools
import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .download import Archive, fetch, file_digest, require_online, safe_extract, verify_file
from .one_class import OneClassDataset, one_class_split
from .paths import default_data_dir
from ..utils.errors import DatasetError

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
Pools = tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor, np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]


@dataclass(frozen=True)
class LabelledSet:
    """A ten-class labelled image set and how the one-class protocol splits it."""

    name: str
    title: str
    tv_class: str  # class name in torchvision.datasets (also its folder name there, for MNIST-style sets)
    class_names: tuple[str, ...]
    val: float | int  # held-out share (fraction) or count of the normal class's training images
    homepage: str
    licence: str
    download_url: str  # the URL whose host must be reachable to download
    idx_sha256: tuple[tuple[str, str], ...] = ()  # decompressed IDX file -> SHA-256 (MNIST-style sets)
    system_dirs: tuple[str, ...] = ()


LABELLED_SETS: dict[str, LabelledSet] = {s.name: s for s in (
    LabelledSet(
        "mnist", "MNIST", "MNIST", tuple(str(d) for d in range(10)), 0.2,
        "http://yann.lecun.com/exdb/mnist/", "CC BY-SA 3.0", "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
         ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
         ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
         ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
    ),
    LabelledSet(
        "fashion-mnist", "Fashion-MNIST", "FashionMNIST",
        ("tshirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
        0.2, "https://github.com/zalandoresearch/fashion-mnist", "MIT",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
         ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
         ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
         ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
        ("/usr/share/datasets/fashion-mnist",),
    ),
    LabelledSet(
        "cifar10", "CIFAR-10", "CIFAR10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"), 500,
        "https://www.cs.toronto.edu/~kriz/cifar.html", "no licence stated; cite Krizhevsky (2009)",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
)}
CIFAR_ARCHIVE = Archive("cifar-10-python.tar.gz", LABELLED_SETS["cifar10"].download_url,
                        "md5:c58f30108f718f92721af3b95e74349a")
CIFAR_FOLDER = "cifar-10-batches-py"


def labelled_set(name: str) -> LabelledSet:
    """The LabelledSet called `name` (DatasetError when unknown)."""
    if name not in LABELLED_SETS:
        raise DatasetError(f"labelled set '{name}' is unknown (expected one of {', '.join(LABELLED_SETS)})")
    return LABELLED_SETS[name]


def class_index(spec: LabelledSet, category: str | int) -> int:
    """The class index of `category`: "0".."9" or a class name (any case)."""
    key = str(category).strip().lower()
    if key.isdigit() and int(key) < len(spec.class_names):
        return int(key)
    if key in spec.class_names:
        return spec.class_names.index(key)
    raise DatasetError(f"{spec.name} category '{category}' is unknown "
                       f"(expected 0..{len(spec.class_names) - 1} or one of {', '.join(spec.class_names)})")


def _cache_dir(spec: LabelledSet) -> Path:
    return default_data_dir() / spec.name


# ---------------------------------------------------------------- MNIST-style (IDX files)

def _idx_source(folder: Path, spec: LabelledSet) -> tuple[Path, str] | None:
    """(folder, suffix) holding all four IDX files, decompressed ("") or gzipped (".gz")."""
    for where in (folder / spec.tv_class / "raw", folder):
        for suffix in ("", ".gz"):
            if all((where / f"{name}{suffix}").is_file() for name in IDX_FILES):
                return where, suffix
    return None


def _verify_idx(raw: Path, spec: LabelledSet) -> None:
    for name, expected in spec.idx_sha256:
        path = raw / name
        got = file_digest(path)
        if got != expected:
            raise DatasetError(f"checksum mismatch for '{path}': sha256 {got}, expected {expected} "
                               f"(the official {spec.title} file)")


def _materialise_idx(source: Path, suffix: str, raw: Path) -> None:
    """Copy (decompressing .gz) the four IDX files from `source` into `raw`, each atomically."""
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        tmp = raw / f".{name}.tmp"
        try:
            opener = gzip.open if suffix == ".gz" else open
            with opener(source / f"{name}{suffix}", "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, EOFError) as err:
            tmp.unlink(missing_ok=True)
            raise DatasetError(f"cannot read '{source / (name + suffix)}': {err} (expected an IDX file"
                               f"{', gzip-compressed' if suffix else ''})") from None
        tmp.replace(raw / name)


def _idx_root(spec: LabelledSet, root: Path | None) -> Path:
    """A folder in torchvision's layout (``<folder>/<Class>/raw/<IDX files>``) with verified files."""
    cache = _cache_dir(spec)
    candidates = [root] if root is not None else [cache, *map(Path, spec.system_dirs)]
    for folder in candidates:
        found = _idx_source(folder, spec)
        if found is None:
            continue
        where, suffix = found
        if suffix == "" and where == folder / spec.tv_class / "raw":
            _verify_idx(where, spec)
            return folder
        _materialise_idx(where, suffix, cache / spec.tv_class / "raw")
        _verify_idx(cache / spec.tv_class / "raw", spec)
        return cache
    import torchvision.datasets

    target = root if root is not None else cache
    files = ", ".join(f"{n}.gz" for n in IDX_FILES)
    require_online(spec.download_url, f"{spec.title} is not in '{target}'; put {files} (from {spec.homepage}) "
                                      f"in a folder and pass it as --data-root")
    for train in (True, False):
        getattr(torchvision.datasets, spec.tv_class)(str(target), train=train, download=True)
    _verify_idx(target / spec.tv_class / "raw", spec)
    return target


# ---------------------------------------------------------------- CIFAR-10

def _cifar_root(spec: LabelledSet, root: Path | None) -> Path:
    """A folder holding ``cifar-10-batches-py/``, extracted from the archive or downloaded if need be."""
    cache = _cache_dir(spec)
    for folder in ([root] if root is not None else [cache]):
        if (folder / CIFAR_FOLDER).is_dir():
            return folder
        if (folder / CIFAR_ARCHIVE.name).is_file():
            verify_file(folder / CIFAR_ARCHIVE.name, CIFAR_ARCHIVE.checksum)
            safe_extract(folder / CIFAR_ARCHIVE.name, cache)
            return cache
    target = root if root is not None else cache
    require_online(spec.download_url, f"CIFAR-10 is not in '{target}'; download {CIFAR_ARCHIVE.url} by hand, "
                                      f"put it in a folder and pass that folder as --data-root")
    safe_extract(fetch(CIFAR_ARCHIVE, target), target)
    return target


# ---------------------------------------------------------------- pools and protocol

def prepare(name: str, root: str | Path | None = None) -> Path:
    """Locate (or decompress, or download) the files of labelled set `name`; return torchvision's root."""
    spec = labelled_set(name)
    root = Path(root) if root is not None else None
    if root is not None and not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected a folder holding the {spec.title} files)")
    return _cifar_root(spec, root) if name == "cifar10" else _idx_root(spec, root)


@functools.lru_cache(maxsize=2)
def _load(name: str, root: str | None, cache: str) -> Pools:
    import torchvision.datasets

    spec = labelled_set(name)
    folder = prepare(name, root)
    pools = []
    for train in (True, False):
        try:
            ds = getattr(torchvision.datasets, spec.tv_class)(str(folder), train=train, download=False)
        except RuntimeError as err:  # torchvision: files missing or failing their MD5
            raise DatasetError(f"{spec.title} in '{folder}' is incomplete or corrupt: {err}") from None
        pools += [ds.data, np.asarray(ds.targets)]
    return tuple(pools)


def load_pools(name: str, root: str | Path | None = None) -> Pools:
    """(train images, train labels, test images, test labels) of labelled set `name`, uint8 images."""
    return _load(name, None if root is None else str(root), str(default_data_dir()))


def one_class(name: str, category: str | int, split: str, image_size: int, *, root: str | Path | None = None,
              transform: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
              pools: Pools | None = None) -> OneClassDataset:
    """One split ("train", "val", "test") of the paper's one-class protocol on labelled set `name`.

    `pools` replaces the real files (any labelled set of the same ten classes); `seed` moves the
    train/validation split, never the test set.
    """
    spec = labelled_set(name)
    normal = class_index(spec, category)
    train_x, train_y, test_x, test_y = pools if pools is not None else load_pools(name, root)
    return one_class_split(train_x, train_y, test_x, test_y, normal_class=normal, class_names=spec.class_names,
                           split=split, image_size=image_size, val_fraction=spec.val, seed=seed, name=name,
                           transform=transform)
