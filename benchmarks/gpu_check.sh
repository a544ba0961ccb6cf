#!/usr/bin/env bash
# The GPU check: the paper preset of AnoViT and the l2-CAE on the cookie photographs, one epoch with and
# without bf16, then scoring; a 2-GPU torchrun epoch when two GPUs are present. Prints JSON (images/s of
# training and scoring, peak GPU memory, AUROCs) and writes benchmarks/results/gpu_check.json.
# Installs nothing; expects the environment of `pip install -r requirements.txt` with a CUDA build of torch.
# Under 5 minutes on one H100/H200-class GPU (most of it model building and process starts).
#
#   bash benchmarks/gpu_check.sh [--data-root DIR] [--encoder-weights FILE] [--epochs N] [--batch-size N]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU found (nvidia-smi is missing or sees none); run it on a GPU machine" >&2
    exit 1
fi
nvidia-smi -L >&2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
exec timeout 600 python benchmarks/gpu_check.py "$@"
