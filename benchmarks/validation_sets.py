"""Choosing the CPU defaults on real validation photographs (issue 23).

Four real sets in the MVTec layout (``../shared/data``: the cookies, VisA capsules, MPDD metal_plate,
DeepPCB pcb; never a test split of anything else) x recipes x seeds, in three stages:

1. TRAIN through the real API (``anovit.training.trainer.train`` with a ``TrainConfig``) into a persistent
   ``--runs-root`` (outside the repository), one folder per (set, recipe, seed); a finished run is
   skipped and a killed one resumed, so a rerun continues where it stopped.
2. PRODUCT SCORING: ``anovit.evaluation.evaluate.evaluate_run`` on each run, the scoring ``train`` prints.
3. STUDY: each run's smoothed raw anomaly maps of its held-out normal validation images and of its
   test images (+ gt masks, labels) go to ``<runs-root>/<run>/maps.npz`` once; calibration variants
   (none / mean / standardise / shrunk(lam)) x image-score pooling (max / top q %) are then scored in
   numpy from those maps (:mod:`anovit.evaluation.metrics` AUROCs), with AUROC vs the number of calibration
   images on capsules.

Calibration (per pixel, fitted on the validation maps, PaDiM-style): mean ``mu`` and variance ``var``
over the calibration images; "mean": ``map - mu``; "shrunk" (lam): ``(map - mu) / sqrt((1 - lam) var +
lam mean(var))`` (lam 0: "standardise"; the spread shrunk towards its image-wide mean).

Writes ``benchmarks/results/validation_sets.json`` (runs, study, summary table) and prints the table.
``--smoke`` makes a tiny MVTec-layout set in a temporary folder, trains two 1-epoch runs there and
writes nothing in the repository. Run from the repository root, e.g.
``python benchmarks/validation_sets.py --recipes anovit-paper,cae-paper --seeds 0,1,2``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from _common import RESULTS, ROOT, add_output_args, machine, output_dir, write_result

DATA = ROOT.parent / "shared" / "data"
SETS = {  # name -> (data root, category)
    "cookies": (DATA / "cookies", "cookie"),
    "capsules": (DATA / "validation" / "visa", "capsules"),
    "metal_plate": (DATA / "validation" / "mpdd", "metal_plate"),
    "pcb": (DATA / "validation" / "deeppcb", "pcb"),
}
# AnoViT cpu-default's image score before stop 33 (the top 5 % minus the mean; the l2-CAE's still)
_STOP32_SCORING = dict(image_calibration="mean", pooling_top_percent=5.0)
_UNTILED = dict(model_overrides={"image_size": 128}, sigma=4.0, **_STOP32_SCORING)  # before stop 32: one 128 px tile
# recipe -> TrainConfig fields (dataset "mvtec"; data_root, category and seed are added per run).
# "*-paper": the paper's recipe at tiny size (AnoViT cpu-tiny, 10 epochs) and Bergmann et al.'s l2-CAE;
# "*-default": what `python -m anovit train` gives without --preset; the rest are the screened candidates.
RECIPES: dict[str, dict[str, Any]] = {
    "anovit-paper": dict(model="anovit", preset="cpu-tiny"),
    "cae-paper": dict(model="cae", preset="cpu-tiny"),
    "anovit-default": dict(model="anovit", preset="cpu-default"),  # 128 px tiles of 256 px images (stop 32), 384 px (33)
    "cae-default": dict(model="cae", preset="cpu-default"),  # re-trained at stop 31 (seeds 0-2)
    # the candidates below pin what they ran where cpu-default has changed since (128 px untiled, sigma 4 px, the
    # image score of stop 31):
    # the stop-31 default (AnoViT cpu-default until tiling replaced it at stop 32)
    "anovit-stop31": dict(model="anovit", preset="cpu-default", **_UNTILED),
    # AnoViT cpu-default's budget, screened on seed 0 (stop 30): the former default's 10 epochs, 30 epochs, and
    # 192 px at 10 epochs (sigma scaled with the size); 45 epochs won (anovit-stop31)
    "anovit-e10": dict(model="anovit", preset="cpu-default", epochs=10, **_UNTILED),
    "anovit-e30": dict(model="anovit", preset="cpu-default", epochs=30, **_UNTILED),
    "anovit-s192": dict(model="anovit", preset="cpu-default", epochs=10, sigma=6.0,
                        model_overrides={"image_size": 192, "tile_size": 192}),  # one tile: untiled
    # the learning-rate schedule, screened on seed 0 (stop 31): cosine annealing, with batches of 16 and of 8
    # (twice the optimiser steps for the same images); neither adopted (README)
    "anovit-cosine": dict(model="anovit", preset="cpu-default", lr_schedule="cosine", **_UNTILED),
    "anovit-cosine-b8": dict(model="anovit", preset="cpu-default", lr_schedule="cosine", batch_size=8, **_UNTILED),
    # the l2-CAE in AnoViT's tiles (stop 32): 256 px images from 128 px tiles, sigma 8 px
    "cae-tiled": dict(model="cae", preset="cpu-default", model_overrides={"image_size": 256, "tile_size": 128},
                      sigma=8.0),
    # the stop-32 default (256 px images in 128 px tiles, sigma 8 px); stop 33's 384 px images were screened on seed 0
    # at sigma 8 / 12 / 16 px (README) as "anovit-s384", whose runs became anovit-default's
    "anovit-stop32": dict(model="anovit", preset="cpu-default", model_overrides={"image_size": 256}, sigma=8.0,
                          **_STOP32_SCORING),
}
# re-scorings of a trained run: name -> (score function, None: the run's; sigma: a factor on the run's
# sigma (float) or an absolute sigma in px (str))
SCORINGS: dict[str, tuple[str | None, float | str]] = {"run": (None, 1.0), "run-sigma2x": (None, 2.0),
                                                        "run-sigma0.5x": (None, 0.5), "msgms": ("msgms", 1.0),
                                                        "ssim": ("ssim", 1.0), "sigma4": (None, "4"),
                                                        "l2-ssim": ("l2-ssim", 1.0)}
POOLINGS = {"max": None, "top0.1%": 0.001, "top1%": 0.01, "top5%": 0.05, "top10%": 0.1}
LAMBDAS = (0.0, 0.25, 0.5, 0.75)
CURVE_SET, CURVE_N, CURVE_DRAWS = "capsules", (2, 4, 8, 16, 32, 54), 5
OUTPUT = RESULTS / "validation_sets.json"
# the score function (a re-scoring, SCORINGS), the calibration of the image score's map, its pooling and the pixel
# map's calibration chosen by the study (mean over the sets and seeds; see the README), per model: cpu-default's
# scoring (anovit.models). Stop 31: from the l2 map standardised (sigma4 / standardise) to l2-ssim / mean / top 5 %
# (both models); stop 33: AnoViT's image score to shrunk 0.5 / top 1 % (re-studied on its 384 px runs).
CHOSEN = {"anovit": {"scoring": "l2-ssim", "image": "shrunk0.5", "pooling": "top1%", "pixel": "none"},
          "cae": {"scoring": "l2-ssim", "image": "mean", "pooling": "top5%", "pixel": "none"}}


# ---------------------------------------------------------------- stage 1 + 2: train, product scoring
def _finished(run_dir: Path, epochs: int) -> bool:
    """Whether ``run_dir`` holds a run trained to ``epochs`` epochs."""
    from anovit.runs.metrics_record import read_run_metrics

    log = read_run_metrics(run_dir).training
    return log is not None and log.epoch == epochs and not log.stopped


def train_and_score(config: Any, run_dir: Path) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (skipped when finished, resumed when killed), evaluate it with
    :func:`anovit.evaluation.evaluate.evaluate_run` and return the run's record."""
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.runs.metrics_record import read_run_metrics
    from anovit.runs.record import SCORING_FIELDS
    from anovit.training.trainer import train

    if not _finished(run_dir, config.epochs):
        train(config, run_dir, resume=(run_dir / "resume.safetensors").is_file(), overwrite=True)
    log = read_run_metrics(run_dir).training
    # the product's scoring at the recipe's settings (sigma, score function, calibration, pooling: the preset's; the
    # score function does not change training, so a run trained before a preset's score changed is re-scored), on the run's
    # weights; statistics and threshold fitted on its validation split, nothing written (runs trained before
    # the scoring fields were recorded score as their preset says today)
    result = evaluate_run(run_dir, device="cpu", sigma=config.sigma, score=config.score, record=False,
                          **{k: getattr(config, k) for k in SCORING_FIELDS})
    return {"image_auroc": result.image_auroc, "pixel_auroc": result.pixel_auroc,
            "best_epoch": log.best_epoch, "epochs": config.epochs,
            "scoring": {"sigma": config.sigma, "score": config.score, **{k: getattr(config, k) for k in SCORING_FIELDS}},
            "train_seconds": sum(h.seconds for h in log.history), "eval_seconds": result.seconds,
            "images_per_s": statistics.fmean(h.images_per_s for h in log.history)}


