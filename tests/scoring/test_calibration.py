"""Calibrated anomaly maps and image-score pooling (issue 23 items 1-2): every variant against numpy, the
leave-one-out closed form against explicit refits, statistics fitted on normal validation images only,
runs without a stored fit score as before, the stored threshold refit only when asked, a run trained
with a calibration reloads it, and the ONNX export scores as PyTorch does with a calibration."""

import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import torch

from anovit.runs import checkpoint as ckpt
from anovit.scoring.calibration import (CALIBRATIONS, VARIANCE_FLOOR, Calibration, CalibrationError, affine,
                                fit_statistics, fitting_variant, leave_one_out)
from anovit.data import get_dataset, train_val_datasets
from anovit.scoring.detector import Detector
from anovit.evaluation.evaluate import evaluate_run
from anovit.scoring.run_scoring import run_detector
from anovit.scoring.anomaly_map import anomaly_maps, pooled_score
from anovit.runs.record import read_stored_threshold as read_threshold
from anovit.scoring.stored_fit import read_statistics
from anovit.training.trainer import train
from anovit.training.config import TrainConfig

LAM = 0.3


def numpy_calibrated(maps: np.ndarray, normal: np.ndarray, variant: str, lam: float = LAM) -> np.ndarray:
    """The calibrated maps by the formulas of anovit.scoring.calibration's docstring, in numpy (float64)."""
    mean, var = normal.mean(0), normal.var(0, ddof=1)
    var = np.maximum(var, VARIANCE_FLOOR * var.mean())
    scale = {"none": 1.0, "mean": 1.0, "standardise": np.sqrt(var),
             "shrunk": np.sqrt(lam * var.mean() + (1 - lam) * var)}[variant]
    return maps if variant == "none" else (maps - mean) / scale


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    normal = rng.gamma(2.0, 0.01, size=(7, 12, 10)) * np.linspace(0.2, 3.0, 10)  # spread varies by column
    normal[:, 0, 0] = 0.5  # a pixel that never varies: the variance floor acts there
    return normal


