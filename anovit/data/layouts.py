"""Which layout a dataset folder looks like (MVTec AD, image folder, VisA, MVTec 3D-AD, MVTec LOCO AD), so
that a folder given with the wrong ``--dataset`` is refused naming the one it has."""

from __future__ import annotations

from pathlib import Path

from .check_report import FOLDER_LAYOUT, LAYOUT_TITLES, LOCO_LAYOUT, MVTEC3D_LAYOUT, MVTEC_LAYOUT, VISA_LAYOUT
from .imageio import list_subfolders
from .mvtec3d import is_mvtec3d_category
from .mvtec_loco import is_loco_category
from .registry import FOLDER, LAYOUT, LOCO, MVTEC3D, VISA, dataset_spec
from .visa import is_visa_root
from ..utils.errors import DatasetError

# The folder layouts each registry layout reads (an image-folder dataset also reads the MVTec AD layout).
READS = {LAYOUT: (MVTEC_LAYOUT,), FOLDER: (FOLDER_LAYOUT, MVTEC_LAYOUT), VISA: (VISA_LAYOUT,),
         MVTEC3D: (MVTEC3D_LAYOUT,), LOCO: (LOCO_LAYOUT,)}


def _layout_of(folder: Path) -> str | None:
    if (folder / "Data" / "Images").is_dir():
        return VISA_LAYOUT
    if is_mvtec3d_category(folder):
        return MVTEC3D_LAYOUT
    if is_loco_category(folder):
        return LOCO_LAYOUT
    if (folder / "train" / "good").is_dir():
        return MVTEC_LAYOUT
    return FOLDER_LAYOUT if (folder / "good").is_dir() else None


def guess_layout(root: Path) -> str | None:
    """The layout `root` looks like (a dataset root or one category folder), or None when none fits."""
    root = Path(root)
    try:
        if is_visa_root(root):
            return VISA_LAYOUT
        folders = [root, *list_subfolders(root)] if root.is_dir() else []
        return next((found for found in map(_layout_of, folders) if found is not None), None)
    except (DatasetError, OSError):  # an unreadable folder: its check names it
        return None


def layout_mismatch(root: Path, dataset: str) -> str | None:
    """A sentence saying which layout `root` looks like when `dataset` cannot read it, else None."""
    reads = READS.get(dataset_spec(dataset).layout)
    found = guess_layout(root)
    if reads is None or found is None or found in reads:
        return None
    where = "the folder holding split_csv/" if found == VISA_LAYOUT else "the folder holding the class folders"
    return (f"'{root}' looks like {LAYOUT_TITLES[found]} data, not {LAYOUT_TITLES[reads[0]]} "
            f"(use --dataset {found} with --data-root {where})")
