"""What a training run depends on: :class:`TrainConfig` (saved as training.json in the run folder),
its field checks and its defaults (owned by the model presets, the dataset's flip rule and the split)."""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..runs.record import SCORING_FIELDS, verbatim_json
from ..data.augment import AugmentConfig
from ..data import (ALL_CLASSES, DATASETS, category_kind, dataset_spec, default_augment, fixed_classes,
                   supports_all_classes)
from ..data.registry import ONE_CLASS
from ..data.splits import DEFAULT_VAL_FRACTION
from ..utils.errors import CheckpointError, ConfigError
from ..models import (CALIBRATIONS, LOSSES, MODELS, POOLINGS, PRESETS, SCORE_FUNCTIONS, SIGMA_SOURCE, default_sigma,
                     describe_training_default, make_config, training_defaults)
from ..models.cae import L2CAEConfig, latent_dim_for
from .schedule import LR_SCHEDULES
from ..utils.settings import Form, Setting, check_settings, setting
from ..utils.validation import absolute_path, check_number, check_str

# What training writes into training.json beside the request: "precision", the bf16 request resolved
# at the start ("bf16" / "fp32", anovit.runs.record.RunRecord.precision), and for a unified run
# "classes", the class folders it trained on (category "all", anovit.data.unified). Not part of the config.
RECORDED_FIELDS = ("precision", "classes")
# A unified run (category "all") draws this many times the preset's images per class and epoch when
# images_per_epoch is not given: one model shares its capacity between the classes (issue 26; chosen on the
# validation sets with benchmarks/unified.py, seed 0: mean image AUROC 0.749 unified vs 0.726 per-class at
# 1.5x, 0.665 vs 0.724 at 1x), within the 2x time budget of the summed per-class runs.
UNIFIED_BUDGET = 1.5


PRESET_NAMES = tuple(sorted({preset for presets in PRESETS.values() for preset in presets}))
_SCORING_DEFAULT = "the preset's; none and max for the paper's presets"


def _check_object(name: str, value: Any, spec: Setting) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"field '{name}' must be an object; got {value!r}")
    return value


def _check_pair(name: str, value: Any, spec: Setting) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"field '{name}' must be a list of two numbers in {spec.interval()}; got {value!r}")
    return tuple(check_number(name, v, **spec.bounds) for v in value)


