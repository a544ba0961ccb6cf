"""VisA, MVTec 3D-AD and MVTec LOCO AD read as distributed: tiny trees in their own layouts (VisA:
split CSV, JPG images, PNG masks; MVTec 3D-AD: rgb/ and gt/, xyz/ ignored, with and without
validation/; LOCO: several masks per image) train one epoch and evaluate through ``python -m anovit
train``; ``data list`` and ``data check`` know them, a folder in the wrong layout is named, and the
VisA download refuses offline in one sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anovit.cli.main import main
from anovit.data import check_tree, get_dataset, list_classes, train_val_datasets
from anovit.data import download as dl
from anovit.data.imageio import read_mask
from anovit.data.layouts import guess_layout
from anovit.data.visa import ARCHIVE, download_visa
from anovit.utils.errors import DatasetError, OfflineError

SIZE = 48  # px of the tiny images
RNG = np.random.default_rng(0)


def _image(path: Path, defect: bool = False) -> None:
    """A noisy grey image; a defect is a white square at rows/cols 10..20 (where the masks mark it)."""
    pixels = RNG.integers(90, 110, (SIZE, SIZE, 3), dtype=np.uint8)
    if defect:
        pixels[10:20, 10:20] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix.upper() == ".JPG" else "PNG")


def _mask(path: Path, on: int = 255) -> None:
    values = np.zeros((SIZE, SIZE), np.uint8)
    values[10:20, 10:20] = on
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)


def _visa(root: Path, category: str = "candle", n_train: int = 8, mask_values: tuple[int, ...] = (1, 255, 255)) -> Path:
    """A VisA tree of one class: ``n_train`` + 3 normal JPGs, 3 anomalous ones whose PNG masks mark the square
    with ``mask_values`` (one per mask)."""
    rows = ["object,split,label,image,mask"]
    for i in range(n_train + 3):
        name = f"{category}/Data/Images/Normal/{i:04d}.JPG"
        _image(root / name)
        rows.append(f"{category},{'train' if i < n_train else 'test'},normal,{name},")
    for i in range(3):
        name, mask = f"{category}/Data/Images/Anomaly/{i:03d}.JPG", f"{category}/Data/Masks/Anomaly/{i:03d}.png"
        _image(root / name, defect=True)
        _mask(root / mask, on=mask_values[i])
        rows.append(f"{category},test,anomaly,{name},{mask}")
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    (root / "split_csv" / "1cls.csv").write_text("\n".join(rows) + "\n")
    return root


def test_visa_class_index_masks_mark_every_nonzero_pixel(tmp_path: Path) -> None:
    """VisA's masks hold class indices (0 normal, 1, 2, 3, ... a defect): values below half of full scale mark
    the square too, where the per-file rule of the other layouts reads such a mask as empty."""
    root = _visa(tmp_path / "visa", mask_values=(3, 2, 127))
    test = get_dataset("visa", "test", category="candle", image_size=SIZE, root=root)
    expected = np.zeros((SIZE, SIZE), bool)
    expected[10:20, 10:20] = True
    masks = [test[i]["mask"][0].numpy() > 0 for i in range(len(test)) if test.labels[i]]
    assert len(masks) == 3 and all((m == expected).all() for m in masks)
    mask_file = root / "candle" / "Data" / "Masks" / "Anomaly" / "000.png"
    assert np.asarray(Image.open(mask_file)).max() == 3 and not read_mask(mask_file).any()  # the per-file rule
    (candle,) = check_tree(root).categories
    assert candle.masks_found == 3 and candle.masks_empty == 0


def _mvtec3d(root: Path, category: str, validation: bool) -> Path:
    folder = root / category
    splits = {"train": 8, **({"validation": 3} if validation else {})}
    for split, n in splits.items():
        for i in range(n):
            _image(folder / split / "good" / "rgb" / f"{i:03d}.png")
            _mask(folder / split / "good" / "gt" / f"{i:03d}.png", on=0)
            (folder / split / "good" / "xyz").mkdir(exist_ok=True)
            (folder / split / "good" / "xyz" / f"{i:03d}.tiff").write_bytes(b"not read")
    for defect in ("good", "crack"):
        for i in range(3):
            _image(folder / "test" / defect / "rgb" / f"{i:03d}.png", defect=defect != "good")
            _mask(folder / "test" / defect / "gt" / f"{i:03d}.png", on=0 if defect == "good" else 255)
    return root


def _train(capsys, dataset: str, root: Path, category: str, run: Path) -> tuple[float, float]:
    code = main(["train", "--dataset", dataset, "--data-root", str(root), "--category", category, "--model", "cae",
                 "--preset", "cpu-tiny", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-bf16",
                 "--output", str(run)])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(l for l in out.splitlines() if l.startswith("image AUROC"))
    fields = line.split()
    return float(fields[2]), float(fields[5])  # "image AUROC x  pixel AUROC y  AUPRO z ..."


def test_visa_layout_splits_masks_and_trains(tmp_path: Path, capsys) -> None:
    root = _visa(tmp_path / "visa")
    assert list_classes("visa", root) == ["candle"] and guess_layout(root) == "visa"
    test = get_dataset("visa", "test", category="candle", image_size=32, root=root)
    assert (len(test), sum(test.labels), test.has_masks) == (6, 3, True)
    masks = [test[i]["mask"] for i in range(len(test)) if test.labels[i]]
    assert all(m.sum() > 0 for m in masks)  # the 0/1 mask and the 0/255 masks both mark the square
    train_set, val_set = train_val_datasets("visa", category="candle", image_size=32, root=root, val_fraction=0.25)
    assert (len(train_set), len(val_set)) == (6, 2)  # 25% of the 8 train normals validate
    report = check_tree(root)
    (candle,) = report.categories
    assert not report.errors and candle.layout == "visa" and candle.train == 8
    assert candle.test == {"good": 3, "anomaly": 3} and candle.masks_found == 3
    image_auroc, pixel_auroc = _train(capsys, "visa", root, "candle", tmp_path / "run")
    assert 0.0 <= image_auroc <= 1.0 and 0.0 <= pixel_auroc <= 1.0


def test_visa_problems_name_the_file(tmp_path: Path) -> None:
    root = _visa(tmp_path / "visa")
    (root / "candle" / "Data" / "Masks" / "Anomaly" / "001.png").unlink()
    with pytest.raises(DatasetError, match=r"mask missing for anomalous test image .*001\.JPG"):
        get_dataset("visa", "test", category="candle", image_size=32, root=root)
    (candle,) = check_tree(root).categories
    assert [p.path.name for p in candle.problems] == ["001.JPG"] and candle.masks_missing == 1
    (root / "split_csv" / "1cls.csv").write_text("object,split,image\n")
    with pytest.raises(DatasetError, match=r"1cls.csv' lacks the column\(s\) label, mask"):
        get_dataset("visa", "train", category="candle", image_size=32, root=root)


def test_mvtec3d_uses_its_own_validation_else_holds_out(tmp_path: Path, capsys, caplog) -> None:
    root = _mvtec3d(_mvtec3d(tmp_path / "m3d", "bagel", validation=True), "foam", validation=False)
    assert list_classes("mvtec3d", root) == ["bagel", "foam"] and guess_layout(root) == "mvtec3d"
    train_set, val_set = train_val_datasets("mvtec3d", category="bagel", image_size=32, root=root)
    assert (len(train_set), len(val_set)) == (8, 3)
    assert all("/validation/good/rgb/" in val_set[i]["path"] for i in range(3))
    train_set, val_set = train_val_datasets("mvtec3d", category="foam", image_size=32, root=root, val_fraction=0.25)
    assert (len(train_set), len(val_set)) == (6, 2)
    test = get_dataset("mvtec3d", "test", category="foam", image_size=32, root=root)
    assert (len(test), sum(test.labels)) == (6, 3) and all("/rgb/" in s[0].as_posix() for s in test.samples)
    report = check_tree(root)
    bagel, foam = report.categories
    assert not report.errors and bagel.layout == foam.layout == "mvtec3d"
    assert (bagel.train, bagel.validation, bagel.masks_found) == (8, 3, 3) and foam.validation is None
    assert [p.path.name for p in report.warnings] == ["validation"]  # foam: the hold-out is said
    image_auroc, pixel_auroc = _train(capsys, "mvtec3d", root, "bagel", tmp_path / "run-bagel")
    assert 0.0 <= image_auroc <= 1.0 and 0.0 <= pixel_auroc <= 1.0
    caplog.clear()
    _train(capsys, "mvtec3d", root, "foam", tmp_path / "run-foam")
    assert "'" + str(root / "foam") + "' has no validation/good/rgb: part of train/good" in caplog.text


def test_wrong_layout_names_the_layout_the_folder_has(tmp_path: Path, capsys) -> None:
    visa = _visa(tmp_path / "visa")
    m3d = _mvtec3d(tmp_path / "m3d", "bagel", validation=False)
    with pytest.raises(DatasetError, match=r"looks like VisA data, not MVTec AD \(use --dataset visa"):
        train_val_datasets("mvtec", category="candle", image_size=32, root=visa)
    with pytest.raises(DatasetError, match=r"looks like MVTec 3D-AD data, not MVTec AD \(use --dataset mvtec3d"):
        train_val_datasets("mvtec", category="bagel", image_size=32, root=m3d)
    with pytest.raises(DatasetError, match=r"split_csv/1cls.csv' is missing.*looks like MVTec 3D-AD data"):
        get_dataset("visa", "train", category="bagel", image_size=32, root=m3d)
    code = main(["train", "--dataset", "mvtec", "--data-root", str(m3d), "--category", "bagel", "--model", "cae",
                 "--output", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "use --dataset mvtec3d" in err


def test_visa_boards_are_not_flipped() -> None:
    from anovit.data import default_augment

    assert (default_augment("visa", "pcb2").hflip, default_augment("visa", "pcb2").vflip) == (False, False)
    assert (default_augment("visa", "candle").hflip, default_augment("visa", "candle").vflip) == (True, True)


def test_data_list_shows_the_new_datasets(capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "visa: VisA" in out and "CC BY 4.0" in out and "split_csv/1cls.csv" in out
    assert "mvtec3d: MVTec 3D-AD" in out and "bagel, cable_gland, carrot" in out
    assert "mvtec-loco: MVTec LOCO AD" in out and "breakfast_box, juice_bottle" in out
    assert main(["data", "list", "visa"]) == 0
    listed = capsys.readouterr().out
    assert "pipe_fryum" in listed and "pcb1                      hflip off  vflip off  a mirrored board" in listed


def test_visa_download_refuses_offline_in_one_sentence(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(dl, "reachable", lambda url, timeout=3.0: False)
    with pytest.raises(OfflineError) as info:
        download_visa(tmp_path / "visa")
    message = str(info.value)
    assert "\n" not in message and "amazon-visual-anomaly.s3.us-west-2.amazonaws.com" in message
    assert ARCHIVE.name in message and "--data-root" in message and not (tmp_path / "visa" / "candle").exists()
    assert main(["data", "download", "visa", "--root", str(tmp_path / "visa")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _loco(root: Path, category: str = "pushpins") -> Path:
    folder = root / category
    for split, n in (("train", 6), ("validation", 2)):
        for i in range(n):
            _image(folder / split / "good" / f"{i:03d}.png")
    for defect in ("good", "logical_anomalies", "structural_anomalies"):
        for i in range(2):
            _image(folder / "test" / defect / f"{i:03d}.png", defect=defect != "good")
            if defect != "good":
                _mask(folder / "ground_truth" / defect / f"{i:03d}" / "000.png")
    second = np.zeros((SIZE, SIZE), np.uint8)
    second[30:40, 30:40] = 255  # a second defect of the same image, in its own mask file
    Image.fromarray(second).save(folder / "ground_truth" / "logical_anomalies" / "000" / "001.png")
    return root


def test_mvtec_loco_unites_the_masks_of_an_image_and_trains(tmp_path: Path, capsys) -> None:
    root = _loco(tmp_path / "loco")
    assert list_classes("mvtec-loco", root) == ["pushpins"] and guess_layout(root) == "mvtec-loco"
    test = get_dataset("mvtec-loco", "test", category="pushpins", image_size=SIZE, root=root)
    assert (len(test), sum(test.labels)) == (6, 4)
    first = next(i for i, s in enumerate(test.samples) if s[1] == "logical_anomalies" and s[0].stem == "000")
    mask = test[first]["mask"][0]
    assert mask[10:20, 10:20].all() and mask[30:40, 30:40].all() and mask.sum() == 200  # the union of both files
    train_set, val_set = train_val_datasets("mvtec-loco", category="pushpins", image_size=32, root=root)
    assert (len(train_set), len(val_set)) == (6, 2)
    (pushpins,) = check_tree(root).categories
    assert pushpins.layout == "mvtec-loco" and not pushpins.problems and pushpins.masks_found == 5
    with pytest.raises(DatasetError, match=r"looks like MVTec LOCO AD data, not MVTec AD \(use --dataset mvtec-loco"):
        train_val_datasets("mvtec", category="pushpins", image_size=32, root=root)
    image_auroc, pixel_auroc = _train(capsys, "mvtec-loco", root, "pushpins", tmp_path / "run")
    assert 0.0 <= image_auroc <= 1.0 and 0.0 <= pixel_auroc <= 1.0
