"""Run folders from the real world (issue 10): one writer per folder, resolved paths, a diverging
run stops at once, --resume needs a run, a full disk names the file, the default checkpoints folder
is the app's, and run files get the usual umask."""

import errno
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anovit.runs import checkpoint as ckpt
from anovit.data.augment import AugmentConfig
from anovit.cli.main import main
from anovit.utils.errors import CheckpointError, TrainingError
from anovit.runs.lock import OWNER, RunLockedError, run_lock
from anovit.training.trainer import train
from anovit.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def _config(root, **kw):
    base = dict(dataset="synthetic", category="tiles", data_root=str(root), model="cae", preset="cpu-tiny", epochs=1,
                batch_size=4, bf16=False, device="cpu", augment=AugmentConfig(affine=False))
    return TrainConfig(**{**base, **kw})


def test_second_training_into_a_locked_folder_fails_naming_folder_and_process(synthetic_root, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from anovit.runs.lock import run_lock\n"
         "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(run)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"{run} is in use by pid {holder.pid} on "):
            train(_config(synthetic_root), run)
        assert not (run / "training.json").exists()  # the refused start wrote nothing
        code = main(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--category", "tiles",
                     "--model", "cae", "--epochs", "1", "--output", str(run), "--device", "cpu", "--no-eval"])
        assert code == 2
    finally:
        holder.kill()
        holder.wait()
    train(_config(synthetic_root), run)  # the kernel dropped the lock with its process
    assert (run / "model.safetensors").is_file() and not (run / OWNER).exists()


def test_lock_is_released_after_a_failed_run(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with run_lock(tmp_path / "run"):
            1 / 0
    with run_lock(tmp_path / "run"):
        pass


def test_relative_data_root_is_stored_resolved(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.chdir(synthetic_root.parent)
    config = _config(Path(synthetic_root.name))
    assert config.data_root == str(synthetic_root.resolve())
    train(config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "training.json").read_text())["data_root"] == str(synthetic_root.resolve())
    monkeypatch.chdir(tmp_path)  # evaluate and resume from elsewhere, resume with the absolute path
    assert main(["evaluate", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["data_root"] == str(synthetic_root)
    train(_config(synthetic_root, epochs=2), tmp_path / "run", resume=True)


def test_diverging_run_stops_at_the_first_non_finite_loss(synthetic_root, tmp_path, capsys):
    with pytest.raises(TrainingError) as caught:
        train(_config(synthetic_root, lr=1e30, grad_clip=None, epochs=3), tmp_path / "run")
    message = str(caught.value)
    assert "at epoch 1, step 2/" in message or "at epoch 1, step 3/" in message, message
    assert "--lr" in message and "--grad-clip" in message and "no grad clip" in message
    assert "no weights were saved" in message and not (tmp_path / "run" / "model.safetensors").exists()
    code = main(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--category", "tiles",
                 "--model", "cae", "--epochs", "3", "--lr", "1e30", "--grad-clip", "0", "--no-bf16",
                 "--output", str(tmp_path / "cli"), "--device", "cpu", "--no-eval"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: training diverged")


def test_resume_into_a_folder_that_never_held_a_run_is_refused(synthetic_root, tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(CheckpointError, match="holds no run to continue.*drop --resume"):
            train(_config(synthetic_root), folder, resume=True)
    assert not (tmp_path / "empty" / "training.json").exists()


def test_disk_full_while_writing_a_checkpoint_names_the_file_and_keeps_the_old_one(synthetic_root, tmp_path,
                                                                                  monkeypatch, capsys):
    run = tmp_path / "run"
    train(_config(synthetic_root), run)
    before = {name: (run / name).read_bytes() for name in (ckpt.WEIGHTS, ckpt.RESUME)}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(CheckpointError, match=r"could not write .*(model|resume)\.safetensors \(No space left on "
                                              r"device\); the previous (model|resume)\.safetensors is intact"):
        train(_config(synthetic_root, epochs=2), run, resume=True)
    code = main(["train", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--category", "tiles",
                 "--model", "cae", "--epochs", "1", "--output", str(tmp_path / "fresh"), "--device", "cpu", "--no-eval"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"could not write {tmp_path / 'fresh' / ckpt.WEIGHTS} (No space left on device); no earlier" in err
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_failure_names_file_and_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    ckpt.save_tensors(path, {"w": __import__("torch").ones(3)})
    old = path.read_bytes()
    monkeypatch.setattr(ckpt, "save_file", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(CheckpointError, match=rf"could not write {path} \(No space left on device\); "
                                              r"the previous model.safetensors is intact"):
        ckpt.save_tensors(path, {"w": __import__("torch").zeros(3)})
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["model.safetensors"]
    with pytest.raises(CheckpointError, match="no earlier new.safetensors existed"):
        ckpt.save_tensors(tmp_path / "new.safetensors", {"w": __import__("torch").zeros(3)})


def test_train_without_output_uses_the_app_s_checkpoints_folder_and_the_umask(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "ckpts"))
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        result = train(_config(synthetic_root))
    finally:
        os.umask(old)
    assert result.run_dir == tmp_path / "ckpts" / _config(synthetic_root).run_name()
    assert not (tmp_path / "checkpoints").exists()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in result.run_dir.iterdir()}
    for name in ("model.safetensors", "config.json", "training.json", "metrics.json", "resume.safetensors"):
        assert modes[name] == 0o644, (name, oct(modes[name]))


def test_lock_owner_file_says_who_holds_it(tmp_path):
    with run_lock(tmp_path / "run"):
        owner = json.loads((tmp_path / "run" / OWNER).read_text())
        assert owner["pid"] == os.getpid() and owner["started"] <= time.time()
