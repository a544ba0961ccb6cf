"""The GPU check (run by ``benchmarks/gpu_check.sh``): the ``paper`` preset of AnoViT and of the l2-CAE on
the cookie photographs (MVTec layout, 384 px; AnoViT: ViT-B/16), one epoch each with bf16 autocast and in
float32, then the test split scored; with two GPUs or more, the same AnoViT epoch again under
``torchrun --nproc_per_node 2`` (NCCL, global batch unchanged). Prints one JSON document and writes
``benchmarks/results/gpu_check.json``: per run the training and scoring images/s, the peak GPU memory
(``torch.cuda.max_memory_allocated``) of training and of scoring, wall seconds and the AUROCs/AUPRO.

One epoch on 31 photographs includes the warm-up (cuDNN autotuning, first allocations): the images/s are
a lower bound and the AUROCs of a one-epoch model say only that the pipeline runs. Scoring runs in float32
in every case (anovit.detector). Installs nothing and reaches no network: without --encoder-weights the
ViT-B/16 starts from a random init (recorded as "pretrained": false).

    bash benchmarks/gpu_check.sh [--data-root ../shared/data/cookies] [--encoder-weights FILE] [--epochs 1]
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

from _common import ROOT, machine, write_result


def one_run(model: str, bf16: bool, args: argparse.Namespace, run_dir: Path) -> dict:
    """Train ``model`` (paper preset) for ``args.epochs`` on GPU 0 and score its test split; its figures."""
    import torch

    from anovit.evaluate import evaluate_run
    from anovit.train import train
    from anovit.train_config import TrainConfig

    overrides = ({"pretrained": False} if not args.encoder_weights else
                 {"encoder_weights": str(Path(args.encoder_weights).resolve())}) if model == "anovit" else {}
    config = TrainConfig(dataset="mvtec", category=args.category, data_root=args.data_root, model=model,
                         preset="paper", model_overrides=overrides, epochs=args.epochs, batch_size=args.batch_size,
                         bf16=bf16, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(config, run_dir, overwrite=True)
    train_s, train_peak = time.perf_counter() - start, torch.cuda.max_memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    evaluation = evaluate_run(run_dir, device="cuda")
    return {
        "model": model, "bf16": bf16, "pretrained": model != "anovit" or bool(args.encoder_weights),
        "train_images_per_s": result.history[-1]["images_per_s"], "score_images_per_s": evaluation.images_per_s,
        "train_peak_gib": train_peak / 2**30, "score_peak_gib": torch.cuda.max_memory_allocated() / 2**30,
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
    history = json.loads((run_dir / "metrics.json").read_text())["training"]["history"]
    return {"processes": 2, "bf16": True, "train_images_per_s": history[-1]["images_per_s"],
            "val_loss": history[-1]["val_loss"], "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("ANOVIT_COOKIES", str(ROOT.parent / "shared" / "data" / "cookies")))
    parser.add_argument("--category", default="cookie")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--encoder-weights", help="local ViT-B/16 weights (safetensors or timm checkpoint)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device (torch.cuda.is_available() is False); run it on a GPU machine")
    if not (Path(args.data_root) / args.category / "train").is_dir():
        raise SystemExit(f"gpu_check: {args.data_root}/{args.category}/train is missing: pass --data-root, the "
                         "folder holding the cookie photographs in the MVTec layout")
    args.data_root = str(Path(args.data_root).resolve())
    start, gpus = machine(), torch.cuda.device_count()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("anovit", "cae"):
            for bf16 in (True, False):
                runs.append(one_run(model, bf16, args, Path(tmp) / f"{model}-{bf16}"))
                print(json.dumps(runs[-1]), flush=True)
        torch.cuda.empty_cache()  # the torchrun processes need GPU 0 too
        two = torchrun_run(args, Path(tmp) / "torchrun") if gpus >= 2 else {"skipped": f"{gpus} GPU"}
    one_gpu = next(r for r in runs if r["model"] == "anovit" and r["bf16"])
    write_result("gpu_check", {
        "gpu": torch.cuda.get_device_name(0), "gpus": gpus, "cuda": torch.version.cuda, "epochs": args.epochs,
        "batch_size": args.batch_size, "runs": runs, "torchrun_2_gpus": two,
        "anovit_bf16_over_fp32_train": one_gpu["train_images_per_s"]
        / next(r for r in runs if r["model"] == "anovit" and not r["bf16"])["train_images_per_s"],
        "torchrun_2_over_1_train": (two["train_images_per_s"] / one_gpu["train_images_per_s"]
                                    if "train_images_per_s" in two else None),
        "machine": start,
    })


if __name__ == "__main__":
    main()
