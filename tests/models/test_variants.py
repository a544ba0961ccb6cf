"""Beyond the paper: the SSIM-AE and masked-patch AnoViT train, record their loss and score function,
and every scoring path reads them back; runs recorded before these fields keep scoring with l2."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from anovit.runs import checkpoint as ckpt
from anovit.evaluation.benchmark import missing_presets, plan_cells
from anovit.cli.main import _train_config, build_parser
from anovit.scoring.detector import Detector
from anovit.utils.errors import AnovitError, ConfigError
from anovit.evaluation.evaluate import evaluate_run
from anovit.deploy.export import export_onnx
from anovit.models import MODEL_LABELS, MODELS, PRESETS, TRAINING_DEFAULTS
from anovit.runs.catalog import SWITCH_FIELDS, run_protocol, run_switches
from anovit.runs.record import read_run
from anovit.utils.runtime import autocast
from anovit.scoring.anomaly_map import anomaly_maps
from anovit.training.trainer import train
from anovit.training.config import TrainConfig, load_training


def _config(root: Path, model: str, preset: str = "cpu-tiny", **fields) -> TrainConfig:
    overrides = {"image_size": 64, **fields.pop("model_overrides", {})}
    return TrainConfig(dataset="synthetic", category="weave", data_root=str(root), model=model, preset=preset,
                       model_overrides=overrides, epochs=1, batch_size=4, max_train_images=8, **fields)


def test_the_registry_knows_the_ssim_ae_and_the_masked_preset():
    assert set(MODELS) == set(PRESETS) == set(TRAINING_DEFAULTS) == set(MODEL_LABELS)
    assert MODEL_LABELS["ssim-cae"] == "SSIM-AE"
    ssim = TRAINING_DEFAULTS["ssim-cae"]["cpu-tiny"]
    assert (ssim.loss, ssim.score) == ("ssim", "ssim")
    assert (ssim.lr, ssim.epochs) == (TRAINING_DEFAULTS["cae"]["cpu-tiny"].lr, TRAINING_DEFAULTS["cae"]["cpu-tiny"].epochs)
    assert PRESETS["anovit"]["cpu-tiny-masked"]["mask_ratio"] > 0
    assert all(d.loss == "l2" for d in TRAINING_DEFAULTS["anovit"].values())
    assert all(d.score == "l2" for p, d in TRAINING_DEFAULTS["anovit"].items() if p not in ("cpu-tiny-masked", "cpu-default"))
    assert TRAINING_DEFAULTS["anovit"]["cpu-default"].score == TRAINING_DEFAULTS["cae"]["cpu-default"].score == "l2-ssim"
    with pytest.raises(ConfigError, match="preset"):
        TrainConfig(model="cae", preset="cpu-tiny-masked")
    with pytest.raises(ConfigError, match="field 'score'"):
        TrainConfig(score="mse")


def test_the_cli_builds_masked_and_ssim_configs():
    args = build_parser().parse_args(["train", "--model", "anovit", "--preset", "cpu-tiny-masked"])
    config = _train_config(args)
    assert config.score == TRAINING_DEFAULTS["anovit"]["cpu-tiny-masked"].score
    args = build_parser().parse_args(["train", "--mask-ratio", "0.5", "--score", "ssim", "--loss", "ssim"])
    config = _train_config(args)
    assert (config.model_overrides["mask_ratio"], config.score, config.loss) == (0.5, "ssim", "ssim")
    assert _train_config(build_parser().parse_args(["train", "--model", "ssim-cae"])).loss == "ssim"


def test_benchmark_skips_the_presets_a_model_lacks():
    cells = plan_cells("synthetic", ["weave"], ["anovit", "cae"], ["cpu-tiny", "cpu-tiny-masked"], 2)
    assert sorted({(c.model, c.preset) for c in cells}) == [
        ("anovit", "cpu-tiny"), ("anovit", "cpu-tiny-masked"), ("cae", "cpu-tiny")]
    assert len(cells) == 6
    assert missing_presets(["anovit", "cae", "ssim-cae"], ["cpu-tiny-masked"]) == [
        ("cae", "cpu-tiny-masked"), ("ssim-cae", "cpu-tiny-masked")]
    with pytest.raises(AnovitError, match="no preset 'huge'"):
        plan_cells("synthetic", ["weave"], ["cae"], ["cpu-tiny", "huge"], 1)


def test_ssim_ae_trains_with_the_ssim_loss_and_scores_with_ssim(synthetic_root, tmp_path):
    run = train(_config(synthetic_root, "ssim-cae"), tmp_path / "ssim").run_dir
    assert ckpt.read_json(run / ckpt.CONFIG)["model_type"] == "ssim-cae"
    saved = ckpt.read_json(run / ckpt.TRAINING)
    assert (saved["loss"], saved["score"]) == ("ssim", "ssim")
    assert 0 < json.loads((run / ckpt.METRICS).read_text())["training"]["history"][0]["train_loss"] < 2
    detector = Detector.from_run(run, device="cpu")
    assert type(detector.model).__name__ == "SSIMCAE" and detector.score_function == "ssim"
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        with autocast(detector.device, detector.bf16):  # the precision the detector chose for the run
            recon = detector.model(images).float()
        expected = anomaly_maps(images, recon, detector.sigma, "ssim")
    assert torch.allclose(detector.score_maps(images), expected[0])
    if importlib.util.find_spec("onnxruntime") is not None:  # the graph computes the run's score function too
        from anovit.deploy.onnx_scorer import OnnxScorer

        export_onnx(run)
        onnx_maps, onnx_scores = OnnxScorer(run)(images)
        _, maps, scores = Detector.from_run(run, device="cpu", bf16=False).outputs(images)
        torch.testing.assert_close(onnx_maps, maps, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(onnx_scores, scores, rtol=1e-4, atol=1e-5)
    result = evaluate_run(run, device="cpu", max_images=6)
    assert ckpt.read_metrics(run)["test"]["score"] == "ssim" and result.n_images == 6


def test_masked_anovit_trains_and_scores_with_its_run_score(synthetic_root, tmp_path):
    config = _config(synthetic_root, "anovit", "cpu-tiny-masked", model_overrides={"decoder_channels": [16] * 6},
                     score="msgms")
    run = train(config, tmp_path / "masked").run_dir
    assert ckpt.read_json(run / ckpt.CONFIG)["mask_ratio"] == PRESETS["anovit"]["cpu-tiny-masked"]["mask_ratio"]
    detector = Detector.from_run(run, device="cpu")
    assert detector.score_function == read_run(run).score == load_training(run).score
    assert detector.model.test_masks.sum(0).eq(1).all()
    switches = run_switches(read_run(run))
    assert list(switches) == list(SWITCH_FIELDS)
    assert (switches["model"], switches["preset"], switches["mask_ratio"], switches["score"], switches["loss"]) == (
        "anovit", "cpu-tiny-masked", PRESETS["anovit"]["cpu-tiny-masked"]["mask_ratio"], config.score, "l2")
    assert (switches["encoder"], switches["pretrained"], switches["decoder"]) == ("vit_tiny_patch16_224", False, "stable")
    assert (switches["sigma"], switches["epochs"], switches["lr"]) == (config.sigma, 1, config.lr)
    assert run_protocol(run)["mask_ratio"] == switches["mask_ratio"] and run_protocol(run)["score"] is None  # not evaluated


def test_a_run_recorded_before_loss_and_score_scores_with_l2(trained_runs, tmp_path):
    import shutil

    run = Path(shutil.copytree(trained_runs / "weave-cae", tmp_path / "old"))
    training = ckpt.read_json(run / ckpt.TRAINING)
    for key in ("loss", "score"):
        training.pop(key, None)
    ckpt.write_json(run / ckpt.TRAINING, training)
    assert read_run(run).score == "l2" and load_training(run).score == "l2" and load_training(run).loss == "l2"
    assert Detector.from_run(run, device="cpu").score_function == "l2"
    switches = run_switches(read_run(run))
    assert (switches["model"], switches["loss"], switches["score"], switches["mask_ratio"]) == ("cae", "l2", "l2", None)
    config = ckpt.read_json(run / ckpt.CONFIG)
    assert "mask_ratio" not in config  # an l2-CAE has none; AnoViT's old config.json neither, and loads as 0


def test_an_anovit_run_without_mask_ratio_loads_and_scores_as_before(trained_runs, tmp_path):
    import shutil

    run = Path(shutil.copytree(trained_runs / "weave-anovit", tmp_path / "old-anovit"))
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    before = Detector.from_run(run, device="cpu", bf16=False).score(images)
    config = ckpt.read_json(run / ckpt.CONFIG)
    assert config.pop("mask_ratio") == 0
    ckpt.write_json(run / ckpt.CONFIG, config)
    detector = Detector.from_run(run, device="cpu", bf16=False)
    assert detector.model.config.mask_ratio == 0 and torch.equal(detector.score(images), before)
    assert run_switches(read_run(run))["mask_ratio"] == 0.0 and run_protocol(run)["mask_ratio"] == 0.0
