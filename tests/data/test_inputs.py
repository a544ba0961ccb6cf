"""Awkward real-world inputs (issue 10): 0/1 masks, EXIF orientation, dangling links, unreadable folders,
no ground_truth/, test splits without anomalies, huge images, misnamed masks, non-image uploads."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from sklearn.metrics import roc_auc_score

from anovit.cli.main import main
from anovit.data import MVTecLayoutDataset, check_tree, get_dataset, train_val_datasets
from anovit.data.check_report import ERROR, WARNING, format_report
from anovit.data.imageio import read_mask, read_rgb
from anovit.utils.errors import DatasetError
from anovit.evaluation.evaluate import evaluate
from anovit.scoring.anomaly_map import anomaly_maps

SIZE = 32


class Blank(nn.Module):
    """Reconstructs every image as black: the anomaly map is the image's own smoothed energy."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def _scene(rng: np.random.Generator, defect: tuple[int, int, int] | None, shape=(SIZE, SIZE)) -> np.ndarray:
    """A dim noisy grey image (H, W) with an optional bright square (top, left, side)."""
    image = rng.normal(70, 12, shape)
    if defect is not None:
        top, left, side = defect
        image[top:top + side, left:left + side] += 110
    return image.clip(0, 255).astype(np.uint8)


def _square(defect: tuple[int, int, int], shape=(SIZE, SIZE)) -> np.ndarray:
    top, left, side = defect
    mask = np.zeros(shape, np.uint8)
    mask[top:top + side, left:left + side] = 1
    return mask


def _layout(root: Path, n_good: int = 4, n_bad: int = 6, seed: int = 0) -> tuple[Path, list[tuple[int, int, int]]]:
    """An MVTec-layout category 'part' without masks yet: train/good, test/good, test/crack."""
    rng = np.random.default_rng(seed)
    folder = root / "part"
    for i in range(n_good):
        _save(Image.fromarray(_scene(rng, None)), folder / "train" / "good" / f"{i:03d}.png")
        _save(Image.fromarray(_scene(rng, None)), folder / "test" / "good" / f"{i:03d}.png")
    defects = [(int(rng.integers(2, 20)), int(rng.integers(2, 20)), int(rng.integers(5, 11))) for _ in range(n_bad)]
    for i, defect in enumerate(defects):
        _save(Image.fromarray(_scene(rng, defect)), folder / "test" / "crack" / f"{i:03d}.png")
    return folder, defects


def _pixel_reference(dataset) -> float:
    """sklearn's pixel AUROC of the Blank model's maps against the mask files read independently as `mask > 0`."""
    mask_files = [mask for _, _, mask in dataset.samples]
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    maps, _ = anomaly_maps(images, torch.zeros_like(images))
    truth = np.stack([np.zeros((SIZE, SIZE), bool) if f is None else np.asarray(Image.open(f)) > 0
                      for f in mask_files])
    return roc_auc_score(truth.ravel(), maps.numpy().ravel())


# ---------------------------------------------------------------- 1. masks stored as 0/1


def test_mask_rule_is_decided_per_file(tmp_path: Path) -> None:
    square = _square((4, 4, 8))
    cases = {
        "zero_one.png": Image.fromarray(square),  # 0/1, 8-bit grey
        "zero_255.png": Image.fromarray(square * 255),
        "zero_one_rgb.png": Image.fromarray(np.dstack([square] * 3)),
        "bilevel.png": Image.fromarray(square.astype(bool)),  # mode "1"
        "zero_one_16bit.png": Image.fromarray(square.astype(np.uint16)),
        "zero_65535.png": Image.fromarray(square.astype(np.uint16) * 65535),
        "jpeg_255.jpg": Image.fromarray(square * 255),  # compression noise around the square
    }
    for name, image in cases.items():
        assert (read_mask(_save(image, tmp_path / name)) == square.astype(bool)).all(), name
    faint = _save(Image.fromarray(square * 2), tmp_path / "faint.png")  # 0/2: neither rule marks anything
    assert not read_mask(faint).any()


def test_mixed_zero_one_and_zero_255_masks_give_sklearns_pixel_auroc(tmp_path: Path) -> None:
    folder, defects = _layout(tmp_path)
    for i, defect in enumerate(defects):
        scale = 1 if i % 2 else 255  # every other mask stored as 0/1
        _save(Image.fromarray(_square(defect) * scale), folder / "ground_truth" / "crack" / f"{i:03d}_mask.png")
    test = MVTecLayoutDataset(tmp_path, "part", "test", image_size=SIZE)
    result = evaluate(Blank(), test, device="cpu", bf16=False)
    reference = _pixel_reference(test)
    assert reference > 0.95  # the bright squares are easy: a wrong mask shows as a large drop
    assert result.pixel_auroc == pytest.approx(reference, abs=2e-4)
    assert result.unavailable == {}


