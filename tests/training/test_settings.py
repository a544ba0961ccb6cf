"""Every training setting declared once (issue 22 item 4): TrainConfig's fields carry their help, bounds, choices,
flag and form widget, and the checks, train's flags, the Train page's form and the printed config follow them."""

import argparse
import math
from dataclasses import dataclass, fields

import pytest

from anovit.app.settings_form import form_settings, widget_range
from anovit.cli.main import RUN_OPTIONS, _train_config, build_parser, resolved_config
from anovit.training.config import TrainConfig
from anovit.utils.errors import ConfigError
from anovit.utils.setting_flags import add_setting_args, flag_of, settings_from_args
from anovit.utils.settings import check_setting, format_settings, help_text, setting, setting_values, settings_of

SETTINGS = settings_of(TrainConfig)
NO_FLAG = {"betas", "weight_decay", "max_train_images"}  # no flag of train's (set through the API or training.json)
FILLED_BY_FLAGS = {"model_overrides", "augment"}  # filled by other flags (the model's, the augmentation's)


def _train_actions() -> list[argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["train"]._actions if a.option_strings and a.dest != "help"]


def test_every_field_is_a_setting_with_help():
    assert list(SETTINGS) == [f.name for f in fields(TrainConfig)]
    assert all(spec.help.strip() for spec, _ in SETTINGS.values())


def test_a_field_without_help_is_named():
    @dataclass
    class Bare:
        epochs: int = setting(3, "epochs", minimum=1)
        warmup: int = 0

    with pytest.raises(TypeError, match=r"Bare\.warmup has no setting with help text"):
        settings_of(Bare)


def test_every_train_flag_maps_to_a_setting_and_back():
    actions = _train_actions()
    by_setting: dict[str, list[str]] = {}
    for action in actions:
        name = getattr(action, "setting", None)
        if name is None:  # not a setting: where the run goes and what train does
            assert action.option_strings[0] in RUN_OPTIONS, action.option_strings
            continue
        assert name in SETTINGS, action.option_strings
        by_setting.setdefault(name, []).extend(action.option_strings)
    assert {a.option_strings[0] for a in actions if not hasattr(a, "setting")} == set(RUN_OPTIONS)
    for name in SETTINGS:
        if flag_of(TrainConfig, name) is not None:
            assert by_setting[name][0] == flag_of(TrainConfig, name)
            assert next(a for a in actions if getattr(a, "setting", None) == name).dest == name
    assert set(SETTINGS) - set(by_setting) == NO_FLAG
    assert {n for n in by_setting if flag_of(TrainConfig, n) is None} == FILLED_BY_FLAGS
    assert set(by_setting["model_overrides"]) >= {"--image-size", "--encoder", "--no-pretrained", "--latent-dim"}
    assert set(by_setting["augment"]) == {"--no-affine", "--no-flip"}


def test_flag_help_is_generated_from_the_declaration():
    helps = {a.dest: a.help for a in _train_actions()}
    # independent of the generator: the help train printed before the settings were declared once
    assert helps["val_fraction"] == ("share of the normal training images held out for best-epoch selection and the "
                                     "decision threshold, in (0, 1) (default: %(default)s)")
    assert helps["grad_clip"] == "max l2 norm of the gradients (0: no clipping; default: %(default)s)"
    assert helps["pooling_top_percent"].startswith("share of the map's pixels topk pooling averages, in percent, in "
                                                   "(0, 100] (default: the preset's")
    assert helps["data_root"] == "dataset folder (MVTec layout for mvtec/folder datasets)"
    for name in SETTINGS:
        if flag_of(TrainConfig, name) is not None and SETTINGS[name][0].default_text is not None:
            assert helps[name] == help_text(TrainConfig, name)


BOUND_CASES = [pytest.param(name, side, id=f"{name}-{side}") for name, (spec, _) in SETTINGS.items()
               for side in ("minimum", "maximum") if getattr(spec, side) is not None]


def _outside(name: str, side: str) -> tuple[object, object]:
    """(a value just outside the bound, the bound) as the field takes them (a pair for betas)."""
    spec, kind = SETTINGS[name]
    bound, is_open = (spec.minimum, spec.min_open) if side == "minimum" else (spec.maximum, spec.max_open)
    step = -1 if side == "minimum" else 1
    if kind.base is int:
        outside = bound if is_open else bound + step
    else:
        outside = bound if is_open else math.nextafter(bound, bound + step)
    wrap = (lambda v: (v, 0.9)) if name == "betas" else (lambda v: v)
    return wrap(outside), wrap(bound)


