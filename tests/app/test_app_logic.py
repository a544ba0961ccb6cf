"""The pages' plain functions (computations behind the widgets), tested without Streamlit."""

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anovit.app.attention_explorer import patch_box, patch_maps, to_pixels
from anovit.app.pickers import DataRef, run_data
from anovit.app.gallery import filter_sort, n_pages, page_rows, tile_image
from anovit.app.heatmaps import (
    comparison_rows,
    default_images,
    group_runs,
    mask_stats,
    nearest,
    rates_at,
    roc_point_at,
    summary_at,
    threshold_options,
)
from anovit.app.inspection import UploadError, decode_upload
from anovit.scoring.run_scoring import prepare
from anovit.scoring.detector import decision
from anovit.app.training import default_job, format_duration, make_train_config, progress_text
from anovit.jobs.background import JobState
from anovit.evaluation.metrics import BinnedROC
from anovit.runs.record import RunRecord


def scores_frame() -> pd.DataFrame:
    kinds = ["good", "good", "hole", "scratch", "hole", "good"]
    return pd.DataFrame(
        {
            "index": range(6),
            "path": [f"p{i}" for i in range(6)],
            "label": [k != "good" for k in kinds],
            "defect_type": kinds,
            "score": [0.5, 0.1, 0.9, 0.7, 0.3, 0.5],
        }
    )


def png_bytes(mode: str = "RGB", size: tuple[int, int] = (20, 10), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, fmt)
    return buf.getvalue()


# Gallery


def test_filter_sort_and_paging():
    rows = filter_sort(scores_frame(), ["good", "hole"], "score, highest first")
    assert rows["index"].tolist() == [2, 0, 5, 4, 1]  # ties (0.5) keep file order
    assert filter_sort(scores_frame(), ["good"], "score, lowest first")["index"].tolist() == [1, 0, 5]
    assert filter_sort(scores_frame(), ["hole", "scratch"], "file order")["index"].tolist() == [2, 3, 4]
    assert filter_sort(scores_frame(), [], "file order").empty
    assert n_pages(0, 24) == 1 and n_pages(24, 24) == 1 and n_pages(400, 24) == 17
    assert page_rows(rows, 2, 2)["index"].tolist() == [5, 4]
    assert page_rows(rows, 3, 2)["index"].tolist() == [1]


def test_tile_image_shows_input_recon_map_and_mask():
    image = np.zeros((8, 8, 3), np.uint8)
    tile = tile_image(image, image, np.ones((8, 8)), 1.0, mask=np.ones((8, 8), bool))
    assert tile.shape == (8, 4 * 8 + 3 * 2, 3)
    assert (tile[:, -8:] == 255).all()  # the mask, white where defective
    assert tile_image(image, image, np.ones((8, 8)), 1.0).shape == (8, 3 * 8 + 2 * 2, 3)


# Heatmaps


def test_rates_at_and_roc_point_at_agree_on_image_scores():
    scores, labels = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), np.array([0, 0, 1, 0, 1, 1])
    assert rates_at(scores, labels, 0.35) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert rates_at(scores, np.zeros(6), 0.35)[0] is None
    roc = BinnedROC().update(scores, labels).roc_curve(64)
    for threshold in (0.05, 0.25, 0.35, 0.45, 0.55, 0.7):
        tpr, fpr = rates_at(scores, labels, threshold)
        assert roc_point_at(roc, threshold) == (pytest.approx(fpr, abs=1e-9), pytest.approx(tpr, abs=1e-9))


def test_mask_stats():
    truth = np.array([[1, 1, 0, 0]], bool)
    stats = mask_stats(np.array([[1, 0, 1, 0]], bool), truth)
    assert stats == {"precision": 0.5, "recall": 0.5, "iou": pytest.approx(1 / 3), "f1": 0.5}
    empty = mask_stats(np.zeros((1, 4), bool), np.zeros((1, 4), bool))
    assert empty == {"precision": None, "recall": None, "iou": None, "f1": None}


