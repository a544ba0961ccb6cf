"""One model for every class (the unified protocol, issue 26): balanced sampling, per-class fits and
evaluation from one model, the CLI's per-class lines and mean, a link folder as the multi-class root, and
per-class runs left as they were."""

import json
import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import ConcatDataset, Subset, TensorDataset

from anovit.cli.main import main
from anovit.data import ALL_CLASSES, train_val_datasets, unified_class_list
from anovit.data.unified import class_of_items, class_weights, link_classes
from anovit.evaluation.evaluate import evaluate_run
from anovit.evaluation.unified import evaluate_unified_run
from anovit.runs import checkpoint as ckpt
from anovit.runs.catalog import class_dir
from anovit.runs.record import read_training_record
from anovit.training.config import TrainConfig, load_training
from anovit.training.distributed import SINGLE
from anovit.training.trainer import train
from anovit.utils.errors import CheckpointError, ConfigError, DatasetError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TINY = dict(model="cae", preset="cpu-tiny", epochs=1, batch_size=4, images_per_epoch=8, bf16=False, device="cpu")


@pytest.fixture(scope="module")
def two_class_root(synthetic_root, tmp_path_factory) -> Path:
    """An MVTec-layout root of links to two synthetic classes (12 training images each), as the README
    gathers the validation sets."""
    root = tmp_path_factory.mktemp("two-classes")
    return link_classes({c: synthetic_root / c for c in ("tiles", "weave")}, root)


@pytest.fixture(scope="module")
def checkpoints(two_class_root, tmp_path_factory) -> Path:
    """A checkpoints folder with a unified run ("unified", both classes) and a per-class run of "tiles" of the
    same model, preset and seed ("tiles"), trained with one tiny budget."""
    root = tmp_path_factory.mktemp("checkpoints")
    for name, category in (("unified", ALL_CLASSES), ("tiles", "tiles")):
        train(TrainConfig(dataset="mvtec", category=category, data_root=str(two_class_root), **TINY), root / name)
    return root


@pytest.fixture(scope="module")
def unified_run(checkpoints) -> Path:
    return checkpoints / "unified"


def _epoch_counts(sizes: list[int], epoch_images: int, seed: int) -> list[int]:
    """How often each class is drawn in one epoch of the trainer's loader over classes of ``sizes``."""
    parts, start = [], 0
    for n in sizes:
        parts.append(TensorDataset(torch.arange(start, start + n)))
        start += n
    union = ConcatDataset(parts)
    loader, _ = SINGLE.loaders(union, union, 16, torch.Generator().manual_seed(seed), epoch_images,
                               class_weights(union))
    classes = torch.tensor(class_of_items(union))
    drawn = torch.cat([batch[0] for batch in loader])
    return torch.bincount(classes[drawn], minlength=len(sizes)).tolist()


def test_a_class_of_6_images_gets_the_share_of_a_class_of_60():
    counts = [_epoch_counts([6, 60], 512, seed) for seed in range(8)]
    assert all(sum(c) == 512 for c in counts)  # the epoch size the trainer asked for (512 = 2 x 256)
    small = sum(c[0] for c in counts) / (8 * 512)
    # equal shares in expectation: 0.5 +- 4 binomial std over 4096 draws (unweighted it would be 6/66 = 0.09)
    assert abs(small - 0.5) < 4 * (0.25 / 4096) ** 0.5, small


def test_class_of_items_follows_a_subset_of_the_union():
    union = ConcatDataset([TensorDataset(torch.zeros(3)), TensorDataset(torch.zeros(2))])
    assert class_of_items(union) == [0, 0, 0, 1, 1]
    assert class_of_items(Subset(union, [4, 0])) == [1, 0]
    assert torch.allclose(class_weights(union), torch.tensor([1 / 3] * 3 + [1 / 2] * 2, dtype=torch.float64))


def test_the_union_holds_each_classes_own_hold_out(two_class_root):
    train_set, val_set = train_val_datasets("mvtec", category=ALL_CLASSES, image_size=32, root=two_class_root)
    own = [train_val_datasets("mvtec", category=c, image_size=32, root=two_class_root) for c in ("tiles", "weave")]
    assert len(train_set) == sum(len(t) for t, _ in own) and len(val_set) == sum(len(v) for _, v in own)
    assert [val_set[i]["path"] for i in range(len(val_set))] == [v[i]["path"] for _, v in own for i in range(len(v))]


