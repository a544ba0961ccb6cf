"""The paper's protocol as the CLI resolves it: image size and encoder per dataset (sec. 4.1), the
smoothing sigma stored per run and scaled with the image size, and `train --print-config`."""

import json

import pytest
import timm

from anovit.cli.main import main
from anovit.models import default_sigma
from anovit.training.config import TrainConfig, model_config


def _print_config(capsys, *args):
    assert main(["train", *args, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("dataset, category, size", [("mnist", "3", 224), ("cifar10", "0", 224),
                                                     ("mvtec", "bottle", 384)])
def test_paper_preset_resolves_size_and_encoder_from_the_dataset(capsys, tmp_path, monkeypatch, dataset, category, size):
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path))
    printed = _print_config(capsys, "--dataset", dataset, "--category", category, "--preset", "paper")
    model = printed["model"]
    assert (model["image_size"], model["encoder"], model["pretrained"]) == (size, f"vit_base_patch16_{size}", True)
    cfg = timm.models.get_pretrained_cfg(model["encoder"])  # timm's own record of the weights, not our literal
    assert cfg.input_size == (3, size, size)
    assert printed["training"]["sigma"] == pytest.approx(4 * size / 256) and "anomalib" in printed["sigma_source"]
    assert list(tmp_path.iterdir()) == []  # nothing was trained


def test_paper_preset_is_vit_base_16_as_the_paper_text_says():
    # sec. 4.2: "The patch size was set to 16, the embedding dimension was set to 768".
    name = model_config(TrainConfig(dataset="mvtec", category="bottle", preset="paper")).encoder
    arch = timm.create_model(name, pretrained=False)  # architecture only
    assert arch.patch_embed.patch_size == (16, 16) and arch.embed_dim == 768


def test_image_size_and_encoder_override_the_preset(capsys):
    printed = _print_config(capsys, "--dataset", "mnist", "--category", "3", "--preset", "paper", "--image-size", "128",
                            "--encoder", "deit_tiny_patch16_224", "--sigma", "3")
    assert (printed["model"]["image_size"], printed["model"]["encoder"]) == (128, "deit_tiny_patch16_224")
    assert printed["training"]["sigma"] == 3 and printed["sigma_source"] == "given (--sigma)"
    cae = _print_config(capsys, "--model", "cae", "--dataset", "synthetic", "--category", "washer", "--encoder",
                        "vit_small_patch16_224")
    assert cae["model"] == {"model_type": "cae", "image_size": 128, "in_channels": 3, "latent_dim": 500, "tile_size": None}


def test_tile_size_overrides_the_preset_and_a_tile_larger_than_the_image_is_refused(capsys):
    assert _print_config(capsys, "--dataset", "synthetic", "--tile-size", "64")["model"]["tile_size"] == 64
    untiled = _print_config(capsys, "--dataset", "synthetic", "--image-size", "256", "--tile-size", "256")["model"]
    assert (untiled["image_size"], untiled["tile_size"]) == (256, 256)  # one tile: reconstructed whole
    assert main(["train", "--dataset", "synthetic", "--image-size", "128", "--tile-size", "192", "--print-config"]) != 0
    assert "field 'tile_size'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [(["--image-size", "100"], "multiple of 16"),
                                           (["--encoder", "resnet50"], "timm ViT or DeiT model name"),
                                           (["--tile-size", "100"], "multiple of 16")])
def test_bad_size_or_encoder_is_one_sentence(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args, "--print-config"])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_sigma_scales_with_the_image_size_and_is_stored():
    assert [default_sigma(s) for s in (128, 224, 256, 384)] == [2.0, 3.5, 4.0, 6.0]
    assert TrainConfig(preset="cpu-tiny").sigma == 2.0  # 128 px
    assert TrainConfig(preset="cpu-tiny", model_overrides={"image_size": 384}).sigma == 6.0
    assert TrainConfig().sigma == 8.0  # AnoViT cpu-default (384 px in tiles): chosen on the validation sets (issue 23)
    assert TrainConfig(model="cae").sigma == 4.0  # the l2-CAE's cpu-default (128 px)
    assert TrainConfig(sigma=5.0).sigma == 5.0


def test_a_category_is_never_inherited_from_another_dataset(capsys, tmp_path):
    # issue 12's check as written: no --category; MNIST's first class, not the synthetic default "weave"
    printed = _print_config(capsys, "--dataset", "mnist", "--preset", "paper")
    assert printed["training"]["category"] == "0"
    assert (printed["model"]["image_size"], printed["model"]["encoder"]) == (224, "vit_base_patch16_224")
    # a folder dataset's categories are its folders: nothing to default to, one sentence
    assert main(["train", "--dataset", "mvtec", "--data-root", str(tmp_path), "--print-config"]) == 2
    assert "--category is required with --dataset mvtec" in capsys.readouterr().err
    with pytest.raises(ValueError, match="field 'category' must be one of .*'9'.*got 'weave'"):
        TrainConfig(dataset="mnist", category="weave")
    with pytest.raises(ValueError, match=r"\(0: airplane, .*3: cat, .*\) for dataset 'cifar10'; got 'cat'"):
        TrainConfig(dataset="cifar10", category="cat")  # a class's name: the refusal names each index's class
    assert TrainConfig(dataset="mvtec", category="cookie").category == "cookie"  # custom MVTec-layout folder