# ---------------------------------------------------------------- stage 3: maps cache and study
def dump_maps(run_dir: Path, scoring: str = "run") -> Path:
    """``run_dir/maps-<scoring>.npz``: smoothed raw anomaly maps (float32, N x H x W) of the run's validation
    split (``val``) and test split (``test``, with ``masks`` bool and ``labels``), scored as SCORINGS[scoring]
    says; made once."""
    import torch

    from anovit.data import get_dataset, train_val_datasets
    from anovit.scoring.detector import Detector
    from anovit.runs.record import read_training_record
    from anovit.training.config import load_training

    path = run_dir / f"maps-{scoring}.npz"
    if path.is_file():
        return path
    training = load_training(run_dir)
    score, sigma = SCORINGS[scoring]
    # raw maps only (the study calibrates them itself): no calibration, whatever the run's recipe
    detector = Detector.from_run(run_dir, device="cpu", score_function=score, image_calibration="none",
                                 pixel_calibration="none",
                                 sigma=float(sigma) if isinstance(sigma, str) else sigma * read_training_record(run_dir).sigma)
    _, val_set = train_val_datasets(training.dataset, category=training.category, image_size=detector.image_size,
                                    root=training.data_root, val_fraction=training.val_fraction, seed=training.seed)
    test_set = get_dataset(training.dataset, "test", category=training.category, image_size=detector.image_size,
                           root=training.data_root, seed=training.seed)
    val = torch.cat([b.anomaly_map for b in detector.iter_scored(val_set)])
    batches = list(detector.iter_scored(test_set))
    np.savez_compressed(path, val=val.numpy(), test=torch.cat([b.anomaly_map for b in batches]).numpy(),
                        masks=torch.cat([b.gt_mask for b in batches]).numpy().reshape(-1, *val.shape[1:]) > 0.5,
                        labels=torch.cat([b.gt_label for b in batches]).numpy())
    return path


