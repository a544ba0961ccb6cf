"""The sweep on a cluster through submitit: one Slurm job-array task per unfinished cell
(``benchmark --cluster slurm``), or submitit's ``local`` (one local process per task) and ``debug`` (in
this process) executors to try the same path on one machine. Also the command-line glue of the spread-out
sweep (``benchmark --devices ...`` / ``--cluster ...``), registered over :mod:`anovit.evaluation.benchmark`'s command.

Each task runs :class:`anovit.evaluation.sweep.CellJob` (train, evaluate, append the row under the results table's
lock), so rows land in the same table whether the cells ran here or on the cluster. submitit is an
optional extra: ``pip install 'anovit[cluster]'``.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from .benchmark import BenchmarkOutcome, Cell, Progress, cmd_benchmark
from .benchmark import add_benchmark_parser as add_sequential_parser
from ..utils.errors import AnovitError
from .sweep import CellJob, make_jobs, parse_devices, resolve_paths, run_parallel, split_pending
from ..utils.validation import non_negative_int, positive_int

CLUSTERS = ("slurm", "local", "debug")  # submitit's AutoExecutor names


def make_executor(cluster: str, folder: Path, *, partition: str | None = None, timeout_min: int = 240,
                  gpus: int = 1, cpus: int = 8, mem_gb: int | None = None, array_parallelism: int | None = None) -> Any:
    """A submitit executor for ``cluster`` ("slurm", "local" or "debug"), its logs and pickled tasks in
    ``folder``; each task gets ``gpus`` GPUs and ``cpus`` CPUs for ``timeout_min`` minutes. AnovitError
    when submitit is not installed or ``sbatch`` is not found."""
    if cluster not in CLUSTERS:
        raise AnovitError(f"--cluster must be one of {', '.join(CLUSTERS)}; got {cluster!r}")
    try:
        import submitit
    except ImportError:
        raise AnovitError("--cluster needs submitit: pip install 'anovit[cluster]'") from None
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except RuntimeError as err:  # e.g. no sbatch on PATH
        raise AnovitError(f"--cluster {cluster}: submitit cannot submit from here ({err})") from None
    options: dict[str, Any] = {"name": "anovit-benchmark", "timeout_min": timeout_min, "cpus_per_task": cpus,
                               "gpus_per_node": gpus, "mem_gb": mem_gb}
    if cluster == "slurm":
        options.update(slurm_partition=partition, slurm_array_parallelism=array_parallelism)
    executor.update_parameters(**{k: v for k, v in options.items() if v is not None})
    return executor


def run_job(job: CellJob) -> dict[str, Any]:
    """One job-array task: the cell on the task's device ("auto": its GPU, else its CPUs)."""
    return job("auto")


def submit_cells(cells: list[Cell], executor: Any, *, epochs: int | None = None, results: Path | None = None,
                 runs_root: Path | None = None, data_root: str | Path | None = None,
                 sizes: dict[str, Any] | None = None) -> tuple[list[Any], list[Cell], list[Cell]]:
    """Submit every unfinished cell as one task of a job array (``executor.map_array``). Returns (the
    submitit jobs, their cells, the cells skipped as finished); a job's result is the dict of
    :meth:`anovit.evaluation.sweep.CellJob.__call__`, and its row is in the results table as soon as it ends."""
    todo, done = split_pending(make_jobs(cells, epochs, results, runs_root, data_root, sizes), "auto")
    jobs = executor.map_array(run_job, todo) if todo else []
    return jobs, [job.cell for job in todo], [job.cell for job in done]


def wait_for(jobs: list[Any], cells: list[Cell], progress: Progress | None = None) -> tuple[list[Cell], list[str]]:
    """Wait for submitted ``jobs`` (of ``cells``, in order): (cells that ran, "name: reason" of the failed),
    with a "done" or "failed" event per job as it ends."""
    from submitit.helpers import as_completed

    notify = progress or (lambda event: None)
    cell_of = {job.job_id: cell for job, cell in zip(jobs, cells, strict=True)}
    ran, failed = [], []
    for job in as_completed(jobs, poll_frequency=2):
        cell = cell_of[job.job_id]
        try:
            result = job.result()
        except Exception as err:  # the task's own error, or the scheduler ended it
            failed.append(f"{cell.name}: {err}")
            notify({"event": "failed", "cell": cell, "reason": str(err)})
            continue
        ran.append(cell)
        notify({"event": "done", "cell": cell, **result})
    return ran, failed