def test_an_empty_mask_is_reported_by_check_and_at_training_start(tmp_path: Path, caplog) -> None:
    folder, defects = _layout(tmp_path)
    for i, defect in enumerate(defects):
        mask = np.zeros((SIZE, SIZE), np.uint8) if i == 2 else _square(defect) * 255
        _save(Image.fromarray(mask), folder / "ground_truth" / "crack" / f"{i:03d}_mask.png")
    empty = folder / "ground_truth" / "crack" / "002_mask.png"
    for decode in (True, False):  # the quick check decodes masks too
        (part,) = check_tree(folder, decode=decode).categories
        assert [(p.severity, p.path) for p in part.problems] == [(WARNING, empty)]
        assert "marks no defect pixel" in part.problems[0].message and part.masks_empty == 1
    with caplog.at_level("WARNING"):
        train_val_datasets("mvtec", category="part", image_size=SIZE, root=tmp_path)
    assert any(str(empty) in r.getMessage() and "no defect pixel" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- 2. EXIF orientation


def _tagged_jpeg(upright: np.ndarray, path: Path) -> np.ndarray:
    """Save `upright` (H, W) as a JPEG stored turned (EXIF Orientation 6); return the pixels as displayed.

    Orientation 6 means "turn the stored pixels 90 degrees clockwise to display them", so the stored
    pixels are the upright ones turned counter-clockwise. The displayed pixels are computed here with
    numpy from the decoded stored pixels, independently of Pillow's exif_transpose.
    """
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(Image.fromarray(np.rot90(upright, 1)), path, quality=95, exif=exif.tobytes())
    with Image.open(path) as im:
        stored = np.asarray(im.convert("L"))
    return np.rot90(stored, -1)


def test_exif_rotated_set_scores_as_its_upright_copy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    shape = (SIZE, SIZE - 8)  # not square, so a sideways read cannot pass
    tagged, upright = tmp_path / "tagged" / "part", tmp_path / "upright" / "part"
    files = [(f"train/good/{i}", None) for i in range(3)] + [(f"test/good/{i}", None) for i in range(2)]
    files += [(f"test/crack/{i}", (4 + 3 * i, 2 + i, 7)) for i in range(4)]
    for name, defect in files:
        shown = _tagged_jpeg(_scene(rng, defect, shape), tagged / f"{name}.jpg")
        assert (read_rgb(tagged / f"{name}.jpg")[..., 0] == shown).all()
        _save(Image.fromarray(shown), upright / f"{name}.png")
        if defect is not None:  # drawn on the image as displayed
            for folder in (tagged, upright):
                _save(Image.fromarray(_square(defect, shape) * 255),
                      folder / "ground_truth" / "crack" / f"{Path(name).name}_mask.png")
    aurocs = {}
    for folder in (tagged, upright):
        assert not check_tree(folder).all_problems(), folder
        test = MVTecLayoutDataset(folder.parent, "part", "test", image_size=SIZE)
        aurocs[folder.parent.name] = evaluate(Blank(), test, device="cpu", bf16=False).pixel_auroc
    assert aurocs["tagged"] is not None and aurocs["tagged"] > 0.9
    assert aurocs["tagged"] == aurocs["upright"]


def test_a_mask_drawn_on_the_stored_pixels_is_explained(tmp_path: Path) -> None:
    folder, defects = _layout(tmp_path, n_bad=1)
    image = folder / "test" / "crack" / "000.png"
    image.unlink()
    _tagged_jpeg(_scene(np.random.default_rng(0), None, (SIZE, SIZE - 8)), image.with_suffix(".jpg"))
    _save(Image.fromarray(np.zeros((SIZE, SIZE - 8), np.uint8).T.copy()), folder / "ground_truth" / "crack" /
          "000_mask.png")  # 32 wide, 24 high: the stored orientation
    (part,) = check_tree(folder).categories
    (problem,) = part.problems
    assert problem.severity == ERROR and "24x32 px as displayed" in problem.message
    assert "EXIF orientation 6" in problem.message


def test_the_inspect_upload_is_turned_upright_and_refuses_non_images() -> None:
    from anovit.app.inspection import UploadError, decode_upload

    upright = _scene(np.random.default_rng(2), (3, 3, 6), (SIZE, SIZE - 8))
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright, 1)).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    stored = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))
    rgb = decode_upload(buffer.getvalue(), "phone.jpg")
    assert rgb.shape == (SIZE, SIZE - 8, 3) and (rgb[..., 0] == np.rot90(stored, -1)).all()
    with pytest.raises(UploadError) as info:
        decode_upload(b"%PDF-1.7 not an image", "report.pdf")
    assert str(info.value) == ("cannot read image file 'report.pdf': not an image format Pillow recognises "
                               "(expected a valid image)")
    assert "<_io" not in str(info.value)


