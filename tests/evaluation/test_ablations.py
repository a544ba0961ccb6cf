"""The Ablations view: baselines, one-switch variants, deltas, missing runs (anovit.evaluation.ablations), the queue that
trains them one after another (anovit.jobs.queue), re-scoring, and the page through AppTest.

Run folders are fabricated the way real runs write them (training.json: the TrainConfig; config.json: the
model config; metrics.json: the test summary), with an empty weights file: nothing here trains."""

import json
import os
import shutil
import statistics
from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from anovit.evaluation import ablation_variants as plan
from anovit.evaluation import ablations as ab
from anovit.runs import checkpoint as ckpt
from anovit.jobs import queue as job_queue
from anovit.jobs.background import JobState, read_job, write_state
from anovit.runs.catalog import list_runs
from anovit.training.config import TrainConfig, model_config

APP = Path(__file__).resolve().parents[2] / "app.py"
MODEL_FIELDS = ("mask_ratio", "decoder", "pretrained")


def fake_run(root: Path, name: str, image: float, pixel: float, *, model: str = "anovit", category: str = "weave",
             **fields) -> Path:
    """A run folder as a finished job leaves it (weights file empty)."""
    overrides = {k: fields.pop(k) for k in MODEL_FIELDS if k in fields}
    fields.setdefault("preset", "cpu-tiny")  # the recipe these fixtures describe (not the default preset)
    config = TrainConfig(dataset="synthetic", category=category, model=model, model_overrides=overrides, **fields)
    run = root / name
    run.mkdir(parents=True)
    (run / ckpt.WEIGHTS).write_bytes(b"")
    ckpt.write_json(run / ckpt.CONFIG, {"model_type": model, **asdict(model_config(config))})
    ckpt.write_json(run / ckpt.TRAINING, asdict(config))
    ckpt.write_json(run / ckpt.METRICS, {"test": {"image_auroc": image, "pixel_auroc": pixel, "score": config.score,
                                                  "sigma": config.sigma, "dataset": "synthetic",
                                                  "category": category, "data_root": None}})
    return run


@pytest.fixture
def runs_root(tmp_path):
    """Two seeds of the cpu-tiny AnoViT recipe on weave, one-switch variants, and runs that must not count."""
    root = tmp_path / "checkpoints"
    fake_run(root, "base-s0", 0.80, 0.90, seed=0)
    fake_run(root, "base-s1", 0.90, 0.94, seed=1)
    fake_run(root, "mask25", 0.70, 0.85, mask_ratio=0.25)
    fake_run(root, "paper-decoder", 0.60, 0.80, decoder="paper")
    fake_run(root, "msgms", 0.95, 0.96, score="msgms")
    fake_run(root, "two-switches", 0.99, 0.99, mask_ratio=0.5, decoder="paper")
    fake_run(root, "five-epochs", 0.50, 0.50, epochs=5)
    fake_run(root, "cae", 0.75, 0.88, model="cae")
    fake_run(root, "tiles", 0.65, 0.70, category="tiles")
    return root


KEY = ("synthetic", "", "weave")


def test_baselines_group_seeds_and_put_the_papers_recipe_first(runs_root):
    runs = list_runs(runs_root)
    keys = ab.data_keys(runs)
    assert keys == {KEY: ["anovit", "cae"], ("synthetic", "", "tiles"): ["anovit"]} and list(keys)[0] == KEY
    groups = ab.baselines(runs, "anovit", KEY)
    first = groups[0]
    assert first.recipe and sorted(r.name for r in first.runs) == ["base-s0", "base-s1"]
    assert (first.switches["mask_ratio"], first.switches["score"], first.switches["epochs"]) == (0.0, "l2", 10)
    assert "five-epochs" in [g.runs[0].name for g in groups] and len(groups) == 6
    assert [r.name for r in ab.baselines(runs, "cae", KEY)[0].runs] == ["cae"]


def test_points_are_the_runs_differing_in_exactly_one_switch(runs_root):
    runs = list_runs(runs_root)
    baseline = ab.baselines(runs, "anovit", KEY)[0]
    points = ab.trained_points(runs, baseline)
    by_switch = {}
    for p in points:
        by_switch.setdefault(p.switch, set()).add((ab.value_text(p.value), p.run))
    bases = {"base-s0", "base-s1"}
    assert by_switch["mask_ratio"] == {("0", r) for r in bases} | {("0.25", "mask25")}
    assert by_switch["decoder"] == {("stable", r) for r in bases} | {("paper", "paper-decoder")}
    assert by_switch["score"] == {("l2", r) for r in bases} | {("msgms", "msgms")}
    assert by_switch["pretrained"] == {("off", r) for r in bases}
    assert by_switch["sigma"] == {(ab.value_text(baseline.switches["sigma"]), r) for r in bases}
    assert {p.run for p in points} == bases | {"mask25", "paper-decoder", "msgms"}  # never two-switches, 5 epochs...


