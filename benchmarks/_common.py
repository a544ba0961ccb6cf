"""Shared helpers of the benchmark scripts: interleaved timing, machine facts, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
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


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (with the machine facts; pass ``machine()`` taken at the
    start as data["machine"] to keep the starting load) and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {**data, "machine": {**machine(), **data.get("machine", {}), "load_average_1m_end": os.getloadavg()[0]}}
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    print(f"wrote {path}")
    return path
