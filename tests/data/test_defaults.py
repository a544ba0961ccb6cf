"""One home per default: presets and TrainConfig own them, the CLI and the app read them, and file
names are constants of anovit.runs.checkpoint (a grep for each literal finds one definition)."""

import re
from pathlib import Path

from anovit.app.training import make_train_config
from anovit.cli.main import build_parser, resolve_category
from anovit.data import default_augment, flip_rule
from anovit.evaluation.evaluate import EVAL_BATCH_SIZE
from anovit.models import PRESETS, TRAINING_DEFAULTS, default_sigma, make_config, training_defaults
from anovit.training.config import TrainConfig

PACKAGE = Path(__file__).resolve().parents[2] / "anovit"


def _sources() -> str:
    return "\n".join(p.read_text() for p in sorted(PACKAGE.rglob("*.py")))


def test_each_literal_is_defined_once():
    text = _sources()
    for literal in ('"training.json"', '"test_scores.csv"', '"metrics.json"', '"model.safetensors"'):
        assert text.count(literal) == 1, literal
    assert re.findall(r"\bsigma\b[^,)\n]*=\s*4\.0|\w*SIGMA = 4\.0", text) == ["DEFAULT_SIGMA = 4.0"]
    assert re.findall(r"val_fraction\b[^,)\n]*=\s*0\.2\b|\w*DEFAULT_VAL_FRACTION = 0\.2", text) == ["DEFAULT_VAL_FRACTION = 0.2"]


def test_every_preset_has_training_defaults():
    assert {m: set(p) for m, p in TRAINING_DEFAULTS.items()} == {m: set(p) for m, p in PRESETS.items()}
    config = TrainConfig(model="anovit", preset="paper")
    assert (config.lr, config.epochs) == (training_defaults("anovit", "paper").lr, training_defaults("anovit", "paper").epochs)
    assert TrainConfig(model="cae").epochs == training_defaults("cae", "cpu-default").epochs


def test_cli_reads_the_defaults():
    train = build_parser().parse_args(["train"])
    config = TrainConfig()
    for name in ("dataset", "model", "preset", "batch_size", "val_fraction", "grad_clip", "seed"):
        assert getattr(train, name) == getattr(config, name), name
    assert train.category is None and resolve_category(train.dataset, train.category) == config.category
    assert train.epochs is None and train.lr is None  # the preset's, resolved by TrainConfig
    assert train.sigma is None  # resolved by TrainConfig from the image size (models.default_sigma)
    assert config.sigma == (training_defaults(config.model, config.preset).sigma
                            or default_sigma(make_config(config.model, config.preset).image_size))
    evaluate = build_parser().parse_args(["evaluate", "run"])
    assert (evaluate.sigma, evaluate.batch_size) == (None, EVAL_BATCH_SIZE)  # None: the run's stored sigma


def test_app_and_cli_build_the_same_config_and_flips():
    app = make_train_config(dataset="mvtec", category="transistor", root="/d", model="anovit", preset="cpu-default")
    from anovit.cli.main import _train_config

    cli = _train_config(build_parser().parse_args(["train", "--dataset", "mvtec", "--data-root", "/d",
                                                   "--category", "transistor"]))
    assert app.augment == cli.augment == default_augment("mvtec", "transistor") == TrainConfig(
        dataset="mvtec", category="transistor").augment
    hflip, vflip, _ = flip_rule("mvtec", "transistor")
    assert (app.augment.hflip, app.augment.vflip) == (hflip, vflip)
    assert (app.epochs, app.lr, app.batch_size) == (cli.epochs, cli.lr, cli.batch_size)
    no_flip = _train_config(build_parser().parse_args(["train", "--no-flip"]))
    assert not no_flip.augment.hflip and not no_flip.augment.vflip and no_flip.augment.affine
