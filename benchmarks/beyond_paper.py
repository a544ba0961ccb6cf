"""Beyond the paper, measured (issue 11): the SSIM-AE, AnoViT cpu-tiny (the paper's recipe from
scratch) and AnoViT cpu-tiny-masked on the real cookie photographs (``../shared/data/cookies``, MVTec
layout: 31 train/good, 46 test) and on the synthetic set (generator seed 0, ``--n-train`` training
images per category), each with its preset's defaults (epochs, lr, loss, score, sigma) at 128 px,
seeds 0..N-1. The best epoch is chosen on the validation split; the test split is only scored.

Per run: image and pixel AUROC, training and evaluation seconds; per (set, model, preset): mean ± sample
std over seeds (categories averaged per seed first). The l2-CAE on cookies is measured by
``benchmarks/cae_recipe.py``-style runs elsewhere (``--models`` adds ``cae:cpu-tiny`` here).

Writes ``benchmarks/results/beyond_paper.json`` after every run (a killed run keeps what it measured).
Run from the repository root: ``OMP_NUM_THREADS=1 nice -n 5 python benchmarks/beyond_paper.py``
(``--smoke [--out DIR]``: every variant for one epoch at 64 px on tiny data made here, one seed, the JSON
into DIR or a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import RESULTS, ROOT, SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, smoke_workdir, \
    tiny_mvtec

VARIANTS = "ssim-cae:cpu-tiny,anovit:cpu-tiny,anovit:cpu-tiny-masked"
OUTPUT = RESULTS / "beyond_paper.json"
SYNTHETIC = ("washer", "weave")  # an object and a texture


def summary(runs: list[dict]) -> list[dict]:
    """Mean ± sample std over seeds per (set, model, preset) of the per-seed mean over categories."""
    groups: dict[tuple, dict[int, list[dict]]] = {}
    for r in runs:
        groups.setdefault((r["set"], r["model"], r["preset"]), {}).setdefault(r["seed"], []).append(r)
    out = []
    for (name, model, preset), seeds in groups.items():
        row: dict = {"set": name, "model": model, "preset": preset, "seeds": sorted(seeds)}
        for key in ("image_auroc", "pixel_auroc", "train_seconds", "eval_seconds"):  # None: not measured
            values = [statistics.fmean(r[key] for r in rs) for rs in seeds.values() if all(r[key] is not None for r in rs)]
            row[f"{key}_mean"] = statistics.fmean(values) if values else None
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(row)
    return out


LABELS = {("cae", "cpu-tiny"): "l2-CAE", ("ssim-cae", "cpu-tiny"): "SSIM-AE",
          ("anovit", "cpu-tiny"): "AnoViT cpu-tiny (paper recipe)", ("anovit", "cpu-tiny-masked"): "AnoViT cpu-tiny-masked"}


def _pm(mean: float, std: float | None, digits: int = 3) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"


def cae_cookie_rows(path) -> list[dict]:
    """The l2-CAE cookie runs of ``benchmarks/cae_recipe.py``'s JSON (Bergmann recipe, 128 px) as runs of
    this script ([] when the file or such runs are missing)."""
    if not path.is_file():
        return []
    runs = json.loads(path.read_text()).get("runs", [])
    return [{"set": "cookies", "category": r["category"], "model": "cae", "preset": "cpu-tiny", "seed": r["seed"],
             "image_auroc": r["image_auroc"], "pixel_auroc": r["pixel_auroc"], "train_seconds": r["train_seconds"],
             "eval_seconds": None}
            for r in runs if r.get("dataset") == "mvtec" and r.get("recipe") == "bergmann" and r.get("image_size") == 128]


def markdown_table(runs: list[dict]) -> str:
    """The README table: one row per (set, model, preset), mean ± std over seeds."""
    lines = ["| set | model | image AUROC | pixel AUROC | train s per class | seeds |", "|---|---|---|---|---|---|"]
    for row in sorted(summary(runs), key=lambda r: (r["set"], list(LABELS).index((r["model"], r["preset"])))):
        lines.append(f"| {row['set']} | {LABELS[(row['model'], row['preset'])]} | "
                     f"{_pm(row['image_auroc_mean'], row['image_auroc_std'])} | "
                     f"{_pm(row['pixel_auroc_mean'], row['pixel_auroc_std'])} | "
                     f"{row['train_seconds_mean']:.0f} | {len(row['seeds'])} |")
    return "\n".join(lines)


def rescore(out: dict, variants: list, sets: list[str], work, evaluate_run, output) -> None:
    """Re-evaluate each recorded run of ``variants`` on ``sets`` with its preset's current score function and
    sigma (its training.json rewritten with them; training seconds kept) and write the JSON again."""
    from dataclasses import asdict

    from anovit.runs import checkpoint as ckpt
    from anovit.training.config import TrainConfig, load_training

    for row in out["runs"]:
        if row["set"] not in sets or (row["model"], row["preset"]) not in variants:
            continue
        run_dir = work / f"{row['set']}-{row['category']}-{row['model']}-{row['preset']}-s{row['seed']}"
        config = TrainConfig.from_dict({**asdict(load_training(run_dir)), "score": None, "sigma": None})
        ckpt.write_json(run_dir / ckpt.TRAINING, json.loads(json.dumps(asdict(config))))
        t0 = time.perf_counter()
        test = evaluate_run(run_dir)
        row.update(score=config.score, sigma=config.sigma, image_auroc=test.image_auroc, pixel_auroc=test.pixel_auroc,
                   eval_seconds=time.perf_counter() - t0)
        print(json.dumps(row), flush=True)
    out["summary"] = summary(out["runs"])
    output.write_text(json.dumps(out, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", metavar="CAE_RECIPE_JSON", nargs="?", const="",
                        help="print the README table of the measured JSON (with the l2-CAE cookie runs of a "
                             "cae_recipe.json, if given) and exit")
    parser.add_argument("--sets", default="cookies,synthetic")
    parser.add_argument("--variants", default=VARIANTS, help="comma-separated model:preset (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=48, help="synthetic training images per category")
    parser.add_argument("--rescore", action="store_true",
                        help="re-evaluate the finished run folders of --variants and --sets with their preset's "
                             "current score function and sigma (scoring settings; the training is unchanged)")
    add_output_args(parser)
    args = parser.parse_args()
    if args.table is not None:
        from pathlib import Path

        runs = json.loads(OUTPUT.read_text())["runs"] + (cae_cookie_rows(Path(args.table)) if args.table else [])
        print(markdown_table(runs))
        return

    import torch

    from anovit.data.synthetic import generate
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    torch.set_num_threads(1)
    output = output_dir(args) / OUTPUT.name
    output.parent.mkdir(parents=True, exist_ok=True)
    fields: dict = {}  # TrainConfig fields beyond the preset's
    if args.smoke:
        work = smoke_workdir()
        sets = {"tiny": ("mvtec", str(tiny_mvtec(work / "data")), (SMOKE_CATEGORY,))}
        args.sets, args.seeds = "tiny", 1
        fields = {"epochs": 1, "batch_size": 4, "images_per_epoch": 8, "model_overrides": {"image_size": SMOKE_SIZE}}
    else:
        work = ROOT / "checkpoints" / "beyond-paper"
        sets = {"cookies": ("mvtec", str(ROOT.parent / "shared" / "data" / "cookies"), ("cookie",))}
    if "synthetic" in args.sets:
        root = generate(work / "synthetic", categories=list(SYNTHETIC), n_train=args.n_train, seed=0)
        sets["synthetic"] = ("synthetic", str(root), SYNTHETIC)
    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    out: dict = {"variants": variants, "seeds": args.seeds, "synthetic_n_train": args.n_train, "image_size": 128,
                 "runs": [], "machine": machine()}
    if output.is_file():  # keep the runs of an earlier invocation (e.g. another --sets)
        previous = json.loads(output.read_text())
        out["runs"] = [r for r in previous.get("runs", []) if args.rescore or r["set"] not in args.sets.split(",")
                       or (r["model"], r["preset"]) not in variants]
    start = time.time()
    if args.rescore:
        rescore(out, variants, args.sets.split(","), work, evaluate_run, output)
        return
    for name in args.sets.split(","):
        dataset, data_root, categories = sets[name]
        for seed in range(args.seeds):
            for model, preset in variants:
                for category in categories:
                    config = TrainConfig(dataset=dataset, category=category, data_root=data_root, model=model,
                                         preset=preset, seed=seed, **fields)
                    run_dir = work / f"{name}-{category}-{model}-{preset}-s{seed}"
                    result = train(config, run_dir, overwrite=True)
                    t0 = time.perf_counter()
                    test = evaluate_run(run_dir)
                    row = {"set": name, "category": category, "model": model, "preset": preset, "seed": seed,
                           "epochs": config.epochs, "lr": config.lr, "loss": config.loss, "score": config.score,
                           "sigma": config.sigma, "best_epoch": result.best_epoch,
                           "image_auroc": test.image_auroc, "pixel_auroc": test.pixel_auroc,
                           "train_seconds": sum(h["seconds"] for h in result.history),
                           "eval_seconds": time.perf_counter() - t0}
                    out["runs"].append(row)
                    out["summary"], out["wall_seconds"], out["machine_end"] = summary(out["runs"]), time.time() - start, machine()
                    output.write_text(json.dumps(out, indent=2))
                    print(json.dumps(row), flush=True)
    print(json.dumps(out["summary"], indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
