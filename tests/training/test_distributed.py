"""Data-parallel training: ``torchrun --nproc_per_node 2 -m anovit train`` (gloo, CPU) gives the run of one
process at the same global batch, from scratch and resumed; the sharding rules checked without processes.

Tolerance: losses, weights and anomaly scores agree to 1e-4 (relative; 1e-6 absolute for weights). Without
random augmentation the two runs see the same batches in the same order and differ only by the order of
float sums (the gradient mean over 2 x 2 images instead of 4): measured 3e-8 in the validation loss and
1.5e-8 in the weights after one epoch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from anovit.runs import checkpoint as ckpt
from anovit.cli.main import main
from anovit.scoring.detector import Detector
from anovit.training.distributed import SINGLE, Parallel, RankBatches
from anovit.utils.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GLOBAL_BATCH = 4


def _args(data_root, out, *extra):
    return ["train", "--dataset", "synthetic", "--category", "weave", "--data-root", str(data_root), "--model", "cae",
            "--preset", "cpu-tiny",  # one pass per epoch: the torchrun shares are checked against that
            "--image-size", "32", "--batch-size", str(GLOBAL_BATCH), "--val-fraction", "0.25", "--no-affine",
            "--no-flip", "--no-bf16", "--device", "cpu", "--no-eval", "--output", str(out), *extra]


def _torchrun(*runs):
    """``anovit train RUN`` for each of ``runs`` in turn, under ``torchrun --standalone --nproc_per_node 2``
    (one launch), importing this checkout (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [a for run in runs for a in ["--then", *run]][1:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "training" / "torchrun_train.py"), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _history(run_dir):
    return ckpt.read_metrics(run_dir)["training"]["history"]


def _assert_same_run(ddp, one):
    """Same history, same weights and the same anomaly scores of the same images."""
    for mine, ref in zip(_history(ddp), _history(one), strict=True):
        assert mine["epoch"] == ref["epoch"]
        assert mine["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-4)
        assert mine["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-4)
    a, b = ckpt.load_tensors(ddp / ckpt.WEIGHTS), ckpt.load_tensors(one / ckpt.WEIGHTS)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(Detector.from_run(ddp).score(images), Detector.from_run(one).score(images),
                               rtol=1e-4, atol=0)


def test_torchrun_two_processes_equal_one_process_from_scratch_and_resumed(synthetic_root, tmp_path):
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    first, then = ["--epochs", "1"], ["--resume", "--epochs", "2"]
    done = _torchrun(_args(synthetic_root, ddp, *first), _args(synthetic_root, ddp, *then))
    for extra in (first, then):
        assert main(_args(synthetic_root, one, *extra)) == 0
    assert done.stdout.count("run folder") == 2  # rank 0 alone reports, once per run
    assert json.loads((ddp / ckpt.TRAINING).read_text()) == json.loads((one / ckpt.TRAINING).read_text())
    assert [h["epoch"] for h in _history(ddp)] == [1, 2]
    assert ckpt.read_metrics(ddp)["training"]["processes"] == 2
    assert "processes" not in ckpt.read_metrics(one)["training"]
    assert not list(ddp.glob("*.tmp")) and not (ddp / ".anovit.lock.owner").exists()
    _assert_same_run(ddp, one)


def test_rank_shares_make_up_the_one_process_batches():
    rng = torch.Generator()
    batches = BatchSampler(RandomSampler(range(10), generator=rng), 4, drop_last=True)
    shares = []
    for rank in range(2):
        rng.manual_seed(0)
        shares.append(list(RankBatches(batches, rank, 2)))
    rng.manual_seed(0)
    expected = list(batches)
    assert [a + b for a, b in zip(*shares)] == expected and len(RankBatches(batches, 0, 2)) == 2


def test_global_batch_must_split_evenly_and_devices_are_per_process():
    par = Parallel(rank=1, world_size=3)
    with pytest.raises(ConfigError, match="multiple of the 3 processes"):
        par.loaders(list(range(12)), list(range(3)), 16, torch.Generator())
    with pytest.raises(ConfigError, match="cuda:LOCAL_RANK"):
        par.device("cuda:1")
    assert par.device("cpu") == torch.device("cpu") and not par.is_main
    assert SINGLE.is_main and SINGLE.record() == {} and SINGLE.sums(1.5, 2) == (1.5, 2)
