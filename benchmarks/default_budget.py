"""The default recipe's time budget (issue 23): ``python -m anovit train --dataset mvtec --data-root ROOT
--category C --model M`` with no ``--preset`` and no ``--epochs`` must train and evaluate a class of 900
full-resolution photographs (1500 x 1000 px JPEG) in at most 10 minutes on 2 cores.

The class is made here (MVTec AD layout; smooth random shading, sensor noise and a textured band, saved as
JPEG at quality 90 like VisA's photographs): 900 normal training images, 40 normal and 40 defective test
images (a dark blot with its PNG mask). Each model's command runs in a subprocess exactly as a user types it,
with a new, empty image cache (every file decoded once, as on a first run); the wall time counts the
interpreter's start, the decoding, the training with its per-epoch validation and the evaluation that
``train`` prints. The AUROCs are those of its last line (this made-up class is easy: they only show the
run finished). Writes ``benchmarks/results/default_budget.json``.

    python benchmarks/default_budget.py [--models anovit cae] [--train 900]
    python benchmarks/default_budget.py --smoke [--out DIR]   # 6 small images, one short epoch
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import ROOT, add_output_args, machine, output_dir, smoke_workdir, write_result

BUDGET_SECONDS = 600.0
CATEGORY = "photo"
LAST_LINE = re.compile(r"image AUROC (\d\.\d+)  pixel AUROC (\d\.\d+)")  # at the start of train's last line


def make_class(root: Path, n_train: int, n_test: int, size: tuple[int, int], seed: int = 0) -> Path:
    """An MVTec-layout class ``CATEGORY`` under ``root`` of ``size`` (width, height) JPEG photographs:
    ``n_train`` normal training images, ``n_test`` normal and ``n_test`` defective test images with masks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    folder = root / CATEGORY

    def photo() -> np.ndarray:
        shading = Image.fromarray(rng.integers(60, 200, (6, 9, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
        image = np.asarray(shading, dtype=np.float32) + rng.normal(0, 6, (height, width, 1))
        band = slice(height // 3, height // 3 + height // 8)
        image[band] += 25 * np.sin(np.arange(width) / 7.0)[None, :, None]  # a fine, regular texture
        return image

    def save(image: np.ndarray, path: Path) -> None:  # quality: JPEG's (PNG ignores it)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path, quality=90)

    for i in range(n_train):
        save(photo(), folder / "train" / "good" / f"{i:04d}.jpg")
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n_test):
        save(photo(), folder / "test" / "good" / f"{i:04d}.jpg")
        image = photo()
        cy, cx, r = rng.integers(height // 5, 4 * height // 5), rng.integers(width // 5, 4 * width // 5), height // 12
        blot = (yy - cy) ** 2 + ((xx - cx) / 1.5) ** 2 < r ** 2
        image[blot] *= 0.4
        save(image, folder / "test" / "blot" / f"{i:04d}.jpg")
        save(blot * 255.0, folder / "ground_truth" / "blot" / f"{i:04d}_mask.png")  # PNG: lossless
    return root


def run_default(model: str, data_root: Path, work: Path, extra: list[str]) -> dict:
    """Wall time and last line of ``python -m anovit train`` at the defaults for ``model``."""
    command = [sys.executable, "-m", "anovit", "train", "--dataset", "mvtec", "--data-root", str(data_root),
               "--category", CATEGORY, "--model", model, *extra]
    env = {**os.environ, "ANOVIT_CHECKPOINTS": str(work / "checkpoints" / model),
           "ANOVIT_IMAGE_CACHE": str(work / "image-cache" / model)}  # empty: every file decoded, as a first run
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    found = LAST_LINE.match(lines[-1]) if lines else None
    if found is None:
        raise SystemExit(f"the last line of train is not 'image AUROC x  pixel AUROC y': {lines[-1:]}")
    result = {"model": model, "command": " ".join(["python", *command[1:]]), "wall_seconds": seconds,
              "within_budget": seconds <= BUDGET_SECONDS, "image_auroc": float(found[1]),
              "pixel_auroc": float(found[2]),
              "settings_line": next((line for line in lines if line.startswith("settings:")), None),
              "load_average_1m": [load, os.getloadavg()[0]]}
    print(f"{model}: {seconds:.0f} s (budget {BUDGET_SECONDS:.0f} s); {lines[-1]}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["anovit", "cae"])
    parser.add_argument("--train", type=int, default=900, help="normal training images")
    parser.add_argument("--test", type=int, default=40, help="normal and defective test images, each")
    add_output_args(parser)
    args = parser.parse_args()
    work = smoke_workdir()
    start = machine()
    if args.smoke:
        n_train, n_test, size, extra = 6, 2, (150, 100), ["--epochs", "1", "--images-per-epoch", "4"]
    else:
        n_train, n_test, size, extra = args.train, args.test, (1500, 1000), []
    made = time.perf_counter()
    data_root = make_class(work / "data", n_train, n_test, size)
    print(f"made {n_train} + {2 * n_test} images of {size[0]}x{size[1]} px in {time.perf_counter() - made:.0f} s",
          flush=True)
    runs = [run_default(model, data_root, work, extra) for model in args.models]
    write_result("default_budget", {"what": __doc__.splitlines()[0], "budget_seconds": BUDGET_SECONDS,
                                    "smoke": args.smoke, "images": {"train": n_train, "test": 2 * n_test,
                                                                    "size": list(size)},
                                    "runs": runs, "machine": start}, output_dir(args))


if __name__ == "__main__":
    main()
