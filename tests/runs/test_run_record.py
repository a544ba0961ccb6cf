"""The typed run record (anovit.runs.record): what it reads from a trained and an older run folder, and that no
code above the runs layer reads run JSON by string key."""

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from anovit.models import CALIBRATIONS, DEFAULT_SCORE, DEFAULT_SIGMA, POOLINGS, create_model
from anovit.runs import checkpoint as ckpt
from anovit.runs.catalog import list_runs, run_switches
from anovit.runs.metrics_record import read_run_metrics
from anovit.runs.record import (RunRecord, StoredThreshold, read_run, read_stored_threshold, read_training_record,
                                verbatim_json)
from anovit.utils.errors import CheckpointError

REPO = Path(__file__).resolve().parents[2]


def test_a_trained_run_reads_into_typed_fields(trained_runs, synthetic_root):
    run = read_run(trained_runs / "weave-anovit")
    training = json.loads((run.path / ckpt.TRAINING).read_text())  # the file as written, read independently
    metrics = json.loads((run.path / ckpt.METRICS).read_text())
    config = json.loads((run.path / ckpt.CONFIG).read_text())
    assert run.name == "weave-anovit" and run.model_type == "anovit" and run.image_size == config["image_size"]
    t = run.training
    assert t.recorded and (t.dataset, t.category, t.preset, t.seed, t.epochs) == ("synthetic", "weave", "cpu-tiny", 0, 1)
    assert t.data_root == str(synthetic_root.resolve()) == training["data_root"]  # absolute, as stored
    assert t.val_fraction == 0.25 and t.batch_size == 4 and t.classes is None and run.classes is None
    assert run.sigma == training["sigma"] and run.score == training["score"] and run.precision == training["precision"]
    assert t.scoring.as_dict() == {k: training[k] for k in t.scoring.as_dict()}
    test = run.test
    assert test is not None and test.image_auroc == metrics["test"]["image_auroc"] == run.metric("image_auroc")
    assert test.pixel_auroc == metrics["test"]["pixel_auroc"] and test.aupro == metrics["test"]["aupro"]
    assert (test.dataset, test.category, test.n_images) == ("synthetic", "weave", metrics["test"]["n_images"])
    assert test.threshold == metrics["test"]["threshold"] and test.sigma == run.sigma
    log = run.metrics.training
    assert log is not None and log.epoch == 1 and len(log.history) == 1 and log.history[0].epoch == 1
    assert log.seconds == pytest.approx(metrics["training"]["history"][0]["seconds"]) and log.stopped is False
    assert run.model_config == config and run.status == "done"
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "failed"  # the record is the folder as read (dataclasses.replace makes another)
    assert read_training_record(run.path) == t and read_run_metrics(run.path) == run.metrics
    assert verbatim_json(run.path, ckpt.TRAINING) == training


def test_the_stored_threshold_and_its_provenance(trained_runs, tmp_path):
    run = read_run(trained_runs / "weave-cae")
    stored = json.loads((run.path / ckpt.THRESHOLD).read_text())  # fitted by the job's evaluation
    threshold = read_stored_threshold(run.path)
    assert threshold.value == stored["value"] == run.test.threshold and threshold.n_images == len(threshold.images) > 0
    assert threshold.settings["sigma"] == run.sigma and threshold.rule == stored["rule"]
    assert threshold.scores == tuple(stored["scores"]) and threshold.created_at == stored["created_at"]
    assert read_stored_threshold(tmp_path) is None
    (tmp_path / ckpt.THRESHOLD).write_text(json.dumps({**stored, "value": "nan"}))
    with pytest.raises(CheckpointError, match="field 'value' must be a finite number"):
        read_stored_threshold(tmp_path)
    (tmp_path / ckpt.THRESHOLD).write_text(json.dumps({"value": 1.0}))
    with pytest.raises(CheckpointError, match=r"lacks \['bf16', 'score', 'sigma'"):
        read_stored_threshold(tmp_path)


