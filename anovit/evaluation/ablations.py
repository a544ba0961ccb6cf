"""Ablations of one class: a baseline (the paper's AnoViT at a preset, or another model's recipe) and, per
switch, the runs that differ from it in exactly that switch; the variants still to train; the deltas.

Switches that need training (pretrained encoder, mask ratio, decoder) come from run folders; the
evaluation-time switches (score function, sigma) come from run folders too, or from re-scoring the
baseline's runs (:func:`anovit.evaluation.evaluate.evaluate_run` with ``record=False``: no retraining).
Runs compare on :data:`COMPARED` (the seed is left out: seeds of one setting are its error bar), read
by :func:`anovit.runs.catalog.run_switches`, with the score function and sigma their test metrics were computed
with. Pure functions except :func:`rescore` (a pass over the test split). The variants still to train:
:mod:`anovit.evaluation.ablation_variants`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from ..models import MODEL_LABELS, PRESETS, SCORE_FUNCTIONS, training_defaults
from ..models.anovit import DECODERS
from ..runs.catalog import run_switches
from ..runs.record import RunRecord

COMPARED = ("model", "encoder", "pretrained", "decoder", "mask_ratio", "loss", "score", "sigma", "epochs", "lr",
            "image_size")
SIGMA_FACTORS = (0.0, 0.5, 1.0, 2.0)  # sigma values explored, as multiples of the baseline's sigma
TRAINED, RESCORED = "trained", "re-scored"


@dataclass(frozen=True)
class Switch:
    """One ablation switch: a :data:`COMPARED` field, the values explored, whether a value needs training."""

    name: str
    label: str
    values: tuple[Any, ...]  # () for sigma: SIGMA_FACTORS times the baseline's
    trained: bool
    models: tuple[str, ...]


SWITCHES = (
    Switch("pretrained", "pretrained encoder", (False, True), True, ("anovit",)),
    Switch("mask_ratio", "mask ratio", (0.0, 0.25, 0.5, 0.75), True, ("anovit",)),
    Switch("decoder", "decoder", DECODERS, True, ("anovit",)),
    Switch("score", "score function", SCORE_FUNCTIONS, False, tuple(PRESETS)),
    Switch("sigma", "sigma (px)", (), False, tuple(PRESETS)),
)


def switches_of(model: str) -> tuple[Switch, ...]:
    """The switches that apply to ``model``."""
    return tuple(s for s in SWITCHES if model in s.models)


def same(a: Any, b: Any) -> bool:
    """Equal switch values; numbers (not bools) within float rounding."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) if numbers else a == b


