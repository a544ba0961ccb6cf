"""Beyond the paper, measured (issue 11): the SSIM-AE, AnoViT cpu-tiny (the paper's recipe from
scratch) and AnoViT cpu-tiny-masked on the real cookie photographs (``../shared/data/cookies``, MVTec
layout: 31 train/good, 46 test) and on the synthetic set (generator seed 0, ``--n-train`` training
images per category), each with its preset's defaults (epochs, lr, loss, score, sigma) at 128 px,
seeds 0..N-1. The best epoch is chosen on the validation split; the test split is only scored.

Per run: image and pixel AUROC, training and evaluation seconds; per (set, model, preset): mean ± sample
std over seeds (categories averaged per seed first). The l2-CAE on cookies is measured by
``benchmarks/cae_recipe.py``-style runs elsewhere (``--models`` adds ``cae:cpu-tiny`` here).

Writes ``benchmarks/results/beyond_paper.json`` after every run (a killed run keeps what it measured).
Run from the repository root: ``OMP_NUM_THREADS=1 nice -n 5 python benchmarks/beyond_paper.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import RESULTS, ROOT, machine

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
        for key in ("image_auroc", "pixel_auroc", "train_seconds", "eval_seconds"):
            values = [statistics.fmean(r[key] for r in rs) for rs in seeds.values()]
            row[f"{key}_mean"] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="cookies,synthetic")
    parser.add_argument("--variants", default=VARIANTS, help="comma-separated model:preset (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=48, help="synthetic training images per category")
    args = parser.parse_args()

    import torch

    from anovit.data.synthetic import generate
    from anovit.evaluate import evaluate_run
    from anovit.train import train
    from anovit.train_config import TrainConfig

    torch.set_num_threads(1)
    work = ROOT / "checkpoints" / "beyond-paper"
    sets = {"cookies": ("mvtec", str(ROOT.parent / "shared" / "data" / "cookies"), ("cookie",))}
    if "synthetic" in args.sets:
        root = generate(work / "synthetic", categories=list(SYNTHETIC), n_train=args.n_train, seed=0)
        sets["synthetic"] = ("synthetic", str(root), SYNTHETIC)
    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    out: dict = {"variants": variants, "seeds": args.seeds, "synthetic_n_train": args.n_train, "image_size": 128,
                 "runs": [], "machine": machine()}
    if OUTPUT.is_file():  # keep the runs of an earlier invocation (e.g. another --sets)
        previous = json.loads(OUTPUT.read_text())
        out["runs"] = [r for r in previous.get("runs", []) if r["set"] not in args.sets.split(",")
                       or (r["model"], r["preset"]) not in variants]
    start = time.time()
    for name in args.sets.split(","):
        dataset, data_root, categories = sets[name]
        for seed in range(args.seeds):
            for model, preset in variants:
                for category in categories:
                    config = TrainConfig(dataset=dataset, category=category, data_root=data_root, model=model,
                                         preset=preset, seed=seed)
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
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    OUTPUT.write_text(json.dumps(out, indent=2))
                    print(json.dumps(row), flush=True)
    print(json.dumps(out["summary"], indent=2))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
