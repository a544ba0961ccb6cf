"""Model registry: one name per model type, one name per preset (timm-style explicit configs).

Layer 1 (docs/architecture.md): plain modules; may import utils only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch.nn as nn

from ..utils.errors import ConfigError

from .anovit import AnoViT, AnoViTConfig
from .cae import SSIMCAE, L2CAE, L2CAEConfig

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "anovit": (AnoViTConfig, AnoViT),
    "cae": (L2CAEConfig, L2CAE),
    "ssim-cae": (L2CAEConfig, SSIMCAE),
}

# Presets: the paper's setting is a GPU job; the cpu-* presets are sized for a 2-core CPU.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "anovit": {
        "cpu-tiny": dict(encoder="vit_tiny_patch16_224", image_size=128),
        "cpu-small": dict(encoder="vit_small_patch16_224", image_size=224),
        "paper": dict(encoder="vit_base_patch16_384", image_size=384, pretrained=True),
        # beyond the paper: masked-patch inpainting from scratch (how it was chosen: README, "Beyond the paper")
        "cpu-tiny-masked": dict(encoder="vit_tiny_patch16_224", image_size=128, mask_ratio=0.25),
        # the default (TrainConfig.preset): the best CPU recipe on real validation photographs (issue 23;
        # benchmarks/validation_sets.py), training budget in TRAINING_DEFAULTS
        "cpu-default": dict(encoder="vit_tiny_patch16_224", image_size=384, tile_size=128),
    },
    "cae": {
        "cpu-tiny": dict(image_size=128),
        "cpu-small": dict(image_size=224),
        "paper": dict(image_size=384),
        "cpu-default": dict(image_size=128),
    },
}
PRESETS["ssim-cae"] = PRESETS["cae"]  # the same network (Bergmann et al. 2019b), another loss and score

MODEL_LABELS = {"anovit": "AnoViT", "cae": "l2-CAE", "ssim-cae": "SSIM-AE"}

# Score functions (per-pixel error maps, anovit.scoring.anomaly_map.error_map) and training losses. The first of
# each is the paper's (eq. 6 and eq. 1) and the default of runs that record none.
SCORE_FUNCTIONS = ("l2", "ssim", "msgms", "l2-ssim")
DEFAULT_SCORE = SCORE_FUNCTIONS[0]  # eq. (6), the paper's
LOSSES = ("l2", "ssim")  # msgms is a score only (a gradient magnitude has no gradient at 0)
# Calibrations of the anomaly map (anovit.scoring.calibration) and poolings of a map into an image score
# (anovit.scoring.anomaly_map.pooled_score). The first of each is the paper's (the raw map; eq. 7's max) and the
# default of runs that record none.
CALIBRATIONS = ("none", "mean", "standardise", "shrunk")
POOLINGS = ("max", "topk")
DEFAULT_SHRINKAGE = 0.5  # lam of the "shrunk" calibration
DEFAULT_TOP_PERCENT = 1.0  # q of "topk" pooling: the mean of the top q % of the map's pixels


# Smoothing sigma of the anomaly maps (px), per preset through its image size, stored in each run's
# training.json. The paper gives none. Ours: anomalib's PaDiM default, DEFAULT_SIGMA at its
# SIGMA_REFERENCE_SIZE px input, scaled with the image size so that it blurs the same share of the image
# at every size (128 px: 2, 224 px: 3.5, 384 px: 6). DEFAULT_SIGMA itself scores runs trained before
# sigma was stored (and pulled models) and is the default of anovit.scoring.anomaly_map's functions.
DEFAULT_SIGMA = 4.0
SIGMA_REFERENCE_SIZE = 256
SIGMA_SOURCE = (f"anomalib's PaDiM default (sigma {DEFAULT_SIGMA:g} px at {SIGMA_REFERENCE_SIZE} px) scaled by "
                f"image size / {SIGMA_REFERENCE_SIZE}; the paper gives none")


def default_sigma(image_size: int) -> float:
    """The Gaussian smoothing sigma (px) for anomaly maps of ``image_size`` px (see SIGMA_SOURCE)."""
    return DEFAULT_SIGMA * image_size / SIGMA_REFERENCE_SIZE


@dataclass(frozen=True)
class TrainingDefaults:
    """What a training run of a preset uses when its TrainConfig gives none."""

    lr: float  # Adam learning rate
    epochs: int
    loss: str = LOSSES[0]  # training loss (LOSSES)
    score: str = SCORE_FUNCTIONS[0]  # score function of the anomaly maps (SCORE_FUNCTIONS)
    sigma: float | None = None  # smoothing (px); None: default_sigma of the image size
    images_per_epoch: int | None = None  # augmented images per epoch; None: one pass over the training split
    image_calibration: str = CALIBRATIONS[0]  # map the image score pools (CALIBRATIONS)
    pixel_calibration: str = CALIBRATIONS[0]  # map scored per pixel and shown (CALIBRATIONS)
    calibration_shrinkage: float = DEFAULT_SHRINKAGE  # lam of "shrunk"
    pooling: str = POOLINGS[0]  # image score from the map (POOLINGS)
    pooling_top_percent: float = DEFAULT_TOP_PERCENT  # q of "topk"


# AnoViT: the authors' 2e-4 for fine-tuning ImageNet weights (paper preset); 1e-3 for the cpu-* presets,
# which train from a random init (measured on synthetic washer, 6 epochs of cpu-tiny AnoViT: image AUROC
# 0.88 at 2e-4 vs 0.92 at 1e-3). The l2-CAE: the published recipe of Bergmann et al. (2019b: Adam, lr
# 2e-4, weight decay 1e-5, 200 epochs) at every preset; at 128 px that is minutes on a 2-core CPU
# (docs/benchmark.md, "l2-CAE recipe").
# The SSIM-AE: the same recipe with the SSIM loss, scored with 1 - SSIM. cpu-tiny-masked (mask ratio 0.25,
# 40 epochs, lr 1e-3, l2 score, the size's sigma): of the candidates (mask ratio 0/0.25/0.5, 20/40 epochs,
# l2/ssim/msgms, sigma 2/4/8) on a validation copy of the synthetic set (generator seed 1), the best mean
# image AUROC among those whose mean pixel AUROC is at least the paper recipe's (benchmarks/masked_preset.py).
# cpu-default (both models, 128 px): a fixed number of augmented images per epoch (the epoch-size rule:
# 256, so a 25-image class gets 10x the paper recipe's steps and a 900-image one stays bounded) and sigma
# twice the size's, chosen on the real validation sets, seed 0 (benchmarks/validation_sets.py: AnoViT
# 10 x 256 with the calibrated image score 0.725 mean image / 0.843 mean pixel AUROC vs 0.715 / 0.828 for
# cpu-tiny's 10 passes; sigma x2 lifted pixel AUROC on 3 of 4 sets; AnoViT's epochs: _CPU_DEFAULT_EPOCHS).
# The l2-CAE: lr 5e-4 (Bergmann's 2e-4 did not converge on small splits, benchmarks/cae_recipe.py), 40 x 256.
# The SSIM-AE takes the l2-CAE's budget with its own loss and score. The scoring of cpu-default until stop 30
# (all three models; the SSIM-AE's still): the image score pools the top 5 % of the map standardised per pixel
# by the held-out normal validation maps (anovit.scoring.calibration; image AUROC 0.725 vs 0.459 with the raw
# map's max, AnoViT, seed 0), the pixel map stays raw (every calibration lowered the mean pixel AUROC: 0.843
# raw vs 0.795 standardised); since stop 31 AnoViT and the l2-CAE score as _CPU_DEFAULT_SCORING says.
# AnoViT's cpu-default budget: 45 epochs of 256 images (stop 30; before: 10). Of 10 / 30 / 45 epochs and
# 192 px at 10 epochs (seed 0, four validation sets, benchmarks/validation_sets.py, recipes anovit-e10 /
# -e30 / -default / -s192), 45 gave the best mean image and pixel AUROC and the best image AUROC on every
# set (PCB's at chance for all); its best epoch was still among the last. About 300 s of training per class
# on 2 cores (benchmarks/default_budget.py: the whole default command on 900 full-resolution photographs
# within the 10-minute budget).
_CPU_DEFAULT_EPOCHS = 45
_CAE_RECIPE = TrainingDefaults(lr=2e-4, epochs=200)
_SSIM_CAE_RECIPE = TrainingDefaults(lr=2e-4, epochs=200, loss="ssim", score="ssim")
_CPU_DEFAULT_SIGMA = 2 * default_sigma(PRESETS["cae"]["cpu-default"]["image_size"])  # twice the size's: 4 px at 128 px
# AnoViT's cpu-default since stop 32: 256 px images reconstructed from 128 px tiles (anovit.models.tiling; the
# network and its training cost per image are the 128 px model's), sigma twice the 256 px size's: 8 px. Screened on
# seed 0 (four validation sets; the stop-31 default, 128 px untiled, in the JSON as anovit-stop31): mean image / pixel
# AUROC 0.822 / 0.891 vs 0.794 / 0.872; seeds 0-2: 0.826 / 0.891 vs 0.793 / 0.872 (PCB 0.61 vs 0.49, capsules 0.82
# vs 0.77, metal plate 0.98 vs 1.00, cookies 0.90 vs 0.92: large defects lose the whole object's context; README).
# Since stop 33 the images are 384 px (5 x 5 tiles), sigma stays 8 px (no longer the size's rule, which gives 12): seed 0,
# mean image / pixel AUROC 0.857 / 0.878 at 8 px, 0.842 / 0.880 at 12, 0.824 / 0.872 at 16, vs 256 px 0.821 / 0.886;
# seeds 0-2: 0.858 / 0.885 vs 0.826 / 0.891 (PCB 0.68 vs 0.61, capsules 0.87 vs 0.82, cookies 0.91 vs 0.90, metal plate
# 0.97 vs 0.98; pixel: cookies 0.78 vs 0.83, PCB 0.91 vs 0.86); benchmarks/validation_sets.py, the 256 px default as
# anovit-stop32.
_ANOVIT_DEFAULT_SIGMA = 8.0
# The scoring of cpu-default (the l2-CAE since stop 31, AnoViT from stop 31 to 32): the l2-ssim map (per pixel the
# geometric mean of the locally averaged l2 map and 1 - SSIM); the image score pools its top 5 % minus the
# per-pixel mean of the held-out normal validation maps, the pixel map stays raw. Chosen by re-scoring the runs of seeds 0-2 on the four
# validation sets (benchmarks/validation_sets.py --study; score l2 / ssim / msgms / l2-ssim x calibration none /
# mean / standardise / shrunk 0.25-0.75 x top 0.1 / 1 / 5 / 10 %): AnoViT mean image / pixel AUROC 0.793 / 0.872
# vs 0.776 / 0.875 for stop 30's l2 map standardised (capsules 0.770 vs 0.724; the ssim map alone 0.795 / 0.789;
# l2 x ssim without the local average of l2 0.790 / 0.868); the l2-CAE 0.732 / 0.800 vs 0.710 / 0.781.
_CPU_DEFAULT_SCORING = dict(score="l2-ssim", image_calibration="mean", pixel_calibration="none", pooling="topk",
                            pooling_top_percent=5.0)
# AnoViT's image score since stop 33 (the 384 px default): the top 1 % of the map standardised per pixel with the
# variance shrunk halfway towards its mean ("shrunk", lam 0.5), re-studied on the 384 px runs of seeds 0-2: mean image
# AUROC 0.865 vs 0.858 for the top 5 % minus the mean, worst set (PCB) 0.767 vs 0.675 (capsules 0.819 vs 0.873,
# cookies 0.917 vs 0.914, metal plate 0.956 vs 0.971); shrunk 0.25 / 0.75 at 1 % give 0.864. The l2-CAE keeps
# _CPU_DEFAULT_SCORING (its study: 0.732 vs 0.712 for shrunk 0.5 / top 1 %).
_ANOVIT_DEFAULT_SCORING = {**_CPU_DEFAULT_SCORING, "image_calibration": "shrunk", "calibration_shrinkage": 0.5,
                           "pooling_top_percent": 1.0}
_CAE_DEFAULT = TrainingDefaults(lr=5e-4, epochs=40, images_per_epoch=256, sigma=_CPU_DEFAULT_SIGMA, **_CPU_DEFAULT_SCORING)
TRAINING_DEFAULTS: dict[str, dict[str, TrainingDefaults]] = {
    "anovit": {
        "cpu-tiny": TrainingDefaults(lr=1e-3, epochs=10),
        "cpu-small": TrainingDefaults(lr=1e-3, epochs=10),
        "paper": TrainingDefaults(lr=2e-4, epochs=10),
        "cpu-tiny-masked": TrainingDefaults(lr=1e-3, epochs=40),
        "cpu-default": TrainingDefaults(lr=1e-3, epochs=_CPU_DEFAULT_EPOCHS, images_per_epoch=256,
                                        sigma=_ANOVIT_DEFAULT_SIGMA, **_ANOVIT_DEFAULT_SCORING),
    },
    "cae": {**{preset: _CAE_RECIPE for preset in PRESETS["cae"]}, "cpu-default": _CAE_DEFAULT},
    "ssim-cae": {**{preset: _SSIM_CAE_RECIPE for preset in PRESETS["ssim-cae"]},
                 # its own loss and score, scored as cpu-default was before stop 31 (not re-chosen)
                 "cpu-default": replace(_CAE_DEFAULT, loss="ssim", score="ssim", image_calibration="standardise")},
}

def _check(name: str, choices: Any, what: str) -> None:
    if name not in choices:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(choices)}")


def make_config(model: str, preset: str = "cpu-tiny", **overrides: Any) -> Any:
    """The config dataclass of ``model`` for ``preset``, with ``overrides`` (None values ignored)."""
    _check(model, MODELS, "model")
    _check(preset, PRESETS[model], f"preset for {model}")
    config_cls, _ = MODELS[model]
    known = {f.name for f in fields(config_cls)}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"{model} config has no field(s) {sorted(unknown)}; fields are {sorted(known)}")
    merged = {**PRESETS[model][preset], **overrides}
    if "tile_size" not in overrides and merged.get("tile_size") and merged["tile_size"] >= merged["image_size"]:
        merged["tile_size"] = None  # a preset's tiles apply to images larger than one tile (--image-size 128: untiled)
    return config_cls(**merged)


def training_defaults(model: str, preset: str) -> TrainingDefaults:
    """The learning rate and epochs of ``model`` at ``preset`` when none are given."""
    _check(model, TRAINING_DEFAULTS, "model")
    _check(preset, TRAINING_DEFAULTS[model], f"preset for {model}")
    return TRAINING_DEFAULTS[model][preset]


def describe_training_default(field: str) -> str:
    """One line listing ``field`` ("lr", "epochs", "images_per_epoch") per model and preset, for help texts:
    ``"AnoViT: cpu-tiny 0.001, ...; l2-CAE: 0.0002 at every preset"`` (None shown as "none")."""
    show = lambda v: "none" if v is None else f"{v:g}"
    parts = []
    for model, presets in TRAINING_DEFAULTS.items():
        values = {preset: getattr(d, field) for preset, d in presets.items()}
        if len(set(values.values())) == 1:
            parts.append(f"{MODEL_LABELS[model]}: {show(next(iter(values.values())))} at every preset")
        else:
            parts.append(f"{MODEL_LABELS[model]}: " + ", ".join(f"{p} {show(v)}" for p, v in values.items()))
    return "; ".join(parts)


def build_model(model: str, config: Any) -> nn.Module:
    """Instantiate ``model`` from its config dataclass."""
    _check(model, MODELS, "model")
    return MODELS[model][1](config)


def create_model(model: str, preset: str = "cpu-tiny", **overrides: Any) -> nn.Module:
    """Create ``model`` ("anovit", "cae" or "ssim-cae") from a preset with optional config overrides."""
    return build_model(model, make_config(model, preset, **overrides))


def config_to_dict(model: nn.Module) -> dict[str, Any]:
    """The serialisable description of a model: its type and config fields."""
    return {"model_type": model.model_type, **asdict(model.config)}


def config_from_dict(data: Any) -> tuple[str, Any]:
    """Inverse of :func:`config_to_dict`; raises ConfigError (a ValueError) naming an unknown field or a
    bad value (checked by the config dataclass), or when ``data`` is not an object."""
    if not isinstance(data, dict):
        raise ConfigError(f"must hold a JSON object of model config fields; got {type(data).__name__}")
    data = dict(data)
    model = data.pop("model_type", None)
    if model not in MODELS:
        raise ConfigError(f"field 'model_type' must be one of {sorted(MODELS)}; got {model!r}")
    config_cls = MODELS[model][0]
    known = {f.name for f in fields(config_cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{model} config has unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
    return model, config_cls(**data)


__all__ = [
    "AnoViT", "AnoViTConfig", "L2CAE", "L2CAEConfig", "SSIMCAE", "SCORE_FUNCTIONS", "LOSSES", "CALIBRATIONS", "POOLINGS",
    "DEFAULT_SHRINKAGE", "DEFAULT_TOP_PERCENT", "MODELS", "PRESETS", "MODEL_LABELS", "TRAINING_DEFAULTS",
    "TrainingDefaults", "training_defaults", "describe_training_default", "DEFAULT_SIGMA", "SIGMA_SOURCE", "default_sigma",
    "make_config", "build_model", "create_model", "config_to_dict", "config_from_dict",
]