def differences(switches: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The :data:`COMPARED` fields in which ``switches`` differ from ``baseline``."""
    return [f for f in COMPARED if not same(switches.get(f), baseline.get(f))]


def evaluated_switches(run: RunRecord) -> dict[str, Any]:
    """:func:`anovit.runs.catalog.run_switches` of an evaluated run, with the score function and sigma its test
    metrics were computed with (``evaluate_run`` may have used another sigma than training.json's)."""
    switches = run_switches(run)
    if run.test is not None and run.test.score is not None:
        switches["score"] = run.test.score
    if run.test is not None and run.test.sigma is not None:
        switches["sigma"] = run.test.sigma
    return switches


DataKey = tuple[str, str, str]  # (dataset, data folder or "", class)


def data_key(run: RunRecord) -> DataKey | None:
    """Which test split a run's metrics are of: its test section's data, else its training's; None if unknown."""
    source = run.test if run.test is not None and run.test.dataset else run.training
    if not source.dataset or source.category is None:
        return None
    return source.dataset, source.data_root or "", source.category


def evaluated(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs with an image or pixel AUROC in their test metrics and a known test split."""
    return [r for r in runs if data_key(r) is not None and
            (r.metric("image_auroc") is not None or r.metric("pixel_auroc") is not None)]


@dataclass
class Baseline:
    """One setting (the :data:`COMPARED` switches) of one model on one test split, and its runs (seeds)."""

    key: DataKey
    switches: dict[str, Any]
    runs: list[RunRecord]
    recipe: bool  # the setting is its preset's recipe (AnoViT cpu-tiny / paper: the paper's AnoViT)

    @property
    def label(self) -> str:
        s, presets = self.switches, sorted({str(r.training.preset) for r in self.runs})
        parts = [f"{MODEL_LABELS.get(s['model'], s['model'])} {'/'.join(presets)}", f"{s['epochs']} epochs",
                 f"lr {s['lr']:g}" if s["lr"] is not None else "lr ?", f"{s['image_size']} px"]
        if s["model"] == "anovit":
            parts.append(f"mask {s['mask_ratio']:g}, {s['decoder']} decoder" + (", pretrained" if s["pretrained"] else ""))
        parts.append(f"score {s['score']}, sigma {s['sigma']:g}")
        return " · ".join(parts) + f" ({len(self.runs)} run{'s' if len(self.runs) > 1 else ''})"


def is_recipe(switches: dict[str, Any], preset: str | None) -> bool:
    """Whether ``switches`` have the pretrained, decoder, mask ratio, loss and score of ``preset``'s
    default config (other settings, such as epochs, may differ)."""
    if preset not in PRESETS.get(switches["model"], {}):
        return False
    defaults = training_defaults(switches["model"], preset)
    model = dict(PRESETS[switches["model"]][preset])
    expected = {"loss": defaults.loss, "score": defaults.score}
    if switches["model"] == "anovit":
        expected |= {"pretrained": bool(model.get("pretrained", False)), "decoder": model.get("decoder", DECODERS[0]),
                     "mask_ratio": float(model.get("mask_ratio", 0.0))}
    return all(same(switches[f], v) for f, v in expected.items())


def baselines(runs: Iterable[RunRecord], model: str, key: DataKey) -> list[Baseline]:
    """The settings of ``model`` evaluated on ``key``, each with its runs: recipes first (the paper's AnoViT,
    mask ratio 0 and score l2, before other recipes), then by number of runs."""
    groups: list[Baseline] = []
    for run in evaluated(runs):
        if data_key(run) != key or run.model_type != model:
            continue
        switches = {f: evaluated_switches(run)[f] for f in COMPARED}
        group = next((g for g in groups if not differences(switches, g.switches)), None)
        if group is None:
            groups.append(Baseline(key, switches, [run], is_recipe(switches, run.training.preset)))
        else:
            group.runs.append(run)
    paper_like = lambda g: g.switches["mask_ratio"] in (0.0, None) and g.switches["score"] == SCORE_FUNCTIONS[0]
    return sorted(groups, key=lambda g: (not g.recipe, not paper_like(g), -len(g.runs)))


def data_keys(runs: Iterable[RunRecord]) -> dict[DataKey, list[str]]:
    """Every test split with evaluated runs, the most evaluated first, and the models evaluated on it (AnoViT first)."""
    keys: dict[DataKey, list[str]] = {}
    for run in evaluated(runs):
        keys.setdefault(data_key(run), []).append(run.model_type)
    order = list(PRESETS)
    rank = lambda m: order.index(m) if m in order else len(order)
    return {k: sorted(set(v), key=rank) for k, v in sorted(keys.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def switch_values(switch: Switch, baseline: Baseline) -> list[Any]:
    """The values of ``switch`` explored around ``baseline`` (its own value included)."""
    if switch.name == "sigma":
        return [round(baseline.switches["sigma"] * f, 4) for f in SIGMA_FACTORS]
    return list(switch.values)


@dataclass(frozen=True)
class Point:
    """One run's test metrics at one value of one switch."""

    switch: str
    value: Any
    run: str  # run folder name
    seed: int | None
    source: str  # TRAINED (its own metrics.json) or RESCORED
    image_auroc: float | None
    pixel_auroc: float | None


def trained_points(runs: Iterable[RunRecord], baseline: Baseline) -> list[Point]:
    """Per switch of the baseline's model, a point for every evaluated run on its test split that differs from
    it in that switch only (the baseline's runs count at the baseline value of every switch)."""
    points = []
    for run in evaluated(runs):
        if data_key(run) != baseline.key:
            continue
        switches = evaluated_switches(run)
        diff = differences(switches, baseline.switches)
        for switch in switches_of(baseline.switches["model"]):
            if diff in ([], [switch.name]):
                points.append(Point(switch.name, switches[switch.name], run.name, run.training.seed, TRAINED,
                                    run.metric("image_auroc"), run.metric("pixel_auroc")))
    return points


def covered(points: Iterable[Point], switch: str, value: Any) -> bool:
    """Whether a point of ``switch`` sits at ``value``."""
    return any(p.switch == switch and same(p.value, value) for p in points)


def rescore_tasks(baseline: Baseline, points: list[Point]) -> list[tuple[str, Any, RunRecord]]:
    """(switch, value, baseline run) to re-score: the evaluation-time switches' values no run covers."""
    tasks = []
    for switch in switches_of(baseline.switches["model"]):
        if not switch.trained:
            tasks += [(switch.name, v, run) for v in switch_values(switch, baseline)
                      if not covered(points, switch.name, v) for run in baseline.runs]
    return tasks


def rescore(run_dir: Path, score: str, sigma: float, progress: Callable[[int, int], None] | None = None
            ) -> tuple[float | None, float | None]:
    """(image AUROC, pixel AUROC) of a run on its test split with another score function and sigma (px),
    without retraining and without touching its metrics.json."""
    from .evaluate import evaluate_run

    result = evaluate_run(run_dir, sigma=sigma, score=score, progress=progress, record=False)
    return result.image_auroc, result.pixel_auroc


def value_text(value: Any) -> str:
    """A switch value as the chart and the table write it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


METRICS = ("image_auroc", "pixel_auroc")
SUMMARY_COLUMNS = ("switch", "value", "source", "baseline", "runs", "image_auroc", "image_auroc_std",
                   "delta_image_auroc", "pixel_auroc", "pixel_auroc_std", "delta_pixel_auroc", "run folders")


def summary(points: list[Point], baseline: Baseline) -> pd.DataFrame:
    """One row per (switch, value, source), switches in :data:`SWITCHES` order and values ascending: mean
    and sample std over runs (0 for one run) of image and pixel AUROC, their deltas to the mean of the
    baseline's runs, the number of runs and their folders; ``baseline`` marks the baseline's value."""
    if not points:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    df = pd.DataFrame([vars(p) for p in points])
    df[list(METRICS)] = df[list(METRICS)].astype(float)
    df["text"] = df["value"].map(value_text)
    rows = []
    for (switch, text, source), group in df.groupby(["switch", "text", "source"], sort=False):
        value = group["value"].iloc[0]
        row = {"switch": switch, "value": text, "source": source,
               "baseline": same(value, baseline.switches[switch]), "runs": len(group)}
        for m in METRICS:
            base = pd.Series([r.metric(m) for r in baseline.runs], dtype=float).mean()
            row |= {m: group[m].mean(), f"{m}_std": group[m].std() if group[m].count() > 1 else 0.0,
                    f"delta_{m}": group[m].mean() - base}
        row["run folders"] = ", ".join(sorted(group["run"]))
        row["order"] = ([s.name for s in SWITCHES].index(switch), _sort_value(value), source)
        rows.append(row)
    rows.sort(key=lambda r: r["order"])
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _sort_value(value: Any) -> tuple[int, Any]:
    """Numbers (and bools) before text, each ascending."""
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))
