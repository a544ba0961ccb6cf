"""The sweep spread out: two cells at once in two CPU processes, the submitit path through its in-process
debug executor, the locked append that parallel writers share, and the device list."""

import multiprocessing
import pickle

import pytest

from anovit.evaluation.benchmark import Cell, read_results
from anovit.utils.errors import AnovitError
from anovit.cli.main import main
from anovit.evaluation.launchers import make_executor, run_job, submit_cells
from anovit.evaluation.results_table import read_table
from anovit.evaluation.sweep import CellJob, Slot, append_result_locked, parse_devices, run_parallel

SIZES = {"image_size": 32}  # the l2-CAE at 32 px: a cell takes seconds


def _cell(seed, category="weave"):
    return Cell("synthetic", category, "cae", "cpu-tiny", seed)


def _assert_rows(results, cells, data_root):
    rows = read_results(results)
    assert sorted((r["class"], r["seed"]) for r in rows) == sorted((c.category, str(c.seed)) for c in cells)
    assert all(r["epochs"] == "1" and r["data_root"] == str(data_root) for r in rows)
    table = read_table(results)
    assert table.problems == [] and len(table.rows) == len(cells)


def test_two_cells_run_at_once_in_two_processes_and_a_rerun_skips_them(synthetic_root, tmp_path):
    cells, events = [_cell(0), _cell(0, "tiles")], []
    kw = dict(epochs=1, results=tmp_path / "results.csv", runs_root=tmp_path / "runs", data_root=synthetic_root,
              sizes=SIZES)
    outcome = run_parallel(cells, [Slot("cpu"), Slot("cpu")], progress=events.append, **kw)
    assert sorted(c.category for c in outcome.ran) == ["tiles", "weave"] and outcome.skipped == []
    _assert_rows(tmp_path / "results.csv", cells, synthetic_root)
    kinds = [(e["event"], e.get("status")) for e in events]
    assert kinds[:2] == [("cell", "run"), ("cell", "run")]  # both started before either ended
    done = [e for e in events if e["event"] == "done"]
    assert len({e["pid"] for e in done}) == 2
    again = run_parallel(cells, [Slot("cpu"), Slot("cpu")], **kw)
    assert again.ran == [] and sorted(c.category for c in again.skipped) == ["tiles", "weave"]
    assert len(read_results(tmp_path / "results.csv")) == 2


def test_job_array_through_submitit_debug_executor(synthetic_root, tmp_path, capsys):
    pytest.importorskip("submitit")
    cells = [_cell(1)]
    results, runs = tmp_path / "results.csv", tmp_path / "runs"
    code = main(["benchmark", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--classes", "weave",
                 "--models", "cae", "--seeds", "2", "--epochs", "1", "--image-size", "32", "--results", str(results),
                 "--runs-root", str(runs), "--cluster", "debug", "--cluster-folder", str(tmp_path / "submitit")])
    assert code == 0 and "submitted 2 cell(s) to debug" in capsys.readouterr().out
    _assert_rows(results, [_cell(0), _cell(1)], synthetic_root)
    executor = make_executor("debug", tmp_path / "submitit")
    kw = dict(epochs=1, results=results, runs_root=runs, data_root=synthetic_root, sizes=SIZES)
    assert submit_cells(cells, executor, **kw) == ([], [], cells)  # finished: nothing to submit again
    job = CellJob(cells[0], 1, results, runs, str(synthetic_root), SIZES)
    assert pickle.loads(pickle.dumps(job)) == job and pickle.loads(pickle.dumps(run_job)) is run_job  # what Slurm gets


def test_sweep_options_are_checked_before_any_work(capsys):
    with pytest.raises(SystemExit):  # argparse: one or the other
        main(["benchmark", "--devices", "cpu,cpu", "--cluster", "debug"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["benchmark", "--classes", "weave", "--devices", "cpu,gpu0"]) == 2
    assert "'gpu0' is not a device" in capsys.readouterr().err


def _append_many(path, writer, count):
    for i in range(count):
        append_result_locked(path, {"dataset": "synthetic", "class": f"c{writer}", "type": "texture", "model": "cae",
                                    "preset": "cpu-tiny", "seed": i, "epochs": 1, "image_auroc": 0.5,
                                    "finished_at": "2026-01-01T00:00:00", "versions": "x" * 2000})


def test_parallel_writers_never_lose_or_merge_a_row(tmp_path):
    path, ctx = tmp_path / "results.csv", multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_append_many, args=(path, w, 25)) for w in range(6)]
    for p in writers:
        p.start()
    for p in writers:
        p.join()
    assert all(p.exitcode == 0 for p in writers)
    table = read_table(path)
    assert table.problems == [] and len(table.rows) == 150
    assert sorted(table.rows.groupby("class").size().tolist()) == [25] * 6
    assert path.read_text().count("dataset,") == 1  # one header


def test_device_lists():
    assert parse_devices("cpu,cpu") == [Slot("cpu"), Slot("cpu")] and Slot("cuda", 1).name == "cuda:1"
    with pytest.raises(AnovitError, match="'gpu0' is not a device"):
        parse_devices("cpu,gpu0")
    with pytest.raises(AnovitError, match="is empty"):
        parse_devices(" , ")
    import torch

    if not torch.cuda.is_available():
        assert parse_devices("auto") == [Slot("cpu")]
        with pytest.raises(AnovitError, match="cuda:0 is not present"):
            parse_devices("cuda:0")


def test_cluster_without_slurm_says_so(tmp_path):
    pytest.importorskip("submitit")
    import shutil

    if shutil.which("srun") is None:
        with pytest.raises(AnovitError, match="cannot submit from here"):
            make_executor("slurm", tmp_path)
