"""The checks of one category folder per layout (MVTec AD, image folder, VisA, MVTec 3D-AD, LOCO AD)
behind `data check`: what each problem is and how serious is listed in anovit.data.check."""

from __future__ import annotations

import os
from pathlib import Path

from .check_report import ERROR, MVTEC_LAYOUT, WARNING, CategoryReport
from .download import Progress
from .folder import MIN_GOOD, TEST_FRACTION, TEST_SEED
from .imageio import (
    IMAGE_EXTENSIONS, LARGE_PIXELS, MASK_RULES, ImageInfo, image_info, is_image_file, list_dir, list_subfolders,
    read_mask_info,
)
from .mvtec import has_ground_truth, mask_index, mask_name_hint
from .mvtec3d import has_validation
from .mvtec_ad import MVTEC_CATEGORIES, count_mismatch
from .mvtec_loco import masks_of
from .splits import DEFAULT_VAL_FRACTION, split_indices
from .visa import LABELS, MASK_RULE, SPLIT_CSV, read_split
from ..utils.errors import DatasetError


class Inspector:
    """Reads the images and masks of one category report, recording sizes, modes and unreadable files."""

    def __init__(self, report: CategoryReport, decode: bool, progress: Progress | None) -> None:
        self.report, self.decode, self.progress, self.done = report, decode, progress, 0
        self.depths: dict[int, list[Path]] = {}  # bit depth a wide image was scaled by -> its images

    def images(self, folder: Path, what: str, severity: str = ERROR) -> list[Path]:
        """The images in `folder`; stray files are warned about, an empty or unreadable folder is a problem."""
        try:
            entries = list_dir(folder)
        except DatasetError as err:
            self.report.add(folder, str(err))
            return []
        for path in entries:
            if os.path.isfile(path) and not path.name.startswith(".") and not is_image_file(path):
                self.report.add(path, f"'{path}' is not an image file and is ignored "
                                      f"(expected {'/'.join(IMAGE_EXTENSIONS)})", WARNING)
        images = [p for p in entries if is_image_file(p)]
        if not images:
            self.report.add(folder, f"folder '{folder}' holds no images (expected {what})", severity)
        return images

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, None)

    def read(self, path: Path) -> ImageInfo | None:
        """The :class:`ImageInfo` of image `path`, or None (and an error) when it cannot be read."""
        self._tick()
        try:
            info = image_info(path, self.decode)
        except DatasetError as err:
            self.report.add(path, str(err))
            return None
        self.report.sizes[f"{info.width}x{info.height}"] += 1
        self.report.modes[info.mode if info.bits is None else f"{info.mode} ({info.bits}-bit)"] += 1
        if info.bits is not None:
            self.depths.setdefault(info.bits, []).append(path)
        if info.width * info.height > LARGE_PIXELS:
            self.report.add(path, f"image '{path}' is {info.width}x{info.height} px ({info.megapixels:.0f} "
                                  f"megapixels): it is decoded in full before being resized, which is slow "
                                  f"(expected at most {LARGE_PIXELS / 1e6:.0f} megapixels: downscale it)", WARNING)
        return info

    def warn_mixed_depths(self, folder: Path) -> None:
        """A warning when the category's wide images were scaled by different bit depths (the rule of
        anovit.data.imageio), naming the first image of each depth but the commonest."""
        if len(self.depths) < 2:
            return
        common = max(self.depths, key=lambda bits: len(self.depths[bits]))
        others = ", ".join(f"{len(paths)} at {bits}-bit (e.g. '{paths[0]}')" for bits, paths in sorted(self.depths.items())
                           if bits != common)
        self.report.add(folder, f"the images of '{folder}' read at different bit depths: {len(self.depths[common])} "
                                f"at {common}-bit, {others}; each file is scaled by the smallest depth that holds "
                                f"its largest value, so these are scaled differently (expected one depth: save "
                                f"the images with the same range, or as 8-bit)", WARNING)

    def read_mask(self, path: Path, rule: str = MASK_RULES[0]) -> tuple[bool, ImageInfo] | None:
        """(whether mask `path` marks any pixel by ``rule``, its ImageInfo), or None (and an error) when
        unreadable."""
        self._tick()
        try:
            mask, info = read_mask_info(path, rule)
        except DatasetError as err:
            self.report.add(path, str(err))
            return None
        self.report.mask_modes[info.mode] += 1
        return bool(mask.any()), info


def _size_mismatch(mask: Path, mask_info: ImageInfo, image: Path, info: ImageInfo) -> str:
    text = (f"mask '{mask}' is {mask_info.width}x{mask_info.height} px but its image '{image}' is "
            f"{info.width}x{info.height} px as displayed (expected equal sizes)")
    if info.orientation != 1 and mask_info.size == info.stored_size:
        text += (f"; the image's EXIF orientation {info.orientation} turns it upright, the mask was drawn on "
                 f"the stored, unturned pixels: rotate the mask or save the image upright without the tag")
    return text


