"""What `data check` found: one problem per file or folder, a report per category and per tree,
and their plain-text form. The checks themselves are in anovit.data.check."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ERROR, WARNING = "error", "warning"
MVTEC_LAYOUT, FOLDER_LAYOUT, UNKNOWN_LAYOUT = "mvtec", "folder", "unknown"
VISA_LAYOUT, MVTEC3D_LAYOUT, LOCO_LAYOUT = "visa", "mvtec3d", "mvtec-loco"
# Each layout is also the --dataset name that reads it.
LAYOUT_TITLES = {MVTEC_LAYOUT: "MVTec AD", FOLDER_LAYOUT: "good/bad image folder", VISA_LAYOUT: "VisA",
                 MVTEC3D_LAYOUT: "MVTec 3D-AD", LOCO_LAYOUT: "MVTec LOCO AD"}


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
    validation: int | None = None  # a validation split of its own (MVTec 3D-AD, LOCO), else None: held out of train
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
            "validation": self.validation,
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


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} ({n})" for key, n in counter.most_common()) or "-"


def format_report(report: TreeReport) -> str:
    """A plain-text summary: one block per category, then every problem, then the verdict."""
    lines = [f"{report.root}: {len(report.categories)} categor{'y' if len(report.categories) == 1 else 'ies'}"]
    for c in report.categories:
        lines.append(f"\n{c.name}  [{c.layout} layout]")
        if c.layout == UNKNOWN_LAYOUT:
            continue
        train_label = {MVTEC_LAYOUT: "train/good", MVTEC3D_LAYOUT: "train/good/rgb",
                       LOCO_LAYOUT: "train/good"}.get(c.layout, "train (good)")
        lines.append(f"  {train_label:<13}{c.train} images")
        if c.validation is not None:
            lines.append(f"  {'validation':<13}{c.validation} images")
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
