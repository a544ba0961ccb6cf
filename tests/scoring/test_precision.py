"""One precision rule (anovit.utils.runtime): training resolves --bf16 / --no-bf16 / auto once and records it in
training.json; evaluate, score, the app and pulled runs score in that recorded precision unless
--bf16 / --no-bf16 says otherwise; a bf16 run is scored in float32, with a note, where the device has no
bf16; ONNX export is float32. ANOVIT_NO_BF16=1 runs the no-bf16 path on a bf16 CPU. The bf16 path itself
is tested where the CPU has bf16 and skipped elsewhere."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from anovit.runs import checkpoint as ckpt
from anovit.utils import runtime
from anovit.cli.main import main
from anovit.scoring.detector import Detector
from anovit.utils.errors import CheckpointError, ConfigError
from anovit.evaluation.evaluate import evaluate_run
from anovit.scoring.run_scoring import run_detector
from anovit.runs.record import read_run
from anovit.utils.runtime import NO_BF16_ENV, bf16_supported, scoring_bf16, use_bf16
from anovit.training.trainer import train
from anovit.training.config import TrainConfig, load_training

CPU = torch.device("cpu")
HAS_BF16 = bf16_supported(CPU)
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason=f"this CPU has no bf16 support (or {NO_BF16_ENV} is set): "
                                                     "the bf16 path is tested where it has")


def _config(root: Path, bf16: bool | None) -> TrainConfig:
    return TrainConfig(dataset="synthetic", category="weave", data_root=str(root), model="cae", preset="cpu-tiny",
                       model_overrides={"image_size": 64}, epochs=1, batch_size=4, max_train_images=8, bf16=bf16,
                       device="cpu")


@pytest.fixture(scope="module")
def fp32_run(synthetic_root, tmp_path_factory) -> Path:
    """A one-epoch l2-CAE trained with --no-bf16 (its training.json records "fp32")."""
    return train(_config(synthetic_root, False), tmp_path_factory.mktemp("precision") / "fp32").run_dir


def _copy(run: Path, tmp_path: Path, **training: object) -> Path:
    """A copy of ``run`` whose training.json has ``training`` merged in (a None value drops the field)."""
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    saved = {**ckpt.read_json(copy / ckpt.TRAINING), **training}
    ckpt.write_json(copy / ckpt.TRAINING, {k: v for k, v in saved.items() if v is not None})
    return copy


def test_the_switch_makes_every_device_report_no_bf16_and_a_bf16_request_is_one_sentence(monkeypatch):
    monkeypatch.setenv(NO_BF16_ENV, "0")  # "0" is off
    assert bf16_supported(CPU) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    monkeypatch.setenv(NO_BF16_ENV, "1")
    assert not bf16_supported(CPU) and use_bf16(CPU, None) is False and use_bf16(CPU, False) is False
    with pytest.raises(ConfigError, match=rf"^--bf16 was requested but cpu has no bf16 support \({NO_BF16_ENV} is set\)"):
        use_bf16(CPU, True)


@pytest.mark.parametrize("recorded, requested, supported, expected, noted", [
    ("fp32", None, True, False, False),  # the run's precision, whatever the device offers
    ("bf16", None, True, True, False),
    ("bf16", None, False, False, True),  # recorded bf16, no bf16 here: float32, said in one line
    ("bf16", False, True, False, False),  # --no-bf16 overrides the record
    ("fp32", True, True, True, False),  # --bf16 overrides it too
    (None, None, True, True, False),  # nothing recorded (a pulled model): the device decides
    (None, None, False, False, False),
])
def test_scoring_follows_the_recorded_precision_unless_told(monkeypatch, recorded, requested, supported, expected,
                                                            noted):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device: supported)
    bf16, note = scoring_bf16(CPU, recorded, requested)
    assert bf16 is expected and (note is not None) is noted
    if noted:
        assert "trained in bf16" in note and "float32" in note and "\n" not in note


def test_scoring_refuses_bf16_where_the_device_has_none_and_an_unknown_record(monkeypatch):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device: False)
    with pytest.raises(ConfigError, match="has no bf16 support"):
        scoring_bf16(CPU, "fp32", True)
    with pytest.raises(ConfigError, match="one of"):
        scoring_bf16(CPU, "fp16", None)


def test_training_records_its_resolved_precision_and_older_runs_read_what_they_trained_in(fp32_run, tmp_path):
    assert ckpt.read_json(fp32_run / ckpt.TRAINING)["precision"] == "fp32" == read_run(fp32_run).precision
    assert load_training(fp32_run).bf16 is False  # the recorded field is not part of the request
    older = _copy(fp32_run, tmp_path, precision=None)  # before "precision": metrics.json's training "bf16"
    assert read_run(older).precision == "fp32"
    ckpt.update_metrics(older, training={})
    assert read_run(older).precision is None  # nothing recorded: scoring_bf16 lets the device decide
    ckpt.write_json(older / ckpt.TRAINING, {**ckpt.read_json(fp32_run / ckpt.TRAINING), "precision": "fp16"})
    with pytest.raises(CheckpointError, match="field 'precision' must be one of"):
        read_run(older).precision


def test_no_bf16_at_training_holds_for_its_evaluation_and_for_score(fp32_run, tmp_path, capsys):
    assert ckpt.read_metrics(fp32_run)["training"]["bf16"] is False
    result = evaluate_run(fp32_run, device="cpu", max_images=4, record=False)
    assert result.bf16 is False and result.precision_note is None
    assert run_detector(fp32_run, device="cpu").bf16 is False  # anovit score's detector and threshold
    image = next((Path(load_training(fp32_run).data_root) / "weave" / "test").rglob("*.png"))
    assert main(["score", str(fp32_run), str(image), "--device", "cpu"]) == 0
    assert "pytorch, cpu, fp32" in capsys.readouterr().out


def test_the_cli_train_refuses_bf16_without_support_before_making_a_run_folder(synthetic_root, tmp_path,
                                                                             monkeypatch, capsys):
    monkeypatch.setenv(NO_BF16_ENV, "1")
    out = tmp_path / "never"
    assert main(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--category", "weave",
                 "--model", "cae", "--epochs", "1", "--device", "cpu", "--bf16", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --bf16 was requested") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(ConfigError):  # the API refuses before the folder too
        train(_config(synthetic_root, True), out)
    assert not out.exists()


def test_a_bf16_run_is_scored_in_float32_with_a_note_where_the_device_has_none(fp32_run, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv(NO_BF16_ENV, "1")
    run = _copy(fp32_run, tmp_path, precision="bf16")
    detector = Detector.from_run(run, device="cpu")
    assert detector.bf16 is False and "trained in bf16" in detector.precision_note
    assert main(["evaluate", str(run), "--device", "cpu", "--output", str(tmp_path / "e.json")]) == 0
    assert "note: the run was trained in bf16 but cpu has no bf16 support: scoring in float32" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["bf16"] is False
    image = next((Path(load_training(run).data_root) / "weave" / "test").rglob("*.png"))
    for command in (["evaluate", str(run)], ["score", str(run), str(image)]):
        assert main([*command, "--device", "cpu", "--bf16"]) == 2
        assert "has no bf16 support" in capsys.readouterr().err


@needs_bf16
def test_a_bf16_run_scores_in_bf16_everywhere_but_in_its_onnx_export(synthetic_root, tmp_path, capsys):
    run = train(_config(synthetic_root, None), tmp_path / "bf16").run_dir
    assert read_run(run).precision == "bf16" and ckpt.read_metrics(run)["training"]["bf16"] is True
    assert evaluate_run(run, device="cpu", max_images=4, record=False).bf16 is True
    assert evaluate_run(run, device="cpu", max_images=4, record=False, bf16=False).bf16 is False  # --no-bf16
    assert Detector.from_run(run, device="cpu").bf16 is True
    assert main(["evaluate", str(run), "--device", "cpu", "--no-bf16", "--output", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["bf16"] is False
    pytest.importorskip("onnxruntime")
    from anovit.deploy.export import export_onnx

    exported = json.loads((export_onnx(run, tmp_path / "onnx") / "config.json").read_text())
    assert exported["threshold"] == run_detector(run, device="cpu", bf16=False).threshold  # fitted in fp32
    assert exported["threshold"] != run_detector(run, device="cpu").threshold  # the run's bf16 one differs
