"""The paper's comparison as one resumable sweep: train and evaluate every (class, model, seed) cell
and append one row per finished cell to a CSV results table (``results/benchmark.csv``).

A cell is finished when the table holds its row (same epochs) and its run folder still has its
test metrics; such cells are skipped, so a killed sweep restarts where it stopped. A cell killed
mid-training continues from its run folder's resume point (``train(..., resume=True)``).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .._version import __version__
from ..runs import checkpoint as ckpt
from ..data import category_kind, list_classes
from ..data.paths import resolve_stored, stored_path, workspace_dir
from ..utils.errors import AnovitError, CheckpointError, DatasetError
from .evaluate import evaluate_run
from ..models import MODELS, PRESETS
from .results_table import COLUMNS, check_header, read_text
from ..runs.catalog import default_checkpoint_dir
from ..runs.metrics_record import read_run_metrics
from ..runs.record import RunRecord, read_run
from ..training.trainer import train
from ..training.config import TrainConfig
from ..utils.setting_flags import add_setting_args, flag_type
from ..utils.settings import check_setting
from ..utils.validation import absolute_path, add_size_args, positive_int

RESULT_COLUMNS = COLUMNS  # declared with their types and ranges in anovit.evaluation.results_table
CELL_COLUMNS = ("dataset", "data_root", "class", "model", "preset", "seed")  # a cell's identity
METRIC_COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max", "pixel_f1_max")
Progress = Callable[[dict[str, Any]], None]


def default_results_path() -> Path:
    """``$ANOVIT_RESULTS`` if set, else results/benchmark.csv in the workspace (checkout or current directory)."""
    return Path(os.environ.get("ANOVIT_RESULTS", workspace_dir() / "results" / "benchmark.csv"))


def default_bench_dir() -> Path:
    """Where the sweep's run folders go: ``<checkpoints>/bench``."""
    return default_checkpoint_dir() / "bench"


@dataclass(frozen=True)
class Cell:
    """One (dataset, class, model, preset, seed) combination of the sweep."""

    dataset: str
    category: str
    model: str
    preset: str
    seed: int

    @property
    def name(self) -> str:
        """Its name in messages (the trainer's default run name without a data root)."""
        return TrainConfig(dataset=self.dataset, category=self.category, model=self.model, preset=self.preset,
                           seed=self.seed).run_name()

    def run_name(self, data_root: str | Path | None) -> str:
        """Its run folder's name: the trainer's default run name of the cell on ``data_root`` (its hash included)."""
        return TrainConfig(dataset=self.dataset, category=self.category, model=self.model, preset=self.preset,
                           seed=self.seed, data_root=str(data_root) if data_root is not None else None).run_name()

    def key(self, data_root: str | Path | None) -> tuple[str, ...]:
        """The values of CELL_COLUMNS as they read back from the CSV table, with the cell's data folder."""
        return (self.dataset, absolute_path(data_root) or "", self.category, self.model, self.preset, str(self.seed))