def test_linking_again_keeps_the_links_and_refuses_another_folder(two_class_root, synthetic_root):
    assert link_classes({"tiles": synthetic_root / "tiles"}, two_class_root) == two_class_root
    with pytest.raises(DatasetError, match="already exists"):
        link_classes({"tiles": synthetic_root / "weave"}, two_class_root)
    with pytest.raises(DatasetError, match="does not exist"):
        link_classes({"x": synthetic_root / "nothing"}, two_class_root)


def test_a_class_folder_named_all_is_refused(two_class_root, tmp_path):
    for name in ("tiles", "all"):
        os.symlink(two_class_root / "tiles", tmp_path / name, target_is_directory=True)
    with pytest.raises(DatasetError, match="named 'all'.*rename that folder"):
        unified_class_list("mvtec", tmp_path)


def test_a_unified_run_draws_more_images_per_class_by_default_and_the_given_number_otherwise():
    from anovit.models import training_defaults
    from anovit.training.config import UNIFIED_BUDGET

    preset = training_defaults("anovit", "cpu-default").images_per_epoch
    unified = TrainConfig(dataset="synthetic", category=ALL_CLASSES, model="anovit")
    assert unified.images_per_epoch == round(UNIFIED_BUDGET * preset) > preset
    assert TrainConfig(dataset="synthetic", category="weave", model="anovit").images_per_epoch == preset
    assert TrainConfig(dataset="synthetic", category=ALL_CLASSES, images_per_epoch=8).images_per_epoch == 8
    assert TrainConfig(dataset="synthetic", category=ALL_CLASSES, preset="cpu-tiny").images_per_epoch is None


def test_one_class_sets_have_no_all():
    with pytest.raises(ConfigError, match="class folders"):
        TrainConfig(dataset="mnist", category=ALL_CLASSES)
    assert TrainConfig(dataset="synthetic", category=ALL_CLASSES).category == ALL_CLASSES


def test_the_run_records_its_classes_and_still_loads(unified_run):
    assert read_training_record(unified_run).classes == ("tiles", "weave")
    assert load_training(unified_run).category == ALL_CLASSES  # "classes" is recorded, not a config field
    history = ckpt.read_metrics(unified_run)["training"]["history"]
    assert len(history) == 1


def test_per_class_evaluation_uses_each_classes_own_fit(unified_run):
    result = evaluate_unified_run(unified_run, device="cpu")
    assert result.per_class["tiles"].threshold != result.per_class["weave"].threshold
    assert list(result.per_class) == ["tiles", "weave"]
    metrics = ckpt.read_metrics(unified_run)
    for category, evaluation in result.per_class.items():
        folder = class_dir(unified_run, category)
        threshold = json.loads((folder / ckpt.THRESHOLD).read_text())
        # the threshold was fitted on this class's held-out normal images only
        assert threshold["n_images"] == 2 and all(category in Path(p).parts for p in threshold["images"])
        assert evaluation.threshold == pytest.approx(threshold["value"])
        rows = (folder / ckpt.TEST_SCORES).read_text().splitlines()
        assert len(rows) == 1 + evaluation.n_images and all(f"/{category}/" in r for r in rows[1:])
        assert metrics["per_class"][category]["image_auroc"] == pytest.approx(evaluation.image_auroc)
    images = [e.image_auroc for e in result.per_class.values()]
    assert metrics["test"]["image_auroc"] == pytest.approx(sum(images) / 2)
    assert metrics["test"]["classes"] == ["tiles", "weave"]
    with pytest.raises(CheckpointError, match="category="):
        evaluate_run(unified_run)


