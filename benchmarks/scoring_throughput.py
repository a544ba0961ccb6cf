"""Scoring pipeline throughput divided by the bare model forward on the same batches (target >= 0.9).

Pipeline = ``anovit.evaluation.evaluate.evaluate``: data loading, model forward (bf16 autocast where the CPU
supports it, as evaluation does), score maps (eq. 6 + Gaussian smoothing, eq. 7), image scores and
the streaming pixel metrics (one BinnedPRO update per batch, which also feeds the pixel AUROC). Bare =
``Detector.reconstruct`` (the forward pass under the same autocast) over the same batches, already in memory. "warm": the dataset's decoded-image cache is filled (repeat
evaluations in one process); "cold": a fresh dataset decodes every PNG (a first evaluation).
A per-stage breakdown of one warm pass says where the rest of the time goes.

    python benchmarks/scoring_throughput.py [--models anovit cae] [--category washer] [--repeats 3]
    python benchmarks/scoring_throughput.py --smoke [--out DIR]   # seconds, tiny data made here
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, interleaved, machine, median, output_dir, \
    smoke_workdir, tiny_mvtec, write_result
from torch.utils.data import DataLoader

from anovit.data import get_dataset
from anovit.scoring.detector import Detector
from anovit.evaluation.evaluate import evaluate
from anovit.evaluation.metrics import BinnedPRO
from anovit.models import create_model
from anovit.utils.runtime import use_bf16
from anovit.scoring.anomaly_map import anomaly_maps


def breakdown(detector: Detector, dataset, batch_size: int) -> dict[str, float]:
    """Seconds per stage of one pass over ``dataset`` (the stages of evaluate(), timed one by one)."""
    stages = dict.fromkeys(("load", "forward", "score_maps", "pixel_metrics"), 0.0)
    pixels = BinnedPRO()
    loader = iter(DataLoader(dataset, batch_size=batch_size))
    while True:
        t0 = time.perf_counter()
        batch = next(loader, None)
        if batch is None:
            break
        t1 = time.perf_counter()
        recon = detector.reconstruct(batch["image"])
        t2 = time.perf_counter()
        maps, _ = anomaly_maps(batch["image"], recon)
        t3 = time.perf_counter()
        pixels.update(maps, batch["mask"][:, 0])
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key] += dt
    return stages


def measure(name: str, data: dict, batch_size: int, repeats: int, **overrides) -> dict:
    """Bare forward vs evaluate() of cpu-tiny ``name`` on the test split of ``data`` (get_dataset's
    dataset, category and root)."""
    model = create_model(name, "cpu-tiny", **overrides).eval()
    size = model.config.image_size
    bf16 = use_bf16(torch.device("cpu"), None)
    detector = Detector(model, bf16=bf16)
    dataset = get_dataset(data["dataset"], "test", category=data["category"], image_size=size, root=data["root"])
    batches = [b["image"] for b in DataLoader(dataset, batch_size=batch_size)]  # also fills the decode cache
    n = len(dataset)

    def bare() -> None:
        for images in batches:
            detector.reconstruct(images)

    def warm() -> None:
        evaluate(model, dataset, batch_size=batch_size, device="cpu")

    def cold() -> None:
        evaluate(model, get_dataset(data["dataset"], "test", category=data["category"], image_size=size,
                                    root=data["root"]), batch_size=batch_size, device="cpu")

    times = interleaved({"bare": bare, "warm": warm, "cold": cold}, repeats)
    stages = breakdown(detector, dataset, batch_size)
    result = {
        "model": name, "images": n, "batch_size": batch_size, "image_size": size, "bf16": bf16,
        "bare_images_per_s": n / median(times["bare"]),
        "pipeline_warm_images_per_s": n / median(times["warm"]),
        "pipeline_cold_images_per_s": n / median(times["cold"]),
        "ratio_warm": median(times["bare"]) / median(times["warm"]),
        "ratio_cold": median(times["bare"]) / median(times["cold"]),
        "stage_share": {k: v / sum(stages.values()) for k, v in stages.items()},
        "seconds": times,
    }
    print(f"{name}: bare {result['bare_images_per_s']:.1f} img/s, pipeline {result['pipeline_warm_images_per_s']:.1f} "
          f"img/s warm (ratio {result['ratio_warm']:.2f}), {result['pipeline_cold_images_per_s']:.1f} img/s cold "
          f"(ratio {result['ratio_cold']:.2f}); stages "
          + ", ".join(f"{k} {v:.0%}" for k, v in result["stage_share"].items()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["anovit", "cae"])
    parser.add_argument("--category", default="washer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    start = machine()
    data, overrides = {"dataset": "synthetic", "category": args.category, "root": None}, {}
    if args.smoke:  # 8 test images at 64 px, batches of 4, one timed repeat
        data = {"dataset": "mvtec", "category": SMOKE_CATEGORY, "root": str(tiny_mvtec(smoke_workdir()))}
        overrides, args.batch_size, args.repeats = {"image_size": SMOKE_SIZE}, 4, 1
    results = [measure(m, data, args.batch_size, args.repeats, **overrides) for m in args.models]
    write_result("scoring_throughput", {
        "what": "evaluate() (load + forward + score maps + metrics) vs bare forward on the same batches, "
                f"{data['dataset']}/{data['category']} test split, cpu-tiny",
        "target": "ratio >= 0.9", "smoke": args.smoke, "models": results, "machine": start,
    }, out)


if __name__ == "__main__":
    main()
