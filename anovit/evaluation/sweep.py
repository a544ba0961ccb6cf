"""The benchmark sweep spread out: independent cells at once, one process per local device
(``benchmark --devices cuda:0,cuda:1``, ``auto`` or ``cpu,cpu``); :mod:`anovit.evaluation.launchers` sends the same
:class:`CellJob` to a Slurm job array instead.

Each cell trains and evaluates as in the sequential sweep (:func:`anovit.evaluation.benchmark.run_cell`) and
appends its own row to the results table under a file lock (``RESULTS.lock``, the ``filelock``
library), so parallel writers never interleave or lose a row; the table is the same one ``report``
reads. Cells already in the table are skipped, so a killed sweep is resumed by running it again.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from filelock import FileLock

from .benchmark import (BenchmarkOutcome, Cell, Progress, append_result, default_bench_dir, default_results_path,
                        is_finished, read_results, run_cell, split_list, train_config)
from ..utils.errors import AnovitError
from ..training.config import TrainConfig
from ..utils.settings import check_setting
from ..utils.validation import absolute_path


def append_result_locked(path: Path, row: dict[str, Any]) -> None:
    """:func:`anovit.evaluation.benchmark.append_result` holding ``PATH.lock``: one writer at a time, on any process or
    node that sees the file (the lock is an OS ``flock``; on NFS it needs working locks, as NFSv4 has)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        append_result(path, row)


@dataclass(frozen=True)
class CellJob:
    """One cell with everything its process needs (picklable: sent to a local process or a Slurm task)."""

    cell: Cell
    epochs: int | None
    results: Path
    runs_root: Path
    data_root: str | None
    sizes: dict[str, Any] | None

    def __call__(self, device: str = "auto", gpu: int | None = None, threads: int | None = None) -> dict[str, Any]:
        """Train and evaluate the cell on ``device``, append its row and return it with where and when it
        ran (``pid``, ``started``, ``ended``: seconds since the epoch). ``gpu``: the one GPU this process
        may see, numbered as the parent sees them (set before CUDA starts); ``threads``: torch's CPU threads."""
        if gpu is not None:
            seen = os.environ.get("CUDA_VISIBLE_DEVICES")  # the parent's numbering counts these only
            os.environ["CUDA_VISIBLE_DEVICES"] = seen.split(",")[gpu] if seen else str(gpu)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        started = time.time()
        row = run_cell(self.cell, epochs=self.epochs, runs_root=self.runs_root, data_root=self.data_root,
                       device=device, sizes=self.sizes)
        append_result_locked(self.results, row)
        return {"row": row, "pid": os.getpid(), "started": started, "ended": time.time()}


def resolve_paths(results: Path | None, runs_root: Path | None) -> tuple[Path, Path]:
    """(results table, runs root) made absolute, with the sequential sweep's defaults for None."""
    return (Path(results if results is not None else default_results_path()).resolve(),
            Path(runs_root if runs_root is not None else default_bench_dir()).resolve())


def make_jobs(cells: list[Cell], epochs: int | None, results: Path | None, runs_root: Path | None,
              data_root: str | Path | None, sizes: dict[str, Any] | None) -> list[CellJob]:
    """One :class:`CellJob` per cell, with absolute paths (a task may start in another folder) and the
    sequential sweep's defaults (``results``: :func:`anovit.evaluation.benchmark.default_results_path`, ``runs_root``:
    :func:`anovit.evaluation.benchmark.default_bench_dir`)."""
    check_setting(TrainConfig, "epochs", epochs)  # 0 must not mean "the default"
    results, runs_root = resolve_paths(results, runs_root)
    return [CellJob(cell, epochs, results, runs_root, absolute_path(data_root), sizes) for cell in cells]


def split_pending(jobs: list[CellJob], device: str) -> tuple[list[CellJob], list[CellJob]]:
    """(jobs to run, jobs whose cell the results table holds already), as the sequential sweep decides."""
    todo, done = [], []
    rows: dict[Path, list[dict[str, str]]] = {}
    for job in jobs:
        if job.results not in rows:
            rows[job.results] = read_results(job.results)
        table = rows[job.results]
        epochs = train_config(job.cell, job.epochs, job.data_root, device, job.sizes).epochs
        (done if is_finished(job.cell, epochs, table, job.data_root) else todo).append(job)
    return todo, done


