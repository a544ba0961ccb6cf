"""VisA (Zou et al., ECCV 2022, "SPot-the-Difference"), read as it is distributed, with no conversion step.

    root/split_csv/1cls.csv                           the 1-class split: object,split,label,image,mask
    root/<class>/Data/Images/Normal/*.JPG             normal images
    root/<class>/Data/Images/Anomaly/*.JPG            anomalous images
    root/<class>/Data/Masks/Anomaly/*.png             their masks: class indices, 0 = normal, any other value a defect

The split file's paths are relative to ``root``; its label is "normal" or "anomaly". The train
split holds normal images only; the trainer holds part of it out for validation (as for MVTec AD).
Archive, URL and MD5 as anomalib's VisA data module lists them; licence from the dataset's README
(amazon-science/spot-diff).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import torch

from .download import Archive, Progress, install_archive, require_online
from .samples import Sample, SampleListDataset
from ..utils.errors import DatasetError

HOMEPAGE = "https://github.com/amazon-science/spot-diff"
LICENCE = "CC BY 4.0"
ARCHIVE = Archive(name="VisA_20220922.tar",
                  url="https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
                  checksum="md5:ef908989b6dc701fc218f643c127a4de")
SPLIT_CSV = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
LABELS = {"normal": "good", "anomaly": "anomaly"}
MASK_RULE = "nonzero"  # anovit.data.imageio.MASK_RULES: VisA's PNG masks hold class indices (0, 1, 2, ...)  # the split file's label -> anovit's defect type
VISA_CLASSES = ("candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2",
                "pcb3", "pcb4", "pipe_fryum")
# Flip rules (horizontal, vertical, why) where the paper's default (both flips) would show a defect.
VISA_FLIPS = {c: (False, False, "a mirrored board has its components and printing on the wrong side, which no "
                                "normal board shows") for c in ("pcb1", "pcb2", "pcb3", "pcb4")}


def is_visa_root(root: Path) -> bool:
    """Whether `root` holds VisA's split file (split_csv/1cls.csv)."""
    return (Path(root) / SPLIT_CSV).is_file()


def read_split(root: str | Path) -> list[dict[str, str]]:
    """The rows of ``root/split_csv/1cls.csv``; DatasetError naming the file when it is missing or malformed."""
    path = Path(root) / SPLIT_CSV
    if not path.is_file():
        raise DatasetError(f"VisA split file '{path}' is missing (expected the VisA root holding split_csv/1cls.csv "
                           f"and the class folders)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(f"VisA split file '{path}' lacks the column(s) {', '.join(missing)} "
                               f"(expected {','.join(COLUMNS)})")
        rows = list(reader)
    for line, row in enumerate(rows, 2):
        if row["split"] not in ("train", "test") or row["label"] not in LABELS:
            raise DatasetError(f"VisA split file '{path}' line {line} has split {row['split']!r} and label "
                               f"{row['label']!r} (expected split train/test and label normal/anomaly)")
    return rows


def list_visa_classes(root: str | Path) -> list[str]:
    """The classes named in the split file whose folder exists under `root`, in file order."""
    root = Path(root)
    return [c for c in dict.fromkeys(row["object"] for row in read_split(root)) if (root / c).is_dir()]


def scan_visa(root: Path, category: str, split: str) -> list[Sample]:
    """The samples of `category` in one split ("train" or "test") of the split file; files must exist."""
    rows = [r for r in read_split(root) if r["object"] == category]
    if not rows:
        raise DatasetError(f"VisA class '{category}' has no row in '{root / SPLIT_CSV}'; classes there: "
                           f"{', '.join(list_visa_classes(root)) or 'none'}")
    samples: list[Sample] = []
    for row in (r for r in rows if r["split"] == split):
        image, defect = root / row["image"], LABELS[row["label"]]
        if not image.is_file():
            raise DatasetError(f"image '{image}' listed in '{root / SPLIT_CSV}' is missing")
        mask = root / row["mask"] if defect != "good" and row["mask"] else None
        if defect != "good" and (mask is None or not mask.is_file()):
            raise DatasetError(f"mask missing for anomalous test image '{image}': expected "
                               f"'{mask or root / category / 'Data' / 'Masks' / 'Anomaly' / (image.stem + '.png')}'")
        samples.append((image, defect, mask))
    if not samples:
        raise DatasetError(f"VisA class '{category}' has no {split} rows in '{root / SPLIT_CSV}'")
    return samples


class VisADataset(SampleListDataset):
    """One split ("train" or "test") of one VisA class, read through the split file; anovit item contract.
    Masks are read by the "nonzero" rule (anovit.data.imageio): VisA's hold class indices, not 0/255."""

    mask_rule = MASK_RULE

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"split '{split}' is not valid for VisA (expected 'train' or 'test')")
        self.root, self.category, self.split = Path(root), category, split
        super().__init__(scan_visa(self.root, category, split), image_size, transform)


def download_visa(root: str | Path, *, keep_archive: bool = False, progress: Progress | None = None,
                  extract_progress: Progress | None = None) -> list[str]:
    """Install VisA into `root` (split file and the 12 class folders); return the classes installed.

    Nothing is fetched when they are all there already. A hand-downloaded archive in
    ``root/.downloads`` is used without network access; offline otherwise, fails at once with one
    sentence. The archive's MD5 is checked before extraction (anovit.data.download.safe_extract).
    """
    root = Path(root)
    if is_visa_root(root) and all((root / c / "Data").is_dir() for c in VISA_CLASSES):
        return []
    if not (root / ".downloads" / ARCHIVE.name).is_file():
        require_online(ARCHIVE.url, f"download {ARCHIVE.name} by hand (see {HOMEPAGE}), then either put it in "
                                    f"'{root / '.downloads'}' and run this command again, or extract it yourself "
                                    f"and pass the folder holding split_csv/ as --data-root")
    install_archive(ARCHIVE, root, keep_archive=keep_archive, progress=progress, extract_progress=extract_progress)
    missing = [c for c in VISA_CLASSES if not (root / c / "Data").is_dir()]
    if missing or not is_visa_root(root):
        raise DatasetError(f"VisA folder '{root}' lacks {', '.join(missing) or SPLIT_CSV} after extraction "
                           f"(expected split_csv/1cls.csv and the 12 class folders)")
    return list(VISA_CLASSES)
