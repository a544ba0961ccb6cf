"""Trainer: checkpoint files, resume after an interrupted run, refusal to overwrite, and one honest
end-to-end run that must detect and localise synthetic defects clearly better than chance."""

import json

import pytest
import torch
from safetensors.torch import load_file

from anovit.runs import checkpoint as ckpt
from anovit.data.augment import AugmentConfig
from anovit.utils.errors import CheckpointError
from anovit.evaluation.evaluate import evaluate_run
from anovit.models import build_model, make_config
from anovit.training.trainer import train
from anovit.training.config import model_config
from anovit.training.config import TrainConfig


def _config(root, **kw):
    base = dict(dataset="synthetic", category="tiles", data_root=str(root), model="cae", preset="cpu-tiny", epochs=3,
                batch_size=4, bf16=False, device="cpu", augment=AugmentConfig(affine=True))
    return TrainConfig(**{**base, **kw})


def test_run_folder_has_hub_layout_and_history(synthetic_root, tmp_path):
    result = train(_config(synthetic_root, epochs=2), tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "config.json", "training.json", "metrics.json", "resume.safetensors"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["training"]["history"]] == [1, 2]
    assert result.best_epoch in (1, 2)
    model = ckpt.load_model(tmp_path / "run")
    assert model.config.image_size == 128