def _orphan_hint(folder: Path, defect: str, mask: Path) -> str:
    if mask.stem.endswith("_mask"):
        stem = mask.stem[: -len("_mask")]
        return f"expected '{folder / 'test' / defect / stem}.png' or another image named '{stem}'"
    return (f"expected masks named <image name>_mask, e.g. '{mask.stem}_mask.png' for "
            f"'{folder / 'test' / defect / mask.stem}.png'")


def _check_found_mask(inspector: Inspector, image: Path, info: ImageInfo | None, mask: Path,
                      rule: str = MASK_RULES[0]) -> None:
    """Read the existing mask of anomalous `image` by ``rule``: its size must match, an empty mask is warned about."""
    report = inspector.report
    report.masks_found += 1
    found = inspector.read_mask(mask, rule)
    if found is None:
        return
    marked, mask_info = found
    if info is not None and mask_info.size != info.size:
        report.add(mask, _size_mismatch(mask, mask_info, image, info))
    elif not marked:
        report.masks_empty += 1
        report.add(mask, f"mask '{mask}' of anomalous image '{image}' marks no defect pixel, so pixel AUROC "
                         f"and AUPRO count the whole image as normal (expected the defect region, as 255 or "
                         f"1 on 0)", WARNING)


def _check_mask_at(inspector: Inspector, image: Path, info: ImageInfo | None, mask: Path,
                   rule: str = MASK_RULES[0]) -> None:
    """The mask of anomalous `image` is expected at `mask` (VisA, MVTec 3D-AD: one fixed path per image)."""
    if mask.is_file():
        _check_found_mask(inspector, image, info, mask, rule)
        return
    inspector.report.masks_missing += 1
    inspector.report.add(image, f"anomalous image '{image}' has no mask (expected '{mask}')")


def _check_masks(folder: Path, defect: str, images: list[Path], infos: list[ImageInfo | None],
                 inspector: Inspector) -> None:
    report = inspector.report
    gt = folder / "ground_truth" / defect
    if not gt.is_dir():
        report.masks_missing += len(images)
        report.add(gt, f"folder '{gt}' is missing (expected a mask <name>_mask.png for each of the "
                       f"{len(images)} images in '{folder / 'test' / defect}')")
        return
    masks = mask_index(gt)
    for path, info in zip(images, infos):
        mask = masks.pop(f"{path.stem}_mask", None)
        if mask is None:
            report.masks_missing += 1
            report.add(path, f"anomalous image '{path}' has no mask ({mask_name_hint(gt, path)})")
            continue
        _check_found_mask(inspector, path, info, mask)
    stems = {p.stem for p in images}
    for stem, mask in sorted(masks.items()):
        if not stem.endswith("_mask") and stem in stems:
            continue  # already named in the missing-mask error of its image
        report.masks_orphaned += 1
        report.add(mask, f"mask '{mask}' has no image ({_orphan_hint(folder, defect, mask)})", WARNING)


def _no_anomalous_test_images(report: CategoryReport, folder: Path) -> None:
    if not any(n for t, n in report.test.items() if t != "good"):
        where = "test/<defect_type> folders beside test/good" if report.layout == MVTEC_LAYOUT else \
            "<defect>/ folders beside good/"
        report.add(folder, f"'{folder}' holds no anomalous test images (expected {where}): image AUROC, pixel "
                           f"AUROC and AUPRO cannot be computed", WARNING)


def check_mvtec(folder: Path, inspector: Inspector) -> None:
    report = inspector.report
    train = folder / "train" / "good"
    if not train.is_dir():
        report.add(train, f"folder '{train}' is missing (expected the normal training images)")
    else:
        images = inspector.images(train, "the normal training images")
        report.train = len(images)
        for path in images:
            inspector.read(path)
    test = folder / "test"
    types: list[str] = []
    if not test.is_dir():
        report.add(test, f"folder '{test}' is missing (expected test/good and test/<defect_type> image folders)")
    else:
        types = [p.name for p in list_subfolders(test)]
        if not types:
            report.add(test, f"folder '{test}' has no subfolders (expected test/good and test/<defect_type>)")
        elif "good" not in types:
            report.add(test / "good", f"folder '{test / 'good'}' is missing: without normal test images the "
                                      f"image AUROC cannot be computed", WARNING)
    report.localization = has_ground_truth(folder)
    if not report.localization and any(t != "good" for t in types):
        report.add(folder / "ground_truth", f"'{folder}' has no ground_truth/ folder: it trains and evaluates on "
                                            f"image labels only, pixel AUROC and AUPRO are unavailable (expected "
                                            f"ground_truth/<defect_type>/<name>_mask.png for localization)", WARNING)
    for defect in types:
        images = inspector.images(test / defect, f"test images of type '{defect}'")
        report.test[defect] = len(images)
        infos = [inspector.read(path) for path in images]
        if defect != "good" and report.localization:
            _check_masks(folder, defect, images, infos, inspector)
    if types:
        _no_anomalous_test_images(report, folder)
    if report.localization:
        for extra in list_subfolders(folder / "ground_truth"):
            if extra.name not in types and extra.name != "good":
                report.add(extra, f"mask folder '{extra}' has no test folder '{test / extra.name}' (its masks are "
                                  f"unused)", WARNING)
    official = MVTEC_CATEGORIES.get(folder.name)
    if official is not None and not report.problems:
        mismatch = count_mismatch(folder, official)
        if mismatch is not None:
            report.add(folder, f"'{folder}' holds {mismatch} (incomplete download?)", WARNING)


