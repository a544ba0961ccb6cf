"""The one list of datasets: name, classes, masks, protocol, source and licence, plus the default
augmentation per dataset and category. The CLI and the app both offer exactly these choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from .augment import AugmentConfig
from .digits import DIGIT_CLASSES
from .mvtec_ad import HOMEPAGE as MVTEC_HOMEPAGE
from .mvtec_ad import LICENCE as MVTEC_LICENCE
from .mvtec_ad import MVTEC_CATEGORIES
from .mvtec3d import HOMEPAGE as MVTEC3D_HOMEPAGE
from .mvtec3d import LICENCE as MVTEC3D_LICENCE
from .mvtec3d import MVTEC3D_CLASSES
from .mvtec_loco import HOMEPAGE as LOCO_HOMEPAGE
from .mvtec_loco import LICENCE as LOCO_LICENCE
from .mvtec_loco import LOCO_CLASSES
from .synthetic import CATEGORIES as SYNTHETIC_CATEGORIES
from .torchvision_sets import LABELLED_SETS
from .unified import ALL_CLASSES
from .visa import HOMEPAGE as VISA_HOMEPAGE
from .visa import LICENCE as VISA_LICENCE
from .visa import VISA_CLASSES, VISA_FLIPS
from ..utils.errors import DatasetError

LAYOUT, FOLDER, ONE_CLASS, VISA, MVTEC3D, LOCO = "layout", "folder", "one-class", "visa", "mvtec3d", "mvtec-loco"


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, where it comes from and how it is split."""

    name: str
    title: str
    layout: str  # LAYOUT (MVTec AD folders), FOLDER (good/bad images), ONE_CLASS (a labelled set), VISA, MVTEC3D, LOCO
    classes: tuple[str, ...] | None  # usable as --category; None: the category folders under --data-root
    has_masks: bool  # pixel ground truth, hence localization metrics
    protocol: str
    source: str
    licence: str
    needs_root: bool = False  # True: --data-root is required
    downloadable: bool = False  # `python -m anovit data download <name>` fetches it

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Readable names aligned with `classes` (the same strings where classes are names already)."""
        labelled = LABELLED_SETS.get(self.name)
        return labelled.class_names if labelled is not None else self.classes


_ONE_CLASS_PROTOCOL = ("one class normal, the other nine anomalous; {val} of the normal class's training "
                       "images validate, the rest train; test: all {test} test images; no masks")
REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("synthetic", "Synthetic textures and washers", LAYOUT, SYNTHETIC_CATEGORIES, True,
                "MVTec AD layout; 20% of train/good held out (seeded) for validation",
                "generated on first use by anovit.data.synthetic (no download)", "same licence as the anovit code"),
    DatasetSpec("digits", "scikit-learn digits (8x8)", ONE_CLASS, DIGIT_CLASSES, False,
                "one digit normal, the other nine anomalous; stratified 80/20 train/test pools, 20% of the "
                "normal digit's training images validate; no masks",
                "scikit-learn's bundled copy of the UCI optical digits (no download)", "CC BY 4.0 (UCI)"),
    DatasetSpec("mvtec", "MVTec AD", LAYOUT, tuple(MVTEC_CATEGORIES), True,
                "per category: train/good (20% held out, seeded, for validation), test/good and "
                "test/<defect> with pixel masks", MVTEC_HOMEPAGE, MVTEC_LICENCE, needs_root=True,
                downloadable=True),
    DatasetSpec("visa", "VisA (Visual Anomaly)", VISA, VISA_CLASSES, True,
                "as distributed: <class>/Data/Images/{Normal,Anomaly}, masks in <class>/Data/Masks/Anomaly, "
                "split by split_csv/1cls.csv (1-class setup); 20% of the train normals held out (seeded) for "
                "validation", VISA_HOMEPAGE, VISA_LICENCE, needs_root=True, downloadable=True),
    DatasetSpec("mvtec3d", "MVTec 3D-AD (RGB images)", MVTEC3D, MVTEC3D_CLASSES, True,
                "per class: train/good/rgb trains, validation/good/rgb validates (where absent, 20% of "
                "train/good held out, seeded), test/<type>/rgb with gt/ masks; xyz/ ignored",
                MVTEC3D_HOMEPAGE, MVTEC3D_LICENCE, needs_root=True),
    DatasetSpec("mvtec-loco", "MVTec LOCO AD (logical and structural anomalies)", LOCO, LOCO_CLASSES, True,
                "per class: train/good trains, validation/good validates, test/{good,logical_anomalies,"
                "structural_anomalies}; an image's mask is the union of ground_truth/<type>/<image>/*.png",
                LOCO_HOMEPAGE, LOCO_LICENCE, needs_root=True),
    DatasetSpec("folder", "Image folder (good / bad, no masks)", FOLDER, None, False,
                "<root>/<category>/good and <category>/<defect>/; 20% of good (fixed seed) plus every "
                "anomalous image test, the rest trains (20% of it validates); detection metrics only",
                "your own images", "set by the images' owner", needs_root=True),
    *(DatasetSpec(s.name, s.title, ONE_CLASS, tuple(str(i) for i in range(10)), False,
                  _ONE_CLASS_PROTOCOL.format(val=f"{s.val:.0%}" if isinstance(s.val, float) else f"{s.val:,}",
                                             test="10,000"),
                  f"{s.homepage} (via torchvision)", s.licence, downloadable=True)
      for s in LABELLED_SETS.values()),
)}
DATASETS = tuple(REGISTRY)

# Flip rules outside MVTec AD and VisA (their categories carry their own: anovit.data.mvtec_ad, anovit.data.visa).
_FLIP_RULES: dict[str, tuple[bool, bool, str]] = {
    "digits": (False, False, "a mirrored 2, 3, 4, 7 or 9 is no digit at all"),
    "mnist": (False, False, "a mirrored 2, 3, 4, 7 or 9 is no digit at all"),
    "fashion-mnist": (True, False, ("garments are shown upright: mirrored left-right they stay normal, "
                                    "upside down they do not")),
    "cifar10": (True, False, ("photographs are upright: mirrored left-right they stay normal, upside down "
                              "they do not")),
}
_PAPER_FLIPS = (True, True, "the paper's default: horizontal and vertical flips (sec. 4.3)")


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of `name` (DatasetError when unknown)."""
    if name not in REGISTRY:
        raise DatasetError(f"dataset '{name}' is unknown (expected one of {', '.join(DATASETS)})")
    return REGISTRY[name]


