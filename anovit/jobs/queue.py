"""A queue of training jobs run one after another by one background process (on a 2-core CPU, several
trainings at once only slow each other down).

    queue_jobs(configs)        one run folder per config, each with job.json "queued", and one process
                               ``python -m anovit.jobs.queue RUN_DIR...`` that runs them in turn
    run_queue(run_dirs)        that process: waits while another job is running, then runs each queued
                               job's worker (``python -m anovit.jobs.background RUN_DIR``) to its end

Every job is an ordinary :mod:`anovit.jobs.background` job: the Train page lists it, shows its progress and can
cancel it (a cancelled queued job ends "cancelled" when its turn comes). A job that fails, is cancelled
or whose worker dies ends with its own status and the queue goes on with the next one; if the queue
process itself dies, its jobs still queued read "stale" (their job.json carries its pid).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..data.paths import workspace_dir
from .background import (
    LOG_FILE, JobState, claim_queued, list_jobs, read_job, require_training_images, spawn_detached, unique_run_dir,
    write_state,
)
from ..runs.catalog import default_checkpoint_dir
from ..training.config import TrainConfig

POLL_S = 5.0  # seconds between two looks at the other jobs while one of them is running


def queue_jobs(configs: list[tuple[TrainConfig, str]], root: Path | None = None) -> list[Path]:
    """Create a run folder per (config, run name) under ``root`` (default: the checkpoints folder; a
    taken name gets ``-2``, ``-3``...), each with job.json "queued", and start one process that trains
    them in this order; their folders. A config whose data folder fails
    :func:`~anovit.jobs.background.require_training_images` raises its JobError before any folder is made."""
    for config, _ in configs:
        require_training_images(config)
    root = Path(root) if root is not None else default_checkpoint_dir()
    root.mkdir(parents=True, exist_ok=True)
    run_dirs = []
    for config, name in configs:
        run_dir = unique_run_dir(root, name)
        run_dir.mkdir()
        write_state(run_dir, JobState(config=asdict(config), epochs=config.epochs))
        run_dirs.append(run_dir)
    if run_dirs:
        pid = spawn_detached(["anovit.jobs.queue", *map(str, run_dirs)], run_dirs[0] / LOG_FILE)
        for run_dir in run_dirs:
            claim_queued(run_dir, pid)
    return run_dirs


def other_job_running(run_dirs: list[Path], root: Path) -> bool:
    """Whether a job under ``root`` that is not one of ``run_dirs`` is running now."""
    ours = {Path(p).resolve() for p in run_dirs}
    return any(state.status == "running" and path.resolve() not in ours for path, state in list_jobs(root))


def run_worker_process(run_dir: Path) -> None:
    """Run the job's worker (``python -m anovit.jobs.background RUN_DIR``) and wait for it; its output goes to job.log."""
    with open(Path(run_dir) / LOG_FILE, "ab") as log:
        subprocess.run([sys.executable, "-m", "anovit.jobs.background", str(run_dir)], cwd=workspace_dir(),
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False)


def run_queue(run_dirs: list[Path], worker: Callable[[Path], None] = run_worker_process,
              poll_s: float = POLL_S) -> list[str]:
    """Run each still-queued job of ``run_dirs`` in order with ``worker``, each once no other job of the
    checkpoints folder is running; a job not "queued" any more (deleted, run elsewhere) is skipped. The
    final status of each job ("skipped" for those not run)."""
    statuses = []
    for run_dir in map(Path, run_dirs):
        state = read_job(run_dir)
        if state is None or state.status != "queued":
            statuses.append("skipped")
            continue
        while other_job_running(run_dirs, run_dir.parent):
            time.sleep(poll_s)
        worker(run_dir)
        final = read_job(run_dir)
        statuses.append(final.status if final is not None else "skipped")
    return statuses


def main(argv: list[str] | None = None) -> int:
    """``python -m anovit.jobs.queue RUN_DIR...``: the process of :func:`queue_jobs`."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m anovit.jobs.queue RUN_DIR...", file=sys.stderr)
        return 2
    run_queue([Path(p) for p in argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
