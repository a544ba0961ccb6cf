"""One trainer for AnoViT and the l2-CAE: l2 loss (eq. 1) on normal images, Adam with gradient-norm
clipping, the paper's augmentations (per batch, on the device), a validation split with best-epoch
selection, bf16 autocast where supported, a progress callback, an atomic checkpoint every epoch
and resume after a kill.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from . import checkpoint as ckpt
from .augment import AugmentConfig, build_augmentation
from .data import category_kind, dataset_spec, default_augment, train_val_datasets
from .data.registry import ONE_CLASS
from .data.splits import DEFAULT_VAL_FRACTION, subsample
from .errors import CheckpointError, ConfigError, TrainingError
from .models import MODELS, PRESETS, build_model, default_sigma, make_config, training_defaults
from .models.cae import latent_dim_for
from .run_lock import run_lock
from .runs import default_checkpoint_dir
from .runtime import autocast, resolve_device, use_bf16
from .scoring import reconstruction_loss
from .validation import absolute_path, check_bool, check_number, check_optional_number, check_str

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as training.json in the run folder)."""

    dataset: str = "synthetic"
    category: str = "weave"
    data_root: str | None = None
    model: str = "anovit"
    preset: str = "cpu-tiny"
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
    # Gaussian smoothing of the score maps (px) the run is evaluated with; None: models.default_sigma
    # of the model's image size (see models.SIGMA_SOURCE).
    sigma: float | None = None
    augment: AugmentConfig | None = None  # None: anovit.data.default_augment (the dataset's flip rule)
    bf16: bool | None = None
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        """Check every field (ConfigError naming it) and fill the defaults that depend on others.

        ``data_root`` is stored resolved (absolute), so the run works from any directory.
        """
        from .data import DATASETS

        check_str("dataset", self.dataset, choices=DATASETS)
        check_str("category", self.category)
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
        check_optional_number("max_train_images", self.max_train_images, integer=True, minimum=1)
        check_bool("bf16", self.bf16, optional=True)
        check_str("device", self.device)
        check_number("seed", self.seed, integer=True, minimum=0)
        if self.augment is not None and not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"field 'augment' must be an augmentation config; got {self.augment!r}")
        defaults = training_defaults(self.model, self.preset)
        if self.epochs is None:
            self.epochs = defaults.epochs
        if self.lr is None:
            self.lr = defaults.lr
        if self.augment is None:
            self.augment = default_augment(self.dataset, self.category)
        if self.sigma is None:
            self.sigma = default_sigma(model_config(self).image_size)

    def run_name(self) -> str:
        """Default folder name of the run under checkpoints/."""
        return f"{self.dataset}-{self.category}-{self.model}-{self.preset}-s{self.seed}"

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
        return TrainConfig.from_dict(ckpt.read_json(path))
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from err


@dataclass
class TrainResult:
    """Where the run lives and how it went."""

    run_dir: Path
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]]
    stopped: bool = False


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    state = opt.state_dict()
    tensors = {f"optim.{i}.{k}": v for i, s in state["state"].items() for k, v in s.items()}
    return tensors, json.dumps(state["param_groups"])


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: str) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": json.loads(groups)})