@pytest.mark.parametrize("name, side", BOUND_CASES)
def test_trainconfig_enforces_each_declared_bound(name, side):
    outside, bound = _outside(name, side)
    with pytest.raises(ConfigError, match=f"^field '{name}' must be "):
        TrainConfig(**{name: outside})
    spec, _ = SETTINGS[name]
    if not (spec.min_open if side == "minimum" else spec.max_open):
        TrainConfig(**{name: bound})  # a closed bound is allowed


@pytest.mark.parametrize("name, side", BOUND_CASES)
def test_train_flags_refuse_what_the_config_refuses(name, side, capsys):
    flag = flag_of(TrainConfig, name)
    if flag is None:
        pytest.skip(f"{name} has no flag")
    outside, _ = _outside(name, side)
    if SETTINGS[name][0].off == outside:  # --grad-clip 0: clipping off, stored as None
        args = build_parser().parse_args(["train", flag, str(outside)])
        assert _train_config(args).grad_clip is None
        return
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", f"{flag}={outside!r}"])  # "=": a negative value is not an option
    assert f"argument {flag}: must be " in capsys.readouterr().err


@pytest.mark.parametrize("name", [n for n, (spec, _) in SETTINGS.items() if spec.choices is not None])
def test_trainconfig_refuses_what_a_choice_setting_does_not_offer(name):
    with pytest.raises(ConfigError, match=f"^field '{name}' must be one of"):
        TrainConfig(**{name: "no-such-choice"})


@pytest.mark.parametrize("name, value", [("epochs", "ten"), ("lr", True), ("seed", 1.5), ("model", 3),
                                         ("bf16", "yes"), ("betas", (0.5,)), ("model_overrides", []),
                                         ("augment", {"affine": True}), ("device", "")])
def test_trainconfig_refuses_a_wrong_type_naming_the_field(name, value):
    with pytest.raises(ConfigError, match=f"^field '{name}' must be "):
        TrainConfig(**{name: value})


def test_old_training_json_still_loads():
    # a run written before the scoring, epoch-size and calibration fields existed (JSON: betas as a list)
    old = {"dataset": "synthetic", "category": "weave", "data_root": None, "model": "cae", "preset": "cpu-tiny",
           "model_overrides": {"latent_dim": 100}, "epochs": 2, "batch_size": 4, "lr": 2e-4, "betas": [0.5, 0.999],
           "weight_decay": 1e-5, "val_fraction": 0.2, "grad_clip": None, "sigma": 2.0, "bf16": None, "device": "cpu",
           "seed": 1, "augment": {"affine": True, "hflip": True, "vflip": True}, "precision": "fp32"}
    config = TrainConfig.from_dict(old)
    assert (config.betas, config.grad_clip, config.score, config.pooling) == ((0.5, 0.999), None, "l2", "max")


def test_the_printed_config_lists_every_setting():
    config = TrainConfig(epochs=2)
    printed = resolved_config(config)["training"]
    assert list(printed) == list(SETTINGS) == list(setting_values(config))
    assert printed["betas"] == [0.5, 0.999] and printed["epochs"] == 2
    line = format_settings(config)
    assert all(f"{name} " in line for name in SETTINGS) and "\n" not in line


def test_form_widgets_stay_within_the_bounds():
    shown = form_settings(TrainConfig)
    assert shown == ["epochs", "batch_size", "lr", "score", "seed"]
    assert form_settings(TrainConfig, picks=True) == ["score"]
    for name in form_settings(TrainConfig, picks=False):
        low, high = widget_range(TrainConfig, name)
        assert low is not None, name  # an open bound needs a form range inside it
        check_setting(TrainConfig, name, low)
        if high is not None:
            check_setting(TrainConfig, name, high)


def test_a_new_setting_needs_only_its_declaration():
    """What adding a field takes: the declaration (and its use in the trainer); flag, check, form and print follow."""
    @dataclass
    class Extended(TrainConfig):
        warmup_epochs: int = setting(0, "epochs of linear learning-rate warm-up", minimum=0)

    parser = argparse.ArgumentParser()
    add_setting_args(parser, Extended, ["warmup_epochs"])
    args = parser.parse_args(["--warmup-epochs", "2"])
    assert Extended(**settings_from_args(args, Extended, ["warmup_epochs"])).warmup_epochs == 2
    assert parser._actions[-1].help == "epochs of linear learning-rate warm-up (default: %(default)s)"
    with pytest.raises(ConfigError, match="field 'warmup_epochs' must be an integer >= 0; got -1"):
        Extended(warmup_epochs=-1)
    assert "warmup_epochs 0" in format_settings(Extended())
