"""Command-line interface: ``anovit`` (or ``python -m anovit``) ``train|evaluate|export|score ...``."""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..utils.errors import AnovitError, ConfigError
from ..models import SIGMA_SOURCE
from ..utils.progress import TerminalBar
from ..utils.setting_flags import add_setting_args, settings_from_args
from ..utils.settings import format_settings, setting_values
from ..utils.validation import (add_scoring_precision_arg, add_size_args, arg_type, image_size_arg, non_negative_float,
                                positive_int)

DATA_SETTINGS = ("dataset", "data_root", "category")  # the settings evaluate may change: the test split it scores


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """train's flags of the model config fields a run changes from its preset's (TrainConfig.model_overrides)."""
    add_size_args(p)
    p.add_argument("--tile-size", type=image_size_arg, help="the network's input in px; larger images are reconstructed "
                   "from overlapping tiles of it (default: the preset's, AnoViT cpu-default 128; the image size: untiled)")
    p.add_argument("--no-pretrained", action="store_true", help="AnoViT: random encoder init even for the paper preset")
    p.add_argument("--encoder-weights", help="AnoViT: local encoder weights file (safetensors or timm checkpoint)")
    p.add_argument("--decoder", choices=("stable", "paper"), help="AnoViT decoder: stable (GroupNorm, conv head; "
                   "the default) or paper (six plain ConvT + ReLU blocks, upsampling last)")
    p.add_argument("--mask-ratio", type=arg_type(minimum=0, maximum=0.9),
                   help="AnoViT: share of patches hidden (masked-patch inpainting; 0: the paper's model; "
                        "default: the preset's)")
    p.add_argument("--latent-dim", type=positive_int, help="l2-CAE latent size (default: the category's kind, 100 for "
                                                  "textures and 500 for objects, as Bergmann et al.)")


def _add_augment_args(p: argparse.ArgumentParser) -> None:
    """train's flags of the augmentation (TrainConfig.augment)."""
    p.add_argument("--no-affine", action="store_true", help="switch off random affine augmentation")
    p.add_argument("--no-flip", action="store_true", help="switch off horizontal and vertical flips")


# train's flags that are not settings (not recorded in training.json): where the run goes and what train does.
RUN_OPTIONS: dict[str, dict[str, Any]] = {
    "--output": dict(help="run folder (default: $ANOVIT_CHECKPOINTS, else the workspace's checkpoints/, then "
                          "<dataset>-<category>-<model>-<preset>-s<seed>)"),
    "--resume": dict(action="store_true", help="continue the run in --output from its last epoch, up to its recorded "
                     "epochs (--epochs N: up to N, and the record says N)"),
    "--overwrite": dict(action="store_true", help="start over in an existing run folder"),
    "--data-moved": dict(action="store_true", help="with --resume: the run's images moved to --data-root (without it, "
                         "resuming on a data root other than the run's record is refused)"),
    "--no-eval": dict(action="store_true", help="skip the test-split evaluation after training"),
    "--print-config": dict(action="store_true",
                           help="print the resolved model and training config as JSON and exit without training"),
}


def resolve_category(dataset: str, category: str | None) -> str:
    """``category``, else the dataset's first class (``weave`` for synthetic, ``0`` for MNIST; never a
    class of another dataset); ConfigError where the categories are folders under --data-root."""
    from ..data import fixed_classes

    if category is not None:
        return category
    classes = fixed_classes(dataset)
    if classes:
        return classes[0]
    raise ConfigError(f"--category is required with --dataset {dataset} (a category folder under --data-root)")


