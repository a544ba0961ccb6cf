"""Training step throughput of ``anovit.training.trainer.train`` divided by a bare forward+backward+Adam step
on batches already in memory (target >= 0.9), where the rest goes, and whether ``torch.compile`` pays.

- **Ratio**: the trainer and the bare loop run in turn (bare, trainer, bare, trainer, ...), so a change in the
  machine's load affects both alike. The trainer's images/s per epoch is read from its own progress events
  (the last step of each epoch: images seen / seconds since the epoch began, so data loading with
  augmentation counts, validation and checkpointing do not); each trainer run's first epoch is left out
  (it fills the dataset's memory cache).
- **Stages**: the trainer's step taken apart (load, augment, forward, loss, backward, grad clip, Adam step),
  timed stage by stage over the same data, beside the bare step's stages.
- **torch.compile** (inductor, on the CPU; it needs a C++ compiler at run time, else it falls back to eager
  and says so in one line): eager and compiled steps from the same weights on the same batches, for
  ``--compile-epochs`` epochs of the cpu-default preset (256 images each). It would be adopted where the
  whole cpu-default training budget, compile time counted, runs >= 1.3x faster at equal loss.

    python benchmarks/train_throughput.py [--models anovit cae] [--epochs 3] [--repeats 2] [--compile-models cae]
    python benchmarks/train_throughput.py --smoke [--out DIR]   # seconds, tiny data made here, no compile
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from _common import SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, smoke_workdir, tiny_mvtec, \
    write_result
from torch.utils.data import DataLoader

from anovit.data import train_val_datasets
from anovit.data.augment import build_augmentation
from anovit.models import create_model, training_defaults
from anovit.scoring.anomaly_map import reconstruction_loss
from anovit.training.config import TrainConfig
from anovit.training.trainer import train
from anovit.utils.runtime import autocast, use_bf16

ADOPT_SPEEDUP = 1.3  # torch.compile is adopted at this speed-up of the whole cpu-default budget, compile counted
CPU = torch.device("cpu")


def _optimizer(model: torch.nn.Module, name: str) -> torch.optim.Adam:
    config = TrainConfig(model=name)
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


def bare_step(net: torch.nn.Module, opt: torch.optim.Adam, images: torch.Tensor, bf16: bool) -> float:
    """One forward (bf16 autocast or not) + loss + backward + Adam step; the loss."""
    with autocast(CPU, bf16):
        recon = net(images)
    loss = reconstruction_loss(images, recon)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def bare_images_per_s(name: str, batch_size: int, steps: int, bf16: bool, **overrides) -> float:
    """Median images/s of forward + loss + backward + Adam step on one random batch, repeated."""
    model = create_model(name, "cpu-tiny", **overrides).train()
    opt = _optimizer(model, name)
    images = torch.rand(batch_size, 3, model.config.image_size, model.config.image_size)
    rates = []
    for step in range(steps + 1):
        start = time.perf_counter()
        bare_step(model, opt, images, bf16)
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


def stages(name: str, data: dict, bf16: bool, steps: int, **fields) -> dict[str, dict[str, float]]:
    """Seconds per stage of ``steps`` trainer steps (its loader, augmentation, autocast forward, loss and
    ``.item()``, backward, grad clip, Adam step; anovit.training.trainer's loop taken apart) and of as many
    bare steps on one batch in memory; the loader's memory cache is filled first."""
    config = TrainConfig(**data, model=name, preset="cpu-tiny", device="cpu", **fields)
    model = create_model(name, "cpu-tiny", **fields.get("model_overrides", {})).train()
    opt = _optimizer(model, name)
    train_set, _ = train_val_datasets(config.dataset, category=config.category, image_size=model.config.image_size,
                                      root=config.data_root, val_fraction=config.val_fraction, seed=config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True)
    for _ in loader:  # fills the memory cache, as the trainer's first epoch does
        pass
    augment = build_augmentation(config.augment)
    fixed = next(iter(loader))["image"]

    def step(times: dict[str, float], images: Callable[[], torch.Tensor], trainer: bool) -> None:
        marks = [("start", time.perf_counter())]
        batch = images()
        if trainer:
            batch = augment(batch)
            marks.append(("augment", time.perf_counter()))
        with autocast(CPU, bf16):
            recon = model(batch)
        marks.append(("forward", time.perf_counter()))
        loss = reconstruction_loss(batch, recon)
        loss.item()
        marks.append(("loss", time.perf_counter()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(("backward", time.perf_counter()))
        if trainer and config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            marks.append(("grad_clip", time.perf_counter()))
        opt.step()
        marks.append(("adam_step", time.perf_counter()))
        for (_, t0), (stage, t1) in zip(marks, marks[1:]):
            times[stage] = times.get(stage, 0.0) + t1 - t0

    out: dict[str, dict[str, float]] = {"trainer": {}, "bare": {}}
    batches = iter(())
    for _ in range(steps):  # in turn, as the ratio
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        step(out["trainer"], lambda: batch["image"], trainer=True)
        step(out["bare"], lambda: fixed, trainer=False)
    # the trainer's "load" is the loader's next(): time it apart, with the same number of batches
    start, n = time.perf_counter(), 0
    while n < steps:
        for _ in loader:
            n += 1
            if n == steps:
                break
    out["trainer"]["load"] = time.perf_counter() - start
    return out


def compile_trial(name: str, bf16: bool, epochs: int, batch_size: int = 16) -> dict:
    """Eager vs ``torch.compile`` training steps (same initial weights, same batches, cpu-default's
    images per epoch) over ``epochs`` epochs; the whole cpu-default budget projected with compile time counted."""
    preset = training_defaults(name, "cpu-default")
    steps_per_epoch = (preset.images_per_epoch or 256) // batch_size
    steps, budget = epochs * steps_per_epoch, preset.epochs * steps_per_epoch
    gen = torch.Generator().manual_seed(0)
    size = create_model(name, "cpu-tiny").config.image_size
    batches = [torch.rand(batch_size, 3, size, size, generator=gen) for _ in range(steps_per_epoch)]

    def run(compiled: bool) -> tuple[float, float, float]:
        """(seconds of the first step, seconds of all steps, last loss)."""
        torch.manual_seed(0)
        model = create_model(name, "cpu-tiny").train()
        opt = _optimizer(model, name)
        net = torch.compile(model) if compiled else model
        start, first = time.perf_counter(), 0.0
        for i in range(steps):
            value = bare_step(net, opt, batches[i % len(batches)], bf16)
            first = first or time.perf_counter() - start
        return first, time.perf_counter() - start, value

    eager_before = run(False)
    try:
        compiled = run(True)
    except Exception as err:  # no C++ compiler, an unsupported op...: eager, said in one line
        reason = " ".join(str(err).split())[:200]
        print(f"{name}: torch.compile could not compile the training step ({type(err).__name__}: {reason}); "
              f"eager only")
        return {"model": name, "compiled": False, "adopted": False, "why_not": f"does not compile here: {reason}"}
    eager_after = run(False)
    eager_step = statistics.mean((total - first) / (steps - 1) for first, total, _ in (eager_before, eager_after))
    compiled_first, compiled_total, compiled_loss = compiled
    compiled_step = (compiled_total - compiled_first) / (steps - 1)
    compile_seconds = compiled_first - eager_step
    whole = budget * eager_step / (compile_seconds + budget * compiled_step)
    loss_diff = abs(compiled_loss - eager_before[2]) / max(abs(eager_before[2]), 1e-12)
    adopted = whole >= ADOPT_SPEEDUP and loss_diff < 0.05
    why_not = None if adopted else (
        f"the whole cpu-default budget ({preset.epochs} epochs x {steps_per_epoch} steps) runs {whole:.2f}x eager with "
        f"the {compile_seconds:.0f} s compile counted (steady steps {eager_step / compiled_step:.2f}x), below "
        f"{ADOPT_SPEEDUP}x" + (f"; the loss differs by {loss_diff:.1%}" if loss_diff >= 0.05 else ""))
    print(f"{name}: torch.compile steady {eager_step / compiled_step:.2f}x eager, compile {compile_seconds:.0f} s, "
          f"whole budget {whole:.2f}x; loss {compiled_loss:.5f} vs eager {eager_before[2]:.5f}"
          + ("" if adopted else " (not adopted)"))
    return {"model": name, "compiled": True, "epochs": epochs, "steps": steps, "budget_steps": budget,
            "eager_step_s": eager_step, "compiled_step_s": compiled_step, "compile_s": compile_seconds,
            "steady_speedup": eager_step / compiled_step, "whole_budget_speedup": whole,
            "loss_eager": eager_before[2], "loss_eager_again": eager_after[2], "loss_compiled": compiled_loss,
            "loss_relative_difference": loss_diff, "adopted": adopted, "why_not": why_not}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["anovit", "cae"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each trainer run (the first is left out)")
    parser.add_argument("--repeats", type=int, default=2, help="trainer runs, each between bare loops")
    parser.add_argument("--category", default="washer")
    parser.add_argument("--steps", type=int, default=8, help="bare steps per bare loop; steps of the stage timing")
    parser.add_argument("--compile-epochs", type=int, default=3, help="cpu-default epochs of the compile trial")
    parser.add_argument("--compile-models", nargs="*", default=["cae"],
                        help="models of the compile trial (default: the l2-CAE; AnoViT's compile takes minutes more)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core); 1 suffers "
                                                    "least from a machine shared with other jobs")
    add_output_args(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_dir(args)
    start = machine()
    bf16 = use_bf16(CPU, None)
    data, overrides, fields = {"dataset": "synthetic", "category": args.category, "data_root": None}, {}, {}
    if args.smoke:  # 8 training images at 64 px (6 trained on, batches of 4), 2 epochs, 1 bare step, no compile
        data = {"dataset": "mvtec", "category": SMOKE_CATEGORY, "data_root": str(tiny_mvtec(smoke_workdir()))}
        overrides, args.epochs, args.steps, args.repeats = {"image_size": SMOKE_SIZE}, 2, 1, 1
        fields = {"model_overrides": overrides, "batch_size": 4}
    results, trials = [], []
    for name in args.models:
        batch_size = fields.get("batch_size", TrainConfig().batch_size)
        load = os.getloadavg()[0]
        bare, trainer = [bare_images_per_s(name, batch_size, args.steps, bf16, **overrides)], []
        for _ in range(args.repeats):
            epochs, batch_size = trainer_images_per_s(name, data, args.epochs, **fields)
            trainer += epochs
            bare.append(bare_images_per_s(name, batch_size, args.steps, bf16, **overrides))
        parts = stages(name, data, bf16, max(args.steps, 2), **fields)
        share = {side: {k: v / sum(times.values()) for k, v in times.items()} for side, times in parts.items()}
        ratio = statistics.median(trainer) / statistics.median(bare)
        results.append({"model": name, "batch_size": batch_size, "bf16": bf16,
                        "bare_images_per_s": statistics.median(bare), "bare_loops": bare,
                        "trainer_images_per_s": statistics.median(trainer), "trainer_epochs_after_first": trainer,
                        "ratio": ratio, "stage_seconds": parts, "stage_share": share,
                        "trainer_over_bare_seconds": sum(parts["trainer"].values()) / sum(parts["bare"].values()),
                        "load_average_1m": [load, os.getloadavg()[0]]})
        print(f"{name}: trainer {statistics.median(trainer):.1f} img/s, bare {statistics.median(bare):.1f} img/s: "
              f"ratio {ratio:.2f}; trainer step stages " + ", ".join(f"{k} {v:.0%}" for k, v in share["trainer"].items()))
        if not args.smoke and name in args.compile_models:
            trials.append(compile_trial(name, bf16, args.compile_epochs))
    write_result("train_throughput", {
        "what": "train() steps (data loading + augmentation + step) vs bare forward+backward+Adam step, in turn, "
                f"{data['dataset']}/{data['category']}, cpu-tiny, TrainConfig defaults; the trainer's step by stage; "
                "torch.compile vs eager",
        "target": "ratio >= 0.9; torch.compile adopted at >= 1.3x over the cpu-default budget, compile counted",
        "smoke": args.smoke, "models": results,
        "torch_compile": trials or [{"skipped": "--smoke: a compile takes minutes"}],
        "note": "the build machine is shared: absolute images/s are under the load recorded (load_average_1m); "
                "the ratios come from runs in turn in one process",
        "machine": start,
    }, out)


if __name__ == "__main__":
    main()
