"""bf16 autocast vs fp32 on this CPU: speed of inference and of a training step, and the AUROC
difference bf16 causes when a trained model is evaluated (must be negligible).

Speed: the model's forward (batch 32) and forward+backward (batch 16) in turns, fp32 then bf16,
on random images. Accuracy: trained run folders (default: every evaluated run of the benchmark under
checkpoints/bench; else a 3-epoch AnoViT trained here) evaluated on their test split both ways.

    python benchmarks/bf16_vs_fp32.py [--runs RUN_DIR ...] [--repeats 5]
    python benchmarks/bf16_vs_fp32.py --smoke [--out DIR]   # seconds: tiny data and a 1-epoch l2-CAE made here

On a CPU without bf16 the script refuses, except with --smoke: CPU autocast runs bf16 kernels on any
CPU (slowly), so the speed part still runs; the accuracy part (which scores through anovit's Detector,
refusing bf16 there) is skipped, with the reason in the JSON.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _common import SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, interleaved, machine, median, output_dir, \
    tiny_mvtec, write_result

from anovit.evaluation.benchmark import default_bench_dir
from anovit.runs.checkpoint import load_model
from anovit.data import get_dataset
from anovit.evaluation.evaluate import evaluate
from anovit.models import create_model
from anovit.runs.catalog import list_runs
from anovit.runs.record import read_training_record
from anovit.utils.runtime import autocast, bf16_supported
from anovit.scoring.anomaly_map import reconstruction_loss
from anovit.training.trainer import train
from anovit.training.config import TrainConfig

METRICS = ("image_auroc", "pixel_auroc", "aupro", "pixel_f1_max")


def speed(name: str, repeats: int, infer_batch: int = 32, step_batch: int = 16, **overrides) -> dict:
    model = create_model(name, "cpu-tiny", **overrides)
    size = model.config.image_size
    infer_x, train_x = torch.rand(infer_batch, 3, size, size), torch.rand(step_batch, 3, size, size)
    cpu = torch.device("cpu")

    def infer(bf16: bool):
        def run() -> None:
            with torch.no_grad(), autocast(cpu, bf16):
                model.eval()(infer_x).float()
        return run

    def step(bf16: bool):
        def run() -> None:
            with autocast(cpu, bf16):
                recon = model.train()(train_x)
            reconstruction_loss(train_x, recon).backward()
            model.zero_grad(set_to_none=True)
        return run

    t = interleaved({"infer_fp32": infer(False), "infer_bf16": infer(True), "step_fp32": step(False),
                     "step_bf16": step(True)}, repeats)
    out = {"model": name, "image_size": size,
           "infer_images_per_s": {p: infer_batch / median(t[f"infer_{p}"]) for p in ("fp32", "bf16")},
           "step_images_per_s": {p: step_batch / median(t[f"step_{p}"]) for p in ("fp32", "bf16")}}
    out["infer_speedup"] = out["infer_images_per_s"]["bf16"] / out["infer_images_per_s"]["fp32"]
    out["step_speedup"] = out["step_images_per_s"]["bf16"] / out["step_images_per_s"]["fp32"]
    print(f"{name}: inference bf16/fp32 {out['infer_speedup']:.2f}x, training step {out['step_speedup']:.2f}x")
    return out


def trained_runs(runs: list[Path], workdir: str, smoke: bool) -> list[Path]:
    if runs:
        return runs
    if smoke:  # a 1-epoch l2-CAE at 64 px on tiny data
        config = TrainConfig(dataset="mvtec", category=SMOKE_CATEGORY, data_root=str(tiny_mvtec(Path(workdir))),
                             model="cae", model_overrides={"image_size": SMOKE_SIZE}, epochs=1, batch_size=4,
                             images_per_epoch=8, device="cpu")
        return [train(config, Path(workdir) / "run").run_dir]
    found = [r.path for r in list_runs(default_bench_dir()) if r.test]
    if found:
        return sorted(found)
    config = TrainConfig(dataset="synthetic", category="washer", model="anovit", epochs=3, device="cpu")
    return [train(config, Path(workdir) / "run", overwrite=True).run_dir]


def accuracy(run_dir: Path) -> dict:
    training = read_training_record(run_dir)
    model = load_model(run_dir)
    test = get_dataset(training.dataset, "test", category=training.category,
                       image_size=model.config.image_size, root=training.data_root)
    fp32 = evaluate(model, test, device="cpu", bf16=False).summary()
    bf16 = evaluate(model, test, device="cpu", bf16=True).summary()
    diff = {m: abs(bf16[m] - fp32[m]) for m in METRICS if fp32[m] is not None}
    print(f"{run_dir.name}: |bf16 - fp32| " + ", ".join(f"{m} {d:.2e}" for m, d in diff.items()))
    return {"run": run_dir.name, "fp32": {m: fp32[m] for m in METRICS}, "bf16": {m: bf16[m] for m in METRICS},
            "abs_diff": diff, "image_pairs": (fp32["n_images"] - fp32["n_anomalous"]) * fp32["n_anomalous"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="trained run folders to evaluate both ways")
    parser.add_argument("--repeats", type=int, default=5)
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    has_bf16 = bf16_supported(torch.device("cpu"))
    if not has_bf16 and not args.smoke:
        raise SystemExit("this CPU has no fast bf16 (torch.ops.mkldnn._is_mkldnn_bf16_supported() is False, or "
                         "ANOVIT_NO_BF16 is set)")
    start = machine()
    sizes = {"repeats": 1, "infer_batch": 2, "step_batch": 2, "image_size": SMOKE_SIZE} if args.smoke else {}
    speeds = [speed(m, **{"repeats": args.repeats, **sizes}) for m in ("anovit", "cae")]
    acc: list[dict] = []
    if has_bf16:
        with tempfile.TemporaryDirectory() as workdir:
            acc = [accuracy(run) for run in trained_runs(args.runs, workdir, args.smoke)]
    worst = {m: max((a["abs_diff"].get(m, 0.0) for a in acc), default=None) for m in METRICS}
    mean = {m: sum(a["abs_diff"].get(m, 0.0) for a in acc) / len(acc) if acc else None for m in METRICS}
    print("max |bf16 - fp32| over runs: " + ", ".join(f"{m} {'n/a' if d is None else f'{d:.2e}'}" for m, d in worst.items()))
    write_result("bf16_vs_fp32", {
        "smoke": args.smoke, "accuracy_skipped": None if has_bf16 else "this CPU has no bf16 support",
        "what": "bf16 autocast vs fp32: images/s (cpu-tiny, inference batch 32, training step batch 16) and "
                "the metric change of trained models' evaluations",
        "target": "speedup > 1; abs AUROC difference negligible (< 1e-3)", "speed": speeds,
        "max_abs_diff": worst, "mean_abs_diff": mean, "runs": acc,
        "machine": start,
    }, out)


if __name__ == "__main__":
    main()