# ---------------------------------------------------------------- 4. dangling links and unreadable files


def test_dangling_links_are_errors_naming_the_link(tmp_path: Path, capsys) -> None:
    folder, defects = _layout(tmp_path)
    for i, defect in enumerate(defects):
        _save(Image.fromarray(_square(defect) * 255), folder / "ground_truth" / "crack" / f"{i:03d}_mask.png")
    train_link = folder / "train" / "good" / "zz.png"
    train_link.symlink_to(tmp_path / "gone.png")
    test_link = folder / "test" / "crack" / "zz.png"
    test_link.symlink_to(tmp_path / "moved" / "zz.png")
    _save(Image.fromarray(_square(defects[0]) * 255), folder / "ground_truth" / "crack" / "zz_mask.png")

    (part,) = check_tree(tmp_path).categories
    assert [(p.severity, p.path) for p in part.problems] == [(ERROR, train_link), (ERROR, test_link)]
    assert f"symbolic link to '{tmp_path / 'gone.png'}', which does not exist" in part.problems[0].message
    assert part.masks_orphaned == 0 and part.train == 5  # the link is listed, not skipped
    assert main(["data", "check", str(tmp_path)]) == 1
    assert "FAILED: 2 errors" in capsys.readouterr().out
    with pytest.raises(DatasetError, match=r"zz\.png': it is a symbolic link .* \(and 1 more"):
        train_val_datasets("mvtec", category="part", image_size=SIZE, root=tmp_path)
    train = get_dataset("mvtec", "train", category="part", image_size=SIZE, root=tmp_path)
    assert len(train) == 5
    with pytest.raises(DatasetError, match=r"cannot read file '.*train/good/zz\.png': it is a symbolic link"):
        train[4]


# ---------------------------------------------------------------- 15. unreadable folders


@pytest.fixture
def refuse(monkeypatch):
    """refuse(folder): listing or entering `folder` fails with EACCES, as for a folder without r/x permission."""
    blocked: list[Path] = []
    listdir, stat, access = Path.iterdir, Path.stat, os.access

    def denied(path: Path) -> bool:
        return any(path == b or b in path.parents for b in blocked)

    def iterdir(self: Path):
        if denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        return listdir(self)

    def guarded_stat(self: Path, **kwargs):
        if any(b in self.parents for b in blocked):
            raise PermissionError(13, "Permission denied", str(self))
        return stat(self, **kwargs)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(Path, "stat", guarded_stat)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not denied(Path(path)) and access(path, mode, **kw))
    return blocked.append