def test_an_older_run_folder_reads_with_the_defaults_of_its_time(tmp_path):
    """A folder written before training.json's newer fields (or without training.json, as a pulled model)."""
    old = ckpt.save_model(tmp_path / "old", create_model("cae", "cpu-tiny"))
    (old / ckpt.TRAINING).write_text(json.dumps({"dataset": "mvtec", "category": "cable", "seed": 2, "epochs": 5}))
    ckpt.update_metrics(old, training={"epoch": 5, "history": [{"epoch": 5, "train_loss": 1.0, "val_loss": 1.0}],
                                       "bf16": True}, test={"image_auroc": 0.75, "sigma": 4.0})
    run = read_run(old)
    assert (run.training.seed, run.training.data_root, run.training.classes) == (2, None, None)
    assert (run.sigma, run.score, run.precision) == (DEFAULT_SIGMA, DEFAULT_SCORE, "bf16")  # precision: trained bf16
    assert run.training.scoring.image_calibration == CALIBRATIONS[0] and run.training.scoring.pooling == POOLINGS[0]
    assert run.test.image_auroc == 0.75 and run.test.pixel_auroc is None and run.test.dataset is None
    assert run.metrics.training.history[0].seconds is None and run.metrics.training.seconds is None
    assert run_switches(run)["loss"] == DEFAULT_SCORE

    bare = ckpt.save_model(tmp_path / "pulled", create_model("cae", "cpu-tiny"))
    run = read_run(bare)
    assert not run.training.recorded and run.training.dataset is None and run.test is None and run.metric("aupro") is None
    assert (run.sigma, run.precision, run.metrics.training, dict(run.metrics.per_class)) == (DEFAULT_SIGMA, None, None, {})
    assert run_switches(run)["loss"] is None


def test_malformed_files_keep_their_messages(tmp_path):
    run = ckpt.save_model(tmp_path / "run", create_model("cae", "cpu-tiny"))
    (run / ckpt.TRAINING).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="training.json must hold a JSON object; got list"):
        read_run(run)
    (run / ckpt.TRAINING).write_text(json.dumps({"precision": "fp16"}))
    with pytest.raises(CheckpointError, match=r"training.json: field 'precision' must be one of \('bf16', 'fp32'\)"):
        read_run(run)
    (run / ckpt.TRAINING).write_text(json.dumps({"seed": "zero"}))
    with pytest.raises(CheckpointError, match="training.json: field 'seed' must be int; got 'zero'"):
        read_run(run)
    (run / ckpt.TRAINING).unlink()
    (run / ckpt.METRICS).write_text("{not json")
    with pytest.raises(CheckpointError, match="metrics.json is not valid JSON"):
        read_run(run)
    (run / ckpt.CONFIG).unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        read_run(run)
    assert list_runs(tmp_path) == []


VERBATIM = {(RunRecord, "model_config"): "config.json whole, for the switches of an ablation (runs.catalog)",
            (StoredThreshold, "settings"): "compared whole with a detector's settings (scoring.stored_fit.differences)"}


def test_the_record_holds_no_raw_dict_but_the_verbatim_config():
    """Fields that are plain dicts would invite string-keyed reads at the callers; :data:`VERBATIM` says why the
    two that are dicts are."""
    import typing

    from anovit.runs import metrics_record, record

    for cls in (record.RunRecord, record.TrainingRecord, metrics_record.TestSummary, metrics_record.TrainingLog,
                metrics_record.EpochLog, metrics_record.RunMetrics, record.ScoringRecipe, record.StoredThreshold):
        hints = typing.get_type_hints(cls)
        raw = [f.name for f in dataclasses.fields(cls) if ("dict" in str(hints[f.name]) or "Mapping[str, Any]" in str(
            hints[f.name])) and (cls, f.name) not in VERBATIM]
        assert raw == [], f"{cls.__name__} has raw dict fields {raw}"


# ------------------------------------------------------------------ no string-keyed run JSON above the runs layer

SCANNED = [p for p in sorted((REPO / "anovit").rglob("*.py")) if "runs" not in p.relative_to(REPO / "anovit").parts[:1]]
SCANNED += [REPO / "app.py", *sorted((REPO / "app_pages").rglob("*.py")), *sorted((REPO / "benchmarks").rglob("*.py"))]
RAW_READERS = {"read_json", "read_metrics"}  # anovit.runs.checkpoint's untyped readers
JSON_READERS = {"load", "loads"}  # json.load / json.loads
RAW_ATTRIBUTES = {"training", "metrics", "test", "per_class", "model_config"}  # what RunInfo held as dicts
ALLOWED = {  # (file, reader) -> why it is not a run folder's JSON read by string key
    ("anovit/jobs/background.py", "read_json"): "job.json: the jobs package's own state file, read into JobState",
    ("anovit/deploy/onnx_scorer.py", "read_json"): "an ONNX export folder's config.json (anovit.deploy.export)",
    ("anovit/hub/pretrained.py", "read_json"): "detector.json: a saved Detector's settings, anovit.hub.pretrained's own",
    ("anovit/hub/catalog.py", "read_json"): "hub.json: where a pulled run came from, anovit.hub.repo's own",
    ("anovit/hub/catalog.py", "loads"): "hub_models.json: the curated repos shipped with the package",
    ("anovit/scoring/stored_fit.py", "loads"): "calibration.safetensors' metadata strings",
    ("anovit/report/reproduction.py", "loads"): "benchmarks/results/mnist_table2.json: a benchmark's results",
    ("benchmarks/mnist_table2.py", "loads"): "the benchmark's own results file",
    ("benchmarks/beyond_paper.py", "loads"): "the benchmark's own results files",
    ("benchmarks/cae_recipe.py", "loads"): "the benchmark's own results file",
    ("benchmarks/validation_sets.py", "loads"): "the benchmark's own results file",
    ("benchmarks/unified.py", "loads"): "the benchmark's own results file",
}


