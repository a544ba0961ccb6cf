"""Bootstrap intervals, paired differences, chance flags and AUROC per defect type, each against a
direct computation: an explicit resampling loop with sklearn on the same draws."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from anovit.evaluation.defect_types import per_defect_type
from anovit.evaluation.metrics import BinnedROC
from anovit.evaluation.pixel_histograms import HIGH, LOW, N_BINS, HistogramBuilder, PixelHistograms, histogram_auroc
from anovit.evaluation.uncertainty import (
    chance_note, difference_text, flag_everything_f1, image_auroc_interval, paired_difference, pixel_auroc_interval,
)


def _draws(labels: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """The resamples as index lists, drawn as the module docstring says: normals, then anomalous images."""
    rng = np.random.default_rng(seed)
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    n_draw = normal[rng.integers(0, normal.size, size=(n_boot, normal.size))]
    a_draw = anomalous[rng.integers(0, anomalous.size, size=(n_boot, anomalous.size))]
    return [np.r_[n, a] for n, a in zip(n_draw, a_draw)]


@pytest.fixture()
def case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(23, int), np.ones(17, int)]
    a = rng.normal(size=40) + 0.8 * labels
    b = np.round(rng.normal(size=40) + 0.3 * labels, 1)  # ties
    return labels, a, b


def test_image_interval_matches_an_explicit_sklearn_loop(case):
    labels, scores, _ = case
    direct = [roc_auc_score(labels[i], scores[i]) for i in _draws(labels, 200, 5)]
    got = image_auroc_interval(scores, labels, n_boot=200, seed=5)
    assert got.estimate == pytest.approx(roc_auc_score(labels, scores))
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
    assert got.low < got.estimate < got.high and got.n_boot == 200


def test_paired_difference_matches_an_explicit_loop_and_reads_not_distinguishable(case):
    labels, a, b = case
    direct = [roc_auc_score(labels[i], a[i]) - roc_auc_score(labels[i], b[i]) for i in _draws(labels, 300, 1)]
    diff = paired_difference(labels, a, b, n_boot=300, seed=1)
    assert diff.estimate == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    assert (diff.low, diff.high) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
    same = paired_difference(labels, a, a + 1e-3 * np.random.default_rng(0).normal(size=40), n_boot=300)
    assert same.spans_zero and difference_text(same).endswith("not distinguishable")
    far = paired_difference(labels, labels + 0.1 * a, -a, n_boot=300)
    assert not far.spans_zero and "not distinguishable" not in difference_text(far)


def test_mean_paired_difference_over_seed_pairs_matches_an_explicit_loop(case):
    from anovit.evaluation.uncertainty import mean_paired_difference

    labels, a, b = case
    a2, b2 = a + 0.3 * np.sin(np.arange(40)), b[::-1].copy()
    direct = [np.mean([roc_auc_score(labels[i], x[i]) - roc_auc_score(labels[i], y[i]) for x, y in ((a, b), (a2, b2))])
              for i in _draws(labels, 200, 9)]
    got = mean_paired_difference(labels, [(a, b), (a2, b2)], n_boot=200, seed=9)
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
    with pytest.raises(ValueError, match="at least one"):
        mean_paired_difference(labels, [])


def _pixel_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    labels = np.r_[np.zeros(6, int), np.ones(5, int)]
    masks = np.zeros((11, 8, 8), bool)
    for i in range(6, 11):
        masks[i, i % 4: i % 4 + 3, 2:5] = True
    maps = rng.gamma(2.0, 0.01, size=(11, 8, 8)) + 0.02 * masks
    return labels, maps.astype(np.float32), masks, [f"img{i}.png" for i in range(11)]


def _histograms(maps, masks, paths) -> PixelHistograms:
    builder = HistogramBuilder()
    builder.update(maps[:4], masks[:4], paths[:4])  # two batches
    builder.update(maps[4:], masks[4:], paths[4:])
    return builder.result()


def test_pixel_interval_resamples_whole_images(tmp_path):
    labels, maps, masks, paths = _pixel_case()
    hist = _histograms(maps, masks, paths)
    hist.save(tmp_path / "h.npz")
    hist = PixelHistograms.load(tmp_path / "h.npz")
    pooled, bound = histogram_auroc(hist)
    assert abs(pooled - roc_auc_score(masks.ravel(), maps.ravel())) <= bound + 1e-12
    same_bins = [BinnedROC(N_BINS, LOW, HIGH).update(maps[i], masks[i]).auroc() for i in _draws(labels, 100, 2)]
    got = pixel_auroc_interval(hist, labels, estimate=0.9, n_boot=100, seed=2)
    assert got.estimate == 0.9
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(same_bins, [2.5, 97.5])))
    exact = [roc_auc_score(masks[i].ravel(), maps[i].ravel()) for i in _draws(labels, 100, 2)]
    assert np.max(np.abs(np.array(same_bins) - exact)) < 0.01  # binning error of 4096 log bins


def test_paired_pixel_difference_and_select(tmp_path):
    labels, maps, masks, paths = _pixel_case()
    hist = _histograms(maps, masks, paths)
    worse = _histograms(maps[:, ::-1], masks, paths)  # maps flipped: no longer on the defects
    diff = paired_difference(labels, hist, worse, n_boot=100, seed=4)
    direct = [BinnedROC(N_BINS, LOW, HIGH).update(maps[i], masks[i]).auroc()
              - BinnedROC(N_BINS, LOW, HIGH).update(maps[i][:, ::-1], masks[i]).auroc() for i in _draws(labels, 100, 4)]
    assert (diff.low, diff.high) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
    reordered = hist.select(paths[::-1])
    assert reordered.paths == paths[::-1] and histogram_auroc(reordered) == histogram_auroc(hist)
    with pytest.raises(KeyError, match="nope.png"):
        hist.select(["nope.png"])


def test_chance_notes_and_flag_everything_f1():
    labels = np.r_[np.zeros(30, int), np.ones(30, int)]
    scores = -labels + np.random.default_rng(0).normal(scale=0.5, size=60)  # anomalous images score lower
    below = image_auroc_interval(scores, labels, n_boot=200)
    assert below.high < 0.5 and "whole 95% interval" in chance_note(below.estimate, below)
    assert chance_note(0.45) == "below chance (0.5)" and chance_note(0.5) == "" and chance_note(None) == ""
    y = np.r_[np.zeros(7, int), np.ones(3, int)]
    assert flag_everything_f1(3, 10) == pytest.approx(f1_score(y, np.ones(10, int)))
    with pytest.raises(ValueError, match="anomalous images"):
        flag_everything_f1(0, 10)


def test_auroc_per_defect_type_against_sklearn_subsets():
    labels, maps, masks, paths = _pixel_case()
    kinds = ["good"] * 6 + ["scratch", "hole", "scratch", "hole", "scratch"]
    scores = maps.reshape(11, -1).max(axis=1)
    rows = pd.DataFrame({"path": paths, "label": labels, "defect_type": kinds, "score": scores})
    table = per_defect_type(rows, _histograms(maps, masks, paths)).set_index("defect_type")
    assert list(table.index) == ["hole", "scratch"] and table.loc["scratch", "n_images"] == 3
    for kind in ("hole", "scratch"):
        keep = np.isin(kinds, ["good", kind])
        assert table.loc[kind, "image_auroc"] == pytest.approx(roc_auc_score(labels[keep], scores[keep]))
        binned = BinnedROC(N_BINS, LOW, HIGH).update(maps[keep], masks[keep]).auroc()
        assert table.loc[kind, "pixel_auroc"] == pytest.approx(binned)
    assert per_defect_type(rows)["pixel_auroc"].isna().all()


def test_evaluated_runs_store_histograms_and_give_intervals(trained_runs, capsys):
    from anovit.runs import checkpoint as ckpt
    from anovit.cli.main import _print_eval
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.evaluation.run_statistics import read_test, run_defect_types, run_difference, run_interval

    cae, anovit = trained_runs / "weave-cae", trained_runs / "weave-anovit"
    test = read_test(cae)
    assert (cae / ckpt.PIXEL_HISTOGRAMS).is_file() and len(test.histograms) == len(test.rows)
    image, pixel = run_interval(cae, "image_auroc"), run_interval(cae, "pixel_auroc")
    recorded = ckpt.read_metrics(cae)["test"]
    assert image.estimate == pytest.approx(recorded["image_auroc"]) and image.low <= image.estimate <= image.high
    assert pixel.estimate == recorded["pixel_auroc"] and pixel.low < pixel.high
    assert abs(histogram_auroc(test.histograms)[0] - recorded["pixel_auroc"]) <= histogram_auroc(test.histograms)[1]
    diff = run_difference(anovit, cae, "image_auroc")
    other = ckpt.read_metrics(anovit)["test"]["image_auroc"]
    assert diff.estimate == pytest.approx(other - recorded["image_auroc"]) and diff.low <= diff.high
    assert run_difference(anovit, cae, "pixel_auroc") is not None
    types = run_defect_types(cae)
    assert len(types) and types["image_auroc"].between(0, 1).all() and types["pixel_auroc"].notna().all()
    _print_eval(evaluate_run(cae, device="cpu", record=False))
    first, last = capsys.readouterr().out.splitlines()[-2:]
    assert last.startswith("image AUROC ") and "  pixel AUROC " in last  # the result is the last line
    assert first.startswith("95% bootstrap intervals over the test images (chance 0.5): image AUROC ")
    assert "interval n/a" not in first


def test_old_runs_without_histograms_read_interval_na(trained_runs, tmp_path):
    import shutil

    from anovit.runs import checkpoint as ckpt
    from anovit.evaluation.run_statistics import intervals_line, run_difference, run_interval

    run = shutil.copytree(trained_runs / "weave-cae", tmp_path / "old")
    (run / ckpt.PIXEL_HISTOGRAMS).unlink()
    assert run_interval(run, "pixel_auroc") is None and run_interval(run, "image_auroc") is not None
    assert run_difference(run, trained_runs / "weave-anovit", "pixel_auroc") is None
    assert "pixel AUROC interval n/a" in intervals_line({"image_auroc": run_interval(run, "image_auroc"),
                                                         "pixel_auroc": None})


def test_histograms_of_a_batch_equal_those_of_its_images_one_by_one():
    """update() counts a whole batch at once: the same histograms as one image per call, each image's counts
    summing to its normal and anomalous pixels, and the coarse bins nesting BinnedROC's (256 fine bins each)."""
    rng = np.random.default_rng(3)
    maps = (rng.random((6, 20, 24)) ** 4 * 0.5).astype(np.float32)
    masks = rng.random((6, 20, 24)) > 0.8
    paths = [f"img{i}.png" for i in range(6)]
    batched, single = HistogramBuilder(), HistogramBuilder()
    batched.update(maps[:4], masks[:4], paths[:4])
    batched.update(maps[4:], masks[4:], paths[4:])
    for i in range(6):
        single.update(maps[i : i + 1], masks[i : i + 1], paths[i : i + 1])
    a, b = batched.result(), single.result()
    assert a.paths == b.paths == paths
    for name in ("offsets", "bins", "normal", "anomalous"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for i in range(6):
        part = slice(a.offsets[i], a.offsets[i + 1])
        assert (a.normal[part].sum(), a.anomalous[part].sum()) == ((~masks[i]).sum(), masks[i].sum())
        fine = BinnedROC(low=LOW, high=HIGH).update(maps[i], masks[i]).occupied()[0]
        np.testing.assert_array_equal(a.bins[part], np.unique(fine >> 8))
