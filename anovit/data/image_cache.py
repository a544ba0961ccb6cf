"""A disk cache of decoded, resized images and masks, shared by every process and run that reads the same files.

The folder datasets keep each decoded image in memory (anovit.data.samples); this cache keeps it across
processes, so the first evaluation of a run, the app and a second run on the same data read a small
``.npy`` file instead of decoding the original (a 1024 px MVTec AD PNG takes about 20 ms to decode, a
cached 128 px image 0.05 ms). An entry is keyed by each file's resolved path, modification time and
size, the target size, the mask rule and CACHE_VERSION: an edited or replaced file is decoded again, and
a change of the decode or resize rules bumps CACHE_VERSION. Entries are written atomically (a temporary
file, then a rename), so concurrent readers never see half a file; an unreadable entry counts as a miss.

Where: ``ANOVIT_IMAGE_CACHE`` (a folder, or ``off`` for no disk cache), else ``<data dir>/.image-cache``
(:func:`anovit.data.paths.default_data_dir`). Nothing is evicted: delete the folder to reclaim the space
(about 65 kB per image at 128 px).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .paths import default_data_dir

CACHE_ENV = "ANOVIT_IMAGE_CACHE"
CACHE_VERSION = 1  # bump when the decode, resize or mask rules change what a file reads as
_OFF = ("off", "0", "none")

Entry = tuple[torch.Tensor, torch.Tensor | None]  # uint8 [3, S, S] image, bool [1, S, S] mask or None


def cache_dir() -> Path | None:
    """The cache folder (module docstring), or None when ``ANOVIT_IMAGE_CACHE`` is ``off``."""
    env = os.environ.get(CACHE_ENV, "")
    if env.lower() in _OFF:
        return None
    return Path(env) if env else default_data_dir() / ".image-cache"


def cache_key(files: tuple[Path, ...], image_size: int, mask_rule: str) -> str | None:
    """The entry name of ``files`` (the image, then its masks) read at ``image_size`` px with ``mask_rule``;
    None when a file cannot be stat-ed (reading it then fails with its name)."""
    parts = [f"v{CACHE_VERSION}", str(image_size), mask_rule]
    try:
        for path in files:
            resolved = Path(path).resolve()
            stat = resolved.stat()
            parts.append(f"{resolved}|{stat.st_mtime_ns}|{stat.st_size}")
    except OSError:
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_entry(folder: Path, key: str) -> Entry | None:
    """The cached image and mask of ``key``, or None (absent or unreadable)."""
    try:
        with np.load(folder / key[:2] / f"{key}.npz") as data:
            mask = torch.from_numpy(data["mask"]) if "mask" in data else None
            return torch.from_numpy(data["image"]), mask
    except (OSError, ValueError, KeyError, EOFError):
        return None


def save_entry(folder: Path, key: str, entry: Entry) -> None:
    """Store ``entry`` under ``key`` atomically; a cache that cannot be written is skipped silently (the
    images were read, only the next process will decode them again)."""
    image, mask = entry
    arrays = {"image": image.numpy()} if mask is None else {"image": image.numpy(), "mask": mask.numpy()}
    target, temporary = folder / key[:2] / f"{key}.npz", None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temporary, target)
    except OSError:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