def calibrate(val: np.ndarray, maps: np.ndarray, variant: str, lam: float = 0.0) -> np.ndarray:
    """``maps`` (N, H, W) calibrated per pixel on the normal ``val`` maps (M, H, W): "none", "mean"
    (minus the mean map) or "shrunk" (standardised with the variance shrunk by ``lam`` towards its mean)."""
    if variant == "none":
        return maps
    mu = val.mean(0)
    if variant == "mean":
        return maps - mu
    var = val.var(0)
    return (maps - mu) / np.sqrt((1 - lam) * var + lam * var.mean() + 1e-12)


def pool(maps: np.ndarray, q: float | None) -> np.ndarray:
    """Anomaly scores (N,): the max of each map (q None, eq. 7) or the mean of its top ``q`` share of pixels."""
    flat = maps.reshape(len(maps), -1)
    if q is None:
        return flat.max(1)
    k = max(1, int(round(q * flat.shape[1])))
    return np.partition(flat, -k, axis=1)[:, -k:].mean(1)


def variants() -> list[tuple[str, str, float]]:
    """(name, variant, lam) of every calibration compared."""
    return [("none", "none", 0.0), ("mean", "mean", 0.0)] + [
        ("standardise" if lam == 0 else f"shrunk{lam:g}", "shrunk", lam) for lam in LAMBDAS]


