"""Checks of a dataset folder before anything trains on it: every problem with its path.

Two layouts are recognised per category folder: the MVTec AD layout (train/good, test/<type>,
ground_truth/<type>/<stem>_mask.png) and the plain image folder (good/, <defect>/; see
anovit.data.folder). Errors make the folder unusable (missing train/good, an unreadable image,
folder or dangling link, a missing mask or one of the wrong size, an image over
imageio.MAX_PIXELS, an empty category); warnings flag what still trains but deserves a look (a
mask without its image, an anomalous image whose mask is empty, no ground_truth/ at all, no
normal or no anomalous test images, an image over imageio.LARGE_PIXELS, stray files, image counts
that differ from the official MVTec AD release). Images are read as displayed (EXIF orientation
applied); masks are always decoded, since an empty mask silently changes the pixel metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anovit.data.download import Progress
from anovit.data.folder import MIN_GOOD, TEST_FRACTION, TEST_SEED
from anovit.data.imageio import (
    IMAGE_EXTENSIONS, LARGE_PIXELS, ImageInfo, image_info, is_image_file, list_dir, list_subfolders, read_mask_info,
    unreadable,
)
from anovit.data.mvtec import has_ground_truth, mask_index, mask_name_hint
from anovit.data.mvtec_ad import MVTEC_CATEGORIES, count_mismatch
from anovit.data.splits import split_indices
from anovit.errors import DatasetError

ERROR, WARNING = "error", "warning"
MVTEC_LAYOUT, FOLDER_LAYOUT, UNKNOWN_LAYOUT = "mvtec", "folder", "unknown"
_LOG = logging.getLogger(__name__)


@dataclass
class Problem:
    """One finding: the file or folder concerned and a sentence that names it."""

    path: Path
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class CategoryReport:
    """What one category folder holds, and what is wrong with it."""

    name: str
    path: Path
    layout: str = UNKNOWN_LAYOUT
    train: int = 0
    test: dict[str, int] = field(default_factory=dict)  # defect type ("good" = normal) -> images
    masks_found: int = 0
    masks_missing: int = 0
    masks_orphaned: int = 0
    masks_empty: int = 0  # masks of anomalous images that mark no pixel
    localization: bool = True  # False: no masks at all (image folder, or no ground_truth/)
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> images
    modes: Counter = field(default_factory=Counter)  # PIL mode -> images
    mask_modes: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: Path, message: str, severity: str = ERROR) -> None:
        """Record a problem with `path`."""
        self.problems.append(Problem(path, message, severity))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "name": self.name, "path": str(self.path), "layout": self.layout, "train": self.train,
            "test": dict(self.test), "masks_found": self.masks_found, "masks_missing": self.masks_missing,
            "masks_orphaned": self.masks_orphaned, "masks_empty": self.masks_empty,
            "localization": self.localization, "sizes": dict(self.sizes), "modes": dict(self.modes),
            "mask_modes": dict(self.mask_modes),
            "problems": [{"severity": p.severity, "path": str(p.path), "message": p.message} for p in self.problems],
        }


@dataclass
class TreeReport:
    """The reports of every category under a root folder, and the root's own problems."""

    root: Path
    categories: list[CategoryReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def all_problems(self) -> list[Problem]:
        """Root problems first, then each category's."""
        return self.problems + [p for c in self.categories for p in c.problems]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.all_problems() if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.all_problems() if p.severity == WARNING]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"root": str(self.root), "ok": not self.errors, "n_errors": len(self.errors),
                "n_warnings": len(self.warnings), "categories": [c.to_dict() for c in self.categories],
                "problems": [{"severity": p.severity, "path": str(p.path), "message": p.message}
                             for p in self.problems]}


class _Inspector:
    """Reads images for one category report, recording sizes, modes and unreadable files."""

    def __init__(self, report: CategoryReport, decode: bool, progress: Progress | None) -> None:
        self.report, self.decode, self.progress, self.done = report, decode, progress, 0

    def images(self, folder: Path, what: str, severity: str = ERROR) -> list[Path]:
        """The images in `folder`; stray files are warned about, an empty or unreadable folder is a problem."""
        try:
            entries = list_dir(folder)
        except DatasetError as err:
            self.report.add(folder, str(err))
            return []
        for path in entries:
            if path.is_file() and not path.name.startswith(".") and not is_image_file(path):
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
        self.report.modes[info.mode] += 1
        if info.width * info.height > LARGE_PIXELS:
            self.report.add(path, f"image '{path}' is {info.width}x{info.height} px ({info.megapixels:.0f} "
                                  f"megapixels): it is decoded in full before being resized, which is slow "
                                  f"(expected at most {LARGE_PIXELS / 1e6:.0f} megapixels: downscale it)", WARNING)
        return info

    def read_mask(self, path: Path) -> tuple[bool, ImageInfo] | None:
        """(whether mask `path` marks any pixel, its ImageInfo), or None (and an error) when unreadable."""
        self._tick()
        try:
            mask, info = read_mask_info(path)
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


def _check_masks(folder: Path, defect: str, images: list[Path], infos: list[ImageInfo | None],
                 inspector: _Inspector) -> None:
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
        report.masks_found += 1
        found = inspector.read_mask(mask)
        if found is None:
            continue
        marked, mask_info = found
        if info is not None and mask_info.size != info.size:
            report.add(mask, _size_mismatch(mask, mask_info, path, info))
        elif not marked:
            report.masks_empty += 1
            report.add(mask, f"mask '{mask}' of anomalous image '{path}' marks no defect pixel, so pixel AUROC "
                             f"and AUPRO count the whole image as normal (expected the defect region, as 255 or "
                             f"1 on 0)", WARNING)
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


