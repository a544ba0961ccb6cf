"""One trainer for AnoViT, the l2-CAE and the SSIM-AE: the run's loss (eq. 1's l2, or SSIM) on normal images, Adam with gradient-norm
clipping, the paper's augmentations (per batch, on the device), a validation split with best-epoch
selection, bf16 autocast where supported, a progress callback, an atomic checkpoint every epoch
and resume after a kill.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..runs import checkpoint as ckpt
from ..data.augment import build_augmentation
from ..models.tiling import random_tiles
from ..data import ALL_CLASSES, train_val_datasets, unified_class_list
from ..data.unified import class_weights
from ..data.splits import subsample
from .distributed import SINGLE, Parallel, current
from ..utils.errors import CheckpointError, ConfigError, TrainingError
from ..models import build_model
from ..runs.catalog import default_checkpoint_dir
from ..runs.record import read_training_record, verbatim_json
from ..utils.runtime import autocast, precision_name, use_bf16
from ..scoring.anomaly_map import training_loss
from ..runs.resume import load_resume_point, save_resume_point
from .config import TrainConfig, model_config
from .schedule import scheduled_lr

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """Where the run lives and how it went."""

    run_dir: Path
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]]
    stopped: bool = False


def _check_run_dir(run_dir: Path, config: TrainConfig, resume: bool, overwrite: bool, data_moved: bool) -> bool:
    """Decide whether to resume; refuse to silently overwrite, to resume another config, or to resume on
    another data root unless ``data_moved`` says the run's data now lives there."""
    has_resume = (run_dir / ckpt.RESUME).is_file()
    if resume and not has_resume:
        raise CheckpointError(f"cannot resume {run_dir}: it holds no run to continue ({ckpt.RESUME} is missing); "
                              "drop --resume to start a new run there")
    saved = verbatim_json(run_dir, ckpt.TRAINING, optional=True) if has_resume else {}
    other_root = "data_root" in saved and saved["data_root"] != config.data_root
    roots = f"it trained on data root {saved.get('data_root')}, not {config.data_root}"
    if resume:
        mine = json.loads(json.dumps(asdict(config)))
        diff = sorted(k for k in mine if k not in ("epochs", "data_root") and k in saved and saved[k] != mine[k])
        if diff:  # new fields: no diff
            raise CheckpointError(f"cannot resume {run_dir}: training.json differs in {diff}")
        if other_root and not data_moved:
            raise CheckpointError(f"cannot resume {run_dir}: {roots}; if the same images moved there, add "
                                  f"--data-moved (the record then names the new root), else train into another --output")
        if mine["epochs"] != saved.get("epochs") or other_root:  # the record follows a new budget or root
            ckpt.write_json(run_dir / ckpt.TRAINING, {**saved, "epochs": mine["epochs"], "data_root": mine["data_root"]})
        return True
    if has_resume and not overwrite and other_root:
        raise CheckpointError(f"{run_dir} already holds a run on other data ({roots}): choose another --output, or "
                              f"leave --output out (each data root has its own default run folder)")
    if has_resume and not overwrite:
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
    training = read_training_record(run_dir)
    return training.epochs if training.recorded else None


def _val_loss(model: nn.Module, loader: DataLoader, device: torch.device, bf16: bool, loss: str,
              par: Parallel = SINGLE) -> float:
    """Mean training loss (``loss``: the run's) per image over ``loader`` (over every process's share
    under torchrun). A tiled model's is over one random tile per image, the same tiles every epoch (a whole
    image costs 25 tiles at 384 px in 128 px tiles: too slow to repeat every epoch)."""
    model.eval()
    total, count = 0.0, 0
    tile, tiles_rng = model.config.tile_size, torch.Generator().manual_seed(0)
    with torch.no_grad():
        for batch in loader:
            images = batch["image"].to(device)
            if tile is not None:
                images = random_tiles(images, tile, tiles_rng)
            with autocast(device, bf16):
                recon = model(images)
            total += training_loss(images, recon, loss).item() * len(images)
            count += len(images)
    total, count = par.sums(total, count)
    return total / max(count, 1)