def _check_augment(name: str, value: Any, spec: Setting) -> AugmentConfig:
    if not isinstance(value, AugmentConfig):
        raise ConfigError(f"field '{name}' must be an augmentation config; got {value!r}")
    return value


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as training.json in the run folder).

    Each field is a setting (:func:`anovit.utils.settings.setting`): its type, default, bounds, choices, help,
    command-line flag and form widget are declared here once; the checks below, ``train``'s flags, the Train
    page's form and the printed config come from them. None: resolved in ``__post_init__`` (mostly the
    preset's, :data:`anovit.models.TRAINING_DEFAULTS`).
    """

    dataset: str = setting("synthetic", "dataset name", choices=DATASETS)
    category: str = setting(
        "weave", "class / category",
        default_text="the dataset's first class, e.g. weave for synthetic and 0 for mnist; required where the "
        "categories are the folders under --data-root; 'all': one model for every class folder, evaluated per class")
    data_root: str | None = setting(None, "dataset folder (MVTec layout for mvtec/folder datasets)")
    model: str = setting("anovit", "anovit (ViT encoder + conv decoder), cae (the l2-CAE baseline) or ssim-cae "
                         "(the SSIM-AE)", choices=MODELS)
    # cpu-default: the best CPU recipe on the real validation sets (issue 23)
    preset: str = setting("cpu-default", "model size and image size: cpu-* run on a laptop CPU, paper is the paper's "
                          "ViT-B/16; cpu-tiny-masked: AnoViT only", choices=PRESET_NAMES)
    model_overrides: dict[str, Any] = setting(
        help="model config fields changed from the preset's (the model flags: --image-size, --encoder, ...)",
        default_factory=dict, flag=None, check=_check_object)
    epochs: int | None = setting(None, "epochs", minimum=1, form=Form("Epochs", maximum=1000),
                                 default_text=f"the preset's; {describe_training_default('epochs')}")
    batch_size: int = setting(16, "training images per step", minimum=1, form=Form("Batch size", maximum=512))
    lr: float | None = setting(None, "Adam learning rate", minimum=0, min_open=True,
                               default_text=f"the preset's; {describe_training_default('lr')}",
                               form=Form("Learning rate", 1e-6, 1e-1, "%.1e"))
    # Runs recorded before this field trained at a constant lr, the default.
    lr_schedule: str = setting(LR_SCHEDULES[0], "learning-rate schedule: constant, or cosine (annealed from --lr to 0 "
                               "over all steps)", choices=LR_SCHEDULES)
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam's beta1 and beta2", minimum=0, maximum=1, max_open=True,
                                         flag=None, check=_check_pair)
    weight_decay: float = setting(1e-5, "Adam's weight decay", minimum=0, flag=None)
    val_fraction: float = setting(DEFAULT_VAL_FRACTION, "share of the normal training images held out for best-epoch "
                                  "selection and the decision threshold", minimum=0, maximum=1, min_open=True,
                                  max_open=True)
    # Typical norms are 0.1-0.5, so it only acts on spikes; without it one of nine 10-epoch l2-CAE runs on
    # synthetic (weave, seed 1) blew up in epoch 2.
    grad_clip: float | None = setting(1.0, "max l2 norm of the gradients", minimum=0, min_open=True,
                                      note="0: no clipping", off=0)
    # For CPU-sized reproductions such as the offline MNIST Table 2.
    max_train_images: int | None = setting(None, "cap on the training split (seeded subsample; validation capped in "
                                           "the same proportion; none: every image)", minimum=1, flag=None)
    # The epoch-size rule: whole shuffled passes over the training split, then a random part of one, so a
    # 25-image class still gets enough steps and a 900-image one stays bounded.
    images_per_epoch: int | None = setting(
        None, "augmented images drawn per epoch", minimum=1, note="repeats a small training split, bounds a large one",
        default_text=f"the preset's, {describe_training_default('images_per_epoch')}; none: one pass over the split; "
        f"per class and {UNIFIED_BUDGET:g}x the preset's for --category all")
    sigma: float | None = setting(None, "Gaussian smoothing of the anomaly maps in px, stored with the run", minimum=0,
                                  note="0: no smoothing", default_text=SIGMA_SOURCE)
    # Runs recorded before loss and score were l2 throughout (anovit.runs.record.TrainingRecord.score).
    loss: str | None = setting(None, "training loss", choices=LOSSES,
                               default_text="the model's; ssim for ssim-cae, else l2")
    score: str | None = setting(
        None, "score function of the anomaly maps, stored with the run", choices=SCORE_FUNCTIONS,
        default_text="the preset's: ssim for ssim-cae, l2-ssim for the other models' cpu-default, else l2, eq. 6",
        form=Form("Score function", details="l2: eq. (6), the paper's; ssim: 1 - local SSIM (SSIM-AE); msgms: 1 - "
                  "multi-scale gradient magnitude similarity (RIAD, InTra); l2-ssim: sqrt(l2 x (1 - SSIM)), "
                  "cpu-default's"))
    # Calibration (anovit.scoring.calibration) and pooling of the anomaly map. Runs recorded before these fields
    # were raw maps scored by their max (eq. 7).
    image_calibration: str | None = setting(
        None, "map the image score pools: none (raw, the paper's), mean (minus the per-pixel mean of normal validation "
        "maps), standardise (and divided by their std) or shrunk (std shrunk towards one global spread)",
        choices=CALIBRATIONS, default_text=_SCORING_DEFAULT)
    pixel_calibration: str | None = setting(None, "map scored per pixel and shown, same choices", choices=CALIBRATIONS,
                                            default_text=_SCORING_DEFAULT)
    calibration_shrinkage: float | None = setting(None, "weight of the global spread in the shrunk calibration",
                                                  minimum=0, maximum=1, default_text=_SCORING_DEFAULT)
    pooling: str | None = setting(None, "image score from the map: max (eq. 7) or topk (the mean of the top "
                                  "--pooling-top-percent of its pixels)", choices=POOLINGS,
                                  default_text=_SCORING_DEFAULT)
    pooling_top_percent: float | None = setting(None, "share of the map's pixels topk pooling averages, in percent",
                                                minimum=0, maximum=100, min_open=True, default_text=_SCORING_DEFAULT)
    augment: AugmentConfig | None = setting(
        None, "random augmentation of the training images (the flags --no-affine, --no-flip)", flag=None,
        check=_check_augment, default_text="the dataset's flip rule, anovit.data.default_augment")
    bf16: bool | None = setting(None, "bf16 autocast", default_text="where supported")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...")
    seed: int = setting(0, "seed of the initialisation, the validation split and the augmentations", minimum=0,
                        form=Form("Seed", maximum=10_000))

    def __post_init__(self) -> None:
        """Check every field (ConfigError naming it) and fill the defaults that depend on others.

        ``data_root`` is stored resolved (absolute), so the run works from any directory.
        """
        check_settings(self)
        classes = fixed_classes(self.dataset)
        if self.category == ALL_CLASSES and not supports_all_classes(self.dataset):
            raise ConfigError(f"field 'category' '{ALL_CLASSES}' (one model for every class) needs a dataset with "
                              f"class folders; dataset '{self.dataset}' has none")
        if classes is not None and self.category not in classes and self.category != ALL_CLASSES:
            names = dataset_spec(self.dataset).class_names or classes
            named = "" if tuple(names) == classes else " (" + ", ".join(f"{c}: {n}" for c, n in zip(classes, names)) + ")"
            raise ConfigError(f"field 'category' must be one of {list(classes)}{named} for dataset '{self.dataset}'; "
                              f"got {self.category!r}")
        self.data_root = absolute_path(self.data_root)
        check_str("preset", self.preset, choices=PRESETS[self.model])
        defaults = training_defaults(self.model, self.preset)
        if self.epochs is None:
            self.epochs = defaults.epochs
        if self.lr is None:
            self.lr = defaults.lr
        if self.images_per_epoch is None:
            self.images_per_epoch = defaults.images_per_epoch
            if self.category == ALL_CLASSES and self.images_per_epoch is not None:
                self.images_per_epoch = round(UNIFIED_BUDGET * self.images_per_epoch)
        if self.augment is None:
            self.augment = default_augment(self.dataset, self.category)
        if self.loss is None:
            self.loss = defaults.loss
        if self.score is None:
            self.score = defaults.score
        for name in SCORING_FIELDS:  # the calibration and pooling a run records (runs.record.ScoringRecipe)
            if getattr(self, name) is None:
                setattr(self, name, getattr(defaults, name))
        if self.sigma is None:
            self.sigma = defaults.sigma if defaults.sigma is not None else default_sigma(model_config(self).image_size)

    def run_name(self) -> str:
        """Default folder name of the run under checkpoints/: <dataset>-<category>-<model>-<preset>-s<seed>,
        then, when a data root is given, "-d" and 6 hex digits of its resolved path's SHA-1, so runs on two
        data roots with the same category keep their own folders (runs without one keep the short name)."""
        name = f"{self.dataset}-{self.category}-{self.model}-{self.preset}-s{self.seed}"
        if self.data_root is None:
            return name
        return f"{name}-d{hashlib.sha1(self.data_root.encode()).hexdigest()[:6]}"

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (what the CLI and the app offer first); KeyError if none."""
        value = cls.__dataclass_fields__[name].default
        if value is MISSING or value is None:
            raise KeyError(f"TrainConfig.{name} has no fixed default")
        return value

    @classmethod
    def from_dict(cls, data: Any) -> "TrainConfig":
        """Inverse of ``asdict``; ConfigError naming the field for an unknown field or a bad value."""
        if not isinstance(data, dict):
            raise ConfigError(f"must hold a JSON object of training fields; got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in RECORDED_FIELDS}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown field(s) {unknown}; expected some of {sorted(cls.__dataclass_fields__)}")
        data = dict(data)
        augment = data.get("augment")
        if augment is not None:
            known = set(AugmentConfig.__dataclass_fields__)
            if not isinstance(augment, dict) or set(augment) - known:
                raise ConfigError(f"field 'augment' must be an object with some of {sorted(known)}; got {augment!r}")
            data["augment"] = AugmentConfig(**augment)
        return cls(**data)