def test_threshold_options_and_nearest():
    roc = (np.zeros(4), np.zeros(4), np.array([np.inf, 1.0, 0.01, -np.inf]))
    options = threshold_options([roc], n=3)
    assert options == pytest.approx([1.0, 0.1, 0.01][::-1])
    assert nearest(options, 0.09) == pytest.approx(0.1)
    assert nearest(options, None) == pytest.approx(0.1)
    assert threshold_options([(np.zeros(1), np.zeros(1), np.array([np.inf]))]) == [1.0]


def test_default_images_takes_one_per_defect_type_normal_last():
    assert default_images(scores_frame()) == [2, 3, 0]
    assert default_images(scores_frame(), limit=2) == [2, 3]


def run_info(name: str, model: str, category: str = "weave", root: str | None = "/data", image_size: int | None = None,
             **training) -> RunRecord:
    return RunRecord.from_json(
        Path(name), {"model_type": model, **({"image_size": image_size} if image_size else {})},
        {"dataset": "synthetic", "category": category, "data_root": root, "seed": 1, **training},
    )


def test_group_runs_keeps_classes_with_both_models():
    runs = [
        run_info("a", "anovit"),
        run_info("b", "cae"),
        run_info("c", "anovit", "tiles"),
        run_info("d", "cae", root=None),
    ]
    groups = group_runs(runs)
    assert list(groups) == [DataRef("synthetic", "weave", "/data")]
    assert [r.name for r in groups[DataRef("synthetic", "weave", "/data")]["anovit"]] == ["a"]
    assert run_data(runs[0]) == DataRef("synthetic", "weave", "/data", seed=1)
    assert run_data(RunRecord.from_json(Path("x"), {})) is None


def fake_items(maps: np.ndarray, masks: np.ndarray) -> dict:
    n = len(maps)
    return {
        "index": np.arange(n),
        "image": np.zeros((n, 4, 4, 3), np.uint8),
        "mask": masks,
        "anomaly_map": maps,
        "score": maps.reshape(n, -1).max(1),
        "defect_type": ["hole"] * n,
    }


def test_comparison_rows_and_summary_at_threshold():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, :2, :2] = True
    good_map = masks.astype(np.float32)  # perfect localisation
    items = {"anovit": fake_items(good_map, masks), "cae": fake_items(np.full((1, 4, 4), 0.2, np.float32), masks)}
    rows, titles, table = comparison_rows(items, threshold=0.5)
    assert [p.title for p in rows[0]] == [
        "input",
        "ground truth",
        "l2-CAE<br>anomaly map",
        "AnoViT<br>anomaly map",
        "l2-CAE<br>≥ threshold",
        "AnoViT<br>≥ threshold",
    ]
    assert [p.scale for p in rows[0]] == [None, None, "error", "error", None, None]
    assert titles == ["#0 hole"]
    record = table.iloc[0]
    assert record["AnoViT pixel F1"] == "1.000" and record["AnoViT decision"] == "anomalous"
    assert record["l2-CAE decision"] == "normal" and record["l2-CAE pixel F1"] == "0.000"
    scores = pd.DataFrame({"score": [0.1, 0.9], "label": [0, 1]})
    roc = BinnedROC().update(np.array([0.1, 0.9]), np.array([0, 1])).roc_curve()
    passes = {
        m: {"scores": scores, "image_auroc": 1.0, "pixel_auroc": None, "pixel_roc": None, "image_roc": roc}
        for m in ("anovit", "cae")
    }
    summary = summary_at(passes, 0.5)
    assert summary["model"].tolist() == ["l2-CAE", "AnoViT"]
    assert summary["image TPR"].tolist() == ["1.000", "1.000"] and summary["image FPR"].tolist() == ["0.000", "0.000"]
    assert summary["pixel TPR"].tolist() == ["—", "—"]


# Inspect