def test_the_cli_prints_a_line_per_class_and_the_mean(two_class_root, tmp_path, capsys):
    args = ["train", "--dataset", "mvtec", "--data-root", str(two_class_root), "--category", "all", "--model", "cae",
            "--preset", "cpu-tiny", "--epochs", "1", "--batch-size", "4", "--images-per-epoch", "8", "--no-bf16",
            "--device", "cpu", "--output", str(tmp_path / "run")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    per_class = [line for line in lines if line.startswith(("tiles: image AUROC", "weave: image AUROC"))]
    mean = [line for line in lines if line.startswith("mean: image AUROC ")]
    assert len(per_class) == 2 and len(mean) == 1
    values = [float(line.split("image AUROC ")[1].split()[0]) for line in per_class]
    assert float(mean[0].split("image AUROC ")[1].split()[0]) == pytest.approx(sum(values) / 2, abs=1e-4)
    assert main(["evaluate", str(tmp_path / "run"), "--device", "cpu"]) == 0
    again = capsys.readouterr().out
    assert mean[0] in again  # the stored per-class fits score the same again


def test_a_per_class_run_keeps_its_single_line(two_class_root, tmp_path, capsys):
    args = ["train", "--dataset", "mvtec", "--data-root", str(two_class_root), "--category", "tiles", "--model", "cae",
            "--preset", "cpu-tiny", "--epochs", "1", "--batch-size", "4", "--images-per-epoch", "8", "--no-bf16",
            "--device", "cpu", "--output", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mean:" not in out and any(line.startswith("image AUROC ") for line in out.splitlines())
    assert read_training_record(tmp_path / "run").classes is None
    assert "classes" not in json.loads((tmp_path / "run" / ckpt.TRAINING).read_text())
    assert not (tmp_path / "run" / ckpt.CLASSES).exists()


def test_results_show_each_class_beside_its_per_class_run(checkpoints, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from anovit.report.unified import unified_comparison
    from anovit.runs.catalog import list_runs

    evaluate_unified_run(checkpoints / "unified", device="cpu")
    alone = evaluate_run(checkpoints / "tiles", device="cpu")
    table = unified_comparison(list_runs(checkpoints)).set_index("class")
    assert list(table.index) == ["tiles", "weave"]
    assert table.loc["tiles", "per-class run"] == "tiles" and table.loc["weave", "per-class run"] == ""
    assert table.loc["tiles", "image AUROC per-class"] == pytest.approx(alone.image_auroc)
    low, high = table.loc["tiles", ["image diff low", "image diff high"]]
    assert low <= table.loc["tiles", "image AUROC unified"] - alone.image_auroc <= high  # the paired interval
    assert table.loc[["weave"], ["image AUROC per-class", "image diff low"]].isna().all(axis=None)

    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(checkpoints))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/2_Results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label.startswith("Unified runs") for e in at.expander)
    shown = next(d.value for d in at.dataframe if "image AUROC unified" in d.value.columns)
    assert list(shown["class"]) == ["tiles", "weave"]
    published = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert set(published["method"]) == {"UniAD", "ViTAD", "Dinomaly"}

    at.switch_page("app_pages/3_Gallery.py").run()
    picker = at.selectbox(key="gallery-run")
    picker.select_index(next(i for i, label in enumerate(picker.options) if label.startswith("unified"))).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="gallery-class").options == ["tiles", "weave"]  # a unified run's classes to look at


def test_the_train_page_offers_all_classes_where_there_are_class_folders():
    from anovit.app.training import class_choices, class_label

    assert class_choices("mvtec", ["a", "b"]) == ["a", "b", ALL_CLASSES]
    assert class_choices("mvtec", ["a"]) == ["a"] and class_choices("mnist", ["0", "1"]) == ["0", "1"]
    assert class_choices("mvtec", ["a", "all"]) == ["a", "all"]  # a real class folder named "all" stays a class
    assert class_label(ALL_CLASSES) == "all classes, one model" and class_label("a") == "a"


@pytest.mark.skipif(not (SHARED / "validation").is_dir(), reason="../shared/data/validation is absent")
def test_the_validation_sets_gather_into_one_link_folder(tmp_path):
    sets = {"capsules": "validation/visa/capsules", "metal_plate": "validation/mpdd/metal_plate",
            "pcb": "validation/deeppcb/pcb", "cookie": "cookies/cookie"}
    link_classes({name: SHARED / where for name, where in sets.items()}, tmp_path)
    assert unified_class_list("mvtec", tmp_path) == sorted(sets)
    train_set, val_set = train_val_datasets("mvtec", category=ALL_CLASSES, image_size=32, root=tmp_path)
    assert len(class_weights(train_set)) == len(train_set) and len(train_set.datasets) == 4