def run_on_cluster(cells: list[Cell], args: argparse.Namespace, *, epochs: int | None = None,
                   results: Path | None = None, runs_root: Path | None = None, data_root: str | Path | None = None,
                   sizes: dict[str, Any] | None = None, progress: Progress | None = None,
                   device: str | None = None) -> BenchmarkOutcome:
    """``benchmark --cluster``: submit the unfinished cells (``device`` is the task's: ignored); with
    ``--detach`` return at once (the rows arrive in the results table as tasks end), else wait for every
    task. AnovitError naming the failed cells."""
    notify = progress or (lambda event: None)
    table, _ = resolve_paths(results, runs_root)
    executor = make_executor(args.cluster, args.cluster_folder or table.parent / "submitit",
                             partition=args.slurm_partition, timeout_min=args.slurm_time_min, gpus=args.slurm_gpus,
                             cpus=args.slurm_cpus, mem_gb=args.slurm_mem_gb, array_parallelism=args.slurm_parallel)
    jobs, todo, skipped = submit_cells(cells, executor, epochs=epochs, results=results, runs_root=runs_root,
                                       data_root=data_root, sizes=sizes)
    for index, cell in enumerate(skipped):
        notify({"event": "cell", "cell": cell, "status": "skip", "index": index, "total": len(cells)})
    array = f" as job array {jobs[0].job_id.split('_')[0]}" if jobs else ""
    print(f"submitted {len(jobs)} cell(s) to {args.cluster}{array}; logs in {executor.folder}")
    if args.detach:
        print(f"not waiting: each cell appends its row to {table} as it ends; run this command again to see "
              "which are left")
        return BenchmarkOutcome([], skipped, table)
    ran, failed = wait_for(jobs, todo, progress)
    if failed:
        raise AnovitError(f"{len(failed)} cell(s) failed ({'; '.join(failed)}); the rows of the others are in "
                          f"{table}: run the sweep again to retry the failed ones")
    return BenchmarkOutcome(ran, skipped, table)


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    """The options of ``benchmark`` that spread the sweep: --devices, or --cluster with its Slurm settings."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--devices", help="run cells at once, one process per device: cuda:0,cuda:1 | cpu,cpu | auto "
                       "(every GPU); replaces --device")
    where.add_argument("--cluster", choices=CLUSTERS, help="one job-array task per cell through submitit: slurm, or "
                       "local (every task at once) / debug (in this process) to try it here (pip install 'anovit[cluster]')")
    p.add_argument("--cluster-folder", type=Path, help="submitit's logs and pickled tasks (default: submitit/ beside "
                   "the results table)")
    p.add_argument("--detach", action="store_true", help="--cluster: submit and return without waiting")
    p.add_argument("--slurm-partition", help="Slurm partition (default: the cluster's)")
    p.add_argument("--slurm-time-min", type=positive_int, default=240, help="time limit per cell in minutes "
                   "(default: %(default)s)")
    p.add_argument("--slurm-gpus", type=non_negative_int, default=1, help="GPUs per cell (default: %(default)s)")
    p.add_argument("--slurm-cpus", type=positive_int, default=8, help="CPUs per cell (default: %(default)s)")
    p.add_argument("--slurm-mem-gb", type=positive_int, help="memory per cell in GB (default: the partition's)")
    p.add_argument("--slurm-parallel", type=positive_int, help="at most this many cells at once (default: no limit)")


def add_benchmark_parser(sub: Any) -> None:
    """Register ``python -m anovit benchmark`` (:mod:`anovit.evaluation.benchmark`) with the options of this module."""
    add_sequential_parser(sub)
    p = sub.choices["benchmark"]
    add_sweep_args(p)
    p.set_defaults(func=_cmd_spread)


def _cmd_spread(args: argparse.Namespace) -> int:
    """``benchmark``: sequential by default, else on --devices or through --cluster."""
    if args.devices:
        slots = parse_devices(args.devices)
        return cmd_benchmark(args, runner=lambda cells, device=None, **kw: run_parallel(cells, slots, **kw))
    if args.cluster:
        return cmd_benchmark(args, runner=partial(run_on_cluster, args=args))
    return cmd_benchmark(args)
