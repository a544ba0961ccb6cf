"""Shared helpers of the benchmark scripts: interleaved timing, machine facts, JSON output, and the
``--smoke`` mode every script has (tiny data made here, seconds, JSON into ``--out``, nothing written
inside the repository)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))  # run as `python benchmarks/<script>.py` from a checkout


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each function, run in turn ``repeats`` times (A B A B ...), so that a change in
    the machine's load affects every function alike; one untimed warm-up call each first."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including the load (the build machine is shared)."""
    import torch

    return {
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "load_average_1m": os.getloadavg()[0], "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """--smoke and --out, shared by every script."""
    parser.add_argument("--smoke", action="store_true",
                        help="a check in seconds: the script's real path (at least one training step or scoring "
                             "batch) on tiny data it makes itself, on the CPU; writes nothing inside the repository")
    parser.add_argument("--out", type=Path, help="folder for the JSON result (default: benchmarks/results; with "
                                                  "--smoke: a new temporary folder)")


def output_dir(args: argparse.Namespace) -> Path:
    """Where the JSON goes: --out, else a new temporary folder under --smoke, else benchmarks/results."""
    if args.out is not None:
        return Path(args.out)
    return Path(tempfile.mkdtemp(prefix="anovit-smoke-")) if args.smoke else RESULTS


def smoke_workdir() -> Path:
    """A new temporary folder for a smoke run's data and run folders (never inside the repository); the disk
    image cache (anovit.data.image_cache) goes there too unless ANOVIT_IMAGE_CACHE names another folder."""
    from anovit.data.image_cache import CACHE_ENV

    folder = Path(tempfile.mkdtemp(prefix="anovit-smoke-work-"))
    os.environ.setdefault(CACHE_ENV, str(folder / "image-cache"))
    return folder


SMOKE_CATEGORY = "part"
SMOKE_SIZE = 64  # px: the smallest size every cpu-tiny model takes (AnoViT: a 4x4 patch grid)


def tiny_mvtec(root: Path, n_train: int = 8, n_test: int = 4, seed: int = 0) -> Path:
    """An MVTec-layout category ``part`` under ``root`` (returned): ``n_train`` normal training images,
    ``n_test`` normal and ``n_test`` defective ("crack", a bright square, with its mask) test images of
    64 x 64 grey noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(root) / SMOKE_CATEGORY

    def save(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)

    def scene() -> np.ndarray:
        return rng.normal(70, 12, (SMOKE_SIZE, SMOKE_SIZE)).clip(0, 255).astype(np.uint8)

    for i in range(n_train):
        save(scene(), folder / "train" / "good" / f"{i:03d}.png")
    for i in range(n_test):
        save(scene(), folder / "test" / "good" / f"{i:03d}.png")
        (top, left), side = rng.integers(4, 40, 2), int(rng.integers(6, 16))
        image, mask = scene(), np.zeros((SMOKE_SIZE, SMOKE_SIZE), np.uint8)
        image[top:top + side, left:left + side] = 200
        mask[top:top + side, left:left + side] = 255
        save(image, folder / "test" / "crack" / f"{i:03d}.png")
        save(mask, folder / "ground_truth" / "crack" / f"{i:03d}_mask.png")
    return Path(root)


def write_result(name: str, data: dict[str, Any], out: Path = RESULTS) -> Path:
    """Write ``<out>/<name>.json`` (default ``benchmarks/results``; with the machine facts; pass ``machine()``
    taken at the start as data["machine"] to keep the starting load) and print it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    data = {**data, "machine": {**machine(), **data.get("machine", {}), "load_average_1m_end": os.getloadavg()[0]}}
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    print(f"wrote {path}")
    return path