def test_decode_upload_accepts_images_and_rejects_the_rest():
    for fmt in ("PNG", "JPEG", "BMP", "TIFF"):
        rgb = decode_upload(png_bytes(fmt=fmt), f"x.{fmt.lower()}")
        assert rgb.shape == (10, 20, 3) and rgb.dtype == np.uint8
    assert decode_upload(png_bytes("L"), "grey.png").shape == (10, 20, 3)
    with pytest.raises(UploadError, match="cannot read image file 'notes.png': not an image format Pillow recognises"):
        decode_upload(b"hello, not an image", "notes.png")
    with pytest.raises(UploadError, match="big.png is .* MB; the limit is"):
        decode_upload(b"0" * 2000, "big.png", max_bytes=1000)
    with pytest.raises(UploadError, match="image file 'huge.png' is 20x10 px .*more than the 0.0001 megapixels"):
        decode_upload(png_bytes(), "huge.png", max_pixels=100)
    ppm = io.BytesIO()
    Image.new("RGB", (4, 4)).save(ppm, "PPM")
    with pytest.raises(UploadError, match=r"image file 'x.ppm' is a PPM file \(expected PNG, JPEG, BMP, TIFF, GIF or WebP\)"):
        decode_upload(ppm.getvalue(), "x.ppm")
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF", save_all=True, append_images=[Image.new("RGB", (4, 4), "red")])
    with pytest.raises(UploadError, match="'anim.gif' is an animated GIF of 2 images"):
        decode_upload(gif.getvalue(), "anim.gif")


def test_prepare_and_decision():
    tensor = prepare(np.full((10, 20, 3), 255, np.uint8), 16)
    assert tensor.shape == (1, 3, 16, 16) and float(tensor.max()) == 1.0
    assert decision(2.0, 1.0) == "anomalous" and decision(0.5, 1.0) == "normal"
    assert decision(1.0, 1.0) == "anomalous"  # one rule everywhere: anomalous means score >= threshold


# Train


def test_make_train_config_and_progress_text():
    config = make_train_config(
        dataset="synthetic",
        category="weave",
        root="",
        model="anovit",
        preset="cpu-tiny",
        epochs=3,
        batch_size=8,
        lr=1e-3,
        seed=2,
        hflip=False,
        pretrained=False,
    )
    assert config.data_root is None and config.model_overrides == {"pretrained": False}
    assert (config.augment.hflip, config.augment.vflip, config.augment.affine) == (False, True, True)
    assert config.run_name() == "synthetic-weave-anovit-cpu-tiny-s2"
    digits = make_train_config(
        dataset="digits",
        category="3",
        root="/d",
        model="cae",
        preset="cpu-tiny",
        epochs=1,
        batch_size=4,
        lr=2e-4,
        seed=0,
        pretrained=True,
    )
    assert digits.model_overrides == {} and digits.data_root == "/d"
    assert (digits.augment.hflip, digits.augment.vflip) == (False, False)  # the dataset's flip rule: no mirrored digits
    state = JobState(
        status="running",
        phase="train",
        epoch=2,
        epochs=5,
        step=3,
        steps=10,
        loss=0.01234,
        images_per_s=40.0,
        eta_s=125.0,
        progress=0.26,
    )
    assert progress_text(state) == (
        "epoch 2/5 · step 3/10 · loss 0.01234 · 40 img/s · ETA 2 min 05 s at this run's pace so far, then the test "
        "split is scored"
    )
    first = JobState(status="running", phase="train", epoch=1, epochs=5, step=1, steps=10, eta_s=0.0, progress=0.02 / 5)
    assert progress_text(first).endswith("ETA: timing…")  # no "ETA 0 s" before a few steps are timed
    assert "evaluating" in progress_text(JobState(phase="evaluate", eval_progress=0.5))
    assert progress_text(JobState(phase="data", detail="importing PyTorch and timm")) == (
        "preparing: importing PyTorch and timm…"  # says what is being prepared
    )
    assert format_duration(None) == "—" and format_duration(3725) == "1 h 02 min" and format_duration(9.6) == "10 s"


