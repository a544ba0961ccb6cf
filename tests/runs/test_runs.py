"""Listing run folders for the CLI and the app."""

import json

from anovit.runs import checkpoint as ckpt
from anovit.models import create_model
from anovit.runs.catalog import list_runs
from anovit.runs.record import read_run


def test_list_runs_finds_runs_and_skips_other_folders(tmp_path):
    model = create_model("cae", "cpu-tiny")
    ckpt.save_model(tmp_path / "a", model)
    (tmp_path / "a" / "training.json").write_text(json.dumps({"dataset": "synthetic", "category": "weave"}))
    ckpt.update_metrics(tmp_path / "a", test={"image_auroc": 0.9})
    ckpt.save_model(tmp_path / "pulled", model)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "broken" / "config.json").write_text("{not json")
    runs = {r.name: r for r in list_runs(tmp_path)}
    assert set(runs) == {"a", "pulled"}
    assert runs["a"].dataset == "synthetic" and runs["a"].category == "weave"
    assert runs["a"].test.image_auroc == 0.9 and runs["a"].model_type == "cae"
    assert not runs["pulled"].training.recorded and runs["pulled"].test is None
    assert read_run(tmp_path / "a").model_config["latent_dim"] == 100


def test_missing_checkpoint_dir_lists_nothing(tmp_path):
    assert list_runs(tmp_path / "nope") == []