def train(
    config: TrainConfig,
    run_dir: Path | str | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    parallel: Parallel | None = None,
    data_moved: bool = False,
) -> TrainResult:
    """Train ``config.model`` on the normal images of ``config.dataset``/``config.category``.

    ``category="all"`` trains one model on every class of the data root (:mod:`anovit.data.unified`): each
    class is drawn equally often (``images_per_epoch`` images per class and epoch, or the union's size in
    all for one pass), the validation loss is over every class's held-out images, and training.json
    records the ``classes``.

    The loss is eq. (1) (or the run's loss), Adam with gradient-norm clipping, the paper's augmentations;
    the best epoch on the held-out validation split is kept.

    Args:
        config: everything the run depends on (saved as ``training.json``).
        run_dir: the run folder (default ``<checkpoints folder>/<config.run_name()>``, see
            :func:`anovit.runs.catalog.default_checkpoint_dir`). It receives ``config.json``,
            ``training.json``, ``model.safetensors`` (best validation epoch), ``metrics.json`` (history) and
            ``resume.safetensors`` (last epoch); the folder's lock (:mod:`anovit.runs.lock`) is held throughout.
        resume: continue the run in ``run_dir`` from its last epoch.
        overwrite: start over in a folder that holds a run.
        progress: receives dicts with ``event`` "step" or "epoch".
        should_stop: polled after each step; True cancels cleanly at the next epoch end (one process only).
        parallel: one process of a data-parallel run (default :func:`anovit.training.distributed.current`, the
            torchrun process group if one is initialised); rank 0 alone writes and reports.
        data_moved: resume a run recorded on another data root (its images moved there).

    Returns:
        TrainResult: the run folder, best epoch and its validation loss, the per-epoch history, whether it stopped early.

    Raises:
        RunLockedError: another process trains into ``run_dir``.
        CheckpointError: ``run_dir`` holds another run (without ``resume`` / ``overwrite``).
        TrainingError: at the first non-finite loss.
        AnovitError: a device this machine lacks, or bf16 where it is unsupported (before the folder is made).

    Example:
        >>> from anovit import TrainConfig, train
        >>> result = train(TrainConfig(dataset="synthetic", category="weave", epochs=1))  # doctest: +SKIP
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    par = parallel or current()
    if should_stop is not None and par.world_size > 1:  # one process stopping alone would stall the others
        raise ConfigError("should_stop works in one process; under torchrun, stop the torchrun command instead")
    device = par.device(config.device)
    bf16 = use_bf16(device, config.bf16)  # resolved once, before the run folder is touched
    with par.lock(run_dir):
        return _train_locked(config, run_dir, resume, overwrite, progress, should_stop, par, device, bf16, data_moved)


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
                  should_stop: Callable[[], bool] | None, par: Parallel, device: torch.device,
                  bf16: bool, data_moved: bool = False) -> TrainResult:
    """:func:`train` once the run folder's lock is held, on ``device`` with bf16 autocast or not."""
    resuming = par.agree(lambda: _check_run_dir(run_dir, config, resume, overwrite, data_moved))
    notify = progress if progress and par.is_main else (lambda event: None)
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
    classes = unified_class_list(config.dataset, config.data_root) if config.category == ALL_CLASSES else None
    epoch_images, weights = config.images_per_epoch, None
    if classes is not None:  # one model for every class: each class an equal share of every epoch
        epoch_images = config.images_per_epoch * len(classes) if config.images_per_epoch else None
        weights = class_weights(train_set)
    loader_rng = torch.Generator().manual_seed(config.seed)
    train_loader, val_loader = par.loaders(train_set, val_set, config.batch_size, loader_rng, epoch_images, weights)
    augment = build_augmentation(config.augment)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)

    history: list[dict[str, float]] = []
    best_epoch, best_val, start = 0, float("inf"), 1
    if resuming:
        meta = load_resume_point(run_dir, model, opt)
        history, best_epoch, best_val, start = meta["history"], meta["best_epoch"], meta["best_val_loss"], meta["epoch"] + 1
        if config.epochs < meta["epoch"]:
            raise CheckpointError(f"cannot resume {run_dir} to {config.epochs} epochs: it has trained {meta['epoch']}")
    elif par.is_main:
        for stale in (ckpt.WEIGHTS, ckpt.RESUME):  # of an overwritten run
            (run_dir / stale).unlink(missing_ok=True)
        ckpt.write_json(run_dir / ckpt.TRAINING, {**asdict(config), "precision": precision_name(bf16),
                                                  **({"classes": classes} if classes is not None else {})})
        ckpt.write_json(run_dir / ckpt.CONFIG, ckpt.config_to_dict(model))  # weights come with the first epoch
        ckpt.write_json(run_dir / ckpt.METRICS, {})

    net = par.wrap(model)  # the module trained; model itself is evaluated and saved
    stopped = False
    steps = len(train_loader)
    for epoch in range(start, config.epochs + 1):
        model.train()
        loader_rng.manual_seed(config.seed * 100_003 + epoch)  # per-epoch order: a resumed run repeats it
        par.seed_augmentation(config.seed, epoch)
        t0, seen, running = time.perf_counter(), 0, 0.0
        for step, batch in enumerate(train_loader, 1):
            images = batch["image"].to(device, non_blocking=True)
            if augment is not None:
                images = augment(images)
            if model_cfg.tile_size is not None:  # a tiled model trains on one random tile of each image
                images = random_tiles(images, model_cfg.tile_size)
            with autocast(device, bf16):
                recon = net(images)
            loss = training_loss(images, recon, config.loss)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise _diverged(config, loss_value, epoch, step, steps, bf16, best_epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(config.lr, config.lr_schedule, (epoch - 1) * steps + step - 1,
                                           config.epochs * steps)
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
        running, seen = par.sums(running, seen)
        val_loss = _val_loss(model, val_loader, device, bf16, config.loss, par)
        record = {"epoch": epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss,
                  "seconds": time.perf_counter() - t0, "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}
        history.append(record)
        if val_loss < best_val:
            best_val, best_epoch = val_loss, epoch
            if par.is_main:
                ckpt.save_tensors(run_dir / ckpt.WEIGHTS, model.state_dict())
        meta = {"epoch": epoch, "history": history, "best_epoch": best_epoch, "best_val_loss": best_val}
        if par.is_main:
            save_resume_point(run_dir, model, opt, meta)
            ckpt.update_metrics(run_dir, training={**meta, "bf16": bf16, "device": str(device), "stopped": stopped,
                                                   **par.record()})
        notify({"event": "epoch", **record, "epochs": config.epochs, "best_epoch": best_epoch})
        if stopped:
            break
    return TrainResult(run_dir, best_epoch, best_val, history, stopped)
