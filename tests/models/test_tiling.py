"""Tiled reconstruction (anovit.models.tiling): tile placement, seamless blending, random training tiles,
tiled AnoViT / l2-CAE models that train on tiles and score whole images, their ONNX export and config checks."""

import importlib.util
from pathlib import Path

import pytest
import torch

from anovit.deploy.export import export_onnx
from anovit.models import config_from_dict, config_to_dict
from anovit.models.anovit import AnoViT, AnoViTConfig
from anovit.models.cae import L2CAE, L2CAEConfig
from anovit.models.tiling import random_tiles, tile_around, tile_starts, tile_weights, tiled_reconstruction
from anovit.runs import checkpoint as ckpt
from anovit.scoring.detector import Detector
from anovit.training.config import TrainConfig
from anovit.training.trainer import train
from anovit.utils.errors import ConfigError


def test_tiles_start_every_half_tile_and_the_last_is_flush_with_the_edge():
    assert tile_starts(256, 128) == [0, 64, 128]
    assert tile_starts(384, 128) == [0, 64, 128, 192, 256]
    assert tile_starts(128, 128) == [0]
    starts = tile_starts(208, 128)  # 80 px to cover in steps of at most 64: three tiles, evenly spaced
    assert starts[0] == 0 and starts[-1] == 80 and len(starts) == 3
    with pytest.raises(ValueError, match="a tile of 128 px does not fit an image side of 100 px"):
        tile_starts(100, 128)


def test_tile_around_picks_the_tile_centred_nearest_to_the_pixel():
    assert tile_around(256, 128, 10, 250) == (0, 128)
    assert tile_around(256, 128, 128, 128) == (64, 64)


def test_blending_exact_tiles_gives_back_the_image_and_weights_fall_towards_the_tile_border():
    images = torch.rand(2, 3, 96, 80)
    torch.testing.assert_close(tiled_reconstruction(lambda t: t, images, 32), images)
    w = tile_weights(32)
    assert w.min() > 0 and w[16, 16] > w[0, 16] > w[0, 0]
    # each tile reconstructed as its own constant: every pixel is a weighted mean of the tiles covering it
    constant = tiled_reconstruction(lambda t: t.mean((1, 2, 3), keepdim=True).expand_as(t), images, 32)
    assert constant.shape == images.shape and constant.min() >= images.min() and constant.max() <= images.max()


def test_random_tiles_are_windows_of_their_image_and_a_generator_repeats_them():
    images = torch.arange(2 * 1 * 12 * 10, dtype=torch.float32).reshape(2, 1, 12, 10)
    tiles = random_tiles(images, 4, torch.Generator().manual_seed(3))
    assert tiles.shape == (2, 1, 4, 4)
    for image, tile in zip(images, tiles):
        top, left = divmod(int(tile[0, 0, 0] - image[0, 0, 0]), 10)
        torch.testing.assert_close(tile, image[:, top:top + 4, left:left + 4])
    torch.testing.assert_close(tiles, random_tiles(images, 4, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("model", [AnoViT(AnoViTConfig(image_size=64, tile_size=32)),
                                   L2CAE(L2CAEConfig(image_size=64, tile_size=32))], ids=["anovit", "cae"])
def test_a_tiled_model_takes_a_tile_or_a_whole_image(model):
    model.eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        whole, corner = model(images), model.forward_tile(images[..., :32, :32])
        assert model(images[..., :32, :32]).shape == (2, 3, 32, 32)  # a training crop: one tile
    assert whole.shape == images.shape
    # the top-left pixels lie in the first tile only
    torch.testing.assert_close(whole[..., :8, :8], corner[..., :8, :8], rtol=1e-4, atol=1e-5)


def test_tile_size_is_checked_and_configs_without_it_load_untiled():
    with pytest.raises(ConfigError, match="field 'tile_size' must be an integer .*<= 64"):
        AnoViTConfig(image_size=64, tile_size=128)
    with pytest.raises(ConfigError, match="field 'tile_size' must be a multiple of 16 px; got 40"):
        L2CAEConfig(image_size=64, tile_size=40)
    saved = config_to_dict(L2CAE(L2CAEConfig(image_size=64)))
    saved.pop("tile_size")  # a config.json written before tiling
    _, config = config_from_dict(saved)
    assert config.tile_size is None and config.network_size == 64


def test_a_tiled_run_trains_on_tiles_and_scores_whole_images(synthetic_root: Path, tmp_path: Path):
    config = TrainConfig(dataset="synthetic", category="weave", data_root=str(synthetic_root), model="cae",
                         preset="cpu-tiny", model_overrides={"image_size": 64, "tile_size": 32}, epochs=1,
                         batch_size=4, max_train_images=8)
    run = train(config, tmp_path / "tiled").run_dir
    assert ckpt.read_json(run / ckpt.CONFIG)["tile_size"] == 32
    detector = Detector.from_run(run, device="cpu")
    assert detector.image_size == 64 and detector.model.config.network_size == 32
    images = torch.rand(3, 3, 64, 64)
    maps, scores = detector.score_maps(images), detector.score(images)
    assert maps.shape == (3, 64, 64) and torch.isfinite(scores).all()
    if importlib.util.find_spec("onnxruntime") is not None:  # the tiling is in the exported graph
        from anovit.deploy.onnx_scorer import OnnxScorer

        export_onnx(run)
        onnx_maps, onnx_scores = OnnxScorer(run)(images)
        _, maps, scores = Detector.from_run(run, device="cpu", bf16=False).outputs(images)  # the graph is float32
        torch.testing.assert_close(onnx_maps, maps, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(onnx_scores, scores, rtol=1e-4, atol=1e-5)
