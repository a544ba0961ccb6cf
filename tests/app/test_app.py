"""Every page of the Streamlit app through streamlit.testing.v1.AppTest, on tiny synthetic runs.

The module works on a copy of the session's two one-epoch runs (l2-CAE and AnoViT, conftest's
trained_runs); ANOVIT_CHECKPOINTS / ANOVIT_DATA_DIR point the app there.
"""

import base64
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from anovit.runs import checkpoint as ckpt
from anovit.jobs.background import read_job, write_state
from anovit.report.intervals import DEFECT_TYPE_TITLE
from anovit.runs.catalog import list_runs

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, trained_runs):
    """A copy of the trained l2-CAE and AnoViT runs; ANOVIT_CHECKPOINTS / ANOVIT_DATA_DIR point the app there."""
    root = shutil.copytree(trained_runs, tmp_path_factory.mktemp("app") / "checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANOVIT_CHECKPOINTS", str(root))
        mp.setenv("ANOVIT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield root


def page(path: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if path is not None:
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_explains_and_names_every_page(checkpoints):
    at = page()
    assert at.title[0].value == "AnoViT explorer"
    text = " ".join(m.value for m in at.markdown)
    for name in ("Train", "Results", "Gallery", "Heatmaps", "Inspect", "Attention", "Hub", "Ablations"):
        assert name in text or any(link.label == name for link in at.get("page_link"))
    assert str(checkpoints) in text and f"{len(list_runs())} run folder(s)" in text
    assert [b.label for b in at.button][:2] == [
        "Train AnoViT (cpu-tiny) on synthetic weave",
        "Train the l2-CAE (cpu-tiny) on synthetic weave",
    ]
    assert "Deviations from the paper" in [e.label for e in at.expander]
    assert "| attention heads | ViT-Base with 8 heads" in text
    from anovit.app.common import PAGES

    count = ("six", "seven", "eight", "nine")[len(PAGES) + 1 - 6]  # the pages and Home
    assert f"opens {count} pages" in (APP.parent / "README.md").read_text()


def test_home_first_step_starts_the_suggested_job(checkpoints, monkeypatch):
    started = []
    monkeypatch.setattr("anovit.app.common.start_job", lambda config, run_dir: started.append((config, run_dir)))
    at = page()
    at.button[0].click().run()
    config, run_dir = started[0]
    assert (config.dataset, config.category, config.model, config.preset) == (
        "synthetic",
        "weave",
        "anovit",
        "cpu-tiny",
    )
    assert run_dir.parent == checkpoints and not run_dir.exists()
    from anovit.training.trainer import default_run_dir
    from anovit.training.config import TrainConfig

    # the README's first command (the same class, model and preset) trains into another folder
    readme = TrainConfig(dataset="synthetic", category="weave", model="anovit", preset="cpu-tiny", epochs=10)
    assert default_run_dir(readme) != run_dir
    page().button[1].click().run()  # the l2-CAE: its own budget, 5x AnoViT's epochs (it trains ~5x faster)
    assert (started[1][0].model, started[0][0].epochs, started[1][0].epochs) == ("cae", 5, 25)


def test_train_page_tile_size_follows_the_preset_and_the_image_size(checkpoints, monkeypatch):
    started = []
    monkeypatch.setattr("anovit.app.training.start_job", lambda config, run_dir: started.append(config))
    at = page("app_pages/1_Train.py")
    next(s for s in at.selectbox if s.label == "Preset").set_value("cpu-default").run()
    size = next(n for n in at.number_input if n.label == "Image size (px)")
    assert (size.value, next(n for n in at.number_input if n.label == "Tile size (px)").value) == (384, 128)
    size.set_value(128).run()  # no larger than the preset's tile: untiled, the field shows the image itself
    assert next(n for n in at.number_input if n.label == "Tile size (px)").value == 128
    next(n for n in at.number_input if n.label == "Image size (px)").set_value(256).run()
    next(n for n in at.number_input if n.label == "Tile size (px)").set_value(64).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert started[-1].model_overrides == {"image_size": 256, "tile_size": 64, "pretrained": False}


def test_train_page_runs_a_tiny_job_to_completion(checkpoints, synthetic_root):
    at = page("app_pages/1_Train.py")
    at.text_input[0].input(str(synthetic_root)).run()
    at.radio[0].set_value("cae").run()
    assert at.number_input(key="epochs-cae-cpu-tiny").value == 200  # the l2-CAE's recipe, as on the CLI
    assert at.number_input(key="lr-cae-cpu-tiny").value == 2e-4
    at.number_input(key="epochs-cae-cpu-tiny").set_value(1).run()
    next(n for n in at.number_input if n.label == "Batch size").set_value(4).run()
    at.text_input[1].input("ui-job").run()
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["job"] == "ui-job"
    run_dir = checkpoints / "ui-job"
    deadline = time.monotonic() + 90
    while read_job(run_dir).active and time.monotonic() < deadline:
        time.sleep(0.25)
    assert read_job(run_dir).status == "done", read_job(run_dir).error
    at.run()
    assert not at.exception
    assert "ui-job" in [r.name for r in list_runs()]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["test images"] == "78" and 0.0 <= float(metrics["image AUROC"]) <= 1.0
    below = any("below chance" in w.value for w in at.warning)  # a 1-epoch l2-CAE may rank below chance
    assert any("Done" in s.value for s in at.success) != below
    gallery = page("app_pages/3_Gallery.py")
    assert gallery.selectbox[0].value.name == "ui-job"  # the newest run comes first
    assert any(o.startswith("ui-job (l2-CAE") for o in gallery.selectbox[0].options)


def histogram_traces(at: AppTest) -> list[dict]:
    """The traces of the page's score histogram, as plotly JSON."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s["data"] for s in specs if s["data"] and s["data"][0]["type"] == "histogram")


def test_gallery_pages_sorts_and_filters(checkpoints):
    at = page("app_pages/3_Gallery.py")
    assert len(at.get("image")) == 24 + 3  # one tile per image of the first page, a header above each column
    captions = [c.value for c in at.caption]
    assert any("78 of 78 test images" in c for c in captions)
    assert any(re.match(r"\*\*Threshold \S+\*\* \(validation rule, fitted on [1-9]\d* normal validation images", m.value)
               for m in at.markdown)
    traces = histogram_traces(at)
    bins = {json.dumps(t["xbins"], sort_keys=True) for t in traces}
    assert len(traces) > 2 and len(bins) == 1  # one set of bins for every defect type
    at.multiselect[0].set_value(["good"]).run()
    assert not at.exception
    assert any("30 of 78 test images" in c.value for c in at.caption)
    traces = histogram_traces(at)
    x = traces[0]["x"]
    assert [t["name"] for t in traces] == ["good"] and len(base64.b64decode(x["bdata"])) == 30 * 8  # follows the filter
    assert {json.dumps(t["xbins"], sort_keys=True) for t in traces} == bins  # on the same bins
    at.selectbox[1].set_value("score, lowest first").run()
    at.number_input[0].set_value(2).run()
    assert not at.exception
    assert any("30 of 78" in c.value for c in at.caption)
    assert len(at.get("image")) == 30 - 24 + 3  # the rest of the normal images on page 2


def test_heatmaps_give_each_model_its_validation_threshold(checkpoints):
    from anovit.app.heatmaps import BORDER_NOTE, MANUAL, TEST_F1
    from anovit.scoring.run_scoring import run_detector

    at = page("app_pages/4_Heatmaps.py")
    assert len(at.get("plotly_chart")) == 4  # the maps, the thresholded maps and two ROC figures
    assert any("Rule: validation" in m.value and "image TPR" in m.value for m in at.markdown)
    assert any(re.search(r"fitted on [1-9]\d* normal validation images", m.value) for m in at.markdown)  # on screen
    assert any(BORDER_NOTE in c.value for c in at.caption)  # the l2-CAE's bright border, explained
    thresholds, summary, per_image = (at.dataframe[i].value for i in range(3))
    assert list(thresholds["model"]) == list(summary["model"]) == ["l2-CAE", "AnoViT"]
    for model, run in (("l2-CAE", "weave-cae"), ("AnoViT", "weave-anovit")):
        row = thresholds.set_index("model").loc[model]
        shown = summary.set_index("model").loc[model]
        # the CLI's threshold (anovit score: fitted on the run's validation split), in the run's precision as the app's;
        # the table shows 4 significant digits; in bf16, kernels chosen per batch size may round the scores differently
        reference = run_detector(checkpoints / run, device="cpu")
        tolerance = 2e-2 if reference.bf16 else 1e-3
        assert float(row["validation threshold"]) == pytest.approx(reference.threshold, rel=tolerance)
        assert shown["threshold"] == row["validation threshold"]  # used by default
        assert row["test F1-optimal (reference)"] != "—"
        assert shown["image FPR"] != "1.000", shown  # not every normal test image flagged
        assert shown["image AUROC 95 % CI"].startswith("[0.") or shown["image AUROC 95 % CI"].startswith("[1.")
    assert thresholds["validation threshold"].nunique() == 2  # one per model, not one raw value for both
    at.radio[0].set_value(TEST_F1).run()
    assert not at.exception
    summary = at.dataframe[1].value.set_index("model")
    reference = at.dataframe[0].value.set_index("model")["test F1-optimal (reference)"]
    assert summary["threshold"].tolist() == reference.tolist()
    at.radio[0].set_value(MANUAL).run()
    slider = at.select_slider[0]
    slider.set_value(float(slider.options[0])).run()  # the lowest threshold, far below every image score
    assert not at.exception
    summary, per_image = at.dataframe[1].value, at.dataframe[2].value
    assert set(summary["image TPR"]) == set(summary["image FPR"]) == {"1.000"}
    assert set(per_image["AnoViT decision"]) == set(per_image["l2-CAE decision"]) == {"anomalous"}


def test_inspect_scores_a_test_image_and_an_upload_and_rejects_non_images(checkpoints):
    at = page("app_pages/5_Inspect.py")
    assert any("Upload an image" in i.value for i in at.info)
    at.radio[0].set_value("A test image of the class").run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["Anomaly score (max of the map, eq. 7)", "Threshold (validation)"]
    kind = next(b for b in at.selectbox if b.label == "Defect type")
    assert kind.value != "good"  # a defect first
    truth = [m.value for m in at.markdown if m.value.startswith("True label")]
    assert truth and f"**anomalous** ({kind.value})" in truth[0]
    panels, histogram = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert "ground truth" in json.dumps(panels["layout"]["annotations"]).replace("<br>", " ")  # wrapped to its panel
    assert {t["name"] for t in histogram["data"]} >= {"good", kind.value}  # the test split, by defect type
    assert any(a.get("text", "").startswith("test #") for a in histogram["layout"]["annotations"])  # its place
    kind.set_value("good").run()
    truth = [m.value for m in at.markdown if m.value.startswith("True label")]
    assert "**normal** (good)" in truth[0]
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 180, 140)).save(buf, "PNG")
    at.radio[0].set_value("Upload an image").run()
    at.get("file_uploader")[0].upload("plain.png", buf.getvalue(), "image/png")
    at.run()
    assert not at.exception
    assert len(at.metric) == 2 and len(at.get("plotly_chart")) == 2
    at.get("file_uploader")[0].set_value(("notes.png", b"not an image at all", "image/png"))
    at.run()
    assert not at.exception
    assert any("cannot read image file 'notes.png': not an image format" in e.value for e in at.error)
    assert not any("BytesIO" in e.value for e in at.error)
    assert len(at.metric) == 0 and len(at.get("plotly_chart")) == 0  # the previous result is gone


def test_attention_page_for_the_anovit_run(checkpoints):
    at = page("app_pages/6_Attention.py")
    assert at.selectbox[0].value.model_type == "anovit"
    assert len(at.get("plotly_chart")) == 3
    panels = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    attention_axis = next(v for k, v in panels.items() if k.startswith("coloraxis") and v["cmin"] == 0
                          and "attention" in json.dumps(v.get("colorbar", {})))
    assert attention_axis["cmax"] > 0  # a fixed 0..max stretch: near-uniform attention looks flat
    entropy = next(m for m in at.metric if m.label.startswith("Attention entropy"))
    assert 0.0 <= float(entropy.value) <= 1.0
    at.select_slider[0].set_value("3").run()
    at.selectbox[2].set_value("max").run()
    assert not at.exception


def test_train_card_reads_the_metrics_file_every_page_reads(checkpoints):
    """A run re-evaluated outside the job (e.g. `train --resume` on the CLI) shows its new numbers on the Train card."""
    run = checkpoints / "weave-cae"
    original = (run / "metrics.json").read_text()
    metrics = ckpt.read_metrics(run)
    metrics["test"]["image_auroc"] = 0.123
    ckpt.write_json(run / "metrics.json", metrics)
    try:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        at.switch_page("app_pages/1_Train.py")
        at.query_params["job"] = "weave-cae"
        at.run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric}["image AUROC"] == "0.123"
        assert any("0.5 is chance" in c.value for c in at.caption)
        assert not any("Attention" in s.value for s in at.warning)  # the l2-CAE has no attention to show
        assert not at.success and any("below chance (0.5)" in w.value for w in at.warning)  # no green "Done"
        assert any("95 % CI [" in c.value and "chance 0.5" in c.value for c in at.caption)
        assert any(c.value.startswith("flagging every image anomalous: 0.") for c in at.caption)
    finally:
        (run / "metrics.json").write_text(original)


def test_a_failed_run_is_never_a_default_shows_its_state_and_can_be_deleted(checkpoints):
    failed = checkpoints / "weave-failed"
    shutil.copytree(checkpoints / "weave-anovit", failed)
    state = read_job(failed)
    state.status, state.error = "failed", "RuntimeError: out of memory"
    write_state(failed, state)
    os.utime(failed / "model.safetensors")  # the newest run folder
    try:
        at = page("app_pages/3_Gallery.py")
        picker = at.selectbox[0]
        assert picker.value.name != "weave-failed" and picker.value.status == "done"
        assert picker.options[-1].startswith("weave-failed (AnoViT") and picker.options[-1].endswith("[FAILED]")
        picker.select_index(len(picker.options) - 1).run()
        assert any("weave-failed was failed" in w.value for w in at.warning)
        train = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        train.switch_page("app_pages/1_Train.py")
        train.query_params["job"] = "weave-failed"
        train.run()
        train.button(key="delete-weave-failed").click().run()
        assert not train.exception and not failed.exists()
        assert "weave-failed" not in [r.name for r in list_runs()]
    finally:
        shutil.rmtree(failed, ignore_errors=True)


def test_hub_page_shows_the_command_that_publishes_a_run(checkpoints):
    at = page("app_pages/7_Hub.py")
    assert "Attention" in at.caption[0].value  # pulled checkpoints appear there too
    run = next(b for b in at.selectbox if b.label == "Run")
    at.text_input(key="push-repo").input("someorg/weave").run()
    code = at.code[0].value
    assert f"python -m anovit hub push {Path(checkpoints) / run.value.name} --repo-id someorg/weave --dry-run" in code
    assert code.splitlines()[1].endswith("--repo-id someorg/weave")  # the upload itself


def test_results_offers_the_per_image_scores_of_the_runs_that_count(checkpoints):
    from anovit.app.results import per_image_scores
    from anovit.report.tables import collect_results

    at = page("app_pages/2_Results.py")
    labels = [b.label for b in at.get("download_button")]
    assert "Download the per-image scores of the runs that count (CSV)" in labels
    scores = per_image_scores(collect_results(None, list_runs()))
    per_run = scores["run"].value_counts()  # other modules' tests may have added runs to the folder
    assert per_run["weave-cae"] == per_run["weave-anovit"] == 78  # every test image of each run
    assert {"path", "label", "defect_type", "score", "model", "class", "seed"} <= set(scores.columns)


def test_results_state_intervals_paired_differences_and_defect_types(checkpoints, tmp_path):
    from anovit.cli.main import main

    at = page("app_pages/2_Results.py")
    assert DEFECT_TYPE_TITLE in [h.value for h in at.subheader]
    frames = [d.value for d in at.dataframe]
    shown = next(f for f in frames if "paired diff. 95 % CI" in f.columns).set_index("class")
    assert shown.loc["weave", "paired diff. 95 % CI"].startswith("[")  # AnoViT − l2-CAE on the same images
    runs = next(f for f in frames if "95 % CI" in f.columns)
    assert runs["95 % CI"].str.match(r"\[0\.\d{3}, [01]\.\d{3}\]").all()
    assert set(runs["vs chance (0.5)"]) <= {"above", "below chance (0.5)"} | {
        n for n in runs["vs chance (0.5)"] if n.startswith("below chance (0.5): the whole")}
    types = next(f for f in frames if "defect type" in f.columns)
    assert {"image AUROC l2-CAE", "image AUROC AnoViT", "pixel AUROC l2-CAE", "pixel AUROC AnoViT"} <= set(types.columns)
    assert set(types["class"]) >= {"weave"} and types["images"].astype(int).gt(0).all()
    assert main(["report", "--results", str(tmp_path / "none.csv"), "--with-runs", "--output-dir", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert f"### {DEFECT_TYPE_TITLE}" in md and "with its 95 % bootstrap interval" in md and "paired diff. 95 % CI" in md


def test_a_cancelled_run_is_the_train_pages_focus_and_can_be_continued_or_evaluated(checkpoints, monkeypatch):
    cancelled = checkpoints / "weave-cancelled"
    shutil.copytree(checkpoints / "weave-cae", cancelled)
    state = read_job(cancelled)
    state.status, state.phase, state.pid, state.finished_at = "running", "train", os.getpid(), None  # alive
    write_state(cancelled, state)
    restarted = []
    monkeypatch.setattr("anovit.app.training.restart_job", lambda run_dir, mode: restarted.append((run_dir.name, mode)))
    try:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
        at.switch_page("app_pages/1_Train.py")
        at.query_params["job"] = "weave-cancelled"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert [h.value for h in at.subheader][:2] == ["Jobs", "New training run"]  # the running job on top
        job = next(s for s in at.selectbox if s.label == "Job")
        assert job.options[job.index] == "weave-cancelled — running"
        state.status, state.phase, state.finished_at = "cancelled", "finished", time.time()
        write_state(cancelled, state)
        at.run()
        assert [h.value for h in at.subheader][:2] == ["Jobs", "New training run"]  # watched: still the focus
        job = next(s for s in at.selectbox if s.label == "Job")
        assert job.options[job.index] == "weave-cancelled — cancelled"
        at.button(key="evaluate-weave-cancelled").click().run()
        at.button(key="resume-weave-cancelled").click().run()
        assert restarted == [("weave-cancelled", "evaluate"), ("weave-cancelled", "resume")]
    finally:
        shutil.rmtree(cancelled, ignore_errors=True)


def test_heatmaps_offers_to_train_a_missing_partner_run(checkpoints, monkeypatch):
    lone = checkpoints / "washer-anovit"  # a class no other run of the module trains
    shutil.copytree(checkpoints / "weave-anovit", lone)
    training = ckpt.read_json(lone / ckpt.TRAINING)
    ckpt.write_json(lone / ckpt.TRAINING, training | {"category": "washer"})
    started = []
    monkeypatch.setattr("anovit.app.common.start_job", lambda config, run_dir: started.append((config, run_dir)))
    try:
        at = page("app_pages/4_Heatmaps.py")
        buttons = [b for b in at.button if b.label.startswith("Train the l2-CAE partner for synthetic / washer")]
        assert buttons, [b.label for b in at.button]
        assert len(buttons) == 1 and len(at.get("plotly_chart")) == 4  # weave's comparison is still shown
        buttons[0].click().run()
        (config, run_dir), = started
        assert (config.model, config.category, config.data_root) == ("cae", "washer", training["data_root"])
        assert run_dir.parent == checkpoints
    finally:
        shutil.rmtree(lone, ignore_errors=True)


def test_gallery_and_heatmaps_pick_the_seed(checkpoints):
    copies = []
    for model in ("cae", "anovit"):
        copy = checkpoints / f"weave-{model}-s1"
        shutil.copytree(checkpoints / f"weave-{model}", copy)
        ckpt.write_json(copy / ckpt.TRAINING, ckpt.read_json(copy / ckpt.TRAINING) | {"seed": 1})
        copies.append(copy)
    try:
        for path, checkpoint in (("app_pages/3_Gallery.py", None), ("app_pages/4_Heatmaps.py", "AnoViT checkpoint")):
            at = page(path)
            seed = next(s for s in at.selectbox if s.label == "Seed")
            assert seed.options == ["all", "0", "1"]
            seed.set_value(1).run()
            assert not at.exception, [e.value for e in at.exception]
            picker = next(s for s in at.selectbox if s.label == (checkpoint or s.label) and s.label != "Seed"
                          and "heckpoint" in s.label)
            assert all("-s1 (" in o for o in picker.options), picker.options  # only the seed-1 runs
    finally:
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)


def test_attention_page_shows_the_tile_a_tiled_anovit_sees(tmp_path, synthetic_root, monkeypatch):
    from anovit.training.config import TrainConfig
    from anovit.training.trainer import train

    config = TrainConfig(dataset="synthetic", category="weave", data_root=str(synthetic_root), model="anovit",
                         preset="cpu-tiny", model_overrides={"image_size": 64, "tile_size": 32}, epochs=1,
                         batch_size=4, max_train_images=8)
    train(config, tmp_path / "checkpoints" / "weave-anovit-tiled")
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ANOVIT_DATA_DIR", str(tmp_path / "data"))
    at = page("app_pages/6_Attention.py")
    assert any(c.value.startswith("Tiled model: its encoder sees 32 px tiles of the 64 px image") for c in at.caption)
    assert len(at.get("plotly_chart")) == 3
    assert at.number_input[0].label == "Patch row (0-1)"  # the grid of one 32 px tile of 16 px patches