def size_overrides(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """The model-config overrides of --image-size and --encoder (the encoder only for AnoViT)."""
    overrides: dict[str, Any] = {"image_size": args.image_size} if args.image_size else {}
    if args.encoder and model == "anovit":
        overrides["encoder"] = args.encoder
    return overrides


def _train_parser(sub: Any) -> None:
    from ..training.config import TrainConfig

    p = sub.add_parser("train", help="train AnoViT, the l2-CAE or the SSIM-AE on normal images, then evaluate")
    add_setting_args(p, TrainConfig, adders={"model_overrides": _add_model_args, "augment": _add_augment_args})
    for flag, options in RUN_OPTIONS.items():
        p.add_argument(flag, **options)
    p.set_defaults(func=_cmd_train)


def _evaluate_parser(sub: Any) -> None:
    from ..evaluation.evaluate import EVAL_BATCH_SIZE
    from ..runs.record import SCORING_FIELDS
    from ..training.config import TrainConfig

    p = sub.add_parser("evaluate", help="evaluate a run folder on its test split; prints AUROCs, writes JSON")
    p.add_argument("run_dir", type=Path)
    add_setting_args(p, TrainConfig, DATA_SETTINGS, default_text="the run's")
    p.add_argument("--sigma", type=non_negative_float, help="Gaussian smoothing in px (0: no smoothing; default: "
                   "the run's own, from its training.json)")
    add_setting_args(p, TrainConfig, SCORING_FIELDS, default_text="the run's, from its training.json")
    p.add_argument("--refit-threshold", action="store_true",
                   help="fit the decision threshold and calibration statistics on the run's validation images again "
                        "and store them (default: use the stored ones; fit and store them only when the run has none)")
    p.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH_SIZE, help="(default: %(default)s)")
    p.add_argument("--device", default="auto")
    add_scoring_precision_arg(p)
    p.add_argument("--output", type=Path, help="JSON file (default: RUN_DIR/evaluation.json)")
    p.set_defaults(func=_cmd_evaluate)


def _train_config(args: argparse.Namespace) -> Any:
    """The TrainConfig of train's flags: the settings' own flags, the category (the dataset's first class when
    none is given), the model flags as model overrides and the augmentation flags."""
    from ..data import default_augment
    from ..training.config import TrainConfig

    overrides: dict[str, Any] = size_overrides(args, args.model)
    if args.tile_size:
        overrides["tile_size"] = args.tile_size
    if args.model == "anovit":
        if args.no_pretrained:
            overrides["pretrained"] = False
        if args.encoder_weights:
            overrides["encoder_weights"] = str(Path(args.encoder_weights).resolve())
        if args.decoder:
            overrides["decoder"] = args.decoder
        if args.mask_ratio is not None:
            overrides["mask_ratio"] = args.mask_ratio
    elif args.latent_dim:
        overrides["latent_dim"] = args.latent_dim
    no_flip = False if args.no_flip else None  # None: the category's flip rule
    category = resolve_category(args.dataset, args.category)
    augment = default_augment(args.dataset, category, affine=not args.no_affine, hflip=no_flip, vflip=no_flip)
    return TrainConfig(**{**settings_from_args(args, TrainConfig), "category": category, "model_overrides": overrides,
                          "augment": augment})


