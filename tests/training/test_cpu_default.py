"""The epoch-size rule (TrainConfig.images_per_epoch), the cpu-default preset chosen on the validation
sets (issue 23; benchmarks/validation_sets.py) and the older presets left exactly as they were."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from anovit.cli.main import _train_config, build_parser
from anovit.training.distributed import SINGLE
from anovit.models import PRESETS, TRAINING_DEFAULTS, TrainingDefaults
from anovit.training.trainer import train
from anovit.training.config import TrainConfig, model_config

ROOT = Path(__file__).resolve().parents[2]


def _order(loader) -> list[int]:
    return [i for (batch,) in loader for i in batch.tolist()]


def test_the_epoch_size_rule_repeats_a_small_split_and_bounds_a_large_one():
    small, large = TensorDataset(torch.arange(5)), TensorDataset(torch.arange(40))
    loader, _ = SINGLE.loaders(small, small, 4, torch.Generator().manual_seed(0), epoch_images=12)
    seen = _order(loader)
    assert len(seen) == 12 and Counter(seen) == Counter(list(range(5)) * 2) + Counter(seen[10:])
    assert len(set(seen[:5])) == 5 and len(set(seen[5:10])) == 5  # whole shuffled passes first
    loader, _ = SINGLE.loaders(large, large, 4, torch.Generator().manual_seed(0), epoch_images=12)
    first, second = _order(loader), _order(loader)
    assert len(first) == len(set(first)) == 12 and first != second  # a fresh random part each epoch


def test_without_the_rule_an_epoch_is_one_pass_in_the_same_order_as_before():
    data = TensorDataset(torch.arange(10))
    mine, _ = SINGLE.loaders(data, data, 4, torch.Generator().manual_seed(3))
    before = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(3))
    assert _order(mine) == _order(before) and len(_order(mine)) == 8


def test_a_run_draws_images_per_epoch_and_records_it(synthetic_root, tmp_path):
    steps = []
    config = TrainConfig(dataset="synthetic", category="tiles", data_root=str(synthetic_root), model="cae",
                         preset="cpu-tiny", epochs=1, batch_size=4, images_per_epoch=24, bf16=False, device="cpu",
                         model_overrides={"image_size": 32})
    train(config, tmp_path / "run", progress=lambda e: steps.append(e.get("steps")))
    assert steps[0] == 6  # 24 images from a 10-image split, 4 per step
    assert TrainConfig.from_dict(__import__("json").loads((tmp_path / "run" / "training.json").read_text())
                                 ).images_per_epoch == 24
    with pytest.raises(Exception, match="images_per_epoch"):
        TrainConfig(images_per_epoch=0)


def test_the_default_preset_is_cpu_default_for_the_cli_and_the_api():
    assert TrainConfig().preset == TrainConfig.default("preset") == "cpu-default"
    for model in ("anovit", "cae"):
        cli = _train_config(build_parser().parse_args(["train", "--dataset", "mvtec", "--data-root", "/d",
                                                       "--category", "bottle", "--model", model]))
        chosen = TRAINING_DEFAULTS[model]["cpu-default"]
        assert (cli.preset, cli.epochs, cli.lr, cli.images_per_epoch, cli.score) == (
            "cpu-default", chosen.epochs, chosen.lr, chosen.images_per_epoch, chosen.score)
        assert chosen.images_per_epoch is not None  # the epoch-size rule is part of the default recipe
        assert model_config(cli).image_size == PRESETS[model]["cpu-default"]["image_size"]



def test_the_default_scores_as_the_validation_study_chose_per_model():
    """AnoViT: the top 1 % of the map standardised with the spread shrunk halfway (stop 33, its 384 px runs);
    the l2-CAE: the top 5 % minus the mean (stop 31); both on the l2-ssim map with the raw map per pixel."""
    scoring = lambda c: (c.score, c.image_calibration, c.calibration_shrinkage, c.pooling, c.pooling_top_percent,
                         c.pixel_calibration)
    assert scoring(TrainConfig()) == ("l2-ssim", "shrunk", 0.5, "topk", 1.0, "none")
    assert scoring(TrainConfig(model="cae"))[:5] == ("l2-ssim", "mean", 0.5, "topk", 5.0)
    assert scoring(TrainConfig(preset="cpu-tiny"))[1:4] == ("none", 0.5, "max")  # the paper's eq. (7), unchanged


def test_anovit_cpu_default_reconstructs_384_px_from_128_px_tiles_and_one_tile_is_untiled():
    assert (model_config(TrainConfig()).image_size, model_config(TrainConfig()).tile_size) == (384, 128)
    assert model_config(TrainConfig(model="cae")).tile_size is None
    small = TrainConfig(model_overrides={"image_size": 128})  # an image no larger than the preset's tile: untiled
    assert (model_config(small).image_size, model_config(small).tile_size) == (128, None)
    assert model_config(TrainConfig(model_overrides={"image_size": 256})).tile_size == 128


def test_the_older_presets_are_exactly_as_they_were():
    assert {k: v for k, v in PRESETS["anovit"].items() if k != "cpu-default"} == {
        "cpu-tiny": dict(encoder="vit_tiny_patch16_224", image_size=128),
        "cpu-small": dict(encoder="vit_small_patch16_224", image_size=224),
        "paper": dict(encoder="vit_base_patch16_384", image_size=384, pretrained=True),
        "cpu-tiny-masked": dict(encoder="vit_tiny_patch16_224", image_size=128, mask_ratio=0.25),
    }
    assert {k: v for k, v in PRESETS["cae"].items() if k != "cpu-default"} == {
        "cpu-tiny": dict(image_size=128), "cpu-small": dict(image_size=224), "paper": dict(image_size=384)}
    assert {k: v for k, v in TRAINING_DEFAULTS["anovit"].items() if k != "cpu-default"} == {
        "cpu-tiny": TrainingDefaults(lr=1e-3, epochs=10), "cpu-small": TrainingDefaults(lr=1e-3, epochs=10),
        "paper": TrainingDefaults(lr=2e-4, epochs=10), "cpu-tiny-masked": TrainingDefaults(lr=1e-3, epochs=40)}
    for model, recipe in (("cae", TrainingDefaults(lr=2e-4, epochs=200)),
                          ("ssim-cae", TrainingDefaults(lr=2e-4, epochs=200, loss="ssim", score="ssim"))):
        assert {k: v for k, v in TRAINING_DEFAULTS[model].items() if k != "cpu-default"} == {
            p: recipe for p in ("cpu-tiny", "cpu-small", "paper")}
    assert TrainConfig(preset="cpu-tiny").images_per_epoch is None


def test_the_validation_benchmark_runs_in_smoke_mode(tmp_path):
    results = ROOT / "benchmarks" / "results" / "validation_sets.json"
    before = results.stat().st_mtime_ns if results.is_file() else None
    done = subprocess.run([sys.executable, "benchmarks/validation_sets.py", "--smoke", "--study"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "smoke" in done.stdout and "image AUROC" in done.stdout
    assert (results.stat().st_mtime_ns if results.is_file() else None) == before  # nothing written in the repo