def study_run(path: Path, val_idx: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Image AUROC per (calibration, pooling) and pixel AUROC per calibration of one run's maps
    (calibration images: the validation maps ``val_idx``, all without)."""
    from anovit.evaluation.metrics import image_auroc, pixel_auroc

    data = np.load(path)
    val = data["val"] if val_idx is None else data["val"][val_idx]
    test, masks, labels = data["test"], data["masks"], data["labels"]
    image, pixel = {}, {}
    for name, variant, lam in variants():
        maps = calibrate(val, test, variant, lam)
        pixel[name] = pixel_auroc(maps, masks)
        for pname, q in POOLINGS.items():
            image[f"{name}/{pname}"] = image_auroc(pool(maps, q), labels)
    return {"image": image, "pixel": pixel}


def calibration_curve(paths: list[Path]) -> list[dict[str, Any]]:
    """Image and pixel AUROC vs the number n of calibration images (CURVE_N, CURVE_DRAWS seeded draws
    per n, runs averaged) for the standardised and shrunk0.5 maps with the best poolings."""
    rows = []
    for n in CURVE_N:
        per: dict[str, list[float]] = {}
        for i, path in enumerate(paths):
            m = len(np.load(path)["val"])
            draws = 1 if n >= m else CURVE_DRAWS
            for d in range(draws):
                idx = np.sort(np.random.default_rng(1000 * i + d).permutation(m)[:min(n, m)])
                res = study_run(path, idx)
                for key, value in [*(("image " + k, v) for k, v in res["image"].items()),
                                   *(("pixel " + k, v) for k, v in res["pixel"].items())]:
                    per.setdefault(key, []).append(value)
        rows.append({"n": n, **{k: statistics.fmean(v) for k, v in per.items()}})
    return rows


# ---------------------------------------------------------------- summary
def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarise(runs: list[dict]) -> list[dict]:
    """Per (recipe, set) and per recipe over sets ("mean"): mean +- sample std over seeds of the product
    image / pixel AUROC (per seed, the mean over sets first for "mean"), and the worst set's mean image AUROC."""
    out = []
    for recipe in sorted({r["recipe"] for r in runs}):
        mine = [r for r in runs if r["recipe"] == recipe]
        sets = sorted({r["set"] for r in mine})
        for name in sets:
            rs = [r for r in mine if r["set"] == name]
            row = {"recipe": recipe, "set": name, "seeds": sorted(r["seed"] for r in rs)}
            for key in ("image_auroc", "pixel_auroc", "train_seconds"):
                row[key], row[key + "_std"] = _mean_std([r[key] for r in rs])
            out.append(row)
        seeds = sorted(set.intersection(*({r["seed"] for r in mine if r["set"] == s} for s in sets)))
        if len(sets) > 1 and seeds:
            row = {"recipe": recipe, "set": "mean", "seeds": seeds, "sets": sets}
            for key in ("image_auroc", "pixel_auroc", "train_seconds"):
                row[key], row[key + "_std"] = _mean_std([statistics.fmean(
                    r[key] for r in mine if r["seed"] == s) for s in seeds])
            row["worst_image_auroc"] = min(o["image_auroc"] for o in out if o["recipe"] == recipe and o["set"] != "mean")
            out.append(row)
    return out


def markdown_table(rows: list[dict]) -> str:
    """The README's validation table: one line per (set, recipe), mean ± sample std over seeds."""
    pm = lambda m, s: f"{m:.3f}" + (f" ± {s:.3f}" if s is not None else "")
    lines = ["| set | recipe | seeds | image AUROC | pixel AUROC | train s |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["set"] == "mean", r["set"], r["recipe"])):
        lines.append(f"| {r['set']} | {r['recipe']} | {','.join(map(str, r['seeds']))} | "
                     f"{pm(r['image_auroc'], r['image_auroc_std'])} | {pm(r['pixel_auroc'], r['pixel_auroc_std'])} | "
                     f"{r['train_seconds']:.0f} |")
    return "\n".join(lines)


def print_table(rows: list[dict]) -> None:
    pm = lambda m, s: f"{m:.3f}" + (f" ± {s:.3f}" if s is not None else "")
    print(f"{'recipe':<22} {'set':<12} {'seeds':<8} {'image AUROC':<15} {'pixel AUROC':<15} {'train s':>8}")
    for r in rows:
        print(f"{r['recipe']:<22} {r['set']:<12} {','.join(map(str, r['seeds'])):<8} "
              f"{pm(r['image_auroc'], r['image_auroc_std']):<15} {pm(r['pixel_auroc'], r['pixel_auroc_std']):<15} "
              f"{r['train_seconds']:>8.0f}")


def study_summary(runs: list[dict], runs_root: Path, scorings: list[str]) -> dict[str, Any]:
    """Per recipe: mean over sets and seeds (and worst set) of every (scoring, calibration, pooling) image
    AUROC and (scoring, calibration) pixel AUROC, from the maps cache."""
    out: dict[str, Any] = {}
    for recipe in sorted({r["recipe"] for r in runs}):
        per_set: dict[str, dict[str, list[float]]] = {}
        for r in (r for r in runs if r["recipe"] == recipe):
            for scoring in scorings:
                res = study_run(dump_maps(runs_root / r["run"], scoring))
                for kind in ("image", "pixel"):
                    for k, v in res[kind].items():
                        per_set.setdefault(f"{kind} {scoring}/{k}", {}).setdefault(r["set"], []).append(v)
        out[recipe] = {k: {"mean": statistics.fmean(statistics.fmean(v) for v in sets.values()),
                           "worst_set": min((statistics.fmean(v), s) for s, v in sets.items())[1],
                           "worst": min(statistics.fmean(v) for v in sets.values()),
                           **{s: statistics.fmean(v) for s, v in sets.items()}} for k, sets in per_set.items()}
    return out


def chosen_rows(runs: list[dict], runs_root: Path) -> list[dict]:
    """The runs as their model's chosen score, calibration and pooling (CHOSEN) score them, from the maps cache:
    per run ``image_auroc`` / ``pixel_auroc`` replaced (the product scoring kept as ``raw_*``)."""
    from anovit.evaluation.metrics import image_auroc, pixel_auroc

    out = []
    for r in runs:
        chosen = CHOSEN[r["model"]]
        data = np.load(dump_maps(runs_root / r["run"], chosen["scoring"]))
        val, test = data["val"], data["test"]
        image_maps = calibrate(val, test, *_variant(chosen["image"]))
        pixel_maps = calibrate(val, test, *_variant(chosen["pixel"]))
        out.append({**r, "raw_image_auroc": r["image_auroc"], "raw_pixel_auroc": r["pixel_auroc"],
                    "image_auroc": image_auroc(pool(image_maps, POOLINGS[chosen["pooling"]]), data["labels"]),
                    "pixel_auroc": pixel_auroc(pixel_maps, data["masks"])})
    return out


def _variant(name: str) -> tuple[str, float]:
    return next((variant, lam) for n, variant, lam in variants() if n == name)


def plot_curve(curves: dict[str, list[dict]], scorings: dict[str, str], path: Path) -> None:
    """An HTML plotly figure of image and pixel AUROC vs the number of calibration images (``curves``:
    recipe -> rows of :func:`calibration_curve`; ``scorings``: recipe -> the score function of its maps, l2 where
    none is recorded), for the defaults' image scores (AnoViT: shrunk 0.5, top 1 %; the l2-CAE: minus the mean,
    top 5 %), the standardised map and the raw map for reference."""
    import plotly.graph_objects as go

    fig = go.Figure()
    keys = ("image none/max", "image mean/top5%", "image standardise/max", "image standardise/top5%",
            "image shrunk0.5/top1%", "pixel none", "pixel mean", "pixel standardise")
    for recipe, rows in curves.items():
        for key in (k for k in keys if k in rows[0]):
            fig.add_trace(go.Scatter(x=[r["n"] for r in rows], y=[r[key] for r in rows], mode="lines+markers",
                                     name=f"{recipe} ({scorings.get(recipe, 'l2')} map): {key.replace('/', ', ')}"))
    fig.update_layout(title=f"AUROC vs number of calibration images ({CURVE_SET}, held-out normal validation images)",
                      xaxis_title="calibration images", yaxis_title="AUROC", xaxis_type="log")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs="cdn")


# ---------------------------------------------------------------- main
def _smoke_sets(folder: Path) -> dict[str, tuple[Path, str]]:
    """A tiny MVTec-layout class (8 train, 2 + 2 test images at 32 px, one defect mask) under ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    base = folder / "smoke" / "thing"
    for sub, n in (("train/good", 8), ("test/good", 2), ("test/spot", 2)):
        (base / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = (rng.random((32, 32, 3)) * 40 + 100).astype(np.uint8)
            if sub == "test/spot":
                img[8:16, 8:16] = 255
                (base / "ground_truth/spot").mkdir(parents=True, exist_ok=True)
                mask = np.zeros((32, 32), np.uint8)
                mask[8:16, 8:16] = 255
                Image.fromarray(mask).save(base / f"ground_truth/spot/{i:03d}_mask.png")
            Image.fromarray(img).save(base / sub / f"{i:03d}.png")
    return {"smoke": (folder / "smoke", "thing")}


def main() -> None:
    from anovit.training.config import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS), help=f"comma list of: {', '.join(SETS)}")
    p.add_argument("--recipes", default="anovit-paper,cae-paper", help=f"comma list of: {', '.join(RECIPES)}")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds")
    p.add_argument("--runs-root", type=Path, default=Path("/work/valruns"), help="run folders (outside the repository)")
    p.add_argument("--study", action="store_true", help="also dump the maps and run the calibration x pooling study")
    p.add_argument("--scorings", default="run", help=f"study: comma list of re-scorings: {', '.join(SCORINGS)}")
    p.add_argument("--curve", action="store_true", help=f"study: AUROC vs number of calibration images on {CURVE_SET}")
    p.add_argument("--no-train", action="store_true", help="only the runs already trained (summary and study)")
    add_output_args(p)
    p.add_argument("--table", action="store_true", help="print the README's Markdown table from the JSON and stop")
    args = p.parse_args()
    if args.table:
        print(markdown_table(json.loads(OUTPUT.read_text())["summary"]))
        return

    tmp = tempfile.TemporaryDirectory() if args.smoke else None
    sets = _smoke_sets(Path(tmp.name)) if tmp else {k: SETS[k] for k in args.sets.split(",")}
    runs_root = Path(tmp.name) / "runs" if tmp else args.runs_root
    recipes = {k: RECIPES[k] for k in args.recipes.split(",")}
    seeds = [0] if tmp else [int(s) for s in args.seeds.split(",")]
    extra = dict(epochs=1, batch_size=4, images_per_epoch=8, model_overrides={"image_size": 32}) if tmp else {}

    old = json.loads(OUTPUT.read_text()) if OUTPUT.is_file() and not tmp else {}
    runs = {(r["recipe"], r["set"], r["seed"]): r for r in old.get("runs", [])}
    start = machine()
    for recipe, fields in recipes.items():
        for name, (root, category) in sets.items():
            for seed in seeds:
                config = TrainConfig(dataset="mvtec", category=category, data_root=str(root), seed=seed,
                                     **{**fields, **extra})
                run = f"{name}-{recipe}-s{seed}"
                if args.no_train and not _finished(runs_root / run, config.epochs):
                    continue
                record = train_and_score(config, runs_root / run)
                runs[(recipe, name, seed)] = {"recipe": recipe, "set": name, "seed": seed, "run": run,
                                              "model": config.model, "preset": config.preset,
                                              "image_size": config.model_overrides.get("image_size"), **record,
                                              "load_average_1m": machine()["load_average_1m"]}
                print(f"{run}: image {record['image_auroc']:.3f} pixel {record['pixel_auroc']:.3f} "
                      f"({record['train_seconds']:.0f} s train, best epoch {record['best_epoch']})", flush=True)
                if not tmp:
                    _write({**old, "runs": sorted(runs.values(), key=lambda r: (r["recipe"], r["set"], r["seed"]))}, start)
    out = {**old, "runs": sorted(runs.values(), key=lambda r: (r["recipe"], r["set"], r["seed"])), "recipes": RECIPES,
           "summary": summarise(list(runs.values()))}
    if args.study:
        chosen = [r for r in runs.values() if r["recipe"] in recipes]
        out["study"] = {**old.get("study", {}), **study_summary(chosen, runs_root, args.scorings.split(","))}
        for recipe in recipes if args.curve else ():
            # on the maps of the chosen score function (stop 31; the curves made before were of l2 maps)
            scoring = CHOSEN[RECIPES[recipe]["model"]]["scoring"]
            paths = [dump_maps(runs_root / r["run"], scoring) for r in chosen
                     if r["set"] == CURVE_SET and r["recipe"] == recipe]
            if paths:
                out.setdefault("calibration_curve", {})[recipe] = calibration_curve(paths)
                out.setdefault("calibration_curve_scoring", {})[recipe] = scoring
        if args.curve and out.get("calibration_curve") and not tmp:
            plot_curve(out["calibration_curve"], out.get("calibration_curve_scoring", {}),
                       ROOT / "docs" / "calibration_curve.html")
    if args.study:
        out["chosen"] = CHOSEN
        # the recipes studied now; the other recipes' rows as studied before (their run folders may be gone)
        out["summary_chosen"] = ([r for r in old.get("summary_chosen", []) if r["recipe"] not in recipes]
                                 + [{**row, "chosen": CHOSEN[RECIPES[row["recipe"]]["model"]]}
                                    for row in summarise(chosen_rows(chosen, runs_root))])
        print("calibrated as chosen:", CHOSEN)
        print_table(out["summary_chosen"])
        print("product scoring (each recipe's own: its preset's sigma, score function, calibration and pooling):")
    print_table(out["summary"])
    if tmp:
        tmp.cleanup()
        write_result("validation_sets", out, output_dir(args))
    else:
        _write(out, start)


def _write(data: dict[str, Any], start: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**data, "machine": {**start, "load_average_1m_end": machine()["load_average_1m"]}}
    OUTPUT.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    sys.exit(main())