def split_list(spec: str, what: str) -> list[str]:
    """"a,b" -> ["a", "b"]; an empty list is an error naming ``what``."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise AnovitError(f"{what} is empty (expected a comma-separated list)")
    return items


def resolve_classes(dataset: str, spec: str, data_root: str | Path | None = None) -> list[str]:
    """"all" -> every class of ``dataset``; else the listed classes, each checked against the dataset."""
    available = list_classes(dataset, data_root)
    if spec.strip() == "all":
        return available
    chosen = split_list(spec, "--classes")
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise DatasetError(f"{dataset} has no class(es) {', '.join(unknown)} (expected 'all' or some of "
                           f"{', '.join(available)})")
    return chosen


def missing_presets(models: list[str], presets: list[str]) -> list[tuple[str, str]]:
    """The (model, preset) combinations of a sweep that a model lacks (e.g. the l2-CAE has no
    cpu-tiny-masked): :func:`plan_cells` skips them."""
    return [(m, p) for m in models for p in presets if m in MODELS and p not in PRESETS[m]]


def plan_cells(dataset: str, classes: list[str], models: list[str], presets: str | list[str], seeds: int) -> list[Cell]:
    """Every cell, class by class (so each class's comparison completes early), then model, preset and
    seed; the combinations a model lacks (:func:`missing_presets`) are left out, a preset no model has
    is an error."""
    presets = [presets] if isinstance(presets, str) else list(presets)
    for model in models:
        if model not in MODELS:
            raise AnovitError(f"--models: unknown model '{model}' (expected some of {', '.join(MODELS)})")
    for preset in presets:
        if not any(preset in PRESETS[m] for m in models):
            raise AnovitError(f"--preset: {', '.join(models)} has no preset '{preset}' (expected one of "
                              f"{', '.join(sorted({p for m in models for p in PRESETS[m]}))})")
    if seeds < 1:
        raise AnovitError(f"--seeds must be at least 1; got {seeds}")
    return [Cell(dataset, c, m, p, s) for c in classes for m in models for p in presets if p in PRESETS[m]
            for s in range(seeds)]


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of the results table ([] when it does not exist); a foreign header is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    check_header(path, reader.fieldnames, (RESULT_COLUMNS,))
    return [row for row in reader if row.get("finished_at")]  # a row cut short by a kill is ignored


def append_result(path: Path, row: dict[str, Any]) -> None:
    """Append one row (writing the header first if the table is new) in a single write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    if not new:
        read_results(path)  # refuse to append to a table with other columns
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow({k: row.get(k, "") for k in RESULT_COLUMNS})
    with open(path, "a", newline="") as f:
        f.write(text.getvalue())
        f.flush()
        os.fsync(f.fileno())


def run_result_row(run: RunRecord) -> dict[str, Any] | None:
    """A run folder with test metrics as a results-table row (None without a "test" section): the
    benchmark's rows (with versions and finish time added) and the report's rows of loose run folders."""
    test, training = run.test, run.training
    if test is None:
        return None
    dataset = test.dataset or training.dataset
    category = str(test.category or training.category)
    log = run.metrics.training
    history = log.history if log else ()
    return {
        "dataset": dataset, "data_root": (test.data_root if test.dataset else training.data_root) or "",
        "class": category, "type": category_kind(dataset, category) or "class",
        "model": run.model_type, "preset": training.preset or "?", "seed": training.seed or 0,
        "epochs": len(history) or training.epochs,
        **{m: test.metric(m) for m in METRIC_COLUMNS},
        "train_seconds": log.seconds if log else None, "eval_seconds": test.seconds,
        "train_images_per_s": sum(h.images_per_s for h in history) / len(history) if history else None,
        "eval_images_per_s": test.images_per_s, "run_dir": stored_path(run.path), "versions": "",
        "finished_at": "",
    }


def is_finished(cell: Cell, epochs: int, rows: list[dict[str, str]], data_root: str | Path | None = None) -> bool:
    """Whether ``rows`` hold ``cell`` on ``data_root`` trained for ``epochs`` and its run folder still has test metrics."""
    for row in rows:
        if tuple(row[c] for c in CELL_COLUMNS) == cell.key(data_root) and row["epochs"] == str(epochs):
            if read_run_metrics(resolve_stored(row["run_dir"])).test is not None:
                return True
    return False


def versions() -> str:
    """The software that produced a row."""
    import timm
    import torch

    return f"anovit {__version__}; torch {torch.__version__}; timm {timm.__version__}; python {platform.python_version()}"


def train_config(cell: Cell, epochs: int | None, data_root: str | Path | None, device: str,
                 sizes: dict[str, Any] | None = None) -> TrainConfig:
    """The cell's training config: the trainer's defaults (epochs None: the model's; augmentation: the
    dataset's flip rule); ``sizes``: "image_size" and "encoder" overrides (the encoder for AnoViT only)."""
    overrides = {k: v for k, v in (sizes or {}).items() if v is not None and (k != "encoder" or cell.model == "anovit")}
    return TrainConfig(
        dataset=cell.dataset, category=cell.category, data_root=str(data_root) if data_root is not None else None,
        model=cell.model, preset=cell.preset, model_overrides=overrides, epochs=epochs, seed=cell.seed, device=device,
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def run_cell(cell: Cell, *, epochs: int | None, runs_root: Path, data_root: str | Path | None = None,
             device: str = "auto", sizes: dict[str, Any] | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
    """Train (resuming a killed run), evaluate on the test split and return the cell's result row."""
    notify = progress or (lambda event: None)
    run_dir = Path(runs_root) / cell.run_name(data_root)
    config = train_config(cell, epochs, data_root, device, sizes)
    epochs = config.epochs
    log = read_run_metrics(run_dir).training if run_dir.is_dir() else None
    trained = log.epoch if log else 0

    def forward(event: dict[str, Any]) -> None:
        notify({**event, "cell": cell})

    try:
        if trained > epochs:
            raise CheckpointError(f"{run_dir} was trained for {trained} epochs, more than the {epochs} asked for")
        train(config, run_dir, resume=(run_dir / ckpt.RESUME).is_file(), progress=forward)
    except CheckpointError as err:
        notify({"event": "restart", "cell": cell, "reason": str(err)})
        train(config, run_dir, overwrite=True, progress=forward)
    evaluate_run(run_dir, device=device, progress=lambda done, total: notify(
        {"event": "evaluate", "cell": cell, "done": done, "total": total}))
    row = run_result_row(read_run(run_dir))
    assert row is not None  # evaluate_run has just written the test metrics
    return {**{k: _fmt(v) if isinstance(v, float) else v for k, v in row.items()},
            "epochs": epochs, "versions": versions(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@dataclass
class BenchmarkOutcome:
    """Which cells ran now and which were already finished."""

    ran: list[Cell]
    skipped: list[Cell]
    results: Path


def run_benchmark(cells: list[Cell], *, epochs: int | None = None, results: Path | None = None,
                  runs_root: Path | None = None, data_root: str | Path | None = None, device: str = "auto",
                  sizes: dict[str, Any] | None = None, progress: Progress | None = None) -> BenchmarkOutcome:
    """Run every unfinished cell in order, appending its row to ``results`` as soon as it is done.

    ``progress`` receives dicts with ``event``: "cell" (status "skip" or "run", index, total),
    the trainer's "step"/"epoch" events, "evaluate", "restart" and "done" (with the row), each
    carrying the ``cell``.
    """
    notify = progress or (lambda event: None)
    check_setting(TrainConfig, "epochs", epochs)  # 0 must not mean "the default"
    results = Path(results) if results is not None else default_results_path()
    runs_root = Path(runs_root) if runs_root is not None else default_bench_dir()
    outcome = BenchmarkOutcome([], [], results)
    for index, cell in enumerate(cells):
        rows = read_results(results)  # read again: another benchmark (another --runs-root) may have run the cell
        done = is_finished(cell, train_config(cell, epochs, data_root, device, sizes).epochs, rows, data_root)
        notify({"event": "cell", "cell": cell, "status": "skip" if done else "run", "index": index,
                "total": len(cells)})
        if done:
            outcome.skipped.append(cell)
            continue
        row = run_cell(cell, epochs=epochs, runs_root=runs_root, data_root=data_root, device=device, sizes=sizes,
                       progress=notify)
        append_result(results, row)
        outcome.ran.append(cell)
        notify({"event": "done", "cell": cell, "row": row})
    return outcome


def add_benchmark_parser(sub: Any) -> None:
    """Register ``python -m anovit benchmark``."""
    p = sub.add_parser("benchmark", help="train and evaluate every (class, model, seed) cell; resumable; "
                                         "appends one row per cell to a results table")
    add_setting_args(p, TrainConfig, ("dataset",))
    p.add_argument("--data-root", help="dataset folder (required for mvtec and folder datasets)")
    p.add_argument("--classes", default="all", help="'all' or a comma-separated list (default: %(default)s)")
    p.add_argument("--models", default="anovit,cae", help=f"comma-separated, of {', '.join(MODELS)} (default: %(default)s)")
    p.add_argument("--presets", "--preset", dest="presets", default="cpu-tiny",
                   help=f"comma-separated, of {', '.join(sorted({p for v in PRESETS.values() for p in v}))}; "
                        "a combination a model lacks is skipped (default: %(default)s)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per class and model (default: %(default)s)")
    p.add_argument("--epochs", type=flag_type(TrainConfig, "epochs"), help="epochs per cell (default: the model's, 200 for the l2-CAE "
                                                      "and 10 for AnoViT)")
    p.add_argument("--results", type=Path, help="results table (default: $ANOVIT_RESULTS or results/benchmark.csv)")
    p.add_argument("--runs-root", type=Path, help="folder of the cells' run folders (default: checkpoints/bench)")
    p.add_argument("--device", default=TrainConfig.default("device"), help="auto, cpu, cuda, ...")
    add_size_args(p)  # run folders are named without the size: give each setting its own --results/--runs-root
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace, runner: Callable[..., BenchmarkOutcome] = run_benchmark) -> int:
    """``benchmark``: plan the cells, run them with ``runner`` (keywords of :func:`run_benchmark`; the
    spread-out runners are in :mod:`anovit.evaluation.launchers`) under a progress bar, print the outcome."""
    from tqdm import tqdm

    classes = resolve_classes(args.dataset, args.classes, args.data_root)
    models, presets = split_list(args.models, "--models"), split_list(args.presets, "--presets")
    cells = plan_cells(args.dataset, classes, models, presets, args.seeds)
    skipped = missing_presets(models, presets)
    if skipped:
        print("skipped (the model has no such preset): " + ", ".join(f"{m} {p}" for m, p in skipped))
    bar = tqdm(total=len(cells), desc="benchmark", unit="cell")

    def progress(event: dict[str, Any]) -> None:
        kind, cell = event["event"], event["cell"]
        if kind == "cell":
            bar.set_description(cell.name)
            if event["status"] == "skip":
                bar.write(f"{cell.name}: done already, skipped")
                bar.update(1)
        elif kind == "step":
            bar.set_postfix_str(f"epoch {event['epoch']}/{event['epochs']} step {event['step']}/{event['steps']} "
                                f"loss {event['loss']:.4f}")
        elif kind == "evaluate":
            bar.set_postfix_str(f"evaluate {event['done']}/{event['total']}")
        elif kind == "restart":
            bar.write(f"{cell.name}: starting over ({event['reason']})")
        elif kind == "failed":  # a spread-out sweep goes on without the cell
            bar.write(f"{cell.name}: failed ({event['reason']})")
            bar.update(1)
        elif kind == "done":
            row = event["row"]
            bar.write(f"{cell.name}: image AUROC {row['image_auroc'] or 'n/a'}, pixel AUROC "
                      f"{row['pixel_auroc'] or 'n/a'}, AUPRO {row['aupro'] or 'n/a'} "
                      f"(train {float(row['train_seconds']):.0f} s)")
            bar.update(1)

    outcome = runner(cells, epochs=args.epochs, results=args.results, runs_root=args.runs_root,
                     data_root=args.data_root, device=args.device,
                     sizes={"image_size": args.image_size, "encoder": args.encoder}, progress=progress)
    bar.close()
    print(f"{len(outcome.ran)} cell(s) run, {len(outcome.skipped)} done already; results in {outcome.results}")
    return 0