@dataclass(frozen=True)
class Slot:
    """Where one local process runs its cells: ``device`` (the trainer's --device) and the one GPU it sees."""

    device: str
    gpu: int | None = None

    @property
    def name(self) -> str:
        """"cpu" or "cuda:N"."""
        return self.device if self.gpu is None else f"cuda:{self.gpu}"


def parse_devices(spec: str) -> list[Slot]:
    """"cuda:0,cuda:1" -> one slot per GPU (each process sees only its GPU, as "cuda"); "cpu,cpu" -> two CPU
    processes; "auto" -> every visible GPU, else one CPU process. AnovitError for an unknown or absent device."""
    import torch

    if spec.strip() == "auto":
        count = torch.cuda.device_count()
        return [Slot("cuda", i) for i in range(count)] if count else [Slot("cpu")]
    slots = []
    for name in split_list(spec, "--devices"):
        if name == "cpu":
            slots.append(Slot("cpu"))
            continue
        kind, _, index = name.partition(":")
        if kind != "cuda" or not index.isdigit():
            raise AnovitError(f"--devices: '{name}' is not a device (expected auto, cpu or cuda:N, comma-separated)")
        if int(index) >= torch.cuda.device_count():
            raise AnovitError(f"--devices: {name} is not present (this machine sees {torch.cuda.device_count()} GPU(s))")
        slots.append(Slot("cuda", int(index)))
    return slots


def run_parallel(cells: list[Cell], slots: list[Slot], *, epochs: int | None = None, results: Path | None = None,
                 runs_root: Path | None = None, data_root: str | Path | None = None,
                 sizes: dict[str, Any] | None = None, progress: Progress | None = None) -> BenchmarkOutcome:
    """Run every unfinished cell, at most one per slot at a time, each in a fresh process with an equal
    share of the CPU threads. ``results``/``runs_root`` default as in :func:`anovit.evaluation.benchmark.run_benchmark`.

    ``progress`` receives the sequential sweep's "cell" events (status "skip" or "run", the latter with the
    slot's ``device``) and "done" events (with the row, ``pid``, ``started`` and ``ended``), and "failed"
    (with the ``reason``). A failed cell does not stop the others; AnovitError naming every failed cell at
    the end (run the sweep again to retry them).
    """
    notify = progress or (lambda event: None)
    jobs = make_jobs(cells, epochs, results, runs_root, data_root, sizes)
    todo, done = split_pending(jobs, slots[0].device)
    outcome = BenchmarkOutcome([], [job.cell for job in done], resolve_paths(results, runs_root)[0])
    for index, job in enumerate(done):
        notify({"event": "cell", "cell": job.cell, "status": "skip", "index": index, "total": len(cells)})
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    free, running, failed, queue = list(slots), {}, [], list(todo)
    if "forkserver" in get_all_start_methods():  # fresh processes, forked from a server that imported
        context = get_context("forkserver")     # anovit once (import only: no CUDA or thread pool to inherit)
        context.set_forkserver_preload([__name__])
    else:
        context = get_context("spawn")
    with ProcessPoolExecutor(len(slots), mp_context=context, max_tasks_per_child=1) as pool:
        while queue or running:
            while queue and free:
                job, slot = queue.pop(0), free.pop(0)
                running[pool.submit(job, slot.device, slot.gpu, threads)] = (job, slot)
                notify({"event": "cell", "cell": job.cell, "status": "run", "device": slot.name,
                        "index": len(cells) - len(queue) - 1, "total": len(cells)})
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                job, slot = running.pop(future)
                free.append(slot)
                try:
                    result = future.result()
                except Exception as err:  # the cell's own error (or its process died); the other cells go on
                    failed.append(f"{job.cell.name}: {err}")
                    notify({"event": "failed", "cell": job.cell, "reason": str(err)})
                    continue
                outcome.ran.append(job.cell)
                notify({"event": "done", "cell": job.cell, **result})
    if failed:
        raise AnovitError(f"{len(failed)} cell(s) failed ({'; '.join(failed)}); the rows of the others are in "
                          f"{outcome.results}: run the sweep again to retry the failed ones")
    return outcome
