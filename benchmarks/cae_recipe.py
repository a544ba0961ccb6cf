"""Is the l2-CAE baseline trained to convergence with its published recipe? (issue 12, item 7)

Bergmann et al. (2019b) train their autoencoder with Adam (lr 2e-4, weight decay 1e-5) for 200
epochs; that is the trainer's default for the l2-CAE. This script trains it with that default on the
real cookie photographs (``../shared/data/cookies``, MVTec layout, 31 train/good; an object: latent
500) and on the synthetic washers (an object; generated with ``--synthetic-train`` train/good images),
three seeds each, at ``--image-size`` px (cpu-tiny is 128 px), and, with ``--recipes
bergmann,previous``, the previous default (lr 1e-3, 10 epochs) for contrast. The best epoch is chosen
on the validation split only; the test split is only scored.

Per run it records the image and pixel AUROC, the best epoch, the wall time, and the loss curve with
its flatness: the relative change of the mean training loss over the last 10% of epochs vs the 10%
before. Runs are merged into ``benchmarks/results/cae_recipe.json`` by (set, recipe, seed, image
size), so runs at several sizes sit side by side. Run from the repository root, e.g.
``OMP_NUM_THREADS=1 nice -n 2 python benchmarks/cae_recipe.py --sets cookie --image-size 128``
(``--smoke [--out DIR]``: one seed of each recipe for one epoch at 64 px on tiny data made here, the JSON
into DIR or a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import time

from _common import RESULTS, ROOT, SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, smoke_workdir, \
    tiny_mvtec

# {}: the trainer's defaults (Bergmann et al.'s recipe); "long": the same at 3x the epochs, to see whether
# 200 passes over a small training split still leave AUROC to gain
RECIPES = {"bergmann": {}, "long": {"epochs": 600}, "previous": {"epochs": 10, "lr": 1e-3}}
SEEDS = (0, 1, 2)
OUTPUT = RESULTS / "cae_recipe.json"


def flatness(losses: list[float]) -> float | None:
    """Relative change of the mean loss over the last 10% of epochs vs the 10% before (None if < 20)."""
    n = len(losses) // 10
    if n < 2:
        return None
    last, before = sum(losses[-n:]) / n, sum(losses[-2 * n:-n]) / n
    return (last - before) / before


def _key(run: dict) -> tuple:
    return run["dataset"], run["category"], run["recipe"], run["seed"], run["image_size"]


def main() -> None:
    import torch

    from anovit.data.synthetic import generate
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="synthetic,cookie", help="comma list of: synthetic, cookie")
    p.add_argument("--recipes", default="bergmann", help=f"comma list of: {', '.join(RECIPES)}")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma list of seeds")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--synthetic-train", type=int, default=12, help="train/good images of the synthetic washer")
    add_output_args(p)
    args = p.parse_args()
    torch.set_num_threads(1)
    output = output_dir(args) / OUTPUT.name
    output.parent.mkdir(parents=True, exist_ok=True)
    work = smoke_workdir() if args.smoke else ROOT / "checkpoints" / "cae-recipe"
    sets = {"cookie": ("mvtec", lambda: str(ROOT.parent / "shared" / "data" / "cookies"), "cookie"),
            "synthetic": ("synthetic", lambda: str(generate(work / "synthetic", categories=["washer"],
                                                             n_train=args.synthetic_train)), "washer"),
            "tiny": ("mvtec", lambda: str(tiny_mvtec(work / "tiny")), SMOKE_CATEGORY)}
    budget: dict = {}  # overrides of every recipe's epochs
    if args.smoke:
        args.sets, args.seeds, args.image_size, budget = "tiny", "0", SMOKE_SIZE, {"epochs": 1}
    old = json.loads(output.read_text()) if output.is_file() else {}
    # a file written before sizes varied holds one top-level image_size
    runs = {_key(r): r for r in ({"image_size": old.get("image_size"), **r} for r in old.get("runs", []))}
    out = {"recipes": RECIPES, "seeds": list(SEEDS), "machine": machine()}
    start = time.time()
    for recipe in args.recipes.split(","):
        for name in args.sets.split(","):
            dataset, root, category = sets[name]
            root = root()
            for seed in map(int, args.seeds.split(",")):
                config = TrainConfig(dataset=dataset, category=category, data_root=root, model="cae",
                                     preset="cpu-tiny", model_overrides={"image_size": args.image_size}, seed=seed,
                                     device="cpu", bf16=False, **{**RECIPES[recipe], **budget})
                run_dir = work / f"{category}-{recipe}-{args.image_size}px-s{seed}"
                result = train(config, run_dir, overwrite=True)
                test = evaluate_run(run_dir, device="cpu")
                train_loss = [h["train_loss"] for h in result.history]
                run = {
                    "dataset": dataset, "category": category, "recipe": recipe, "seed": seed,
                    "image_size": args.image_size, "epochs": config.epochs, "lr": config.lr,
                    "weight_decay": config.weight_decay, "batch_size": config.batch_size,
                    "image_auroc": test.image_auroc, "pixel_auroc": test.pixel_auroc, "best_epoch": result.best_epoch,
                    "best_val_loss": result.best_val_loss, "flatness_last_10pct": flatness(train_loss),
                    "train_seconds": sum(h["seconds"] for h in result.history), "train_loss": train_loss,
                    "val_loss": [h["val_loss"] for h in result.history],
                }
                runs[_key(run)] = run
                out["runs"] = sorted(runs.values(), key=lambda r: tuple(map(str, _key(r))))
                out["wall_seconds"], out["machine_end"] = time.time() - start, machine()
                output.write_text(json.dumps(out, indent=2))
                print(f"{category} {recipe} {args.image_size}px seed {seed}: image {test.image_auroc:.3f} pixel "
                      f"{test.pixel_auroc:.3f} best epoch {result.best_epoch} flatness {run['flatness_last_10pct']} "
                      f"({run['train_seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