def _check_mvtec(folder: Path, inspector: _Inspector) -> None:
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


def _check_folder(folder: Path, inspector: _Inspector) -> None:
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


def check_category(folder: str | Path, *, decode: bool = True, progress: Progress | None = None) -> CategoryReport:
    """Check one category folder (MVTec AD layout or good/bad image folder).

    A folder the system refuses to list or enter is reported as an error naming it.
    """
    folder = Path(folder)
    report = CategoryReport(folder.name, folder)
    try:
        _check_category(folder, report, _Inspector(report, decode, progress))
    except DatasetError as err:
        report.add(folder, str(err))
    except OSError as err:
        report.add(folder, str(unreadable(err, folder, "folder")))
    return report


def _check_category(folder: Path, report: CategoryReport, inspector: _Inspector) -> None:
    if not folder.is_dir():
        report.add(folder, f"category folder '{folder}' does not exist")
        return
    entries = [p for p in list_dir(folder) if not p.name.startswith(".")]
    if any((folder / name).exists() for name in ("train", "test", "ground_truth")):
        report.layout = MVTEC_LAYOUT
        _check_mvtec(folder, inspector)
    elif (folder / "good").is_dir():
        report.layout = FOLDER_LAYOUT
        _check_folder(folder, inspector)
    elif not entries:
        report.add(folder, f"category folder '{folder}' is empty (expected train/good and test/<type>, "
                           f"or good/ and <defect>/)")
    else:
        report.add(folder, f"category folder '{folder}' has neither train/ and test/ (MVTec AD layout) "
                           f"nor good/ (image folder)")


def _is_category(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("train", "test", "ground_truth", "good"))


def check_tree(root: str | Path, *, decode: bool = True, progress: Progress | None = None) -> TreeReport:
    """Check every category folder under `root`, or `root` itself when it is a category folder.

    Raises DatasetError when `root` itself cannot be listed (nothing can be checked then).
    """
    root = Path(root)
    report = TreeReport(root)
    try:
        if not root.is_dir():
            report.problems.append(Problem(root, f"dataset folder '{root}' does not exist or is not a folder"))
            return report
        if _is_category(root):
            report.categories.append(check_category(root, decode=decode, progress=progress))
            return report
        folders = list_subfolders(root)
    except OSError as err:
        raise unreadable(err, root, "folder") from None
    if not folders:
        report.problems.append(Problem(root, f"dataset folder '{root}' holds no category folders "
                                             f"(expected <category>/train/good or <category>/good)"))
    for folder in folders:
        report.categories.append(check_category(folder, decode=decode, progress=progress))
    return report


def require_valid(folder: str | Path) -> CategoryReport:
    """The fast check (headers only) run before training; raises DatasetError on any error.

    The message names the first error and how many more there are; warnings are logged.
    """
    report = check_category(folder, decode=False)
    errors = [p for p in report.problems if p.severity == ERROR]
    for problem in report.problems:
        if problem.severity == WARNING:
            _LOG.warning("%s", problem.message)
    if errors:
        more = (f" (and {len(errors) - 1} more: run `python -m anovit data check {Path(folder).parent}`)"
                if len(errors) > 1 else "")
        raise DatasetError(f"{errors[0].message}{more}")
    return report


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} ({n})" for key, n in counter.most_common()) or "-"


def format_report(report: TreeReport) -> str:
    """A plain-text summary: one block per category, then every problem, then the verdict."""
    lines = [f"{report.root}: {len(report.categories)} categor{'y' if len(report.categories) == 1 else 'ies'}"]
    for c in report.categories:
        lines.append(f"\n{c.name}  [{c.layout} layout]")
        if c.layout == UNKNOWN_LAYOUT:
            continue
        train_label = "train/good" if c.layout == MVTEC_LAYOUT else "train (good)"
        lines.append(f"  {train_label:<13}{c.train} images")
        kinds = ", ".join(f"{t} {n}" for t, n in sorted(c.test.items()))
        lines.append(f"  {'test':<13}{sum(c.test.values())} images: {kinds or '-'}")
        defects = [t for t in sorted(c.test) if t != "good"]
        lines.append(f"  {'defect types':<13}{', '.join(defects) or '-'}")
        if c.localization:
            lines.append(f"  {'masks':<13}{c.masks_found} found ({c.masks_empty} empty), {c.masks_missing} "
                         f"missing, {c.masks_orphaned} without image")
        else:
            where = "image folder" if c.layout == FOLDER_LAYOUT else "no ground_truth/"
            lines.append(f"  {'masks':<13}none ({where}: localization unavailable)")
        lines.append(f"  {'image sizes':<13}{_counts(c.sizes)}")
        lines.append(f"  {'image modes':<13}{_counts(c.modes)}" + (f"; masks {_counts(c.mask_modes)}"
                                                                   if c.mask_modes else ""))
    problems = report.all_problems()
    lines.append("\nproblems:" if problems else "\nproblems: none")
    lines += [f"  {p}" for p in problems]
    n_err, n_warn = len(report.errors), len(report.warnings)
    lines.append(f"\n{'FAILED' if n_err else 'OK'}: {n_err} error{'s' * (n_err != 1)}, "
                 f"{n_warn} warning{'s' * (n_warn != 1)}")
    return "\n".join(lines)