def test_default_job_prefers_the_url_then_the_newest_active_job():
    jobs = [
        (Path("c"), JobState(status="done")),
        (Path("b"), JobState(status="running")),
        (Path("a"), JobState(status="done")),
    ]
    assert default_job(jobs, "a") == 2
    assert default_job(jobs, "gone") == 1
    assert default_job(jobs[:1], None) == 0


# Attention


def test_patch_maps_and_geometry():
    t = 1 + 4
    eye = np.eye(t, dtype=np.float32)
    attn = {"rollout": eye, "layers": np.stack([eye, np.full((t, t), 1 / t, np.float32)])}
    maps = patch_maps(attn, 3, 1, (2, 2))
    assert list(maps) == ["rollout", "1", "2"]
    assert maps["rollout"].tolist() == [[0, 0], [0, 1]]
    assert np.allclose(maps["2"], 1 / t)
    assert to_pixels(maps["rollout"], 32).shape == (32, 32)
    assert patch_box(3, (2, 2), 16) == (16, 16, 32, 32)


def test_jobs_come_first_while_one_runs_or_just_ended():
    from anovit.app.training import FOCUS_AFTER_S, jobs_first

    ended = (Path("old"), JobState(status="done", finished_at=1000.0))
    assert jobs_first([ended, (Path("b"), JobState(status="queued"))], None, now=10_000.0)
    assert jobs_first([ended], "old", now=1000.0 + FOCUS_AFTER_S / 2)  # the job this session watched, just ended
    assert not jobs_first([ended], "old", now=1000.0 + FOCUS_AFTER_S + 1)
    assert not jobs_first([ended], "other", now=1001.0) and not jobs_first([], None)


def test_lone_runs_get_the_other_model_on_the_same_images():
    from anovit.app.partners import in_training, lone_runs, partner_config

    runs = [run_info("a", "anovit"), run_info("b", "cae"),
            run_info("c", "anovit", "tiles", image_size=96, preset="cpu-tiny", batch_size=4, max_train_images=20),
            run_info("d", "cae", root=None), run_info("e", "cae", root=None)]
    lone = lone_runs(runs)
    assert {ref: run.name for ref, run in lone.items()} == {
        DataRef("synthetic", "tiles", "/data"): "c", DataRef("synthetic", "weave", None): "d"}
    partner = partner_config(runs[2])
    assert (partner.model, partner.preset, partner.dataset, partner.category, partner.data_root) == (
        "cae", "cpu-tiny", "synthetic", "tiles", "/data")
    assert (partner.seed, partner.batch_size, partner.max_train_images) == (1, 4, 20)
    assert partner.model_overrides == {"image_size": 96}
    assert partner_config(runs[3]).model == "anovit"
    assert partner_config(runs[3]).preset == "cpu-default"  # TrainConfig's default: the run recorded none
    queued = JobState(status="queued", config={"dataset": "synthetic", "category": "tiles", "data_root": "/data",
                                               "model": "cae"})
    assert in_training(partner, [(Path("q"), queued)])
    assert not in_training(partner, [(Path("q"), JobState(status="done", config=queued.config))])


def test_heatmaps_opens_on_the_data_a_link_names():
    from anovit.app.heatmaps import heatmaps_query, requested_group

    refs = [DataRef("synthetic", "weave", None), DataRef("mvtec", "cookie", "/shared/cookies"),
            DataRef("mvtec", "cookie", "/other")]
    job = {"dataset": "mvtec", "category": "cookie", "data_root": "/shared/cookies", "model": "cae"}
    assert heatmaps_query(job) == {"dataset": "mvtec", "class": "cookie", "root": "/shared/cookies"}
    assert requested_group(refs, heatmaps_query(job)) == 1
    assert requested_group(refs, heatmaps_query(job | {"data_root": "/other"})) == 2
    assert requested_group(refs, {"dataset": "mvtec", "class": "cookie"}) == 1
    assert requested_group(refs, heatmaps_query({"dataset": "synthetic", "category": "weave"})) == 0
    assert requested_group(refs, {"dataset": "mvtec", "class": "pill"}) == 0