def scoring_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The calibration and pooling flags as TrainConfig / evaluate_run keyword arguments (None: not given)."""
    from ..runs.record import SCORING_FIELDS
    from ..training.config import TrainConfig

    return settings_from_args(args, TrainConfig, SCORING_FIELDS)


def _print_eval(result: Any) -> None:
    import pandas as pd

    from ..evaluation.run_statistics import TestEvaluation, intervals_line, test_intervals

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    if result.precision_note:
        print(f"note: {result.precision_note}")
    if result.rows:
        rows = pd.DataFrame(result.rows)
        print(intervals_line(test_intervals(TestEvaluation(rows, result.pixel_histograms, result.pixel_auroc))))
    for kind, reason in result.unavailable.items():
        print(f"{kind} metrics n/a: {reason}")
    # last, so that the last line of `train` and `evaluate` is the result (scripts read it; issue 23)
    print(f"image AUROC {fmt(result.image_auroc)}  pixel AUROC {fmt(result.pixel_auroc)}  AUPRO {fmt(result.aupro)}  "
          f"({result.n_images} images, {result.n_anomalous} anomalous, {result.images_per_s:.1f} images/s)")


def resolved_config(config: Any, sigma_given: bool = False) -> dict[str, Any]:
    """What ``train --print-config`` prints: the resolved model config, the training config and where
    the sigma comes from."""
    from dataclasses import asdict

    from ..training.config import model_config

    model = model_config(config)
    return {"model": {"model_type": config.model, **asdict(model)}, "training": setting_values(config),
            "sigma_source": "given (--sigma)" if sigma_given else SIGMA_SOURCE}


def start_line(config: Any, run_dir: Path) -> str:
    """The one line ``train`` prints before it starts: data, model, sizes, budget, device, precision, folder."""
    from ..utils.runtime import resolve_device, use_bf16
    from ..training.config import model_config

    model = model_config(config)
    device = resolve_device(config.device)
    bf16 = use_bf16(device, config.bf16)
    data = f"{config.dataset}/{config.category} ({config.data_root or 'built-in data folder'})"
    encoder = f", {model.encoder}" if getattr(model, "encoder", None) else ""
    tiles = f" in {model.tile_size} px tiles" if model.tile_size else ""
    return (f"training {config.model} ({config.preset}{encoder}, {model.image_size} px{tiles}) on {data} · {config.epochs} "
            f"epochs, batch {config.batch_size} · {device}, {'bf16 autocast' if bf16 else 'float32'} → {run_dir}")


def _cmd_train(args: argparse.Namespace) -> int:
    from ..data import ALL_CLASSES
    from ..training.distributed import join
    from ..training.trainer import default_run_dir, recorded_epochs, train

    config = _train_config(args)
    if args.print_config:
        print(json.dumps(resolved_config(config, args.sigma is not None), indent=2))
        return 0
    run_dir = Path(args.output) if args.output else default_run_dir(config)
    if args.resume and args.epochs is None:  # continue to the recorded budget; --epochs N extends it
        config.epochs = recorded_epochs(run_dir) or config.epochs
    summary = [f"{start_line(config, run_dir)}\nsettings: {format_settings(config)}"]
    bar = TerminalBar("train", "step", leave=True)

    def progress(event: dict[str, Any]) -> None:
        if summary:  # once, when the first step ran (rank 0 only): a refused start prints its error alone
            tqdm.write(summary.pop())
        if event["event"] == "step":
            bar((event["epoch"] - 1) * event["steps"] + event["step"], event["epochs"] * event["steps"],
                       epoch=event["epoch"], loss=f"{event['loss']:.4f}", img_s=f"{event['images_per_s']:.0f}")
        else:
            tqdm.write(f"epoch {event['epoch']}/{event['epochs']}: train {event['train_loss']:.5f} "
                       f"val {event['val_loss']:.5f} ({event['seconds']:.1f} s, best epoch {event['best_epoch']})")

    par = join(config.device)  # under torchrun: this process's rank in a data-parallel run
    try:
        result = train(config, args.output, resume=args.resume, overwrite=args.overwrite, progress=progress,
                       data_moved=args.data_moved)
    except KeyboardInterrupt:
        bar.close()
        print(f"\n{interrupted(run_dir, args.argv)}", file=sys.stderr)
        return 130
    finally:
        bar.close()
    if not par.is_main:  # rank 0 reports and evaluates
        return 0
    print(f"best epoch {result.best_epoch} (val loss {result.best_val_loss:.5f}); run folder {result.run_dir}")
    if not args.no_eval and config.category == ALL_CLASSES:
        print_unified(_evaluate_unified_with_bar(result.run_dir, sigma=args.sigma, device=args.device, notify=tqdm.write))
    elif not args.no_eval:
        _print_eval(_evaluate_with_bar(result.run_dir, sigma=args.sigma, device=args.device, notify=tqdm.write))
    return 0


def unified_lines(result: Any) -> list[str]:
    """One line per class, ``<class>: image AUROC x  pixel AUROC y``, then the same for the ``mean`` over
    the classes (a :class:`anovit.evaluation.unified.UnifiedEvaluation`)."""
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"{c}: image AUROC {fmt(e.image_auroc)}  pixel AUROC {fmt(e.pixel_auroc)}"
             for c, e in result.per_class.items()]
    return lines + [f"mean: image AUROC {fmt(result.mean('image_auroc'))}  pixel AUROC {fmt(result.mean('pixel_auroc'))}"]


def print_unified(result: Any) -> None:
    """Print :func:`unified_lines`, and each class's precision note and unavailable metrics."""
    for category, evaluation in result.per_class.items():
        if evaluation.precision_note:
            print(f"note ({category}): {evaluation.precision_note}")
        for kind, reason in evaluation.unavailable.items():
            print(f"{category}: {kind} metrics n/a: {reason}")
    print("\n".join(unified_lines(result)))