def save_resume_point(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """One safetensors file holding model, optimiser and RNG state; epoch and history as metadata."""
    tensors, groups = _optimizer_tensors(opt)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    ckpt.save_tensors(run_dir / ckpt.RESUME, tensors, {"param_groups": groups, "meta": json.dumps(meta)})


def load_resume_point(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore what :func:`save_resume_point` wrote and return its metadata."""
    from safetensors import safe_open

    path = run_dir / ckpt.RESUME
    tensors = ckpt.load_tensors(path)
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    if "meta" not in metadata or "param_groups" not in metadata:
        raise CheckpointError(f"{path} has no resume metadata (epoch, optimiser groups)")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ckpt.load_state_checked(model, model_state, path)
    _load_optimizer(opt, {k: v for k, v in tensors.items() if k.startswith("optim.")}, metadata["param_groups"])
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(metadata["meta"])


def paper_setting(model: str, preset: str, dataset: str) -> dict[str, Any]:
    """What the paper preset takes from the dataset (sec. 4.1): 224 px for the one-class sets (MNIST,
    CIFAR-10; AnoViT: ``vit_base_patch16_224``), 384 px for MVTec AD and the other image-folder sets
    (AnoViT: ``vit_base_patch16_384``); {} for the other presets."""
    if preset != "paper":
        return {}
    size = 224 if dataset_spec(dataset).layout == ONE_CLASS else 384
    return {"image_size": size, **({"encoder": f"vit_base_patch16_{size}"} if model == "anovit" else {})}


def model_config(config: "TrainConfig") -> Any:
    """The model config a run trains: the preset's, the paper preset's size for the dataset
    (:func:`paper_setting`), the category kind's l2-CAE latent size (Bergmann et al.: 100 for
    textures, 500 for objects; 100 where the kind is unknown), then ``config.model_overrides``."""
    by_data = paper_setting(config.model, config.preset, config.dataset)
    if config.model == "cae":
        by_data["latent_dim"] = latent_dim_for(category_kind(config.dataset, config.category))
    return make_config(config.model, config.preset, **{**by_data, **config.model_overrides})


def _check_run_dir(run_dir: Path, config: TrainConfig, resume: bool, overwrite: bool) -> bool:
    """Decide whether to resume; refuse to silently overwrite or to resume another config."""
    has_resume = (run_dir / ckpt.RESUME).is_file()
    if resume and not has_resume:
        raise CheckpointError(f"cannot resume {run_dir}: it holds no run to continue ({ckpt.RESUME} is missing); "
                              "drop --resume to start a new run there")
    if resume:
        saved = ckpt.read_json(run_dir / ckpt.TRAINING)
        mine = json.loads(json.dumps(asdict(config)))
        diff = sorted(k for k in mine if k != "epochs" and k in saved and saved[k] != mine[k])  # new fields: no diff
        if diff:
            raise CheckpointError(f"cannot resume {run_dir}: training.json differs in {diff}")
        if mine["epochs"] != saved.get("epochs"):  # an explicit new budget: the record follows it
            ckpt.write_json(run_dir / ckpt.TRAINING, {**saved, "epochs": mine["epochs"]})
        return True
    if has_resume and not overwrite and not resume:
        raise CheckpointError(
            f"{run_dir} already holds a run: continue it with --resume (add --epochs N to train it up to N epochs), "
            "start it over with --overwrite, or choose another --output"
        )
    return False


def default_run_dir(config: TrainConfig) -> Path:
    """Where a run goes without an explicit folder: <checkpoints folder>/<config.run_name()>."""
    return default_checkpoint_dir() / config.run_name()


def recorded_epochs(run_dir: Path) -> int | None:
    """The epochs a run folder's training.json records (None without one): a resume without a new
    budget trains up to them, never to a default."""
    path = Path(run_dir) / ckpt.TRAINING
    return int(ckpt.read_json(path)["epochs"]) if path.is_file() else None


def _val_loss(model: nn.Module, loader: DataLoader, device: torch.device, bf16: bool) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            images = batch["image"].to(device)
            with autocast(device, bf16):
                recon = model(images)
            total += reconstruction_loss(images, recon).item() * len(images)
            count += len(images)
    return total / max(count, 1)


def train(
    config: TrainConfig,
    run_dir: Path | str | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``config.model`` on the normal images of ``config.dataset``/``config.category``.

    Writes into ``run_dir`` (default ``<checkpoints folder>/<config.run_name()>``, the folder of
    :func:`anovit.runs.default_checkpoint_dir`): ``config.json``, ``training.json``,
    ``model.safetensors`` (best validation epoch), ``metrics.json`` (history) and
    ``resume.safetensors`` (last epoch), holding the folder's lock (:mod:`anovit.run_lock`) throughout.
    ``progress`` receives dicts with ``event`` "step" or "epoch"; ``should_stop`` is polled after
    each step to cancel cleanly at the next epoch end. Raises RunLockedError when another process
    trains into ``run_dir``, TrainingError at the first non-finite loss.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    with run_lock(run_dir):
        return _train_locked(config, run_dir, resume, overwrite, progress, should_stop)


def _diverged(config: TrainConfig, loss: float, epoch: int, step: int, steps: int, bf16: bool,
              best_epoch: int) -> TrainingError:
    """The one-line error for a non-finite loss, naming where it happened and the knobs to turn."""
    clip = f"grad clip {config.grad_clip:g}" if config.grad_clip is not None else "no grad clip"
    kept = (f"the checkpoint of epoch {best_epoch} is kept" if best_epoch else "no weights were saved")
    return TrainingError(
        f"training diverged: the loss is {loss} at epoch {epoch}, step {step}/{steps} (lr {config.lr:g}, {clip}, "
        f"{'bf16' if bf16 else 'float32'}); lower --lr, set --grad-clip (e.g. 1.0) or train in float32 "
        f"(--no-bf16); {kept}"
    )


def _train_locked(config: TrainConfig, run_dir: Path, resume: bool, overwrite: bool, progress: Progress | None,
                  should_stop: Callable[[], bool] | None) -> TrainResult:
    """:func:`train` once the run folder's lock is held."""
    resuming = _check_run_dir(run_dir, config, resume, overwrite)
    notify = progress or (lambda event: None)
    device = resolve_device(config.device)
    bf16 = use_bf16(device, config.bf16)
    torch.manual_seed(config.seed)

    model_cfg = model_config(config)
    model = build_model(config.model, model_cfg).to(device)
    train_set, val_set = train_val_datasets(
        config.dataset, category=config.category, image_size=model_cfg.image_size,
        root=config.data_root, val_fraction=config.val_fraction, seed=config.seed,
    )
    if config.max_train_images is not None:
        val_cap = max(1, math.ceil(config.max_train_images * config.val_fraction / (1 - config.val_fraction)))
        train_set = subsample(train_set, config.max_train_images, config.seed)
        val_set = subsample(val_set, val_cap, config.seed)
    loader_rng = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=len(train_set) > config.batch_size, generator=loader_rng)
    val_loader = DataLoader(val_set, batch_size=config.batch_size)
    augment = build_augmentation(config.augment)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)

    history: list[dict[str, float]] = []
    best_epoch, best_val, start = 0, float("inf"), 1
    if resuming:
        meta = load_resume_point(run_dir, model, opt)
        history, best_epoch, best_val, start = meta["history"], meta["best_epoch"], meta["best_val_loss"], meta["epoch"] + 1
        if config.epochs < meta["epoch"]:
            raise CheckpointError(f"cannot resume {run_dir} to {config.epochs} epochs: it has trained {meta['epoch']}")
    else:
        for stale in (ckpt.WEIGHTS, ckpt.RESUME):  # of an overwritten run
            (run_dir / stale).unlink(missing_ok=True)
        ckpt.write_json(run_dir / ckpt.TRAINING, asdict(config))
        ckpt.write_json(run_dir / ckpt.CONFIG, ckpt.config_to_dict(model))  # weights come with the first epoch
        ckpt.write_json(run_dir / ckpt.METRICS, {})

    stopped = False
    steps = len(train_loader)
    for epoch in range(start, config.epochs + 1):
        model.train()
        loader_rng.manual_seed(config.seed * 100_003 + epoch)  # per-epoch order: a resumed run repeats it
        t0, seen, running = time.perf_counter(), 0, 0.0
        for step, batch in enumerate(train_loader, 1):
            images = batch["image"].to(device, non_blocking=True)
            if augment is not None:
                images = augment(images)
            with autocast(device, bf16):
                recon = model(images)
            loss = reconstruction_loss(images, recon)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise _diverged(config, loss_value, epoch, step, steps, bf16, best_epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:  # a rare spike must not blow up a from-scratch run
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            seen += len(images)
            running += loss_value * len(images)
            elapsed = time.perf_counter() - t0
            notify({"event": "step", "epoch": epoch, "epochs": config.epochs, "step": step, "steps": steps,
                    "loss": loss_value, "images_per_s": seen / max(elapsed, 1e-9)})
            if should_stop is not None and should_stop():
                stopped = True
                break
        val_loss = _val_loss(model, val_loader, device, bf16)
        record = {"epoch": epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss,
                  "seconds": time.perf_counter() - t0, "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}
        history.append(record)
        if val_loss < best_val:
            best_val, best_epoch = val_loss, epoch
            ckpt.save_tensors(run_dir / ckpt.WEIGHTS, model.state_dict())
        meta = {"epoch": epoch, "history": history, "best_epoch": best_epoch, "best_val_loss": best_val}
        save_resume_point(run_dir, model, opt, meta)
        ckpt.update_metrics(run_dir, training={**meta, "bf16": bf16, "device": str(device), "stopped": stopped})
        notify({"event": "epoch", **record, "epochs": config.epochs, "best_epoch": best_epoch})
        if stopped:
            break
    return TrainResult(run_dir, best_epoch, best_val, history, stopped)
