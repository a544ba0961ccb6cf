"""Background training jobs (anovit.jobs.background): a real worker process, cancel, stale pids, the state file."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from anovit.jobs import background as jobs
from anovit.jobs.background import (
    JobError,
    JobState,
    cancel_job,
    eta_seconds,
    list_jobs,
    pid_alive,
    read_job,
    start_job,
    thin_points,
    unique_run_dir,
    write_state,
)
from anovit.runs.catalog import list_runs
from anovit.training.config import TrainConfig


def tiny_config(root: Path, epochs: int = 1, model: str = "cae") -> TrainConfig:
    return TrainConfig(
        dataset="synthetic",
        category="weave",
        data_root=str(root),
        model=model,
        preset="cpu-tiny",
        epochs=epochs,
        batch_size=4,
        val_fraction=0.25,
    )


def wait_finished(run_dir: Path, timeout: float = 90.0) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_job(run_dir)
        if state is not None and not state.active:
            return state
        time.sleep(0.2)
    raise AssertionError(f"job in {run_dir} still active after {timeout} s: {read_job(run_dir)}")


def test_job_runs_to_completion_in_a_worker_process(tmp_path, synthetic_root):
    run_dir = tmp_path / "ckpt" / "tiny"
    started = start_job(tiny_config(synthetic_root), run_dir)
    assert started.status in ("queued", "running") and started.pid
    state = wait_finished(run_dir)
    assert state.status == "done", state.error
    assert state.pid == started.pid
    assert state.progress == 1.0 and state.phase == "finished"
    assert len(state.history) == 1 and state.step_losses
    assert 0.0 <= state.test["image_auroc"] <= 1.0
    assert state.test["n_images"] == 78
    deadline = time.monotonic() + 20
    while pid_alive(state.pid) and time.monotonic() < deadline:  # the worker exits right after its last write
        time.sleep(0.1)
    assert not pid_alive(state.pid)
    runs = list_runs(tmp_path / "ckpt")
    assert [r.name for r in runs] == ["tiny"] and runs[0].test.image_auroc == state.test["image_auroc"]
    assert [p.name for p, _ in list_jobs(tmp_path / "ckpt")] == ["tiny"]
    with pytest.raises(JobError, match="already exists"):
        start_job(tiny_config(synthetic_root), run_dir)


def test_cancel_stops_a_running_job_at_an_epoch_end(tmp_path, synthetic_root):
    run_dir = tmp_path / "cancel-me"
    start_job(tiny_config(synthetic_root, epochs=200), run_dir)
    deadline = time.monotonic() + 60
    while (read_job(run_dir).phase != "train") and time.monotonic() < deadline:
        time.sleep(0.1)
    cancel_job(run_dir)
    state = wait_finished(run_dir)
    assert state.status == "cancelled"
    assert 1 <= len(state.history) < 200
    assert state.test == {}
    assert (run_dir / "model.safetensors").is_file()  # the best epoch so far is kept


def test_cancel_before_the_worker_trains(tmp_path, synthetic_root):
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    write_state(run_dir, JobState(config=asdict(tiny_config(synthetic_root))))
    cancel_job(run_dir)
    state = jobs.run_worker(run_dir)
    assert state.status == "cancelled" and state.history == []
    assert read_job(run_dir).status == "cancelled"


def test_worker_failure_is_recorded_with_its_message(tmp_path, synthetic_root):
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    config = asdict(tiny_config(synthetic_root))
    config["category"] = "no-such-class"
    write_state(run_dir, JobState(config=config))
    state = jobs.run_worker(run_dir)
    assert state.status == "failed"
    assert "no-such-class" in state.error
    assert read_job(run_dir).error == state.error


def test_running_job_with_a_dead_pid_reads_as_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = tmp_path / "stale"
    run_dir.mkdir()
    write_state(run_dir, JobState(status="running", pid=dead.pid, phase="train"))
    state = read_job(run_dir)
    assert state.status == "stale" and not state.active
    assert str(dead.pid) in state.error and "job.log" in state.error
    raw = json.loads((run_dir / "job.json").read_text())
    assert raw["status"] == "running"  # reading never rewrites the worker's file


def test_pid_alive_reaps_exited_children_and_sees_live_ones():
    assert pid_alive(None) is False
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while pid_alive(child.pid) and time.monotonic() < deadline:  # a zombie until reaped: must read as gone
        time.sleep(0.05)
    assert not pid_alive(child.pid)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_state_file_errors_name_the_file_and_list_jobs_skips_them(tmp_path):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    assert read_job(bad) is None
    (bad / "job.json").write_text(json.dumps({"status": "running", "colour": "red"}))
    with pytest.raises(JobError, match="bad/job.json has unknown field"):
        read_job(bad)
    write_state(good, JobState(status="done"))
    assert [p.name for p, _ in list_jobs(tmp_path)] == ["good"]


def test_unique_run_dir_thin_points_and_eta(tmp_path):
    assert unique_run_dir(tmp_path, "run") == tmp_path / "run"
    (tmp_path / "run").mkdir()
    (tmp_path / "run-2").mkdir()
    assert unique_run_dir(tmp_path, "run") == tmp_path / "run-3"
    points = [[i, float(i)] for i in range(401)]
    thinned = thin_points(points, 400)
    assert len(thinned) <= 400 and thinned[-1] == [400, 400.0] and thinned[0] == [0, 0.0]
    assert thin_points(points[:10], 400) == points[:10]
    assert eta_seconds(10.0, 5, 20) == pytest.approx(30.0)
    assert eta_seconds(10.0, 0, 20) is None


def test_embedded_data_is_prepared_only_for_the_embedded_set(monkeypatch, synthetic_root):
    calls = []
    monkeypatch.setattr(jobs, "ensure_synthetic", lambda: calls.append(1))
    jobs.prepare_embedded_data(TrainConfig(dataset="synthetic", data_root=None))
    jobs.prepare_embedded_data(tiny_config(synthetic_root))  # an explicit folder: nothing to generate
    jobs.prepare_embedded_data(TrainConfig(dataset="digits", category="3"))
    assert calls == [1]


def test_delete_run_refuses_active_jobs_and_folders_outside_the_checkpoints_folder(tmp_path, monkeypatch):
    from anovit.jobs.background import JobError, JobState, delete_run, write_state

    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "ck"))
    run = tmp_path / "ck" / "run"
    run.mkdir(parents=True)
    write_state(run, JobState(status="running", pid=os.getpid()))
    with pytest.raises(JobError, match="still running: cancel it first"):
        delete_run(run)
    with pytest.raises(JobError, match="not a run folder directly under"):
        delete_run(tmp_path)
    write_state(run, JobState(status="cancelled"))
    delete_run(run)
    assert not run.exists() and (tmp_path / "ck").is_dir()


def test_a_missing_or_empty_data_folder_is_refused_before_a_run_folder_is_made(tmp_path, synthetic_root):
    from anovit.jobs.queue import queue_jobs

    empty = tmp_path / "empty"
    empty.mkdir()
    no_train = tmp_path / "no-train"
    (no_train / "weave" / "train" / "good").mkdir(parents=True)
    (no_train / "weave" / "test" / "good").mkdir(parents=True)
    cases = [(tmp_path / "missing", "does not exist"), (empty, "no class folder 'weave'"),
             (no_train, "weave")]
    for root, message in cases:
        with pytest.raises(JobError, match=message):
            start_job(tiny_config(root), tmp_path / "ckpt" / "refused")
        with pytest.raises(JobError, match=message):
            queue_jobs([(tiny_config(synthetic_root), "fine"), (tiny_config(root), "refused")], tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()  # not even the checkpoints folder was made


def test_a_cancelled_run_is_evaluated_then_continued(tmp_path, synthetic_root):
    from anovit.jobs.background import restart_job

    run_dir = tmp_path / "ckpt" / "cancelled"
    start_job(tiny_config(synthetic_root, epochs=2), run_dir)
    deadline = time.monotonic() + 300
    while not read_job(run_dir).history and time.monotonic() < deadline:  # epoch 1 saved (written at once)
        time.sleep(0.05)
    cancel_job(run_dir)
    cancelled = wait_finished(run_dir, 300)
    assert cancelled.status == "cancelled"
    saved = len(cancelled.history)  # 1, or 2 where epoch 2 ended before the cancel was seen (a fast CPU)
    assert saved >= 1
    with pytest.raises(JobError, match="restart mode"):
        restart_job(run_dir, "train")
    restart_job(run_dir, "evaluate")
    evaluated = wait_finished(run_dir, 300)
    assert evaluated.status == "done" and evaluated.mode == "evaluate", evaluated.error
    assert evaluated.history == [] and evaluated.test["n_images"] == 78  # scored, not trained
    restart_job(run_dir, "resume")
    resumed = wait_finished(run_dir, 300)
    assert resumed.status == "done" and resumed.mode == "resume", resumed.error
    assert [h["epoch"] for h in resumed.history] == list(range(saved + 1, 3))  # only the epochs not saved
    assert 0.0 <= resumed.test["image_auroc"] <= 1.0
    (run_dir / "resume.safetensors").unlink()
    with pytest.raises(JobError, match="missing"):
        restart_job(run_dir, "resume")
