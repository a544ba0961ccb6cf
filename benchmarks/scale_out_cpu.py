"""Scaling out on this CPU: data-parallel training on 2 processes (torchrun, gloo, 1 thread each) ÷ one
process (2 threads), and a sweep of 2 cells on ``--devices cpu,cpu`` ÷ the same cells one after another.

Both sides use the same cores (2 here), so the ratios say what the extra processes cost or gain, not what
more hardware would. DDP side: training images/s of the trainer (its per-epoch figure over the global
batch, epochs after the first, median), and the wall time of the whole command (process start included).
Sweep side: wall time of ``anovit benchmark`` for the two cells, process starts and evaluation included.
The runs alternate (one-process, two-process, one-process, ...), so a change in the machine's load hits both.
Every process runs with ``OMP_WAIT_POLICY=PASSIVE`` (``--omp-wait-policy``): on this shared, loaded machine
the default busy-waiting made a 2-thread process 4-8x slower than two 1-thread processes (3.5-7 vs 28
images/s, load average 6), which measures the spinning, not the data parallelism.

    python benchmarks/scale_out_cpu.py [--repeats 2] [--epochs 3] [--model cae] [--skip-sweep]
    python benchmarks/scale_out_cpu.py --smoke [--out DIR]   # one 1-epoch run each way on tiny data, no sweep
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SMOKE_CATEGORY, SMOKE_SIZE, add_output_args, machine, output_dir, tiny_mvtec, write_result


WAIT_POLICY = {"policy": "PASSIVE"}


def _run(cmd: list[str], threads: int) -> float:
    """Wall seconds of ``cmd`` run from the checkout with ``threads`` torch threads per process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": WAIT_POLICY["policy"]}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def train_once(processes: int, args: argparse.Namespace, out: Path) -> dict:
    """One training run (no evaluation) on ``processes`` processes sharing the cores; its figures."""
    threads = max(1, (os.cpu_count() or 1) // processes)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    cmd = [*launcher, "-m", "anovit", "train", *args.data, "--model", args.model, "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--device", "cpu", "--no-eval", "--overwrite", "--output", str(out)]
    wall = _run(cmd, threads)
    from anovit.runs.metrics_record import read_run_metrics

    history = read_run_metrics(out).training.history
    later = history[1:] or history  # epoch 1 also decodes the images into the dataset's cache
    return {"processes": processes, "threads_per_process": threads, "wall_s": wall,
            "train_images_per_s": statistics.median(h.images_per_s for h in later),
            "epoch_s": statistics.median(h.seconds for h in later), "last_val_loss": history[-1].val_loss}


def sweep_once(devices: str | None, args: argparse.Namespace, root: Path) -> float:
    """Wall seconds of a fresh 2-cell sweep (seeds 0 and 1, one class), sequential or on ``devices``."""
    where = ["--devices", devices] if devices else ["--device", "cpu"]
    cmd = [sys.executable, "-m", "anovit", "benchmark", "--dataset", "synthetic", "--classes", args.category,
           "--models", args.model, "--seeds", "2", "--epochs", str(args.sweep_epochs), "--results",
           str(root / "results.csv"), "--runs-root", str(root / "runs"), *where]
    return _run(cmd, os.cpu_count() or 1)  # the parallel sweep gives each cell its share itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cae")
    parser.add_argument("--category", default="weave")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="the global batch of both sides")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep-epochs", type=int, default=1)
    parser.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY of every process")
    parser.add_argument("--skip-sweep", action="store_true")
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    WAIT_POLICY["policy"] = args.omp_wait_policy
    start = {**machine(), "omp_wait_policy": args.omp_wait_policy}
    train_runs: dict[int, list[dict]] = {1: [], 2: []}
    sweep_runs: dict[str, list[float]] = {"sequential": [], "devices cpu,cpu": []}
    args.data = ["--dataset", "synthetic", "--category", args.category]
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:  # one 1-epoch run on 1 and on 2 processes, 64 px, tiny data; the sweep is anovit benchmark's
            args.data = ["--dataset", "mvtec", "--data-root", str(tiny_mvtec(Path(tmp) / "data")), "--category",
                         SMOKE_CATEGORY, "--image-size", str(SMOKE_SIZE), "--images-per-epoch", "8"]
            args.repeats, args.epochs, args.batch_size, args.skip_sweep = 1, 1, 4, True
        for repeat in range(args.repeats):
            for processes in (1, 2):
                train_runs[processes].append(train_once(processes, args, Path(tmp) / f"train-{processes}"))
                print(json.dumps(train_runs[processes][-1]))
            if args.skip_sweep:
                continue
            for name, devices in (("sequential", None), ("devices cpu,cpu", "cpu,cpu")):
                sweep_runs[name].append(sweep_once(devices, args, Path(tmp) / f"sweep-{repeat}-{name[:3]}"))
                print(name, f"{sweep_runs[name][-1]:.1f} s")

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    result = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "smoke": args.smoke, "model": args.model,
        "epochs": args.epochs,
        "global_batch": args.batch_size, "train": {str(k): v for k, v in train_runs.items()},
        "ddp_2_over_1_train_images_per_s": med(train_runs[2], "train_images_per_s") / med(train_runs[1], "train_images_per_s"),
        "ddp_2_over_1_wall": med(train_runs[1], "wall_s") / med(train_runs[2], "wall_s"),
        "machine": start,
    }
    if not args.skip_sweep:
        result.update(sweep_seconds=sweep_runs, sweep_speedup=statistics.median(sweep_runs["sequential"])
                      / statistics.median(sweep_runs["devices cpu,cpu"]))
    write_result("scale_out_cpu", result, out)


if __name__ == "__main__":
    main()
