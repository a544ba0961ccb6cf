"""The GPU check (run by ``benchmarks/gpu_check.sh``): the ``paper`` preset of AnoViT and of the l2-CAE on
the cookie photographs (MVTec layout, 384 px; AnoViT: ViT-B/16), one epoch each with bf16 autocast and in
float32, then the test split scored; with two GPUs or more, the same AnoViT epoch again under
``torchrun --nproc_per_node 2`` (NCCL, global batch unchanged). Prints one JSON document and writes
``benchmarks/results/gpu_check.json``: per run the training and scoring images/s, the peak GPU memory
(``torch.cuda.max_memory_allocated``) of training and of scoring, wall seconds and the AUROCs/AUPRO.

One epoch on 31 photographs includes the warm-up (cuDNN autotuning, first allocations): the images/s are
a lower bound and the AUROCs of a one-epoch model say only that the pipeline runs. Scoring runs in float32
in every case (anovit.scoring.detector). Installs nothing and reaches no network: without --encoder-weights the
ViT-B/16 starts from a random init (recorded as "pretrained": false).

    bash benchmarks/gpu_check.sh [--data-root ../shared/data/cookies] [--encoder-weights FILE] [--epochs 1]
    python benchmarks/gpu_check.py --smoke [--out DIR]   # its CPU path: cpu-tiny at 64 px on tiny data, no GPU

With --smoke the same runs (bf16 where the CPU has it, and float32) train and score the cpu-tiny models on
the CPU on tiny data made here; peak GPU memory is None and the torchrun part is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, tiny_mvtec, write_result


def one_run(model: str, bf16: bool, args: argparse.Namespace, run_dir: Path) -> dict:
    """Train ``model`` (paper preset; --smoke: cpu-tiny at 64 px) for ``args.epochs`` on GPU 0 (--smoke: the
    CPU) and score its test split; its figures."""
    import torch

    from anovit.evaluation.evaluate import evaluate_run
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    overrides = ({"pretrained": False} if not args.encoder_weights else
                 {"encoder_weights": str(Path(args.encoder_weights).resolve())}) if model == "anovit" else {}
    device, preset = ("cpu", "cpu-tiny") if args.smoke else ("cuda", "paper")
    if args.smoke:
        overrides = {**overrides, "image_size": SMOKE_SIZE}

    def peak_gib() -> float | None:  # since the last reset; None on the CPU
        return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None

    def reset_peak() -> None:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    config = TrainConfig(dataset="mvtec", category=args.category, data_root=args.data_root, model=model,
                         preset=preset, model_overrides=overrides, epochs=args.epochs, batch_size=args.batch_size,
                         bf16=bf16, device=device)
    reset_peak()
    start = time.perf_counter()
    result = train(config, run_dir, overwrite=True)
    train_s, train_peak = time.perf_counter() - start, peak_gib()
    reset_peak()
    start = time.perf_counter()
    evaluation = evaluate_run(run_dir, device=device)
    return {
        "model": model, "bf16": bf16, "pretrained": model != "anovit" or bool(args.encoder_weights),
        "train_images_per_s": result.history[-1]["images_per_s"], "score_images_per_s": evaluation.images_per_s,
        "train_peak_gib": train_peak, "score_peak_gib": peak_gib(),
        "train_wall_s": train_s, "score_wall_s": time.perf_counter() - start,
        "image_auroc": evaluation.image_auroc, "pixel_auroc": evaluation.pixel_auroc, "aupro": evaluation.aupro,
    }


def torchrun_run(args: argparse.Namespace, run_dir: Path) -> dict:
    """The AnoViT bf16 epoch on 2 GPUs under torchrun (no scoring); its figures."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "anovit",
           "train", "--dataset", "mvtec", "--data-root", args.data_root, "--category", args.category, "--model",
           "anovit", "--preset", "paper", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--bf16", "--device", "cuda", "--no-eval", "--overwrite", "--output", str(run_dir),
           *(["--encoder-weights", args.encoder_weights] if args.encoder_weights else ["--no-pretrained"])]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    from anovit.runs.metrics_record import read_run_metrics

    last = read_run_metrics(run_dir).training.history[-1]
    return {"processes": 2, "bf16": True, "train_images_per_s": last.images_per_s, "val_loss": last.val_loss,
            "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("ANOVIT_COOKIES", str(ROOT.parent / "shared" / "data" / "cookies")))
    parser.add_argument("--category", default="cookie")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--encoder-weights", help="local ViT-B/16 weights (safetensors or timm checkpoint)")
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    import torch

    from anovit.utils.runtime import bf16_supported

    tmp_root = tempfile.TemporaryDirectory()
    if args.smoke:
        args.data_root, args.category = str(tiny_mvtec(Path(tmp_root.name) / "data")), SMOKE_CATEGORY
        args.epochs, args.batch_size = 1, 4
    elif not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device (torch.cuda.is_available() is False); run it on a GPU machine")
    if not (Path(args.data_root) / args.category / "train").is_dir():
        raise SystemExit(f"gpu_check: {args.data_root}/{args.category}/train is missing: pass --data-root, the "
                         "folder holding the cookie photographs in the MVTec layout")
    args.data_root = str(Path(args.data_root).resolve())
    start, gpus = machine(), (0 if args.smoke else torch.cuda.device_count())
    precisions = (True, False) if not args.smoke or bf16_supported(torch.device("cpu")) else (False,)
    runs = []
    with tmp_root as tmp:
        for model in ("anovit", "cae"):
            for bf16 in precisions:
                runs.append(one_run(model, bf16, args, Path(tmp) / f"{model}-{bf16}"))
                print(json.dumps(runs[-1]), flush=True)
        if gpus:
            torch.cuda.empty_cache()  # the torchrun processes need GPU 0 too
        two = torchrun_run(args, Path(tmp) / "torchrun") if gpus >= 2 else {"skipped": f"{gpus} GPU"}
    anovit = {r["bf16"]: r["train_images_per_s"] for r in runs if r["model"] == "anovit"}
    write_result("gpu_check", {
        "smoke": args.smoke, "gpu": torch.cuda.get_device_name(0) if gpus else None, "gpus": gpus,
        "cuda": torch.version.cuda, "epochs": args.epochs, "batch_size": args.batch_size, "runs": runs,
        "torchrun_2_gpus": two,
        "anovit_bf16_over_fp32_train": anovit[True] / anovit[False] if True in anovit else None,
        "torchrun_2_over_1_train": (two["train_images_per_s"] / anovit[True]
                                    if "train_images_per_s" in two else None),
        "machine": start,
    }, out)


if __name__ == "__main__":
    main()
