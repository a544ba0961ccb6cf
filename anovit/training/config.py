"""What a training run depends on: :class:`TrainConfig` (saved as training.json in the run folder),
its field checks and its defaults (owned by the model presets, the dataset's flip rule and the split)."""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..runs.record import verbatim_json
from ..data.augment import AugmentConfig
from ..data import ALL_CLASSES, category_kind, dataset_spec, default_augment, fixed_classes, supports_all_classes
from ..data.registry import ONE_CLASS
from ..data.splits import DEFAULT_VAL_FRACTION
from ..utils.errors import CheckpointError, ConfigError
from ..models import (CALIBRATIONS, LOSSES, MODELS, POOLINGS, PRESETS, SCORE_FUNCTIONS, default_sigma, make_config,
                     training_defaults)
from ..models.cae import L2CAEConfig, latent_dim_for
from ..utils.validation import absolute_path, check_bool, check_number, check_optional_number, check_str

# What training writes into training.json beside the request: "precision", the bf16 request resolved
# at the start ("bf16" / "fp32", anovit.runs.record.RunRecord.precision), and for a unified run
# "classes", the class folders it trained on (category "all", anovit.data.unified). Not part of the config.
RECORDED_FIELDS = ("precision", "classes")


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as training.json in the run folder)."""

    dataset: str = "synthetic"
    category: str = "weave"
    data_root: str | None = None
    model: str = "anovit"
    preset: str = "cpu-default"  # the best CPU recipe on the real validation sets (issue 23)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # None: the preset's (anovit.models.TRAINING_DEFAULTS)
    batch_size: int = 16
    lr: float | None = None  # None: the preset's (anovit.models.TRAINING_DEFAULTS)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-5
    val_fraction: float = DEFAULT_VAL_FRACTION
    # Max l2 norm of all gradients (None: off). Typical norms are 0.1-0.5, so it only acts on spikes;
    # without it one of nine 10-epoch l2-CAE runs on synthetic (weave, seed 1) blew up in epoch 2.
    grad_clip: float | None = 1.0
    # Cap on the training split (seeded subsample; validation capped in the same proportion); None:
    # every image. For CPU-sized reproductions such as the offline MNIST Table 2.
    max_train_images: int | None = None
    # Epoch-size rule: augmented images drawn per epoch (whole shuffled passes over the training split,
    # then a random part of one), so a 25-image class still gets enough steps and a 900-image one stays
    # bounded; None: the preset's (TRAINING_DEFAULTS), where None is one pass over the split.
    images_per_epoch: int | None = None
    # Gaussian smoothing of the score maps (px) the run is evaluated with; None: models.default_sigma
    # of the model's image size (see models.SIGMA_SOURCE).
    sigma: float | None = None
    # Training loss and the score function of the anomaly maps (models.LOSSES, models.SCORE_FUNCTIONS);
    # None: the preset's (TRAINING_DEFAULTS; "l2", the paper's, except for ssim-cae).
    # Runs recorded before these fields were l2 throughout (anovit.runs.record.TrainingRecord.score).
    loss: str | None = None
    score: str | None = None
    # Calibration of the anomaly map for the image score and for the pixel map (models.CALIBRATIONS; see
    # anovit.scoring.calibration), the shrinkage of "shrunk", and the pooling of the image score (models.POOLINGS)
    # with its top percent; None: the preset's (TRAINING_DEFAULTS). Runs recorded before these fields were
    # raw maps scored by their max (eq. 7).
    image_calibration: str | None = None
    pixel_calibration: str | None = None
    calibration_shrinkage: float | None = None
    pooling: str | None = None
    pooling_top_percent: float | None = None
    augment: AugmentConfig | None = None  # None: anovit.data.default_augment (the dataset's flip rule)
    bf16: bool | None = None
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        """Check every field (ConfigError naming it) and fill the defaults that depend on others.

        ``data_root`` is stored resolved (absolute), so the run works from any directory.
        """
        from ..data import DATASETS

        check_str("dataset", self.dataset, choices=DATASETS)
        check_str("category", self.category)
        classes = fixed_classes(self.dataset)
        if self.category == ALL_CLASSES and not supports_all_classes(self.dataset):
            raise ConfigError(f"field 'category' '{ALL_CLASSES}' (one model for every class) needs a dataset with "
                              f"class folders; dataset '{self.dataset}' has none")
        if classes is not None and self.category not in classes and self.category != ALL_CLASSES:
            names = dataset_spec(self.dataset).class_names or classes
            named = "" if tuple(names) == classes else " (" + ", ".join(f"{c}: {n}" for c, n in zip(classes, names)) + ")"
            raise ConfigError(f"field 'category' must be one of {list(classes)}{named} for dataset '{self.dataset}'; "
                              f"got {self.category!r}")
        check_str("data_root", self.data_root, optional=True)
        self.data_root = absolute_path(self.data_root)
        check_str("model", self.model, choices=MODELS)
        check_str("preset", self.preset, choices=PRESETS[self.model])
        if not isinstance(self.model_overrides, dict):
            raise ConfigError(f"field 'model_overrides' must be an object; got {self.model_overrides!r}")
        check_optional_number("epochs", self.epochs, integer=True, minimum=1)
        check_number("batch_size", self.batch_size, integer=True, minimum=1)
        check_optional_number("lr", self.lr, minimum=0, min_open=True)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise ConfigError(f"field 'betas' must be a list of two numbers in [0, 1); got {self.betas!r}")
        self.betas = tuple(check_number("betas", b, minimum=0, maximum=1, max_open=True) for b in self.betas)
        check_number("weight_decay", self.weight_decay, minimum=0)
        check_number("val_fraction", self.val_fraction, minimum=0, maximum=1, min_open=True, max_open=True)
        check_optional_number("grad_clip", self.grad_clip, minimum=0, min_open=True)
        check_optional_number("sigma", self.sigma, minimum=0)
        check_optional_number("max_train_images", self.max_train_images, integer=True, minimum=1)
        check_optional_number("images_per_epoch", self.images_per_epoch, integer=True, minimum=1)
        check_bool("bf16", self.bf16, optional=True)
        check_str("device", self.device)
        check_str("loss", self.loss, optional=True, choices=LOSSES)
        check_str("score", self.score, optional=True, choices=SCORE_FUNCTIONS)
        check_str("image_calibration", self.image_calibration, optional=True, choices=CALIBRATIONS)
        check_str("pixel_calibration", self.pixel_calibration, optional=True, choices=CALIBRATIONS)
        check_optional_number("calibration_shrinkage", self.calibration_shrinkage, minimum=0, maximum=1)
        check_str("pooling", self.pooling, optional=True, choices=POOLINGS)
        check_optional_number("pooling_top_percent", self.pooling_top_percent, minimum=0, maximum=100, min_open=True)
        check_number("seed", self.seed, integer=True, minimum=0)
        if self.augment is not None and not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"field 'augment' must be an augmentation config; got {self.augment!r}")
        defaults = training_defaults(self.model, self.preset)
        if self.epochs is None:
            self.epochs = defaults.epochs
        if self.lr is None:
            self.lr = defaults.lr
        if self.images_per_epoch is None:
            self.images_per_epoch = defaults.images_per_epoch
        if self.augment is None:
            self.augment = default_augment(self.dataset, self.category)
        if self.loss is None:
            self.loss = defaults.loss
        if self.score is None:
            self.score = defaults.score
        for name in ("image_calibration", "pixel_calibration", "calibration_shrinkage", "pooling", "pooling_top_percent"):
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