@pytest.mark.parametrize("variant", CALIBRATIONS)
def test_each_variant_equals_numpy(maps, variant):
    stats = fit_statistics(torch.from_numpy(maps))
    np.testing.assert_allclose(stats.mean.numpy(), maps.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.var.numpy(), maps.var(0, ddof=1), rtol=1e-5, atol=1e-12)
    probe = maps[:2] + 0.03
    got = Calibration(image=variant, pixel="none", shrinkage=LAM, statistics=stats).image_map(torch.from_numpy(probe))
    np.testing.assert_allclose(got.numpy(), numpy_calibrated(probe, maps, variant), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("variant", CALIBRATIONS)
def test_leave_one_out_equals_explicit_refits(maps, variant):
    x = torch.from_numpy(maps).float()
    loo = leave_one_out(x, variant, LAM)
    for i in range(len(maps)):
        others = np.delete(maps, i, axis=0)
        np.testing.assert_allclose(loo[i].numpy(), numpy_calibrated(maps[i], others, variant), rtol=1e-4, atol=1e-6)


def test_calibration_needs_enough_normal_images():
    with pytest.raises(CalibrationError, match="at least 3 normal validation images.*got 2.*--val-fraction"):
        leave_one_out(torch.rand(2, 4, 4), "standardise")
    with pytest.raises(CalibrationError, match="at least 2 normal images"):
        fit_statistics(torch.rand(1, 4, 4))
    assert fit_statistics(torch.rand(9, 4, 4), n_images=4).n_images == 4  # the first n: how many are needed
    with pytest.raises(CalibrationError, match="no statistics yet"):
        Calibration(pixel="mean").pixel_map(torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match="calibration shrinkage"):
        Calibration(shrinkage=1.5)
    assert affine("none", torch.zeros(2, 2), torch.ones(2, 2)) is None


@pytest.mark.parametrize("top_percent", [1.0, 10.0, 33.3, 100.0])
def test_pooling_equals_numpy(maps, top_percent):
    x = torch.from_numpy(maps).float()
    flat = np.sort(maps.reshape(len(maps), -1), axis=1)[:, ::-1]
    k = max(1, int(np.ceil(flat.shape[1] * top_percent / 100 - 1e-9)))
    np.testing.assert_allclose(pooled_score(x, "topk", top_percent).numpy(), flat[:, :k].mean(1), rtol=1e-5)
    np.testing.assert_allclose(pooled_score(x, "max").numpy(), maps.reshape(len(maps), -1).max(1), rtol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        pooled_score(x, "mean")


# ---- runs -------------------------------------------------------------------------------------------

CALIBRATED = dict(image_calibration="standardise", pixel_calibration="mean", calibration_shrinkage=0.25,
                  pooling="topk", pooling_top_percent=2.0)


@pytest.fixture(scope="module")
def calibrated_run(synthetic_root, tmp_path_factory):
    """A one-epoch l2-CAE on synthetic weave trained with a calibration and top-k pooling, then evaluated
    (which fits and stores the calibration and threshold)."""
    run = tmp_path_factory.mktemp("calibrated") / "run"
    config = TrainConfig(dataset="synthetic", category="weave", data_root=str(synthetic_root), model="cae", epochs=1,
                         batch_size=4, images_per_epoch=8, val_fraction=0.25, bf16=False, device="cpu", **CALIBRATED)
    train(config, run)
    lines = []
    result = evaluate_run(run, device="cpu", notify=lines.append)
    assert len(lines) == 1 and "no stored fit (threshold.json, calibration.safetensors)" in lines[0] and "stored in" in lines[0]
    assert (result.image_calibration, result.pixel_calibration, result.pooling) == ("standardise", "mean", "topk")
    return run, config


def _raw_maps(detector, images):
    return detector.raw_maps(images)[1].cpu()


def test_statistics_come_from_the_normal_validation_images_only(calibrated_run, synthetic_root):
    run, config = calibrated_run
    detector = Detector.from_run(run, device="cpu")
    stats = detector.calibration.statistics
    val = train_val_datasets("synthetic", category="weave", image_size=128, root=synthetic_root, val_fraction=0.25)[1]
    val_maps = _raw_maps(detector, torch.stack([val[i]["image"] for i in range(len(val))]))
    test = get_dataset("synthetic", "test", category="weave", image_size=128, root=synthetic_root)
    anomalous = [i for i in range(len(test)) if test[i]["label"] == 1][:4]
    leaked = torch.cat([val_maps, _raw_maps(detector, torch.stack([test[i]["image"] for i in anomalous]))])
    assert stats.n_images == len(val) == 3
    torch.testing.assert_close(stats.mean, val_maps.mean(0), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(stats.var, val_maps.double().var(0).float(), rtol=1e-4, atol=1e-10)
    assert not torch.allclose(stats.mean, leaked.mean(0), rtol=1e-3)  # a fit that saw the test images differs
    record = read_threshold(run)
    assert record.n_images == 3 and all(p.startswith("weave/train/good/") for p in record.images)
    assert not any("test" in p for p in record.images)
    settings = record.settings
    assert settings["bf16"] == detector.bf16 and settings["image_calibration"] == "standardise" and settings["pooling"] == "topk"
    # the stored threshold is the leave-one-out rule on exactly those images
    loo = pooled_score(leave_one_out(val_maps, "standardise", 0.25), "topk", 2.0)
    assert record.value == pytest.approx(float(loo.max()), rel=1e-5) and record.value > float(loo.max())


def test_a_calibrated_run_reloads_its_calibration_and_scores_the_same(calibrated_run, synthetic_root):
    run, config = calibrated_run
    assert {k: json.loads((run / ckpt.TRAINING).read_text())[k] for k in CALIBRATED} == CALIBRATED
    test = get_dataset("synthetic", "test", category="weave", image_size=128, root=synthetic_root)
    images = torch.stack([test[i]["image"] for i in (0, 5, 30)])
    reloaded = Detector.from_run(run, device="cpu")
    assert reloaded.stored_differs_ == [] and reloaded.threshold == read_threshold(run).value
    stats, _ = read_statistics(run)
    fresh = Detector(ckpt.load_model(run), sigma=config.sigma, bf16=reloaded.bf16, score_function=config.score,
                     calibration=Calibration("standardise", "mean", 0.25, stats), pooling="topk", top_percent=2.0)
    for a, b in zip(reloaded.outputs(images), fresh.outputs(images)):
        torch.testing.assert_close(a, b)
    raw = _raw_maps(reloaded, images)
    torch.testing.assert_close(reloaded.score_maps(images), raw - stats.mean)  # the pixel map: "mean"
    std = torch.maximum(stats.var, VARIANCE_FLOOR * stats.var.mean()).sqrt()
    torch.testing.assert_close(reloaded.score(images), pooled_score((raw - stats.mean) / std, "topk", 2.0))


def test_the_stored_threshold_is_refit_only_when_asked(calibrated_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(calibrated_run[0], run)
    before = (run / ckpt.THRESHOLD).read_text(), (run / ckpt.CALIBRATION).read_bytes()
    lines = []
    evaluate_run(run, device="cpu", notify=lines.append)  # stored fit matches: used, nothing said or written
    assert lines == [] and ((run / ckpt.THRESHOLD).read_text(), (run / ckpt.CALIBRATION).read_bytes()) == before
    detector = run_detector(run, sigma=1.0, device="cpu", notify=lines.append)  # another sigma: in memory, said
    assert len(lines) == 1 and "sigma" in lines[0] and "not stored" in lines[0]
    assert detector.threshold != json.loads(before[0])["value"] and (run / ckpt.THRESHOLD).read_text() == before[0]
    evaluate_run(run, device="cpu", pooling="max", record=True, notify=lines.append)  # an override never stores
    assert (run / ckpt.THRESHOLD).read_text() == before[0]
    record = json.loads(before[0])
    record["created_at"] = "2000-01-01T00:00:00+00:00"
    ckpt.write_json(run / ckpt.THRESHOLD, record)
    evaluate_run(run, device="cpu", refit_threshold=True, notify=lines.append)
    assert "--refit-threshold" in lines[-1] and read_threshold(run).created_at != record["created_at"]


def test_runs_without_a_stored_fit_score_as_before(trained_runs, synthetic_root, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(trained_runs / "weave-cae", run)
    for name in (ckpt.THRESHOLD, ckpt.CALIBRATION):
        (run / name).unlink(missing_ok=True)
    training = json.loads((run / ckpt.TRAINING).read_text())
    for key in CALIBRATED:  # a run recorded before these fields existed
        training.pop(key, None)
    ckpt.write_json(run / ckpt.TRAINING, training)
    detector = Detector.from_run(run, device="cpu", bf16=False)
    assert detector.calibration == Calibration() and detector.pooling == "max" and detector.threshold is None
    test = get_dataset("synthetic", "test", category="weave", image_size=128, root=synthetic_root)
    images = torch.stack([test[i]["image"] for i in (0, 40)])
    with torch.no_grad():
        maps, scores = anomaly_maps(images, detector.model(images), training["sigma"])  # eqs. (6), (7) directly
    assert torch.equal(detector.score_maps(images), maps) and torch.equal(detector.score(images), scores)
    assert not (run / ckpt.THRESHOLD).exists()  # loading writes nothing


def test_each_calibration_falls_back_to_what_the_images_can_fit():
    assert [fitting_variant("shrunk", n) for n in (0, 1, 2, 3)] == ["none", "none", "mean", "shrunk"]
    assert [fitting_variant("mean", n) for n in (1, 2)] == ["none", "mean"] and fitting_variant("none", 0) == "none"
    with pytest.raises(ValueError, match="calibration must be one of"):
        fitting_variant("zscore", 5)
    # statistics of two images (as stored by a small class's run and read back) apply minus the mean for a spread
    two = fit_statistics(torch.rand(2, 4, 4))
    for variant in ("standardise", "shrunk"):
        calibration = Calibration(variant, variant, statistics=two)
        offset, scale = calibration.transform(variant)
        assert torch.equal(offset, two.mean) and torch.equal(scale, torch.ones(4, 4))
    assert Calibration("shrunk").fitted("shrunk") == "shrunk"  # not fitted yet: as asked


def test_too_few_validation_images_score_with_what_they_can_fit_and_say_so(trained_runs, synthetic_root):
    """A small class still scores: two held-out normals cannot fit a leave-one-out spread ('standardise'), so
    the image score takes the map minus their mean; one normal image fits nothing: the raw map."""
    test = get_dataset("synthetic", "test", category="weave", image_size=128, root=synthetic_root)
    two = torch.stack([test[i]["image"] for i in (0, 1)])
    detector = Detector.from_run(trained_runs / "weave-cae", device="cpu", bf16=False,
                                 image_calibration="standardise", pooling="topk").fit_threshold(two)
    assert detector.calibration.statistics.n_images == 2 and detector.pooling == "topk"
    assert [detector.calibration.fitted(v) for v in ("standardise", "shrunk", "mean")] == ["mean"] * 3
    assert "2 normal validation image(s) are too few for the 'standardise' / 'none' calibration (at least 3): " \
           "scored with 'mean' / 'none'" in detector.calibration_note
    as_mean = Detector.from_run(trained_runs / "weave-cae", device="cpu", bf16=False, image_calibration="mean",
                                pooling="topk").fit_threshold(two)
    assert as_mean.calibration_note is None  # two images fit "mean" itself
    assert torch.equal(detector.score(two), as_mean.score(two)) and detector.threshold == as_mean.threshold
    one = Detector.from_run(trained_runs / "weave-cae", device="cpu", bf16=False, image_calibration="standardise",
                            pooling="topk").fit_threshold(two[:1])
    assert one.calibration == Calibration() and "scored with 'none' / 'none'" in one.calibration_note
    raw = Detector.from_run(trained_runs / "weave-cae", device="cpu", bf16=False, pooling="topk")
    assert torch.equal(one.score(two), raw.score(two))  # exactly the raw map's pooled score


@pytest.mark.parametrize("variants", [("standardise", "mean", "topk"), ("shrunk", "none", "max")])
def test_onnx_scores_equal_pytorch_with_a_calibration(calibrated_run, synthetic_root, tmp_path, variants):
    pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxscript, onnxruntime) is not installed")
    from anovit.deploy.export import export_onnx
    from anovit.deploy.onnx_scorer import OnnxScorer

    run = tmp_path / "run"
    shutil.copytree(calibrated_run[0], run)
    image, pixel, pooling = variants
    training = json.loads((run / ckpt.TRAINING).read_text())
    assert training["score"] == "l2-ssim"  # cpu-default's score function: the graph computes it too
    ckpt.write_json(run / ckpt.TRAINING, {**training, "image_calibration": image, "pixel_calibration": pixel,
                                          "pooling": pooling})
    out = export_onnx(run, tmp_path / "onnx")
    config = json.loads((out / ckpt.CONFIG).read_text())
    assert (config["image_calibration"], config["pixel_calibration"], config["pooling"]) == variants
    test = get_dataset("synthetic", "test", category="weave", image_size=128, root=synthetic_root)
    images = torch.stack([test[i]["image"] for i in (0, 7, 33)])
    onnx_maps, onnx_scores = OnnxScorer(out)(images)
    detector = run_detector(run, device="cpu")
    _, maps, scores = detector.outputs(images)
    torch.testing.assert_close(onnx_maps, maps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(onnx_scores, scores, rtol=1e-4, atol=1e-5)
    assert config["threshold"] == pytest.approx(detector.threshold)
    raw = detector.raw_maps(images)[1]
    assert not torch.allclose(onnx_scores, pooled_score(raw, pooling))  # the calibration is really in the graph


def test_presets_resolve_to_the_raw_map_and_its_max():
    for preset in ("cpu-tiny", "cpu-small", "cpu-tiny-masked", "paper"):
        config = asdict(TrainConfig(dataset="synthetic", model="anovit", preset=preset))
        assert {k: config[k] for k in ("image_calibration", "pixel_calibration", "pooling")} == \
            {"image_calibration": "none", "pixel_calibration": "none", "pooling": "max"}


def test_train_and_evaluate_flags_reach_the_config_and_the_evaluation(calibrated_run, tmp_path, capsys):
    from anovit.cli.main import _train_config, build_parser, main

    args = build_parser().parse_args(["train", "--image-calibration", "shrunk", "--pixel-calibration", "standardise",
                                      "--calibration-shrinkage", "0.7", "--pooling", "topk",
                                      "--pooling-top-percent", "5"])
    config = _train_config(args)
    assert (config.image_calibration, config.pixel_calibration, config.calibration_shrinkage, config.pooling,
            config.pooling_top_percent) == ("shrunk", "standardise", 0.7, "topk", 5.0)
    run = tmp_path / "run"
    shutil.copytree(calibrated_run[0], run)
    assert main(["evaluate", str(run), "--device", "cpu", "--refit-threshold", "--output", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any("--refit-threshold" in line and "stored in" in line for line in out)
    assert out[-3].startswith("95% bootstrap intervals") and out[-2].startswith("image AUROC")  # then "wrote ..."
    summary = json.loads((tmp_path / "e.json").read_text())
    assert summary["image_calibration"] == "standardise" and summary["threshold"] == read_threshold(run).value
