"""The benchmark sweep: one row per finished cell, resume skips finished cells and rebuilds nothing,
a cell killed before its row continues from its run folder."""

import csv
import json
import shutil

import pytest

import anovit.evaluation.benchmark as bench
from anovit.evaluation.benchmark import Cell, plan_cells, read_results, resolve_classes, run_benchmark
from anovit.cli.main import main
from anovit.utils.errors import AnovitError, DatasetError

CELL = Cell("synthetic", "weave", "cae", "cpu-tiny", 0)


def _mtimes(run_dir):
    return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}


def _forbid(*_, **__):
    raise AssertionError("a finished cell must not be trained or evaluated again")


@pytest.fixture(scope="module")
def template(synthetic_root, tmp_path_factory):
    """One finished cell (l2-CAE, 1 epoch) run through the CLI, once per module."""
    root = tmp_path_factory.mktemp("bench")
    code = main(["benchmark", "--dataset", "synthetic", "--data-root", str(synthetic_root), "--classes", "weave",
                 "--models", "cae", "--seeds", "1", "--epochs", "1", "--results", str(root / "results.csv"),
                 "--runs-root", str(root / "runs"), "--device", "cpu"])
    assert code == 0
    return root


@pytest.fixture
def finished(template, tmp_path):
    """A private copy of the finished cell (file times kept): (results csv, runs root)."""
    root = tmp_path / "bench"
    shutil.copytree(template, root)
    results = root / "results.csv"
    results.write_text(results.read_text().replace(str(template), str(root)))
    return results, root / "runs"


def test_sweep_writes_one_row_per_cell_with_the_run_folder(finished, synthetic_root):
    results, runs = finished
    rows = read_results(results)
    assert len(rows) == 1
    row = rows[0]
    assert (row["dataset"], row["class"], row["type"], row["model"], row["seed"], row["epochs"]) == (
        "synthetic", "weave", "texture", "cae", "0", "1")
    for metric in ("image_auroc", "pixel_auroc", "aupro", "image_f1_max"):
        assert 0.0 <= float(row[metric]) <= 1.0
    assert float(row["train_seconds"]) > 0 and float(row["eval_images_per_s"]) > 0
    assert "torch" in row["versions"]
    run_dir = bench.resolve_stored(row["run_dir"])
    assert run_dir == runs / CELL.run_name(synthetic_root)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["aupro"] == pytest.approx(float(row["aupro"]), rel=1e-5)


def test_resume_skips_finished_cells_and_rebuilds_nothing(finished, synthetic_root, monkeypatch):
    results, runs = finished
    before, table = _mtimes(runs / CELL.run_name(synthetic_root)), results.read_text()
    monkeypatch.setattr(bench, "train", _forbid)
    monkeypatch.setattr(bench, "evaluate_run", _forbid)
    events = []
    outcome = run_benchmark([CELL], epochs=1, results=results, runs_root=runs, data_root=synthetic_root,
                            device="cpu", progress=events.append)
    assert outcome.skipped == [CELL] and outcome.ran == []
    assert [e["status"] for e in events if e["event"] == "cell"] == ["skip"]
    assert _mtimes(runs / CELL.run_name(synthetic_root)) == before and results.read_text() == table


def test_killed_cell_continues_from_its_run_folder(finished, synthetic_root):
    results, runs = finished
    run_dir = runs / CELL.run_name(synthetic_root)
    weights = (run_dir / "model.safetensors").stat().st_mtime_ns
    results.unlink()  # killed after training, before its row: training is not repeated
    events = []
    run_benchmark([CELL], epochs=1, results=results, runs_root=runs, data_root=synthetic_root, device="cpu",
                  progress=events.append)
    assert not [e for e in events if e["event"] in ("step", "restart")]
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == weights
    assert len(read_results(results)) == 1
    # more epochs asked for: the run continues at epoch 2 from its resume point
    run_benchmark([CELL], epochs=2, results=results, runs_root=runs, data_root=synthetic_root, device="cpu",
                  progress=events.append)
    assert {e["epoch"] for e in events if e["event"] == "step"} == {2}
    assert [r["epochs"] for r in read_results(results)] == ["1", "2"]
    assert len(json.loads((run_dir / "metrics.json").read_text())["training"]["history"]) == 2


def test_a_row_whose_run_folder_lost_its_test_metrics_is_evaluated_again(finished, synthetic_root):
    results, runs = finished
    metrics_file = runs / CELL.run_name(synthetic_root) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    del metrics["test"]
    metrics_file.write_text(json.dumps(metrics))
    outcome = run_benchmark([CELL], epochs=1, results=results, runs_root=runs, data_root=synthetic_root, device="cpu")
    assert outcome.ran == [CELL]
    assert "test" in json.loads(metrics_file.read_text())
    assert len(read_results(results)) == 2


def test_a_row_cut_short_by_a_kill_is_ignored(tmp_path):
    path = tmp_path / "r.csv"
    bench.append_result(path, {"dataset": "synthetic", "finished_at": "now"})
    with open(path, "a") as f:
        f.write("synthetic,weave,tex")  # the start of a row
    assert len(read_results(path)) == 1
    with open(path, newline="") as f:
        assert next(csv.reader(f)) == list(bench.RESULT_COLUMNS)


def test_plan_and_bad_input(synthetic_root):
    cells = plan_cells("synthetic", ["weave", "washer"], ["anovit", "cae"], "cpu-tiny", 3)
    assert len(cells) == 12 and cells[0] == Cell("synthetic", "weave", "anovit", "cpu-tiny", 0)
    assert [c.category for c in cells[:6]] == ["weave"] * 6  # a class's comparison completes first
    assert resolve_classes("synthetic", "all", synthetic_root) == ["tiles", "washer", "weave"]
    with pytest.raises(DatasetError, match="no class\\(es\\) bogus.*tiles, washer, weave"):
        resolve_classes("synthetic", "weave,bogus", synthetic_root)
    with pytest.raises(AnovitError, match="unknown model 'vae'"):
        plan_cells("synthetic", ["weave"], ["vae"], "cpu-tiny", 1)
    with pytest.raises(AnovitError, match="no preset 'huge'"):
        plan_cells("synthetic", ["weave"], ["cae"], "huge", 1)
    with pytest.raises(AnovitError, match="--seeds must be at least 1"):
        plan_cells("synthetic", ["weave"], ["cae"], "cpu-tiny", 0)
