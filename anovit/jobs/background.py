"""Background training jobs that outlive the web page that started them.

A job is a run folder plus ``job.json``, its state, which only the worker process writes
(atomically, throttled to one write per ``WRITE_INTERVAL`` seconds during training). Anyone may
read it: a page rerun, another page, a reloaded browser or a second tab all see the same job.

    start_job(config, run_dir)        writes job.json (queued), starts ``python -m anovit.jobs.background RUN_DIR``
    restart_job(run_dir, mode)        a cancelled (or failed) job again: "resume" its training, or only "evaluate" it
    worker (run_worker)               train(..., progress=, should_stop=) then evaluate_run; writes job.json
    read_job(run_dir)                 the state; "running" with a dead pid reads as "stale"
    cancel_job(run_dir)               creates the ``cancel`` file the worker polls after every step

Statuses: queued -> running -> done | failed | cancelled; ``stale`` is derived by the reader
when the worker's process is gone without having written a final status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..data import ensure_synthetic, get_dataset, list_classes
from ..data.torchvision_sets import LABELLED_SETS
from ..data.paths import workspace_dir
from ..utils.errors import AnovitError, CheckpointError, DatasetError
from ..runs.catalog import REPO_ROOT, default_checkpoint_dir
from ..training.config import TrainConfig

JOB_FILE = "job.json"
CANCEL_FILE = "cancel"
LOG_FILE = "job.log"
WRITE_INTERVAL = 1.0  # seconds between two step-triggered writes of job.json
MAX_LOSS_POINTS = 400  # the step-loss curve is thinned to at most this many points
ACTIVE = ("queued", "running")
MODES = ("train", "resume", "evaluate")


class JobError(AnovitError):
    """A job cannot be started or read."""


class _Cancelled(Exception):
    """Raised inside evaluation's progress callback when the cancel file appears."""


@dataclass
class JobState:
    """What job.json holds."""

    status: str = "queued"
    config: dict[str, Any] = field(default_factory=dict)
    mode: str = "train"  # train (a new run), resume (continue its last epoch), evaluate (score it only): MODES
    pid: int | None = None
    phase: str = "queued"  # queued, data, train, evaluate, finished
    detail: str = ""  # what the "data" phase is doing now, in words (shown beside "preparing")
    progress: float = 0.0  # fraction of the training steps done
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    step_losses: list[list[float]] = field(default_factory=list)  # [global step, loss], thinned
    history: list[dict[str, float]] = field(default_factory=list)  # one record per epoch
    eval_progress: float = 0.0
    test: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        """Queued or running (and, as read, its process alive)."""
        return self.status in ACTIVE

    @property
    def elapsed_s(self) -> float:
        """Seconds since the job was created, up to its end."""
        return (self.finished_at or time.time()) - self.created_at

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path) -> "JobState":
        """Inverse of ``asdict``; unknown fields are a JobError naming ``source``."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise JobError(f"{source} has unknown field(s) {unknown}; expected a job state written by anovit.jobs.background")
        return cls(**data)


def write_state(run_dir: Path, state: JobState) -> None:
    """Write job.json atomically (stamping ``updated_at``)."""
    state.updated_at = time.time()
    ckpt.write_json(Path(run_dir) / JOB_FILE, asdict(state))


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (our own exited children are reaped here)."""
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: another server process started it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_job(run_dir: Path) -> JobState | None:
    """The job state of ``run_dir`` (None without job.json); an active job whose worker is gone reads "stale"."""
    path = Path(run_dir) / JOB_FILE
    if not path.is_file():
        return None
    data = ckpt.read_json(path)
    if not isinstance(data, dict):
        raise JobError(f"{path} does not hold a JSON object; expected a job state written by anovit.jobs.background")
    state = JobState.from_dict(data, path)
    if state.active and state.pid is not None and not pid_alive(state.pid):
        state.status = "stale"
        state.error = state.error or (
            f"the worker process (pid {state.pid}) ended without a final status; see {Path(run_dir) / LOG_FILE}"
        )
    return state


def list_jobs(root: Path | None = None) -> list[tuple[Path, JobState]]:
    """(run folder, state) of every job under ``root`` (default: the checkpoints folder), newest first."""
    root = Path(root) if root is not None else default_checkpoint_dir()
    if not root.is_dir():
        return []
    jobs = []
    for path in root.iterdir():
        try:
            state = read_job(path) if path.is_dir() else None
        except (JobError, CheckpointError, TypeError):
            continue
        if state is not None:
            jobs.append((path, state))
    return sorted(jobs, key=lambda job: job[1].created_at, reverse=True)


