"""ONNX export and ``anovit score``: the exported graph's anomaly maps equal PyTorch's on the same
images within a stated tolerance, its config carries what scoring needs, and the score command
gives the same decisions through PyTorch and onnxruntime."""

import csv
import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxscript, onnxruntime) is not installed")

from anovit.runs import checkpoint as ckpt  # noqa: E402
from anovit.cli.main import main  # noqa: E402
from anovit.data import train_val_datasets  # noqa: E402
from anovit.data.imageio import read_rgb  # noqa: E402
from anovit.scoring.detector import Detector  # noqa: E402
from anovit.scoring.run_scoring import prepare  # noqa: E402
from anovit.deploy.onnx_scorer import OnnxScorer  # noqa: E402
from anovit.training.trainer import train  # noqa: E402
from anovit.training.config import TrainConfig


def score_batch(model, images, sigma):
    """(reconstruction, anomaly maps, anomaly scores) of the model in float32, as anovit score computes them."""
    return Detector(model, sigma=sigma, bf16=False).outputs(images)


# ONNX vs PyTorch, both float32 on the CPU: anomaly maps and scores agree to float32 rounding of a
# different operation order. Measured max |diff| ~5e-7 on maps of magnitude ~0.5.
RTOL, ATOL = 1e-4, 1e-6
SIGMA = 2.0  # not the default, so a test fails if the export ignored it


@pytest.fixture(scope="module")
def exported(synthetic_root, tmp_path_factory):
    """One 1-epoch run per model on synthetic 'tiles', exported with ``anovit export``."""
    runs = {}
    for model in ("anovit", "cae"):
        run = tmp_path_factory.mktemp("export") / model
        config = TrainConfig(dataset="synthetic", category="tiles", data_root=str(synthetic_root), model=model,
                             preset="cpu-tiny", epochs=1, batch_size=4, bf16=False, device="cpu")
        train(config, run)
        assert main(["export", str(run), "--format", "onnx", "--sigma", str(SIGMA)]) == 0
        runs[model] = run
    return runs

def _test_images(synthetic_root, n=5):
    files = sorted((synthetic_root / "tiles" / "test").rglob("*.png"))[:n]
    return files, torch.cat([prepare(read_rgb(f), 128) for f in files])


@pytest.mark.parametrize("model", ["anovit", "cae"])
def test_onnx_anomaly_maps_equal_pytorch(exported, synthetic_root, model):
    run = exported[model]
    _, images = _test_images(synthetic_root)  # batch 5, exported with a batch of 2: the batch is dynamic
    onnx_maps, onnx_scores = OnnxScorer(run)(images)
    _, maps, scores = score_batch(ckpt.load_model(run), images, SIGMA)
    assert onnx_maps.shape == maps.shape == (5, 128, 128)
    torch.testing.assert_close(onnx_maps, maps, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(onnx_scores, scores, rtol=RTOL, atol=ATOL)
    assert maps.std() > 0  # real maps, not a constant that two paths could trivially share


@pytest.mark.parametrize("model", ["anovit", "cae"])
def test_export_config_holds_size_normalisation_sigma_and_validation_threshold(exported, synthetic_root, model):
    run = exported[model]
    config = json.loads((run / "onnx" / "config.json").read_text())
    net = ckpt.load_model(run)
    assert (config["image_size"], config["sigma"], config["opset"]) == (128, SIGMA, 18)
    assert config["input"]["shape"] == ["batch", 3, 128, 128]
    if model == "anovit":
        assert config["normalisation"]["mean"] == pytest.approx(list(net.encoder.pretrained_cfg["mean"]))
    else:
        assert config["normalisation"]["mean"] is None
    # independent reference: the validation split rebuilt from the training config, scored one by one
    _, val = train_val_datasets("synthetic", category="tiles", image_size=128, root=str(synthetic_root))
    val_scores = [float(score_batch(net, val[i]["image"][None], SIGMA)[2]) for i in range(len(val))]
    assert config["threshold"] == pytest.approx(max(val_scores), rel=1e-6)


def test_score_prints_and_writes_the_same_decisions_with_pytorch_and_onnx(exported, synthetic_root, tmp_path, capsys):
    run = exported["cae"]
    folder = tmp_path / "images"  # a few good and defective test images, in subfolders as MVTec AD has them
    for kind in ("good", "hole"):
        for f in sorted((synthetic_root / "tiles" / "test" / kind).glob("*.png"))[:3]:
            (folder / kind).mkdir(parents=True, exist_ok=True)
            (folder / kind / f.name).write_bytes(f.read_bytes())
    results = {}
    for backend, extra in (("pytorch", []), ("onnx", ["--onnx"])):
        out = tmp_path / f"{backend}.csv"
        code = main(["score", str(run), str(folder), "--sigma", str(SIGMA), "--output", str(out),
                     "--maps", str(tmp_path / backend), *extra])
        assert code == 0
        with open(out) as f:
            results[backend] = list(csv.DictReader(f))
    torch_rows, onnx_rows = results["pytorch"], results["onnx"]
    n_files = len(list(folder.rglob("*.png")))
    assert len(torch_rows) == len(onnx_rows) == n_files
    assert [r["path"] for r in torch_rows] == [r["path"] for r in onnx_rows]
    np.testing.assert_allclose([float(r["anomaly_score"]) for r in onnx_rows],
                               [float(r["anomaly_score"]) for r in torch_rows], rtol=RTOL, atol=ATOL)
    threshold = float(onnx_rows[0]["threshold"])
    assert threshold == pytest.approx(float(torch_rows[0]["threshold"]), rel=1e-5)
    for row in torch_rows:
        assert row["decision"] == ("anomalous" if float(row["anomaly_score"]) >= threshold else "normal")  # Detector rule
    printed = capsys.readouterr().out
    assert f"{n_files} images" in printed
    maps = sorted((tmp_path / "onnx").rglob("*_anomaly_map.png"))
    assert len(maps) == n_files


def test_score_refuses_bad_input_with_one_sentence(exported, tmp_path, capsys):
    run = exported["cae"]
    assert main(["score", str(run), str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # refused at parse time, by argparse
        main(["score", str(run), str(tmp_path), "--batch-size", "0"])
    assert refused.value.code == 2
    assert "--batch-size: must be an integer >= 1; got 0" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main(["score", str(run), str(broken), "--threshold", "1"]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert main(["score", str(run), str(broken), "--onnx", "--sigma", "1"]) == 2
    assert "sigma" in capsys.readouterr().err
    assert main(["score", str(tmp_path), str(broken), "--onnx"]) == 2
    assert "anovit export" in capsys.readouterr().err


def test_export_without_training_data_asks_for_a_threshold(exported, tmp_path, capsys):
    pulled = tmp_path / "pulled"  # a run as the Hub gives it: weights and config, no training.json
    pulled.mkdir()
    for name in (ckpt.WEIGHTS, ckpt.CONFIG):
        (pulled / name).write_bytes((exported["cae"] / name).read_bytes())
    assert main(["export", str(pulled)]) == 2
    err = capsys.readouterr().err
    assert "training.json" in err and "--threshold" in err and "Traceback" not in err
    assert main(["export", str(pulled), "--threshold", "0.5"]) == 0
    assert json.loads((pulled / "onnx" / "config.json").read_text())["threshold"] == 0.5