def test_unreadable_folders_are_one_sentence(tmp_path: Path, refuse, capsys) -> None:
    folder, _ = _layout(tmp_path / "tree")
    (tmp_path / "tree" / "other").mkdir()
    refuse(folder / "test" / "good")
    (_other, part) = check_tree(tmp_path / "tree").categories
    (problem,) = [p for p in part.problems if p.severity == ERROR]
    assert problem.message == (f"cannot read folder '{folder / 'test' / 'good'}': permission denied "
                               f"(expected a folder anovit can read)")

    refuse(folder)
    (_other, part) = check_tree(tmp_path / "tree").categories
    assert [p.message for p in part.problems] == [f"cannot read folder '{folder}': permission denied (expected a "
                                                  f"folder anovit can read)"]
    code = main(["train", "--dataset", "mvtec", "--data-root", str(tmp_path / "tree"), "--category", "part",
                 "--model", "cae", "--output", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines() == [f"error: cannot read folder '{folder}': permission denied "
                                              f"(expected a folder anovit can read)"]

    refuse(tmp_path / "tree")
    assert main(["data", "check", str(tmp_path / "tree")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: cannot read folder '{tmp_path / 'tree'}': permission "
                                                    f"denied (expected a folder anovit can read)"]


# ---------------------------------------------------------------- 9. no ground_truth/ at all


def test_layout_without_ground_truth_trains_on_image_labels(tmp_path: Path, capsys) -> None:
    from anovit.data.augment import AugmentConfig
    from anovit.cli.main import _print_eval
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    _layout(tmp_path, n_good=6)
    report = check_tree(tmp_path)
    (part,) = report.categories
    assert not report.errors and [p.path.name for p in report.warnings] == ["ground_truth"]
    assert not part.localization and "none (no ground_truth/: localization unavailable)" in format_report(report)
    for name in ("mvtec", "folder"):
        train_set, val_set = train_val_datasets(name, category="part", image_size=SIZE, root=tmp_path)
        assert len(train_set) + len(val_set) == 6
        test = get_dataset(name, "test", category="part", image_size=SIZE, root=tmp_path)
        assert (len(test), sum(test.labels), test.has_masks) == (12, 6, False)

    config = TrainConfig(dataset="mvtec", category="part", data_root=str(tmp_path), model="cae", preset="cpu-tiny", epochs=1,
                         batch_size=4, bf16=False, device="cpu", augment=AugmentConfig(affine=False))
    run = train(config, tmp_path / "run").run_dir
    for name in ("mvtec", "folder"):
        result = evaluate_run(run, dataset=name, device="cpu")
        assert result.image_auroc is not None and result.pixel_auroc is None and result.aupro is None
        assert result.unavailable == {"pixel": "the test split has no masks (image labels only: localization "
                                               "unavailable)"}
    _print_eval(result)
    assert "pixel metrics n/a: the test split has no masks" in capsys.readouterr().out


# ---------------------------------------------------------------- 14. a test split with only good images


def test_only_good_test_images_say_why(tmp_path: Path, capsys) -> None:
    from anovit.cli.main import _print_eval

    folder, _ = _layout(tmp_path, n_bad=0)
    (folder / "ground_truth").mkdir()  # masks exist in principle: the reason is the missing anomalies
    (part,) = check_tree(tmp_path).categories
    (problem,) = part.problems
    assert problem.severity == WARNING and "holds no anomalous test images" in problem.message
    result = evaluate(Blank(), MVTecLayoutDataset(tmp_path, "part", "test", image_size=SIZE), device="cpu", bf16=False)
    assert result.image_auroc is None and result.pixel_auroc is None
    assert result.unavailable == {"image": "the test split holds no anomalous images",
                                  "pixel": "the test split holds no anomalous images"}
    _print_eval(result)
    out = capsys.readouterr().out
    assert "image metrics n/a: the test split holds no anomalous images" in out


# ---------------------------------------------------------------- 16. huge images


def _blank_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG written by hand (Pillow takes seconds to encode 144 megapixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes(1 + (width + 7) // 8) * height, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_huge_images_are_named_and_the_largest_refused(tmp_path: Path, capsys) -> None:
    folder, _ = _layout(tmp_path, n_bad=0)
    big = _blank_png(folder / "train" / "good" / "scan.png", 12000, 12000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's anonymous DecompressionBombWarning must not escape
        (part,) = check_tree(tmp_path, decode=False).categories
    huge = [p for p in part.problems if p.path == big]
    assert [p.severity for p in huge] == [WARNING] and "12000x12000 px (144 megapixels)" in huge[0].message
    bomb = _blank_png(folder / "train" / "good" / "bomb.png", 14000, 14000)
    assert main(["data", "check", str(tmp_path), "--quick"]) == 1
    out = capsys.readouterr().out
    assert f"error: image file '{bomb}' has more than 179 megapixels, the most anovit reads" in out
    assert str(big) in out


# ---------------------------------------------------------------- 17. masks without the _mask suffix


def test_misnamed_masks_get_a_readable_hint(tmp_path: Path) -> None:
    folder, defects = _layout(tmp_path, n_bad=2)
    gt = folder / "ground_truth" / "crack"
    _save(Image.fromarray(_square(defects[0]) * 255), gt / "000.png")  # should be 000_mask.png
    _save(Image.fromarray(_square(defects[1]) * 255), gt / "001_mask.png")
    _save(Image.fromarray(_square(defects[1]) * 255), gt / "007.png")  # no image at all
    (part,) = check_tree(tmp_path).categories
    messages = {p.path.name: p.message for p in part.problems}
    assert messages["000.png"].endswith(f"has no mask (expected '{gt / '000_mask.png'}'; '000.png' there lacks the "
                                        f"'_mask' suffix)")
    assert messages["007.png"].endswith(f"has no image (expected masks named <image name>_mask, e.g. "
                                        f"'007_mask.png' for '{folder / 'test' / 'crack' / '007.png'}')")
    assert "named ''" not in " ".join(messages.values()) and len(messages) == 2
    with pytest.raises(DatasetError, match="'000.png' there lacks the '_mask' suffix"):
        MVTecLayoutDataset(tmp_path, "part", "test")