def _evaluate_unified_with_bar(run_dir: Path, **kwargs: Any) -> Any:
    """``evaluate_unified_run`` with a progress bar per class on the terminal."""
    from ..evaluation.unified import evaluate_unified_run

    bars: list[TerminalBar] = []

    def progress(done: int, total: int) -> None:
        bars[-1](done, total)

    def on_class(category: str) -> None:
        if bars:
            bars[-1].close()
        bars.append(TerminalBar(f"evaluate {category}"))

    try:
        return evaluate_unified_run(run_dir, on_class=on_class, progress=progress, **kwargs)
    finally:
        if bars:
            bars[-1].close()


def interrupted(run_dir: Path, argv: list[str]) -> str:
    """What ``train`` says when Ctrl-C stops it: the exact command that resumes it (the same arguments with
    --resume and --output, without --overwrite), or that nothing was saved yet."""
    from ..runs import checkpoint as ckpt

    if not (run_dir / ckpt.RESUME).is_file():
        return f"training stopped (Ctrl-C) before its first epoch ended: nothing was saved in {run_dir}; run the same command again"
    kept = [a for a in argv if a not in ("--overwrite", "--resume")]
    if "--output" not in kept and not any(a.startswith("--output=") for a in kept):
        kept += ["--output", str(run_dir)]
    command = shlex.join(["python", "-m", "anovit", *kept, "--resume"])
    return f"training stopped (Ctrl-C); its last finished epoch is saved in {run_dir}: continue it with  {command}"


def _evaluate_with_bar(run_dir: Path, **kwargs: Any) -> Any:
    """``evaluate_run`` with a progress bar on the terminal."""
    from ..evaluation.evaluate import evaluate_run

    bar = TerminalBar("evaluate")
    try:
        return evaluate_run(run_dir, progress=bar, **kwargs)
    finally:
        bar.close()


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.unified import is_unified

    if is_unified(args.run_dir) and args.category is None:  # one model for every class: evaluated per class
        if args.dataset is not None or args.data_root is not None:
            raise ConfigError("a unified run (one model for every class) is evaluated on its own classes: leave out "
                              "--dataset and --data-root, or name one --category")
        unified = _evaluate_unified_with_bar(args.run_dir, sigma=args.sigma, batch_size=args.batch_size,
                                             device=args.device, bf16=args.bf16, refit_threshold=args.refit_threshold,
                                             notify=tqdm.write, **scoring_overrides(args))
        print_unified(unified)
        out = args.output or args.run_dir / "evaluation.json"
        out.write_text(json.dumps({**unified.summary(), "rows": {c: e.rows for c, e in unified.per_class.items()}},
                                  indent=2))
        print(f"wrote {out}")
        return 0
    result = _evaluate_with_bar(args.run_dir, dataset=args.dataset, category=args.category, data_root=args.data_root,
                                sigma=args.sigma, batch_size=args.batch_size, device=args.device, bf16=args.bf16,
                                refit_threshold=args.refit_threshold, notify=tqdm.write, **scoring_overrides(args))
    _print_eval(result)
    out = args.output or args.run_dir / "evaluation.json"
    out.write_text(json.dumps({**result.summary(), "rows": result.rows}, indent=2))
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="anovit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from .data import add_data_parser
    from ..deploy.export import add_export_parser
    from .hub import add_hub_parser
    from ..evaluation.launchers import add_benchmark_parser  # anovit.benchmark's, with --devices and --cluster
    from .report import add_report_parser
    from .score import add_score_parser

    for add_parser in (_train_parser, _evaluate_parser, add_data_parser, add_benchmark_parser, add_report_parser,
                       add_hub_parser, add_export_parser, add_score_parser):
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; anovit's own errors, and files the system refuses to write or name, print one line and
    exit with status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (AnovitError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in REFUSED_OS_ERRORS:
            raise
        print(f"error: {os_refusal(err)}", file=sys.stderr)
        return 2


REFUSED_OS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG)


def os_refusal(err: OSError) -> str:
    """One sentence for a file the system refuses to write (no permission, read-only) or to name (too long)."""
    name = err.filename or "a file"
    if err.errno == errno.ENAMETOOLONG:
        longest = max(Path(name).parts, key=len) if err.filename else ""
        return (f"'{name}' is longer than the file system allows (a name of {len(longest)} characters; expected "
                f"at most 255 per name and 4096 in all): choose a shorter name")
    return (f"cannot write '{name}': {(err.strerror or 'refused').lower()} (expected a folder anovit may write "
            f"to: choose another --output, or set ANOVIT_CHECKPOINTS / ANOVIT_RESULTS)")