def check_folder(folder: Path, inspector: Inspector) -> None:
    report = inspector.report
    report.localization = False
    good = inspector.images(folder / "good", "the normal images")
    if 0 < len(good) < MIN_GOOD:
        report.add(folder / "good", f"folder '{folder / 'good'}' holds {len(good)} images (expected at least "
                                    f"{MIN_GOOD}: for training, validation and test)")
    for path in good:
        inspector.read(path)
    if len(good) >= MIN_GOOD:
        train_idx, test_idx = split_indices(len(good), TEST_FRACTION, TEST_SEED)
        report.train, report.test["good"] = len(train_idx), len(test_idx)
    for sub in list_subfolders(folder):
        if sub.name == "good":
            continue
        images = inspector.images(sub, f"anomalous images of type '{sub.name}'", WARNING)
        report.test[sub.name] = len(images)
        for path in images:
            inspector.read(path)
    _no_anomalous_test_images(report, folder)


def check_visa(folder: Path, inspector: Inspector) -> None:
    """One VisA class folder, through the split file of its parent (split_csv/1cls.csv)."""
    report, root = inspector.report, folder.parent
    rows = [r for r in read_split(root) if r["object"] == folder.name]
    if not rows:
        report.add(folder, f"VisA class '{folder.name}' has no row in '{root / SPLIT_CSV}' (its images are unused)")
    for row in rows:
        image, defect = root / row["image"], LABELS[row["label"]]
        if not image.is_file():
            report.add(image, f"image '{image}' listed in '{root / SPLIT_CSV}' is missing")
            continue
        info = inspector.read(image)
        if row["split"] == "train":
            report.train += 1
            continue
        report.test[defect] = report.test.get(defect, 0) + 1
        if defect != "good":
            _check_mask_at(inspector, image, info, root / row["mask"] if row["mask"] else
                           folder / "Data" / "Masks" / "Anomaly" / f"{image.stem}.png", MASK_RULE)
    if report.test:
        _no_anomalous_test_images(report, folder)


def check_mvtec3d(folder: Path, inspector: Inspector) -> None:
    """One MVTec 3D-AD class folder, RGB images only (xyz/ is not read)."""
    report = inspector.report
    for split in ("train", "validation"):
        rgb = folder / split / "good" / "rgb"
        if split == "validation" and not has_validation(folder):
            report.add(folder / split, f"'{folder}' has no validation/good/rgb: part of train/good (--val-fraction, "
                                       f"default {DEFAULT_VAL_FRACTION:.0%}) is held out, seeded, for validation "
                                       f"instead", WARNING)
            continue
        if not rgb.is_dir():
            report.add(rgb, f"folder '{rgb}' is missing (expected the normal {split} images)")
            continue
        images = inspector.images(rgb, f"the normal {split} images")
        for path in images:
            inspector.read(path)
        if split == "train":
            report.train = len(images)
        else:
            report.validation = len(images)
    test = folder / "test"
    types = list_subfolders(test) if test.is_dir() else []
    if not types:
        report.add(test, f"folder '{test}' is missing or empty (expected test/<type>/rgb and test/<type>/gt)")
    for sub in types:
        images = inspector.images(sub / "rgb", f"test images of type '{sub.name}'") if (sub / "rgb").is_dir() else []
        report.test[sub.name] = len(images)
        for path in images:
            info = inspector.read(path)
            if sub.name != "good":
                _check_mask_at(inspector, path, info, sub / "gt" / path.name)
    if types:
        _no_anomalous_test_images(report, folder)


def check_loco(folder: Path, inspector: Inspector) -> None:
    """One MVTec LOCO AD class folder: every anomalous image needs at least one mask in its own folder."""
    report = inspector.report
    train = inspector.images(folder / "train" / "good", "the normal training images")
    validation = inspector.images(folder / "validation" / "good", "the normal validation images")
    for path in train + validation:
        inspector.read(path)
    report.train, report.validation = len(train), len(validation)
    test = folder / "test"
    for sub in list_subfolders(test):
        images = inspector.images(sub, f"test images of type '{sub.name}'")
        report.test[sub.name] = len(images)
        for path in images:
            info = inspector.read(path)
            masks = masks_of(folder, sub.name, path) if sub.name != "good" else ()
            if sub.name != "good" and not masks:
                report.masks_missing += 1
                report.add(path, f"anomalous image '{path}' has no mask (expected PNG files in "
                                 f"'{folder / 'ground_truth' / sub.name / path.stem}')")
            for mask in masks:
                _check_found_mask(inspector, path, info, mask)
    _no_anomalous_test_images(report, folder)
