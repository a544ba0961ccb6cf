"""MVTec AD (Bergmann et al., CVPR 2019): its 15 categories, their flip rules, and the download.

The paper's tables group the categories into 5 textures and 10 objects. Training augments with
random affine transforms and flips (sec. 4.3), but a mirror image of some objects is itself a
defect, or shows something no normal part looks like; for those the flip is switched off. Each
category records which flips are safe and why (`MVTecCategory.flip_reason`).

Archives: the official links on https://www.mvtec.com/company/research/datasets/mvtec-ad (hosted
on www.mydrive.ch). Only the full archive has a published SHA-256; the per-category archives
are checked by the xz container's own CRC and by comparing the extracted image counts with the
official release, which this module also records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .download import Archive, Progress, install_archive, require_online
from .imageio import list_images, list_subfolders
from ..utils.errors import DatasetError

HOMEPAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad"
LICENCE = "CC BY-NC-SA 4.0 (non-commercial use only)"
_SHARE = "https://www.mydrive.ch/shares"

FULL_ARCHIVE = Archive(
    name="mvtec_anomaly_detection.tar.xz",
    url=f"{_SHARE}/150996/b52ecdcbf521176e9db9c731f2304b27/download/420938113-1629960298/mvtec_anomaly_detection.tar.xz",
    checksum="sha256:cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
    size=5_264_982_680,
)


@dataclass(frozen=True)
class MVTecCategory:
    """One MVTec AD category: texture or object, safe flips, official image counts, archive link."""

    name: str
    kind: str  # "texture" or "object"
    hflip: bool
    vflip: bool
    flip_reason: str
    n_train: int  # train/good
    n_test: int  # test, all defect types and good
    share: str  # path of the per-category archive under www.mydrive.ch/shares

    @property
    def archive(self) -> Archive:
        """The per-category archive (no published checksum: see the module docstring)."""
        return Archive(name=f"{self.name}.tar.xz", url=f"{_SHARE}/{self.share}/{self.name}.tar.xz")


_TEXTURE = "a texture looks the same mirrored: both flips are safe"
MVTEC_CATEGORIES: dict[str, MVTecCategory] = {c.name: c for c in (
    MVTecCategory("carpet", "texture", True, True, _TEXTURE, 280, 117,
                  "150455/eac7fbce84d93a5094e13f391170eca4/download/420937484-1629959013"),
    MVTecCategory("grid", "texture", True, True, _TEXTURE, 264, 78,
                  "150456/bb0b2e3dc804ccb8b4485e01f8e4493b/download/420937487-1629959044"),
    MVTecCategory("leather", "texture", True, True, _TEXTURE, 245, 124,
                  "150458/923030ce14e10a7d147e95d0f8885f6b/download/420937607-1629959262"),
    MVTecCategory("tile", "texture", True, True, _TEXTURE, 230, 117,
                  "150462/5479f0fdc97bc6fa16eab0cb0cf0109f/download/420938133-1629960456"),
    MVTecCategory("wood", "texture", True, True, "a mirrored grain still runs along the same axis: both flips "
                  "are safe", 247, 79, "150465/d5b4115b720cdb54d217e75636e6e374/download/420938383-1629960649"),
    MVTecCategory("bottle", "object", True, True, "a round bottle seen from above is mirror-symmetric",
                  209, 83, "150452/132a93367fb17cdf968dfb5c4013f6e7/download/420937370-1629958698"),
    MVTecCategory("cable", "object", False, False, "the three wires sit in a fixed clockwise colour order; a "
                  "mirror swaps it, which is the 'cable_swap' defect", 224, 150,
                  "150453/10f960e07fec2838b2cd512586633a32/download/420937413-1629958794"),
    MVTecCategory("capsule", "object", False, False, "the capsule carries printed text ('500') that a mirror "
                  "turns into a misprint", 219, 132,
                  "150454/e0ce6dd74eb150f46c0d98131b3703f2/download/420937454-1629958872"),
    MVTecCategory("hazelnut", "object", True, True, "nuts lie in every orientation and either side up",
                  391, 110, "150457/51d49f65e84bdc100ff8035d7dd783ea/download/420937545-1629959162"),
    MVTecCategory("metal_nut", "object", False, False, "the nut's lobes have a handedness: a mirror image is "
                  "exactly the 'flip' defect (nut upside down)", 220, 115,
                  "150459/c68856a21dca589b0f8ff6d4ee0f18f4/download/420937637-1629959294"),
    MVTecCategory("pill", "object", False, False, "the pill carries printed letters ('FF') that a mirror turns "
                  "into a misprint", 267, 167,
                  "150460/d4f1c04da67034ccc8d8b5fa3e73f244/download/420938129-1629960351"),
    MVTecCategory("screw", "object", False, False, "a mirror turns the right-hand thread into a left-hand one, "
                  "which no normal screw has (rotation, which the affine transform covers, is safe)", 320, 160,
                  "150461/242f454cc6385e5693c4fd4b94567d1e/download/420938130-1629960389"),
    MVTecCategory("toothbrush", "object", True, False, "the head is left-right symmetric but always upright: "
                  "a vertical flip would show it upside down", 60, 42,
                  "150463/895a1a5fb84b958f07417784b060434b/download/420938134-1629960477"),
    MVTecCategory("transistor", "object", False, False, "the part always sits upright with its leads bent one "
                  "way; a turned or mirrored part is the 'misplaced' defect", 213, 100,
                  "150464/99b8ea0332438d64fcc2475ee73f9c29/download/420938166-1629960554"),
    MVTecCategory("zipper", "object", True, True, "the interlocked teeth look the same mirrored either way",
                  240, 151, "150466/bd155b557520edaf692d9bfdb915c24a/download/420938385-1629960680"),
)}
TEXTURES = tuple(n for n, c in MVTEC_CATEGORIES.items() if c.kind == "texture")
OBJECTS = tuple(n for n, c in MVTEC_CATEGORIES.items() if c.kind == "object")


def count_mismatch(folder: Path, category: MVTecCategory) -> str | None:
    """None when `folder` holds the official number of train and test images, else what differs."""
    train = folder / "train" / "good"
    test = folder / "test"
    n_train = len(list_images(train)) if train.is_dir() else 0
    n_test = sum(len(list_images(d)) for d in list_subfolders(test)) if test.is_dir() else 0
    if (n_train, n_test) == (category.n_train, category.n_test):
        return None
    return (f"{n_train} train / {n_test} test images, the official release has "
            f"{category.n_train} / {category.n_test}")


def _manual_advice(root: Path) -> str:
    return (f"download mvtec_anomaly_detection.tar.xz by hand from {HOMEPAGE}, then either put it in "
            f"'{root / '.downloads'}' and run this command again, or extract it yourself and pass the folder "
            f"holding bottle/, cable/, ... as --data-root")


def download_mvtec(root: str | Path, categories: Iterable[str] | None = None, *, url: str | None = None,
                   keep_archive: bool = False, progress: Progress | None = None,
                   extract_progress: Progress | None = None) -> list[str]:
    """Install MVTec AD categories into `root` (default: all 15, from the full archive); return those installed.

    Categories whose folders already hold the official image counts are skipped. All 15 come from
    the full archive (SHA-256 verified; `url` overrides its link if MVTec moves it); a subset comes
    from the per-category archives. A hand-downloaded full archive in ``root/.downloads`` is used
    without network access. Offline, fails at once with one sentence.
    """
    root = Path(root)
    wanted = list(MVTEC_CATEGORIES) if categories is None else list(dict.fromkeys(categories))
    unknown = [c for c in wanted if c not in MVTEC_CATEGORIES]
    if unknown:
        raise DatasetError(f"MVTec AD category '{unknown[0]}' is unknown "
                           f"(expected one of {', '.join(MVTEC_CATEGORIES)})")
    missing = [c for c in wanted if count_mismatch(root / c, MVTEC_CATEGORIES[c]) is not None]
    if not missing:
        return []
    full = Archive(FULL_ARCHIVE.name, url or FULL_ARCHIVE.url, FULL_ARCHIVE.checksum, FULL_ARCHIVE.size)
    use_full = set(missing) == set(MVTEC_CATEGORIES) or (root / ".downloads" / full.name).is_file()
    archives = [full] if use_full else [MVTEC_CATEGORIES[c].archive for c in missing]
    for archive in archives:
        if not (root / ".downloads" / archive.name).is_file():
            require_online(archive.url, _manual_advice(root))
        install_archive(archive, root, keep_archive=keep_archive, progress=progress, extract_progress=extract_progress)
    for name in missing:
        problem = count_mismatch(root / name, MVTEC_CATEGORIES[name])
        if problem is not None:
            raise DatasetError(f"MVTec AD category folder '{root / name}' holds {problem} after extraction "
                               f"(expected the complete category)")
    return missing