def test_summary_means_stds_and_deltas_against_the_baseline(runs_root):
    runs = list_runs(runs_root)
    baseline = ab.baselines(runs, "anovit", KEY)[0]
    table = ab.summary(ab.trained_points(runs, baseline), baseline)
    mask = table[table["switch"] == "mask_ratio"].set_index("value")
    assert list(mask.index) == ["0", "0.25"] and mask.loc["0", "baseline"] and not mask.loc["0.25", "baseline"]
    assert mask.loc["0", "image_auroc"] == pytest.approx(0.85)
    assert mask.loc["0", "image_auroc_std"] == pytest.approx(statistics.stdev([0.80, 0.90]))
    assert mask.loc["0.25", "delta_image_auroc"] == pytest.approx(0.70 - 0.85)
    assert mask.loc["0.25", "delta_pixel_auroc"] == pytest.approx(0.85 - 0.92)
    assert mask.loc["0.25", "runs"] == 1 and mask.loc["0.25", "image_auroc_std"] == 0
    assert list(table["switch"].unique()) == ["pretrained", "mask_ratio", "decoder", "score", "sigma"]


def test_missing_variants_change_one_switch_and_skip_covered_pending_and_unavailable(runs_root):
    runs = list_runs(runs_root)
    baseline = ab.baselines(runs, "anovit", KEY)[0]
    points = ab.trained_points(runs, baseline)
    base = TrainConfig.from_dict(ckpt.read_json(runs_root / "base-s0" / ckpt.TRAINING))
    pending = [plan.config_switches(plan.variant_config(base, "mask_ratio", 0.5))]  # a queued job
    missing = plan.missing_variants(base, baseline, points, pending,
                                  lambda c: "weights not available offline" if c.model_overrides.get("pretrained") else None)
    assert [(m.switch, m.value) for m in missing] == [("pretrained", True), ("mask_ratio", 0.75)]
    assert missing[0].reason == "weights not available offline" and missing[1].reason is None
    for m in missing:
        assert ab.differences(plan.config_switches(m.config), baseline.switches) == [m.switch]
        assert (m.config.seed, m.config.category, m.config.epochs) == (0, "weave", 10)
    assert missing[1].name == "synthetic-weave-anovit-cpu-tiny-s0-maskratio-0.75"
    assert plan.missing_variants(base, ab.baselines(runs, "cae", KEY)[0], []) == []  # no training switch for the l2-CAE


def test_rescore_tasks_cover_the_values_no_run_has(runs_root):
    runs = list_runs(runs_root)
    baseline = ab.baselines(runs, "anovit", KEY)[0]
    tasks = ab.rescore_tasks(baseline, ab.trained_points(runs, baseline))
    sigma = baseline.switches["sigma"]
    expected = {("score", "ssim"), ("score", "l2-ssim")} | {("sigma", round(sigma * f, 4)) for f in (0.0, 0.5, 2.0)}
    assert {(s, v) for s, v, _ in tasks} == expected
    assert len(tasks) == 2 * len(expected)  # every baseline seed


def queued_folder(root: Path, name: str, status: str = "queued") -> Path:
    run = root / name
    run.mkdir(parents=True)
    write_state(run, JobState(status=status, config=asdict(TrainConfig(epochs=1)), pid=os.getpid()))
    return run


def finish(run: Path, status: str) -> None:
    state = read_job(run)
    state.status = status
    write_state(run, state)


def test_queue_runs_its_jobs_in_turn_past_failures_after_other_running_jobs(tmp_path, monkeypatch):
    other = queued_folder(tmp_path, "started-on-the-train-page", "running")
    runs = [queued_folder(tmp_path, n) for n in ("a", "b", "c")] + [queued_folder(tmp_path, "d", "done")]
    order, slept = [], []

    def worker(run):
        order.append(run.name)
        finish(run, {"a": "failed", "b": "cancelled", "c": "done"}[run.name])

    def sleep(seconds):  # the other job ends while the queue waits
        slept.append(seconds)
        finish(other, "done")

    monkeypatch.setattr(job_queue.time, "sleep", sleep)
    assert job_queue.run_queue(runs, worker, poll_s=0.01) == ["failed", "cancelled", "done", "skipped"]
    assert order == ["a", "b", "c"] and slept == [0.01]


def test_queue_jobs_writes_queued_folders_owned_by_one_process(tmp_path, monkeypatch):
    spawned = []
    monkeypatch.setattr(job_queue, "spawn_detached", lambda args, log: spawned.append(args) or os.getpid())
    configs = [(TrainConfig(epochs=1, model_overrides={"mask_ratio": r}), "x") for r in (0.25, 0.5)]
    dirs = job_queue.queue_jobs(configs, tmp_path)
    assert [d.name for d in dirs] == ["x", "x-2"]
    assert spawned == [["anovit.jobs.queue", *map(str, dirs)]]
    states = [read_job(d) for d in dirs]
    assert [(s.status, s.pid) for s in states] == [("queued", os.getpid())] * 2
    assert [s.config["model_overrides"]["mask_ratio"] for s in states] == [0.25, 0.5]


