"""Junk in config.json / training.json and bad numeric arguments (issue 10): one sentence naming the
field and the file, exit code 2, refused at parse time; never a timm / int() traceback."""

import argparse
import json
from pathlib import Path

import pytest

from anovit.runs import checkpoint as ckpt
from anovit.cli.main import build_parser, main
from anovit.utils.errors import CheckpointError, ConfigError
from anovit.models import AnoViTConfig, L2CAEConfig, create_model
from anovit.training.config import TrainConfig

BAD_CONFIG = {
    "image_size -128": ({"image_size": -128}, "field 'image_size' must be an integer >= 16; got -128"),
    "image_size big": ({"image_size": "big"}, "field 'image_size' must be an integer >= 16; got 'big'"),
    "image_size 128.5": ({"image_size": 128.5}, "field 'image_size' must be an integer >= 16; got 128.5"),
    "unknown encoder": ({"encoder": "vit_gigantic_nope"}, "field 'encoder' must name a timm ViT"),
    "decoder_channels": ({"decoder_channels": "abcdef"},
                         "field 'decoder_channels' must be a list of 6 integers >= 1; got 'abcdef'"),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A loadable AnoViT run folder (config.json + model.safetensors + training.json)."""
    path = tmp_path_factory.mktemp("run")
    ckpt.save_model(path, create_model("anovit", "cpu-tiny"))
    ckpt.write_json(path / "training.json", {"dataset": "synthetic", "category": "weave", "model": "anovit"})
    return path


def _broken(run_dir: Path, tmp_path: Path, config) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / ckpt.WEIGHTS).write_bytes((run_dir / ckpt.WEIGHTS).read_bytes())
    (folder / "training.json").write_text((run_dir / "training.json").read_text())
    (folder / ckpt.CONFIG).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_junk_in_config_json_names_field_and_file_everywhere(run_dir, tmp_path, capsys, case):
    from anovit.hub.repo import load_pretrained

    change, message = BAD_CONFIG[case]
    folder = _broken(run_dir, tmp_path, {**json.loads((run_dir / ckpt.CONFIG).read_text()), **change})
    with pytest.raises(CheckpointError) as caught:
        load_pretrained(folder, model_type="anovit")
    assert str(caught.value).startswith(f"{folder / ckpt.CONFIG}: {message}")
    for argv in (["evaluate", str(folder)], ["hub", "push", str(folder), "--repo-id", "me/x", "--dry-run"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]  # other lines: library warnings
        assert len(errors) == 1 and errors[0].startswith(f"error: {folder / ckpt.CONFIG}: {message}"), err
        assert "Traceback" not in err


def test_config_json_array_and_bad_training_json(run_dir, tmp_path, capsys):
    folder = _broken(run_dir, tmp_path, [1, 2, 3])
    assert main(["evaluate", str(folder)]) == 2
    assert f"{folder / ckpt.CONFIG}: must hold a JSON object of model config fields; got list" in capsys.readouterr().err
    (folder / ckpt.CONFIG).write_text((run_dir / ckpt.CONFIG).read_text())
    for training, message in (({"dataset": "synthetic", "epochs": 0}, "field 'epochs' must be an integer >= 1; got 0"),
                              ([], "must hold a JSON object of training fields; got list"),
                              ({"dataset": "synthetic", "batchsize": 4}, "unknown field(s) ['batchsize']")):
        (folder / "training.json").write_text(json.dumps(training))
        for argv in (["evaluate", str(folder)], ["hub", "push", str(folder), "--repo-id", "me/x", "--dry-run"]):
            assert main(argv) == 2
            assert f"error: {folder / 'training.json'}: {message}" in capsys.readouterr().err


def test_hub_pull_refuses_a_cached_repo_with_a_bad_config(run_dir, tmp_path, monkeypatch, capsys):
    from anovit.hub import repo as hub

    folder = _broken(run_dir, tmp_path, {**json.loads((run_dir / ckpt.CONFIG).read_text()), "image_size": -128})
    monkeypatch.setattr(hub, "fetch", lambda repo_id, revision=None: folder)
    assert main(["hub", "pull", "me/broken", "--output", str(tmp_path / "pulled")]) == 2
    assert f"{folder / ckpt.CONFIG}: field 'image_size' must be an integer >= 16; got -128" in capsys.readouterr().err
    assert not (tmp_path / "pulled").exists()


def test_config_dataclasses_check_their_fields():
    with pytest.raises(ConfigError, match="multiple of vit_tiny_patch16_224's patch size 16; got 130"):
        AnoViTConfig(image_size=130)
    with pytest.raises(ConfigError, match=r"field 'in_channels' must be one of \[1, 3\]; got True"):
        AnoViTConfig(in_channels=True)
    with pytest.raises(ConfigError, match="widths above 8 must be multiples of 8"):
        AnoViTConfig(decoder_channels=(256, 128, 64, 32, 12, 16))
    with pytest.raises(ConfigError, match="field 'latent_dim' must be an integer >= 1; got 0"):
        L2CAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="field 'image_size' must be a multiple of 16"):
        L2CAEConfig(image_size=100)
    for field, value, message in (("lr", -1.0, "field 'lr' must be a number > 0; got -1.0"),
                                  ("batch_size", 0, "field 'batch_size' must be an integer >= 1; got 0"),
                                  ("val_fraction", 1.0, "field 'val_fraction' must be a number > 0 and < 1"),
                                  ("model", "vae", "field 'model' must be one of ['anovit', 'cae', 'ssim-cae']; got 'vae'"),
                                  ("bf16", "yes", "field 'bf16' must be true or false or null; got 'yes'")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            TrainConfig(**{field: value})
    assert AnoViTConfig(decoder_channels=[256, 128, 64, 32, 8, 8]).decoder_channels == (256, 128, 64, 32, 8, 8)


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1; got 0"),
    (["train", "--epochs", "-3"], "argument --epochs: must be an integer >= 1; got -3"),
    (["train", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1; got 0"),
    (["train", "--batch-size", "-4"], "argument --batch-size: must be an integer >= 1; got -4"),
    (["train", "--lr", "-1"], "argument --lr: must be a number > 0; got -1.0"),
    (["train", "--lr", "0"], "argument --lr: must be a number > 0; got 0.0"),
    (["train", "--epochs", "ten"], "argument --epochs: must be an integer; got 'ten'"),
    (["evaluate", "run", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1; got 0"),
    (["evaluate", "run", "--sigma", "-4"], "argument --sigma: must be a number >= 0; got -4.0"),
    (["benchmark", "--epochs", "0"], "argument --epochs: must be an integer >= 1; got 0"),
    (["benchmark", "--seeds", "0"], "argument --seeds: must be an integer >= 1; got 0"),
    (["score", "run", "img.png", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1; got 0"),
    (["score", "run", "img.png", "--sigma", "-1"], "argument --sigma: must be a number >= 0; got -1.0"),
])
def test_bad_numbers_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2 and message in capsys.readouterr().err


def test_sigma_zero_means_no_smoothing():
    args = build_parser().parse_args(["evaluate", "run", "--sigma", "0"])
    assert args.sigma == 0.0


def test_benchmark_api_refuses_zero_epochs_instead_of_running_the_default(tmp_path):
    from anovit.evaluation.benchmark import run_benchmark

    with pytest.raises(ConfigError, match="field 'epochs' must be an integer >= 1; got 0"):
        run_benchmark([], epochs=0, results=tmp_path / "r.csv", runs_root=tmp_path)


def test_run_listing_leaves_out_a_run_whose_json_is_an_array(run_dir, tmp_path):
    from anovit.runs.catalog import list_runs
    from anovit.runs.record import read_run

    folder = _broken(run_dir, tmp_path, json.loads((run_dir / ckpt.CONFIG).read_text()))
    (folder / "training.json").write_text("[]")
    with pytest.raises(CheckpointError, match=rf"{folder / 'training.json'} must hold a JSON object; got list"):
        read_run(folder)
    assert list_runs(tmp_path) == []


def test_every_train_flag_has_help_text():
    train = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    missing = [a.option_strings for a in train._actions
               if a.option_strings and a.dest != "help" and not (a.help or "").strip("() ").removeprefix("default: ")]
    assert missing == []
    for action in train._actions:  # a help that is only "(default: X)" says nothing about the flag
        assert not (action.help or "x").startswith("(default"), action.option_strings


def test_train_prints_one_summary_line_before_it_starts(tmp_path):
    from anovit.cli.main import _train_config, start_line

    args = build_parser().parse_args(["train", "--dataset", "synthetic", "--category", "weave", "--model", "anovit",
                                      "--preset", "cpu-tiny", "--epochs", "3", "--device", "cpu", "--no-bf16"])
    line = start_line(_train_config(args), tmp_path / "run")
    assert "\n" not in line
    for part in ("anovit (cpu-tiny", "px) on synthetic/weave", "3 epochs, batch", "cpu, float32", str(tmp_path / "run")):
        assert part in line, line