def _callee(call: ast.Call) -> tuple[str | None, str | None]:
    """(receiver name or None, function name) of a call: ``ckpt.read_json(...)`` -> ("ckpt", "read_json")."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return (func.value.id if isinstance(func.value, ast.Name) else None), func.attr
    return None, func.id if isinstance(func, ast.Name) else None


def _raw_attribute(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in RAW_ATTRIBUTES


def _string(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def string_keyed_reads(path: Path) -> list[tuple[int, str, str]]:
    """(line, reader, source) of each read of run JSON by string key in ``path``, as the rule of
    :func:`test_no_run_json_is_read_by_string_key_outside_the_runs_package` defines it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            receiver, name = _callee(node)
            round_trip = node.args and isinstance(node.args[0], ast.Call) and _callee(node.args[0])[1] == "dumps"
            if name in RAW_READERS or (receiver == "json" and name in JSON_READERS and not round_trip):
                found.append((node.lineno, name, ast.unparse(node)))
            elif name == "get" and isinstance(node.func, ast.Attribute) and _raw_attribute(node.func.value) \
                    and node.args and _string(node.args[0]):
                found.append((node.lineno, "get", ast.unparse(node)))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _raw_attribute(node.value) \
                and _string(node.slice):
            found.append((node.lineno, "subscript", ast.unparse(node)))
    return found


def test_no_run_json_is_read_by_string_key_outside_the_runs_package():
    """Above the runs layer (every module of anovit/ but anovit/runs, app.py, app_pages/ and benchmarks/), a run
    folder is read through its record (anovit.runs.record: ``read_run`` and the typed readers, ``verbatim_json``
    where a file is needed whole). The rule, checked on the syntax tree:

    - no call of ``read_json`` / ``read_metrics`` (anovit.runs.checkpoint's untyped readers, by any name);
    - no ``json.load`` / ``json.loads`` (a ``json.loads(json.dumps(...))`` round trip reads no file);
    - no read ``X.attr["key"]`` (an assignment writes no JSON) or ``X.attr.get("key", ...)`` with a string key where ``attr`` is one of
      :data:`RAW_ATTRIBUTES`, the dicts the old ``RunInfo`` exposed (``training``, ``metrics``, ``test``,
      ``per_class``) and the record's verbatim ``model_config``.

    A reader of JSON that is no run record (a job's state, an export folder, the Hub's own files, a benchmark's
    results) is allowed per file in :data:`ALLOWED`, with the reason; an allowance no longer used fails too.
    """
    offences, used = [], set()
    for path in SCANNED:
        rel = path.relative_to(REPO).as_posix()
        for line, reader, source in string_keyed_reads(path):
            if (rel, reader) in ALLOWED:
                used.add((rel, reader))
            else:
                offences.append(f"{rel}:{line}: {source}")
    assert offences == [], "run JSON read by string key; read the run record instead:\n" + "\n".join(offences)
    assert set(ALLOWED) - used == set(), f"allowances no longer needed: {sorted(set(ALLOWED) - used)}"


def test_the_rule_catches_each_kind_of_read(tmp_path):
    source = tmp_path / "offender.py"
    source.write_text("from anovit.runs import checkpoint as ckpt\nimport json\n"
                      "a = ckpt.read_json(p)\nb = json.loads(t)\nc = run.training['seed']\nd = run.test.get('sigma')\n"
                      "e = json.loads(json.dumps(x))\nf = run.training.seed\ng = state.config.get('model')\n"
                      "report.test['good'] = 3\n")
    assert [(line, reader) for line, reader, _ in sorted(string_keyed_reads(source))] == [
        (3, "read_json"), (4, "loads"), (5, "subscript"), (6, "get")]


def test_the_scan_covers_the_callers_and_leaves_the_runs_package_out():
    rel = {p.relative_to(REPO).as_posix() for p in SCANNED}
    assert {"app.py", "anovit/app/pickers.py", "anovit/hub/repo.py", "benchmarks/unified.py"} <= rel
    assert any(r.startswith("app_pages/") for r in rel) and not any(r.startswith("anovit/runs/") for r in rel)