@pytest.mark.parametrize("lr_schedule", ["constant", "cosine"])
def test_resume_after_interruption_matches_an_uninterrupted_run(synthetic_root, tmp_path, lr_schedule):
    config = _config(synthetic_root, lr_schedule=lr_schedule)
    full = train(config, tmp_path / "full")

    class Killed(Exception):
        pass

    def kill_in_epoch_3(event):
        if event["event"] == "step" and event["epoch"] == 3:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "cut", progress=kill_in_epoch_3)
    meta = json.loads((tmp_path / "cut" / "metrics.json").read_text())["training"]
    assert meta["epoch"] == 2
    with pytest.raises(CheckpointError, match="--resume"):
        train(config, tmp_path / "cut")
    resumed = train(config, tmp_path / "cut", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    a = load_file(str(tmp_path / "full" / "resume.safetensors"))
    b = load_file(str(tmp_path / "cut" / "resume.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))
    assert resumed.history[-1]["val_loss"] == pytest.approx(full.history[-1]["val_loss"])


def test_resume_refuses_another_configuration(synthetic_root, tmp_path):
    train(_config(synthetic_root, epochs=1), tmp_path / "run")
    with pytest.raises(CheckpointError, match="lr"):
        train(_config(synthetic_root, epochs=2, lr=5e-4), tmp_path / "run", resume=True)


def test_mismatched_checkpoint_is_refused_naming_the_tensors(synthetic_root, tmp_path):
    train(_config(synthetic_root, epochs=1), tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["latent_dim"] = 7
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        ckpt.load_model(tmp_path / "run")


def test_stop_request_ends_the_run_cleanly(synthetic_root, tmp_path):
    result = train(_config(synthetic_root, epochs=5), tmp_path / "run", should_stop=lambda: True)
    assert result.stopped and len(result.history) == 1
    assert ckpt.read_metrics(tmp_path / "run")["training"]["stopped"] is True


def test_weights_appear_only_after_an_epoch_and_overwrite_drops_stale_ones(synthetic_root, tmp_path):
    from anovit.runs.catalog import list_runs

    class Killed(Exception):
        pass

    def kill_at_first_step(event):
        raise Killed

    train(_config(synthetic_root, epochs=1), tmp_path / "run")
    assert [r.path.name for r in list_runs(tmp_path)] == ["run"]
    with pytest.raises(Killed):
        train(_config(synthetic_root, epochs=1, seed=1), tmp_path / "run", overwrite=True, progress=kill_at_first_step)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert "config.json" in files and not {"model.safetensors", "resume.safetensors"} & files
    assert list_runs(tmp_path) == []  # an untrained model is never offered as a checkpoint


def test_augmentation_defaults_to_the_dataset_flip_rule():
    assert not TrainConfig(dataset="mvtec", category="transistor").augment.hflip
    assert TrainConfig(dataset="mvtec", category="carpet").augment.vflip
    assert TrainConfig.from_dict({"dataset": "digits", "category": "3"}).augment.hflip is False
    assert TrainConfig(augment=AugmentConfig(hflip=False)).augment.vflip


def test_gradient_clipping_bounds_the_update(synthetic_root, tmp_path):
    def moved(**kw):
        train(_config(synthetic_root, epochs=1, seed=3, weight_decay=0.0, **kw), tmp_path / str(kw), overwrite=True)
        torch.manual_seed(3)  # the trainer's seeded initialisation
        before = build_model("cae", make_config("cae", "cpu-tiny"))
        after = ckpt.load_model(tmp_path / str(kw))
        return sum((a - b).abs().sum() for a, b in zip(after.state_dict().values(), before.state_dict().values()))

    clipped, free = moved(grad_clip=1e-12), moved(grad_clip=None)
    assert clipped < 0.01 * free, (clipped, free)  # Adam's eps dominates clipped gradients (no decay term)


def test_default_learning_rate_depends_on_the_preset():
    assert TrainConfig(preset="paper").lr == 2e-4
    assert TrainConfig(preset="cpu-tiny").lr == 1e-3
    assert TrainConfig(preset="cpu-tiny", lr=5e-4).lr == 5e-4


@pytest.mark.parametrize("preset", ["cpu-tiny", "paper"])
def test_cae_trains_with_bergmanns_published_recipe_by_default(preset):
    # Bergmann et al. (2019b): Adam, learning rate 2e-4, weight decay 1e-5, 200 epochs.
    config = TrainConfig(model="cae", preset=preset)
    assert (config.lr, config.weight_decay, config.epochs) == (2e-4, 1e-5, 200)
    assert TrainConfig(model="anovit", preset="cpu-tiny").epochs == 10
    assert TrainConfig(model="cae", epochs=3, lr=1e-3).epochs == 3


@pytest.mark.parametrize("dataset, category, latent", [
    ("synthetic", "washer", 500), ("synthetic", "weave", 100), ("mvtec", "bottle", 500), ("mvtec", "grid", 100),
    ("mnist", "3", 100),
])
def test_cae_latent_size_follows_the_category_kind(dataset, category, latent):
    # Bergmann et al.: d = 100 for textures, 500 for objects (100 where the kind is unknown).
    assert model_config(TrainConfig(dataset=dataset, category=category, model="cae")).latent_dim == latent
    forced = TrainConfig(dataset=dataset, category=category, model="cae", model_overrides={"latent_dim": 7})
    assert model_config(forced).latent_dim == 7


def test_training_split_can_be_capped(synthetic_root, tmp_path):
    steps = []
    config = _config(synthetic_root, epochs=1, max_train_images=4, val_fraction=0.5)
    train(config, tmp_path / "run", progress=lambda e: steps.append(e.get("steps")))
    assert steps[0] == 1  # 4 images, batch size 4 (without the cap: 6 training images)
    assert TrainConfig.from_dict(json.loads((tmp_path / "run" / "training.json").read_text())).max_train_images == 4


def test_the_papers_decoder_trains(synthetic_root, tmp_path):
    config = _config(synthetic_root, model="anovit", epochs=1, model_overrides={"decoder": "paper"})
    train(config, tmp_path / "run")
    model = ckpt.load_model(tmp_path / "run")
    assert model.config.decoder == "paper" and not any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    assert evaluate_run(tmp_path / "run", device="cpu", max_images=8).sigma == 2.0  # the run's: 4 x 128 / 256


def test_anovit_cpu_tiny_detects_and_localises_synthetic_defects(tmp_path):
    """The honest end-to-end check: real training, real test split (30 good, 64 defective washers
    with exact masks), metrics computed from scratch; chance is 0.5 for both AUROCs."""
    from anovit.data.synthetic import generate

    root = generate(tmp_path / "data", categories=["washer"], n_train=96)  # 0.90 / 0.97 (160: 0.92 / 0.98, 2x the time)
    config = TrainConfig(dataset="synthetic", category="washer", data_root=str(root), model="anovit",
                         preset="cpu-tiny", epochs=6, batch_size=16, device="cpu", seed=0)
    train(config, tmp_path / "run")
    result = evaluate_run(tmp_path / "run")
    assert result.n_images == 94 and result.n_anomalous == 64
    assert result.image_auroc > 0.75, result.summary()
    assert result.pixel_auroc > 0.9, result.summary()
    assert ckpt.read_metrics(tmp_path / "run")["test"]["image_auroc"] == pytest.approx(result.image_auroc)


def test_cli_resume_keeps_the_recorded_budget_unless_epochs_says_otherwise(synthetic_root, tmp_path, capsys):
    from anovit.cli.main import main

    run = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--category", "tiles",
            "--model", "cae", "--batch-size", "4", "--images-per-epoch", "8", "--output", str(run), "--no-eval",
            "--device", "cpu"]
    assert main([*args, "--epochs", "1"]) == 0
    assert main(args) == 2  # the folder holds a run: one sentence naming the three choices
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # no new budget: nothing to train, the record still says 1
    history = json.loads((run / "metrics.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == [1]
    assert json.loads((run / "training.json").read_text())["epochs"] == 1
    assert main([*args, "--resume", "--epochs", "2"]) == 0  # an explicit budget: trained to it, recorded
    history = json.loads((run / "metrics.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert json.loads((run / "training.json").read_text())["epochs"] == 2
    assert main([*args, "--resume", "--epochs", "1"]) == 2
    assert "to 1 epochs: it has trained 2" in capsys.readouterr().err
