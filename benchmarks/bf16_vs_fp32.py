"""bf16 autocast vs fp32 on this CPU: speed of inference and of a training step, and the AUROC
difference bf16 causes when a trained model is evaluated (must be negligible).

Speed: the model's forward (batch 32) and forward+backward (batch 16) in turns, fp32 then bf16,
on random images. Accuracy: trained run folders (default: every evaluated run of the benchmark under
checkpoints/bench; else a 3-epoch AnoViT trained here) evaluated on their test split both ways.

    python benchmarks/bf16_vs_fp32.py [--runs RUN_DIR ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _common import interleaved, machine, median, write_result

from anovit.benchmark import default_bench_dir
from anovit.checkpoint import load_model, read_json
from anovit.data import get_dataset
from anovit.evaluate import evaluate
from anovit.models import create_model
from anovit.runs import list_runs
from anovit.runtime import autocast, bf16_supported
from anovit.scoring import reconstruction_loss
from anovit.train import train
from anovit.train_config import TrainConfig

METRICS = ("image_auroc", "pixel_auroc", "aupro", "pixel_f1_max")


def speed(name: str, repeats: int) -> dict:
    model = create_model(name, "cpu-tiny")
    size = model.config.image_size
    infer_x, train_x = torch.rand(32, 3, size, size), torch.rand(16, 3, size, size)
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
           "infer_images_per_s": {p: 32 / median(t[f"infer_{p}"]) for p in ("fp32", "bf16")},
           "step_images_per_s": {p: 16 / median(t[f"step_{p}"]) for p in ("fp32", "bf16")}}
    out["infer_speedup"] = out["infer_images_per_s"]["bf16"] / out["infer_images_per_s"]["fp32"]
    out["step_speedup"] = out["step_images_per_s"]["bf16"] / out["step_images_per_s"]["fp32"]
    print(f"{name}: inference bf16/fp32 {out['infer_speedup']:.2f}x, training step {out['step_speedup']:.2f}x")
    return out


def trained_runs(runs: list[Path], workdir: str) -> list[Path]:
    if runs:
        return runs
    found = [r.path for r in list_runs(default_bench_dir()) if r.test]
    if found:
        return sorted(found)
    config = TrainConfig(dataset="synthetic", category="washer", model="anovit", epochs=3, device="cpu")
    return [train(config, Path(workdir) / "run", overwrite=True).run_dir]


def accuracy(run_dir: Path) -> dict:
    training = read_json(run_dir / "training.json")
    model = load_model(run_dir)
    test = get_dataset(training["dataset"], "test", category=training["category"],
                       image_size=model.config.image_size, root=training.get("data_root"))
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
    args = parser.parse_args()
    if not bf16_supported(torch.device("cpu")):
        raise SystemExit("this CPU has no fast bf16 (torch.ops.mkldnn._is_mkldnn_bf16_supported() is False)")
    start = machine()
    speeds = [speed(m, args.repeats) for m in ("anovit", "cae")]
    with tempfile.TemporaryDirectory() as workdir:
        acc = [accuracy(run) for run in trained_runs(args.runs, workdir)]
    worst = {m: max(a["abs_diff"].get(m, 0.0) for a in acc) for m in METRICS}
    mean = {m: sum(a["abs_diff"].get(m, 0.0) for a in acc) / len(acc) for m in METRICS}
    print("max |bf16 - fp32| over runs: " + ", ".join(f"{m} {d:.2e}" for m, d in worst.items()))
    write_result("bf16_vs_fp32", {
        "what": "bf16 autocast vs fp32: images/s (cpu-tiny, inference batch 32, training step batch 16) and "
                "the metric change of trained models' evaluations",
        "target": "speedup > 1; abs AUROC difference negligible (< 1e-3)", "speed": speeds,
        "max_abs_diff": worst, "mean_abs_diff": mean, "runs": acc,
        "machine": start,
    })


if __name__ == "__main__":
    main()
