"""Training step throughput of ``anovit.training.trainer.train`` divided by a bare forward+backward+Adam step
on batches already in memory (target >= 0.9).

The trainer's images/s per epoch is read from its own progress events (the last step of each epoch:
images seen / seconds since the epoch began, so data loading with augmentation counts, validation
and checkpointing do not); epoch 1 is left out (it decodes the images into the dataset's cache).
The bare loop runs before and after the trainer and its two medians are averaged, so a change in the
machine's load during the run affects both sides alike.

    python benchmarks/train_throughput.py [--models anovit cae] [--epochs 3] [--category washer]
    python benchmarks/train_throughput.py --smoke [--out DIR]   # seconds, tiny data made here
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _common import SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, smoke_workdir, tiny_mvtec, \
    write_result

from anovit.models import create_model
from anovit.utils.runtime import autocast, use_bf16
from anovit.scoring.anomaly_map import reconstruction_loss
from anovit.training.trainer import train
from anovit.training.config import TrainConfig


def bare_images_per_s(name: str, batch_size: int, steps: int, bf16: bool, **overrides) -> float:
    """Median images/s of forward + loss + backward + Adam step on one random batch, repeated."""
    model = create_model(name, "cpu-tiny", **overrides).train()
    size = model.config.image_size
    config = TrainConfig(model=name)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    images = torch.rand(batch_size, 3, size, size)
    device = torch.device("cpu")
    rates = []
    for step in range(steps + 1):
        start = time.perf_counter()
        with autocast(device, bf16):
            recon = model(images)
        loss = reconstruction_loss(images, recon)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if step:  # the first step warms up
            rates.append(batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def trainer_images_per_s(name: str, data: dict, epochs: int, **fields) -> tuple[list[float], int]:
    """Images/s of every epoch after the first, from the trainer's step events, and its batch size; ``data``:
    the TrainConfig's dataset, category and data_root; ``fields``: other TrainConfig fields."""
    config = TrainConfig(**data, model=name, preset="cpu-tiny", epochs=epochs, device="cpu", **fields)
    last: dict[int, float] = {}

    def progress(event: dict) -> None:
        if event["event"] == "step":
            last[event["epoch"]] = event["images_per_s"]

    with tempfile.TemporaryDirectory() as run_dir:
        train(config, run_dir, overwrite=True, progress=progress)
    return [last[e] for e in sorted(last) if e > 1], config.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["anovit", "cae"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--category", default="washer")
    parser.add_argument("--steps", type=int, default=8, help="bare steps before and after the trainer")
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    start = machine()
    bf16 = use_bf16(torch.device("cpu"), None)
    data, overrides, fields = {"dataset": "synthetic", "category": args.category, "data_root": None}, {}, {}
    if args.smoke:  # 8 training images at 64 px (6 trained on, batches of 4), 2 epochs, 1 bare step
        data = {"dataset": "mvtec", "category": SMOKE_CATEGORY, "data_root": str(tiny_mvtec(smoke_workdir()))}
        overrides, args.epochs, args.steps = {"image_size": SMOKE_SIZE}, 2, 1
        fields = {"model_overrides": overrides, "batch_size": 4}
    results = []
    for name in args.models:
        batch_size = fields.get("batch_size", TrainConfig().batch_size)
        before = bare_images_per_s(name, batch_size, args.steps, bf16, **overrides)
        epochs, batch_size = trainer_images_per_s(name, data, args.epochs, **fields)
        after = bare_images_per_s(name, batch_size, args.steps, bf16, **overrides)
        bare = (before + after) / 2
        trainer = statistics.median(epochs)
        results.append({"model": name, "batch_size": batch_size, "bf16": bf16, "bare_images_per_s": bare,
                        "bare_before_after": [before, after], "trainer_images_per_s": trainer,
                        "trainer_epochs_after_first": epochs, "ratio": trainer / bare})
        print(f"{name}: trainer {trainer:.1f} img/s, bare forward+backward {bare:.1f} img/s "
              f"(before {before:.1f}, after {after:.1f}): ratio {trainer / bare:.2f}")
    write_result("train_throughput", {
        "what": "train() steps (data loading + augmentation + step) vs bare forward+backward+Adam step, "
                f"{data['dataset']}/{data['category']}, cpu-tiny, TrainConfig defaults",
        "target": "ratio >= 0.9", "smoke": args.smoke, "models": results, "machine": start,
    }, out)


if __name__ == "__main__":
    main()
