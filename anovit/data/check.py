"""Checks of a dataset folder before anything trains on it: every problem with its path.

Five layouts are recognised per category folder: the MVTec AD layout (train/good, test/<type>,
ground_truth/<type>/<stem>_mask.png), the plain image folder (good/, <defect>/; see
anovit.data.folder), a VisA class (Data/Images, read through the root's split_csv/1cls.csv; see
anovit.data.visa), an MVTec 3D-AD class (<split>/<type>/rgb and gt/; see anovit.data.mvtec3d) and an
MVTec LOCO AD class (ground_truth/<type>/<image>/ mask folders; see anovit.data.mvtec_loco). Errors
make the folder unusable (missing train/good, an unreadable image, folder or dangling link, a
missing mask or one of the wrong size, an image over imageio.MAX_PIXELS, an empty category);
warnings flag what still trains but deserves a look (a mask without its image, an anomalous image
whose mask is empty, no ground_truth/ at all, no normal or no anomalous test images, an image over
imageio.LARGE_PIXELS, stray files, image counts that differ from the official MVTec AD release).
Images are read as displayed (EXIF orientation applied); masks are always decoded, since an empty
mask silently changes the pixel metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .check_layouts import Inspector, check_folder, check_loco, check_mvtec, check_mvtec3d, check_visa
from .check_report import (
    ERROR, FOLDER_LAYOUT, LOCO_LAYOUT, MVTEC3D_LAYOUT, MVTEC_LAYOUT, VISA_LAYOUT, WARNING, CategoryReport, Problem,
    TreeReport,
)
from .download import Progress
from .imageio import list_dir, list_subfolders, unreadable
from .layouts import layout_mismatch
from .mvtec3d import is_mvtec3d_category
from .mvtec_loco import is_loco_category
from .visa import SPLIT_CSV, is_visa_root
from ..utils.errors import DatasetError

_LOG = logging.getLogger(__name__)


def check_category(folder: str | Path, *, decode: bool = True, progress: Progress | None = None) -> CategoryReport:
    """Check one category folder (MVTec AD, image folder, VisA, MVTec 3D-AD or MVTec LOCO AD class).

    A folder the system refuses to list or enter is reported as an error naming it.
    """
    folder = Path(folder)
    report = CategoryReport(folder.name, folder)
    try:
        inspector = Inspector(report, decode, progress)
        _check_category(folder, report, inspector)
        inspector.warn_mixed_depths(folder)
    except DatasetError as err:
        report.add(folder, str(err))
    except OSError as err:
        report.add(folder, str(unreadable(err, folder, "folder")))
    return report


def _check_category(folder: Path, report: CategoryReport, inspector: Inspector) -> None:
    if not folder.is_dir():
        report.add(folder, f"category folder '{folder}' does not exist")
        return
    entries = [p for p in list_dir(folder) if not p.name.startswith(".")]
    if (folder / "Data" / "Images").is_dir():
        report.layout = VISA_LAYOUT
        if not is_visa_root(folder.parent):
            report.add(folder, f"'{folder}' looks like a VisA class but '{folder.parent / SPLIT_CSV}' is missing "
                               f"(expected the VisA root, holding split_csv/ and the class folders)")
            return
        check_visa(folder, inspector)
    elif is_mvtec3d_category(folder):
        report.layout = MVTEC3D_LAYOUT
        check_mvtec3d(folder, inspector)
    elif is_loco_category(folder):
        report.layout = LOCO_LAYOUT
        check_loco(folder, inspector)
    elif any((folder / name).exists() for name in ("train", "test", "ground_truth")):
        report.layout = MVTEC_LAYOUT
        check_mvtec(folder, inspector)
    elif (folder / "good").is_dir():
        report.layout = FOLDER_LAYOUT
        check_folder(folder, inspector)
    elif not entries:
        report.add(folder, f"category folder '{folder}' is empty (expected train/good and test/<type>, "
                           f"or good/ and <defect>/)")
    else:
        report.add(folder, f"category folder '{folder}' has neither train/ and test/ (MVTec AD layout) "
                           f"nor good/ (image folder)")


def _is_category(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("train", "test", "ground_truth", "good", "Data"))


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
        if is_visa_root(root):  # split_csv/ is no class
            folders = [f for f in folders if (f / "Data").is_dir()]
    except OSError as err:
        raise unreadable(err, root, "folder") from None
    if not folders:
        report.problems.append(Problem(root, f"dataset folder '{root}' holds no category folders "
                                             f"(expected <category>/train/good or <category>/good)"))
    for folder in folders:
        report.categories.append(check_category(folder, decode=decode, progress=progress))
    return report


def require_valid(folder: str | Path, dataset: str | None = None) -> CategoryReport:
    """The fast check (headers only) run before training; raises DatasetError on any error.

    The message names the first error and how many more there are; warnings are logged. With
    `dataset`, a folder in a layout that dataset cannot read is refused naming the layout it has.
    """
    mismatch = layout_mismatch(Path(folder), dataset) if dataset is not None else None
    if mismatch is not None:
        raise DatasetError(mismatch)
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