def fixed_classes(name: str) -> tuple[str, ...] | None:
    """The only categories `name` has (e.g. "0".."9" for MNIST), or None where the categories are the
    folders under --data-root (MVTec AD layout and image folders: a custom MVTec-layout folder may hold
    any category)."""
    spec = dataset_spec(name)
    return None if spec.needs_root else spec.classes


def flip_rule(dataset: str, category: str) -> tuple[bool, bool, str]:
    """(horizontal flip, vertical flip, why) for training on `dataset`/`category`; for every class in one
    model (category "all") on MVTec AD or VisA, only the flips all their classes allow."""
    if category == ALL_CLASSES and dataset in ("mvtec", "visa"):
        rules = [flip_rule(dataset, c) for c in (MVTEC_CATEGORIES if dataset == "mvtec" else VISA_FLIPS)]
        return (all(r[0] for r in rules), all(r[1] for r in rules),
                "one model for every class: only the flips that every class allows")
    if dataset == "mvtec" and category in MVTEC_CATEGORIES:
        c = MVTEC_CATEGORIES[category]
        return c.hflip, c.vflip, c.flip_reason
    if dataset == "visa" and category in VISA_FLIPS:
        return VISA_FLIPS[category]
    return _FLIP_RULES.get(dataset, _PAPER_FLIPS)


def default_augment(dataset: str, category: str, *, affine: bool = True, hflip: bool | None = None,
                    vflip: bool | None = None) -> AugmentConfig:
    """The paper's augmentations (random affine, flips) minus the flips that make a normal image
    of `category` look defective (:func:`flip_rule`); a flip given as True/False overrides the rule.
    The one place the trainer, the CLI and the app build augmentations."""
    rule_h, rule_v, _ = flip_rule(dataset, category)
    return AugmentConfig(affine=affine, hflip=rule_h if hflip is None else hflip,
                         vflip=rule_v if vflip is None else vflip)
