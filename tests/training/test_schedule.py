"""The learning-rate schedule (anovit.training.schedule): its values, that a run follows and records it, and
that runs recorded before the field load with the constant lr they trained at."""

import math
from dataclasses import asdict

import pytest
import torch

from anovit.models import build_model
from anovit.runs.resume import load_resume_point
from anovit.training.config import TrainConfig, load_training, model_config
from anovit.training.schedule import scheduled_lr
from anovit.training.trainer import train


def test_constant_is_the_lr_at_every_step():
    assert [scheduled_lr(1e-3, "constant", s, 10) for s in range(10)] == [1e-3] * 10


def test_cosine_anneals_from_the_lr_to_zero():
    lrs = [scheduled_lr(1e-3, "cosine", s, 100) for s in range(100)]
    assert lrs[0] == 1e-3 and lrs[50] == pytest.approx(5e-4)
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and 0 < lrs[-1] < 1e-6


@pytest.mark.parametrize("schedule, step, match", [("linear", 0, "lr schedule 'linear'"), ("cosine", 10, r"\[0, 10\)"),
                                                   ("cosine", -1, r"\[0, 10\)")])
def test_bad_arguments_are_refused(schedule, step, match):
    with pytest.raises(ValueError, match=match):
        scheduled_lr(1e-3, schedule, step, 10)


def test_a_cosine_run_follows_the_schedule_and_records_it(synthetic_root, tmp_path):
    config = TrainConfig(dataset="synthetic", category="tiles", data_root=str(synthetic_root), model="cae",
                         preset="cpu-tiny", epochs=2, batch_size=4, images_per_epoch=8, bf16=False, device="cpu",
                         model_overrides={"image_size": 32}, lr_schedule="cosine", lr=1e-3)
    train(config, tmp_path / "run")
    assert load_training(tmp_path / "run").lr_schedule == "cosine"
    model = build_model(config.model, model_config(config))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    load_resume_point(tmp_path / "run", model, opt)
    # 2 epochs x 2 steps: the last step (index 3 of 4) ran at lr (1 + cos(3 pi / 4)) / 2
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 + math.cos(3 * math.pi / 4)) / 2)


def test_runs_recorded_before_the_field_load_as_constant():
    data = {k: v for k, v in asdict(TrainConfig(lr_schedule="cosine")).items() if k != "lr_schedule"}
    assert TrainConfig.from_dict(data).lr_schedule == "constant"
    with pytest.raises(Exception, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")