def test_rescoring_at_the_runs_own_settings_gives_its_recorded_metrics(trained_runs, tmp_path):
    run = Path(shutil.copytree(trained_runs / "weave-cae", tmp_path / "cae"))
    test = ckpt.read_metrics(run)["test"]
    before = (run / ckpt.METRICS).read_text()
    assert ab.rescore(run, test["score"], test["sigma"]) == pytest.approx((test["image_auroc"], test["pixel_auroc"]))
    image, pixel = ab.rescore(run, "ssim", 0.0)
    assert 0 <= image <= 1 and 0 <= pixel <= 1 and pixel != pytest.approx(test["pixel_auroc"])
    assert (run / ckpt.METRICS).read_text() == before


def ablations_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("app_pages/8_Ablations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_charts_the_switches_and_queues_exactly_the_missing_runs(runs_root, monkeypatch):
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(runs_root))
    monkeypatch.setattr("anovit.app.ablations.unavailable",
                        lambda c: "weights not available offline" if c.model_overrides.get("pretrained") else None)
    queued = []
    monkeypatch.setattr("anovit.app.ablations.queue_jobs", lambda items: queued.extend(items) or [])
    at = ablations_page()
    assert at.title[0].value == "Ablations"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = [a["text"].replace("<br>", " ") for a in chart["layout"]["annotations"]]  # wrapped to their panel
    assert titles[:5] == ["pretrained encoder", "mask ratio", "decoder", "score function", "sigma (px)"]
    assert len(chart["layout"]["shapes"]) == 5  # the baseline's value shaded in every panel
    names = {t["name"] for t in chart["data"]}
    assert {"image AUROC (trained)", "pixel AUROC (trained)", "missing run (not trained yet)"} <= names
    assert any("weights not available offline" in i.value for i in at.info)
    table = at.dataframe[0].value.set_index(["switch", "value"])
    assert table.loc[("mask ratio", "0.25"), "Δ image AUROC"] == "-0.150"
    assert table.loc[("mask ratio", "0"), "image AUROC"] == f"0.850 ± {statistics.stdev([0.8, 0.9]):.3f}"
    [button] = [b for b in at.button if b.label.startswith("Queue")]
    assert button.label == "Queue the 2 missing runs"
    button.click().run()
    assert [(c.model_overrides, name) for c, name in queued] == [
        ({"mask_ratio": 0.5}, "synthetic-weave-anovit-cpu-tiny-s0-maskratio-0.5"),
        ({"mask_ratio": 0.75}, "synthetic-weave-anovit-cpu-tiny-s0-maskratio-0.75"),
    ]


def test_page_rescores_the_baseline_runs_for_score_and_sigma(runs_root, monkeypatch):
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(runs_root))
    calls = []

    def rescore(run_dir, score, sigma, progress=None):
        calls.append((Path(run_dir).name, score, sigma))
        return (0.5, 0.6) if score == "ssim" else (0.4, sigma / 10)

    monkeypatch.setattr("anovit.evaluation.ablations.rescore", rescore)
    at = ablations_page()
    assert calls == [] and "re-scored" not in set(at.dataframe[0].value["source"])  # only when asked
    at.toggle[0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    sigma = ckpt.read_json(runs_root / "base-s0" / ckpt.TRAINING)["sigma"]
    expected = {("ssim", sigma), ("l2-ssim", sigma)} | {("l2", round(sigma * f, 4)) for f in (0.0, 0.5, 2.0)}
    assert sorted(calls) == sorted((run, *task) for run in ("base-s0", "base-s1") for task in expected)
    table = at.dataframe[0].value.set_index(["switch", "value", "source"])
    assert table.loc[("score function", "ssim", "re-scored"), "image AUROC"] == "0.500 ± 0.000"
    assert table.loc[("score function", "msgms", "trained"), "run folders"] == "msgms"
    assert table.loc[("sigma (px)", ab.value_text(round(sigma * 2, 4)), "re-scored"), "pixel AUROC"].startswith(
        f"{sigma * 2 / 10:.3f}")
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {"image AUROC (re-scored)", "pixel AUROC (re-scored)"} <= {t["name"] for t in chart["data"]}


def test_page_leaves_out_variants_already_queued_and_explains_models_without_training_switches(runs_root, monkeypatch):
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(runs_root))
    monkeypatch.setattr("anovit.app.ablations.unavailable", lambda c: None)
    base = TrainConfig.from_dict(ckpt.read_json(runs_root / "base-s0" / ckpt.TRAINING))
    job = runs_root / "queued-mask-0.5"
    job.mkdir()
    write_state(job, JobState(config=asdict(plan.variant_config(base, "mask_ratio", 0.5)), pid=os.getpid()))
    at = ablations_page()
    frames = [d.value for d in at.dataframe]
    assert list(frames[1]["value"]) == ["on", "0.75"]  # pretrained on, mask ratio 0.75; 0.5 is queued
    at.selectbox[1].set_value("cae").run()
    assert not at.exception and not [b for b in at.button if b.label.startswith("Queue")]
    assert any("has no switch here that needs training" in c.value for c in at.caption)
