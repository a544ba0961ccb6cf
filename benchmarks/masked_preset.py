"""Choosing the ``cpu-tiny-masked`` preset on validation data only (issue 11, item 4).

A validation copy of the synthetic set is generated with another generator seed (1; the reported
synthetic numbers use seed 0) and a reduced training split; its *test* split (normal and anomalous
images with ground-truth masks) is the validation set of this search, so no split that is reported
is ever looked at. For each candidate training (AnoViT cpu-tiny from scratch with mask ratio 0,
0.25, 0.5 and a few epoch budgets, lr 1e-3, seed 0), the model's reconstructions of the validation
images are computed once and scored with every score function (l2, ssim, msgms) and two sigmas
(the 128 px default 2 px, 4 and 8 px): the score function and sigma are scoring settings, not training
ones. Records image and pixel AUROC per category, training seconds and the best epoch.

Writes ``benchmarks/results/masked_preset.json``. Run from the repository root:
``OMP_NUM_THREADS=1 nice -n 5 python benchmarks/masked_preset.py`` (``--rescore``: score the finished
run folders again without training them; ``--smoke [--out DIR]``: one candidate for one epoch at 64 px on
tiny data made here, every score function, the JSON into DIR or a temporary folder).
"""

from __future__ import annotations

import json
import time

from _common import RESULTS, ROOT, SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, smoke_workdir, \
    tiny_mvtec

CATEGORIES = ("washer", "weave")  # an object and a texture
N_TRAIN = 48
VALIDATION_SEED = 1  # generator seed of the validation copy (the reported synthetic set uses 0)
CANDIDATES = (  # (mask_ratio, epochs)
    (0.0, 20), (0.25, 20), (0.5, 20), (0.25, 40),
)
SCORES = ("l2", "ssim", "msgms")
SIGMAS = (2.0, 4.0, 8.0)
OUTPUT = RESULTS / "masked_preset.json"


def main() -> None:
    import argparse

    import torch
    from torch.utils.data import DataLoader

    from anovit.runs import checkpoint as ckpt
    from anovit.runs.metrics_record import read_run_metrics
    from anovit.data import get_dataset
    from anovit.data.synthetic import generate
    from anovit.scoring.detector import Detector
    from anovit.evaluation.metrics import image_auroc, pixel_auroc
    from anovit.scoring.anomaly_map import anomaly_maps
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rescore", action="store_true", help="reuse finished run folders")
    add_output_args(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    output = output_dir(args) / OUTPUT.name
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        work = smoke_workdir()
        dataset, root, categories, size, batch_size = "mvtec", tiny_mvtec(work / "data"), (SMOKE_CATEGORY,), SMOKE_SIZE, 4
        candidates, sigmas = ((0.25, 1),), (2.0,)
    else:
        work = ROOT / "checkpoints" / "masked-preset"
        root = generate(work / "synthetic-validation", categories=list(CATEGORIES), n_train=N_TRAIN, seed=VALIDATION_SEED)
        dataset, categories, candidates, sigmas, size, batch_size = "synthetic", CATEGORIES, CANDIDATES, SIGMAS, 128, 16
    out: dict = {"categories": categories, "n_train": N_TRAIN, "validation_seed": VALIDATION_SEED,
                 "candidates": candidates, "smoke": args.smoke, "runs": [], "machine": machine()}
    start = time.time()
    for category in categories:
        valid = get_dataset(dataset, "test", category=category, image_size=size, root=str(root))
        batches = list(DataLoader(valid, batch_size=16))
        images = torch.cat([b["image"] for b in batches])
        masks = torch.cat([b["mask"] for b in batches]).bool().squeeze(1)
        labels = torch.cat([b["label"] for b in batches]).numpy()
        for mask_ratio, epochs in candidates:
            config = TrainConfig(dataset=dataset, category=category, data_root=str(root), model="anovit",
                                 preset="cpu-tiny", model_overrides={"mask_ratio": mask_ratio, "image_size": size},
                                 epochs=epochs, batch_size=batch_size, seed=0)
            run_dir = work / f"{category}-m{mask_ratio:g}-e{epochs}"
            if args.rescore and (run_dir / ckpt.WEIGHTS).is_file():
                log = read_run_metrics(run_dir).training
                best_epoch, seconds = log.best_epoch, log.seconds
            else:
                result = train(config, run_dir, overwrite=True)
                best_epoch, seconds = result.best_epoch, sum(h["seconds"] for h in result.history)
            detector = Detector.from_run(run_dir)
            t0 = time.perf_counter()
            recon = torch.cat([detector.reconstruct(images[i:i + 16]).cpu() for i in range(0, len(images), 16)])
            infer = time.perf_counter() - t0
            for score in SCORES:
                for sigma in sigmas:
                    maps, scores = anomaly_maps(images, recon, sigma, score)
                    row = {"category": category, "mask_ratio": mask_ratio, "epochs": epochs, "score": score,
                           "sigma": sigma, "image_auroc": image_auroc(scores.numpy(), labels),
                           "pixel_auroc": pixel_auroc(maps.numpy(), masks.numpy()), "train_seconds": seconds,
                           "best_epoch": best_epoch, "inference_seconds": infer, "n_valid": len(labels)}
                    out["runs"].append(row)
                    print(json.dumps(row), flush=True)
            out["wall_seconds"], out["machine_end"] = time.time() - start, machine()
            output.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
