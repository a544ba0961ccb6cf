"""The variants of an ablation still to train (:mod:`anovit.evaluation.ablations`): for the switches that need
training, the values no run and no queued or running job covers, each as the baseline run's training
config with that one switch changed, named after it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from .ablations import Baseline, Point, covered, differences, switch_values, switches_of, value_text
from ..training.config import TrainConfig, model_config
from ..utils.settings import settings_of


def config_switches(config: TrainConfig) -> dict[str, Any]:
    """The :data:`anovit.evaluation.ablations.COMPARED` switches a training config will produce (to match queued jobs with runs)."""
    model = model_config(config)
    anovit = config.model == "anovit"
    return {
        "model": config.model, "encoder": model.encoder if anovit else None,
        "pretrained": bool(model.pretrained or model.encoder_weights) if anovit else None,
        "decoder": model.decoder if anovit else None, "mask_ratio": float(model.mask_ratio) if anovit else None,
        "loss": config.loss, "score": config.score, "sigma": config.sigma, "epochs": config.epochs, "lr": config.lr,
        "image_size": model.image_size,
    }


def variant_config(base: TrainConfig, switch: str, value: Any) -> TrainConfig:
    """``base`` (the training config of a baseline run) with one switch changed: a TrainConfig setting, else a
    model config field (as a model override)."""
    if switch in settings_of(TrainConfig):
        return replace(base, **{switch: value})
    overrides = {**base.model_overrides, switch: value}
    if switch == "pretrained" and not value:
        overrides["encoder_weights"] = None
    return replace(base, model_overrides=overrides)


def variant_name(config: TrainConfig, switch: str, value: Any) -> str:
    """Run folder name of a variant: the config's default name and the switch's value."""
    return f"{config.run_name()}-{switch.replace('_', '')}-{value_text(value)}"


@dataclass(frozen=True)
class Missing:
    """A variant that needs training: its switch and value, its config and run name; ``reason`` when it cannot be queued."""

    switch: str
    value: Any
    config: TrainConfig
    name: str
    reason: str | None = None


def missing_variants(base: TrainConfig, baseline: Baseline, points: list[Point],
                     pending: Iterable[dict[str, Any]] = (), unavailable: Callable[[TrainConfig], str | None] =
                     lambda config: None) -> list[Missing]:
    """Variants of the training switches with no point and no queued or running job (``pending``: the
    :func:`config_switches` of active jobs); ``unavailable(config)`` says why a variant cannot train (e.g.
    pretrained weights offline), None when it can."""
    pending = list(pending)
    missing = []
    for switch in switches_of(baseline.switches["model"]):
        if not switch.trained:
            continue
        for value in switch_values(switch, baseline):
            queued = any(differences(p, {**baseline.switches, switch.name: value}) == [] for p in pending)
            if covered(points, switch.name, value) or queued:
                continue
            config = variant_config(base, switch.name, value)
            missing.append(Missing(switch.name, value, config, variant_name(config, switch.name, value),
                                   unavailable(config)))
    return missing