def test_suggested_data_roots_are_the_shared_sets_then_the_users(tmp_path):
    from anovit.app.data_roots import suggested_roots

    def mvtec_root(path: Path) -> Path:
        (path / "cls" / "train" / "good").mkdir(parents=True)
        return path

    shared = tmp_path / "shared"
    cookies, visa = mvtec_root(shared / "cookies"), mvtec_root(shared / "validation" / "visa")
    (shared / "validation" / "empty").mkdir()
    mine, recorded = mvtec_root(tmp_path / "mine"), mvtec_root(tmp_path / "recorded")
    runs = [RunRecord.from_json(Path("r"), {}, {"data_root": str(recorded)}),
            RunRecord.from_json(Path("s"), {}, {"data_root": str(cookies)}), RunRecord.from_json(Path("t"), {})]
    env = os.pathsep.join([str(mine), str(tmp_path / "missing")])
    assert suggested_roots(runs, shared, env) == [str(cookies), str(visa), str(mine), str(recorded)]
    assert suggested_roots([], tmp_path / "no-shared", "") == []  # a workspace without ../shared offers none


def test_the_real_validation_sets_are_offered_when_shared_is_present():
    from anovit.app.data_roots import SHARED_DATA, suggested_roots

    if not (SHARED_DATA / "validation").is_dir():
        pytest.skip(f"{SHARED_DATA / 'validation'} is absent (the real validation sets live beside the repository)")
    offered = suggested_roots([], env="")
    assert {Path(r).name for r in offered} >= {"cookies", "visa", "mpdd", "deeppcb"}


def test_runs_of_a_seed():
    from anovit.app.pickers import of_seed, run_seeds

    runs = [run_info("a", "cae"), run_info("b", "cae", seed=0), RunRecord.from_json(Path("pulled"), {})]
    assert run_seeds(runs) == [0, 1]
    assert [r.name for r in of_seed(runs, 0)] == ["b"] and of_seed(runs, None) == runs


def test_all_classes_table_averages_each_models_runs_per_class():
    from anovit.app.results import all_classes_table

    runs = pd.DataFrame({
        "dataset": ["mvtec"] * 4 + ["synthetic"], "data_root": ["/d"] * 4 + [""], "preset": ["cpu-tiny"] * 5,
        "class": ["cookie"] * 4 + ["weave"], "model": ["cae", "cae", "anovit", "anovit", "anovit"],
        "seed": [0, 1, 0, 1, 0], "image_auroc": [0.5, 0.7, 0.8, 0.9, 0.6], "pixel_auroc": [0.6, 0.8, 0.9, 0.7, 0.5],
    })
    table = all_classes_table(runs).set_index("class")
    assert list(table.index) == ["cookie", "weave"]
    assert table.loc["cookie", "l2-CAE image AUROC"] == pytest.approx(0.6)
    assert table.loc["cookie", "AnoViT pixel AUROC"] == pytest.approx(0.8)
    assert table.loc["cookie", "AnoViT seeds"] == 2 and table.loc["weave", "AnoViT seeds"] == 1
    assert pd.isna(table.loc["weave", "l2-CAE image AUROC"])  # no l2-CAE run on weave
    assert table.loc["weave", "data folder"] == ""

def test_the_scoring_cache_key_follows_weights_calibration_and_threshold(tmp_path: Path) -> None:
    """A refitted calibration or threshold (``evaluate --refit-threshold``) must not be served from the cache of
    the previous fit: the key holds each file's modification time, None where absent."""
    import os

    from anovit.app.pickers import scoring_stamp
    from anovit.runs import checkpoint as ckpt

    (tmp_path / ckpt.WEIGHTS).write_bytes(b"w")
    before = scoring_stamp(tmp_path)
    assert before[0] is not None and before[1:] == (None, None)
    for i, name in enumerate((ckpt.CALIBRATION, ckpt.THRESHOLD), start=1):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (1000.0 * i, 1000.0 * i))
        stamp = scoring_stamp(tmp_path)
        assert stamp[i] == 1000.0 * i and stamp != before
        before = stamp