def load_training(run_dir: Path) -> TrainConfig:
    """The run's training.json as a checked :class:`TrainConfig`; CheckpointError naming the file and field."""
    path = Path(run_dir) / ckpt.TRAINING
    try:
        return TrainConfig.from_dict(verbatim_json(run_dir, ckpt.TRAINING))
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from err


def paper_setting(model: str, preset: str, dataset: str) -> dict[str, Any]:
    """What the paper preset takes from the dataset (sec. 4.1): 224 px for the one-class sets (MNIST,
    CIFAR-10; AnoViT: ``vit_base_patch16_224``), 384 px for MVTec AD and the other image-folder sets
    (AnoViT: ``vit_base_patch16_384``); {} for the other presets."""
    if preset != "paper":
        return {}
    size = 224 if dataset_spec(dataset).layout == ONE_CLASS else 384
    return {"image_size": size, **({"encoder": f"vit_base_patch16_{size}"} if model == "anovit" else {})}


def model_config(config: TrainConfig) -> Any:
    """The model config a run trains: the preset's, the paper preset's size for the dataset
    (:func:`paper_setting`), the category kind's l2-CAE latent size (Bergmann et al.: 100 for
    textures, 500 for objects; 100 where the kind is unknown), then ``config.model_overrides``."""
    by_data = paper_setting(config.model, config.preset, config.dataset)
    if MODELS[config.model][0] is L2CAEConfig:  # the l2-CAE and the SSIM-AE
        by_data["latent_dim"] = latent_dim_for(category_kind(config.dataset, config.category))
    return make_config(config.model, config.preset, **{**by_data, **config.model_overrides})