def unique_run_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``, ... when that folder exists."""
    candidate, n = Path(root) / name, 1
    while candidate.exists():
        n += 1
        candidate = Path(root) / f"{name}-{n}"
    return candidate


def require_training_images(config: TrainConfig) -> None:
    """Refuse a job whose data folder (``config.data_root``) is missing, lacks the class or holds no training
    image of it, before any run folder is made. Without a data folder (the embedded or cached sets) the worker
    prepares the data. The MNIST-like labelled sets are read by the worker (their check would load them).

    Raises:
        JobError: naming the folder and what was expected there.
    """
    if config.data_root is None:
        return
    root = Path(config.data_root)
    if not root.is_dir():
        raise JobError(f"data folder {root} does not exist; expected the folder holding the {config.dataset} "
                       "class folders")
    if config.dataset in LABELLED_SETS:
        return
    try:
        classes = list_classes(config.dataset, root)
        if config.category not in classes:
            found = ", ".join(classes[:8]) or "none"
            raise JobError(f"data folder {root} has no class folder {config.category!r} (class folders: {found})")
        n_images = len(get_dataset(config.dataset, "train", category=config.category, image_size=32, root=root))
    except DatasetError as err:
        raise JobError(f"data folder {root} cannot be trained on: {err}") from None
    if n_images == 0:
        raise JobError(f"data folder {root} holds no training image of class {config.category!r}; expected normal "
                       f"images in its {config.category}/train folder")


def start_job(config: TrainConfig, run_dir: Path) -> JobState:
    """Create ``run_dir`` (it must not exist: two tabs never share a folder), write job.json and start the worker.

    The worker runs ``python -m anovit.jobs.background RUN_DIR`` in its own session, so it survives the page,
    and logs to RUN_DIR/job.log.

    Raises:
        JobError: ``run_dir`` exists, or the data folder fails :func:`require_training_images` (no folder made).
    """
    run_dir = Path(run_dir)
    require_training_images(config)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise JobError(f"run folder {run_dir} already exists; pick another run name") from None
    state = JobState(config=asdict(config), epochs=config.epochs)
    write_state(run_dir, state)
    pid = spawn_detached(["anovit.jobs.background", str(run_dir)], run_dir / LOG_FILE)
    claim_queued(run_dir, pid)  # the worker writes its own pid once it runs
    return read_job(run_dir) or state


def restart_job(run_dir: Path, mode: str) -> JobState:
    """Run an ended job's folder again in a new worker: ``mode`` "resume" continues its training from the last
    saved epoch up to its configured epochs (then evaluates), "evaluate" scores its best epoch on the test
    split as it is. The previous state (loss history included) is replaced.

    Raises:
        JobError: an unknown mode, a job still queued or running, or (resume) a folder without a saved epoch.
    """
    run_dir = Path(run_dir)
    if mode not in MODES[1:]:
        raise JobError(f"restart mode {mode!r} is not valid (expected one of {', '.join(MODES[1:])})")
    state = read_job(run_dir)
    if state is None or state.active:
        raise JobError(f"{run_dir.name} is {state.status if state else 'no job'}: only an ended job can be restarted")
    needed = ckpt.RESUME if mode == "resume" else ckpt.WEIGHTS
    if not (run_dir / needed).is_file():
        raise JobError(f"cannot {mode} {run_dir.name}: {run_dir / needed} is missing (no epoch was saved)")
    (run_dir / CANCEL_FILE).unlink(missing_ok=True)
    write_state(run_dir, JobState(config=state.config, mode=mode, epochs=state.epochs))
    claim_queued(run_dir, spawn_detached(["anovit.jobs.background", str(run_dir)], run_dir / LOG_FILE))
    return read_job(run_dir) or state


def spawn_detached(module_args: list[str], log_path: Path) -> int:
    """Start ``python -m MODULE ARGS...`` in its own session (it outlives the page), from the workspace,
    with this checkout importable, logging to ``log_path``; its pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            cwd=workspace_dir(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def claim_queued(run_dir: Path, pid: int) -> None:
    """Record ``pid`` (the process that will run it) in a queued job that has none yet: should that process
    die before the job starts, readers see the job "stale" instead of queued for ever."""
    current = read_job(run_dir)
    if current is not None and current.status == "queued" and current.pid is None:
        current.pid = pid
        write_state(run_dir, current)


def cancel_job(run_dir: Path) -> None:
    """Ask the job's worker to stop: it finishes the current epoch, saves, and ends as "cancelled"."""
    (Path(run_dir) / CANCEL_FILE).touch()


def delete_run(run_dir: Path) -> None:
    """Delete a run folder under the checkpoints folder for good; refused while its job is queued or running."""
    run_dir, root = Path(run_dir).resolve(), default_checkpoint_dir().resolve()
    if run_dir.parent != root:
        raise JobError(f"{run_dir} is not a run folder directly under the checkpoints folder {root}")
    state = read_job(run_dir)
    if state is not None and state.active:
        raise JobError(f"{run_dir.name} is still {state.status}: cancel it first")
    shutil.rmtree(run_dir)


def cancel_requested(run_dir: Path) -> bool:
    """Whether :func:`cancel_job` was called for ``run_dir``."""
    return (Path(run_dir) / CANCEL_FILE).exists()


def thin_points(points: list[list[float]], max_points: int = MAX_LOSS_POINTS) -> list[list[float]]:
    """Keep every other point (always the last) once there are more than ``max_points``."""
    if len(points) <= max_points:
        return points
    return points[:-1:2] + [points[-1]]


def eta_seconds(elapsed_s: float, done: int, total: int) -> float | None:
    """Remaining seconds at the observed rate, None before the first step."""
    if done <= 0 or total <= 0:
        return None
    return max(0.0, elapsed_s / done * (total - done))


class _Reporter:
    """Turns train/evaluate callbacks into throttled job.json writes."""

    def __init__(self, run_dir: Path, state: JobState) -> None:
        self.run_dir, self.state = run_dir, state
        self.t0 = time.perf_counter()
        self.first_step: int | None = None
        self.last_write = 0.0

    def write(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last_write >= WRITE_INTERVAL:
            write_state(self.run_dir, self.state)
            self.last_write = now

    def train_event(self, event: dict[str, Any]) -> None:
        s = self.state
        s.phase, s.epoch, s.epochs = "train", event["epoch"], event["epochs"]
        if event["event"] == "step":
            s.step, s.steps = event["step"], event["steps"]
            s.loss, s.images_per_s = event["loss"], event["images_per_s"]
            done = (s.epoch - 1) * s.steps + s.step
            if self.first_step is None:
                self.first_step, self.t0 = done - 1, time.perf_counter()
            s.progress = done / max(s.epochs * s.steps, 1)
            s.eta_s = eta_seconds(
                time.perf_counter() - self.t0, done - self.first_step, s.epochs * s.steps - self.first_step
            )
            s.step_losses = thin_points(s.step_losses + [[done, event["loss"]]])
            self.write()
        else:
            s.history.append({k: event[k] for k in ("epoch", "train_loss", "val_loss", "seconds")})
            self.write(force=True)

    def eval_event(self, done: int, total: int) -> None:
        if cancel_requested(self.run_dir):
            raise _Cancelled
        self.state.phase, self.state.eval_progress = "evaluate", done / max(total, 1)
        self.write()


def _finish(reporter: _Reporter, status: str, error: str | None = None) -> None:
    state = reporter.state
    state.status, state.phase, state.error, state.eta_s = status, "finished", error, 0.0
    state.finished_at = time.time()
    reporter.write(force=True)


def prepare_embedded_data(config: TrainConfig) -> None:
    """Generate the embedded synthetic dataset first (in the job's "data" phase) when the job uses it;
    :func:`~anovit.data.synthetic.ensure_synthetic` locks, so jobs started together write it once."""
    if config.dataset == "synthetic" and config.data_root is None:
        ensure_synthetic()


def run_worker(run_dir: Path) -> JobState:
    """Run the job described by RUN_DIR/job.json in this process: train, evaluate, record the outcome."""
    run_dir = Path(run_dir)
    state = read_job(run_dir)
    if state is None:
        raise JobError(f"{run_dir / JOB_FILE} is missing; start jobs with anovit.jobs.background.start_job")
    state.status, state.phase, state.pid = "running", "data", os.getpid()
    state.detail = "importing PyTorch and timm"
    reporter = _Reporter(run_dir, state)
    reporter.write(force=True)
    try:
        from ..data import ALL_CLASSES
        from ..evaluation.evaluate import evaluate_run
        from ..evaluation.unified import evaluate_unified_run
        from ..training.trainer import train

        config = TrainConfig.from_dict(state.config)
        if config.dataset == "synthetic" and config.data_root is None:
            state.detail = "generating the embedded synthetic dataset (first use only)"
            reporter.write(force=True)
        prepare_embedded_data(config)
        if cancel_requested(run_dir):
            raise _Cancelled
        if state.mode != "evaluate":
            state.detail = (f"reading the {config.dataset}/{config.category} training images and building the "
                            f"{config.model} model ({config.preset}); the "
                            f"{'first step' if state.mode == 'train' else 'last saved epoch'} follows")
            reporter.write(force=True)
            result = train(
                config,
                run_dir,
                resume=state.mode == "resume",
                progress=reporter.train_event,
                should_stop=lambda: cancel_requested(run_dir),
            )
            if result.stopped:
                raise _Cancelled
        state.progress, state.eta_s = 1.0, None
        if config.category == ALL_CLASSES:  # one model for every class: evaluated per class, the means kept here
            unified = evaluate_unified_run(run_dir, progress=reporter.eval_event).summary()
            state.test = {k: v for k, v in unified.items() if k != "per_class"}
        else:
            state.test = evaluate_run(run_dir, progress=reporter.eval_event).summary()
        _finish(reporter, "done")
    except _Cancelled:
        _finish(reporter, "cancelled")
    except Exception as err:  # anything the training raises is the job's failure, shown on the page
        traceback.print_exc()
        _finish(reporter, "failed", f"{type(err).__name__}: {err}")
    return state


def main(argv: list[str] | None = None) -> int:
    """``python -m anovit.jobs.background RUN_DIR``: the worker process of :func:`start_job`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m anovit.jobs.background RUN_DIR", file=sys.stderr)
        return 2
    state = run_worker(Path(argv[0]))
    return 0 if state.status in ("done", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
