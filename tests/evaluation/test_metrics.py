"""Tests of anovit.evaluation.metrics against scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from anovit.evaluation.metrics import BinnedPRO, BinnedROC, aupro, f1_max, image_auroc, pixel_auroc


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- image_auroc
def test_image_auroc_matches_sklearn_random(rng):
    for n in (2, 10, 1000):
        y = rng.integers(0, 2, n)
        y[0], y[1] = 0, 1
        s = rng.normal(size=n) + 0.7 * y
        assert abs(image_auroc(s, y) - roc_auc_score(y, s)) <= 1e-12


def test_image_auroc_matches_sklearn_with_many_ties(rng):
    y = rng.integers(0, 2, 5000)
    s = rng.integers(0, 6, 5000) + (rng.random(5000) < 0.3 * y)  # integers 0..6, heavy ties
    auc = image_auroc(s, y)
    assert abs(auc - roc_auc_score(y, s)) <= 1e-12
    assert 0.5 < auc < 1.0


def test_image_auroc_all_tied_is_half():
    assert image_auroc(np.zeros(6), [0, 1, 0, 1, 1, 0]) == 0.5


def test_image_auroc_separated_and_inverted():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 5.0, 7.0])
    assert image_auroc(s, y) == 1.0
    assert image_auroc(-s, y) == 0.0


def test_image_auroc_accepts_torch_and_any_shape(rng):
    y = rng.integers(0, 2, (4, 25))
    s = rng.normal(size=(4, 25)) + y
    expected = roc_auc_score(y.ravel(), s.ravel())
    assert abs(image_auroc(torch.tensor(s), torch.tensor(y).bool()) - expected) <= 1e-12
    # bfloat16 has no numpy dtype: must still work (with reduced precision)
    assert abs(image_auroc(torch.tensor(s).bfloat16(), torch.tensor(y)) - expected) < 0.02


def test_image_auroc_errors():
    with pytest.raises(ValueError, match=r"got only normal \(0\)"):
        image_auroc([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match=r"got only anomalous \(1\)"):
        image_auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels has 2 elements but scores has 3"):
        image_auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match=r"labels must be 0 \(normal\) or 1"):
        image_auroc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        image_auroc([0.1, np.nan, 0.3], [0, 1, 0])


# ---------------------------------------------------------------- f1_max
@pytest.mark.parametrize("ties", [False, True])
def test_f1_max_matches_brute_force(rng, ties):
    for _ in range(5):
        n = 200
        y = rng.integers(0, 2, n)
        y[0] = 1
        s = rng.normal(size=n) + y
        if ties:
            s = np.round(s)
        best, thr = f1_max(s, y)
        brute = max(f1_score(y, s >= t) for t in np.unique(s))
        assert abs(best - brute) <= 1e-12
        assert thr in s
        assert abs(f1_score(y, s >= thr) - best) <= 1e-12


def test_f1_max_perfect_and_errors():
    assert f1_max([0.1, 0.2, 3.0, 4.0], [0, 0, 1, 1]) == (1.0, 3.0)
    with pytest.raises(ValueError, match=r"at least one anomalous \(1\)"):
        f1_max([0.1, 0.2], [0, 0])


# ---------------------------------------------------------------- BinnedROC
def test_binned_lognormal_within_bound(rng):
    n = 1_000_000
    y = rng.random(n) < 0.05
    s = rng.lognormal(mean=-4.0, sigma=2.0, size=n) * np.where(y, 3.0, 1.0)  # heavy-tailed
    acc = BinnedROC()
    for part in np.array_split(np.arange(n), 4):
        acc.update(s[part].astype(np.float32), y[part])
    exact = roc_auc_score(y, s.astype(np.float32))
    bound = acc.error_bound()
    assert bound < 1e-4
    assert abs(acc.auroc() - exact) <= bound
    assert acc.n_pos == int(y.sum()) and acc.n_neg == n - int(y.sum())
    # F1 from bins is close to the exact F1
    f1_exact, _ = f1_max(s.astype(np.float32), y)
    f1_binned, thr = acc.f1_max()
    assert abs(f1_binned - f1_exact) < 1e-3
    assert abs(f1_score(y, s.astype(np.float32) >= thr) - f1_binned) < 1e-3


def test_binned_exact_with_integer_ties(rng):
    y = rng.integers(0, 2, (20, 50, 50))
    s = rng.integers(0, 6, (20, 50, 50)) + (rng.random(y.shape) < 0.2 * y)
    exact = roc_auc_score(y.ravel(), s.ravel())
    assert abs(BinnedROC().update(s, y).auroc() - exact) <= 1e-12
    assert abs(pixel_auroc(torch.tensor(s).float(), torch.tensor(y).bool()) - exact) <= 1e-12
    best, thr = BinnedROC().update(s, y).f1_max()
    assert abs(best - f1_max(s, y)[0]) <= 1e-12
    assert abs(f1_score(y.ravel(), s.ravel() >= thr) - best) <= 1e-12


def test_binned_chunking_does_not_change_counts(rng):
    y = rng.random(10_000) < 0.3
    s = rng.lognormal(size=10_000) + y
    big = BinnedROC(n_bins=4096).update(s, y)
    small = BinnedROC(n_bins=4096)
    small.chunk_size = 777
    small.update(s, y)
    assert np.array_equal(big._hist, small._hist)


def test_binned_merge_equals_single(rng):
    y = rng.random(200_000) < 0.1
    s = rng.lognormal(size=200_000) * (1 + y)
    whole = BinnedROC().update(s, y)
    a = BinnedROC().update(s[:70_000], y[:70_000])
    b = BinnedROC().update(s[70_000:], y[70_000:])
    assert a.merge(b) is a
    assert np.array_equal(a._hist, whole._hist)
    assert a.auroc() == whole.auroc() and a.n_pos == whole.n_pos
    with pytest.raises(ValueError, match="bins must be identical"):
        a.merge(BinnedROC(n_bins=1024))


def test_binned_float_masks_binarised_at_half():
    s = np.array([1.0, 2.0, 3.0, 4.0])
    soft = np.array([0.3, 0.7, 0.49, 0.51])  # e.g. JPEG / resampled mask values
    acc = BinnedROC().update(s, soft)
    assert (acc.n_pos, acc.n_neg) == (2, 2)
    assert acc.auroc() == roc_auc_score(soft > 0.5, s)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BinnedROC().update(s, soft * 255)
    with pytest.raises(ValueError, match="must be 0 or 1"):
        BinnedROC().update(s, np.array([0, 255, 0, 255], dtype=np.uint8))


def test_binned_zero_scores_share_bin_0_and_out_of_range_scores_are_refused():
    s = np.array([0.0, 0.0, 1e-12, 1e-3, 2.0, 9e3])
    y = np.array([0, 1, 0, 1, 1, 0])
    acc = BinnedROC().update(s, y)
    assert acc._hist[0].sum() == 3  # [0, low] is bin 0: counted as ties, within the error bound
    assert abs(acc.auroc() - roc_auc_score(y, s)) <= acc.error_bound()
    for bad in (np.array([-5.0, 1.0]), np.array([1.0, 1e9]), np.array([1.0, np.inf])):
        with pytest.raises(ValueError, match=r"must lie in \[0, 10000\).*got values in"):
            BinnedROC().update(bad, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 10000\)"):
        BinnedPRO().update(np.full((1, 2, 2), -1.0), np.eye(2)[None])


@pytest.mark.parametrize("transform", [lambda s: s - 10.0, lambda s: 1e6 * s, lambda s: np.log(s / (1 - s))],
                         ids=["negative", "huge", "logits"])
def test_pixel_metrics_take_any_finite_scores(rng, transform):
    """Negative scores, scores >= 1e4 and logits: bins fitted to the range, sklearn / direct AUPRO agree."""
    from test_aupro import direct_aupro

    y = rng.random((3, 12, 12)) < 0.2
    y[:, 2:5, 2:5] = True
    p = np.clip(rng.beta(2, 5, y.shape) + 0.35 * y, 1e-6, 1 - 1e-6)  # a probability per pixel
    s = transform(p)
    exact = roc_auc_score(y.ravel(), s.ravel())
    assert 0.7 < exact < 0.999
    assert pixel_auroc(s, y) == pytest.approx(exact, abs=1e-6)
    assert aupro(s, y) == pytest.approx(direct_aupro(s, y), abs=1e-6)
    assert pixel_auroc(-s, y) == pytest.approx(1 - exact, abs=1e-6)


def test_pixel_metrics_on_negative_scores_ranked_perfectly():
    """The issue's case: all-negative scores that rank every anomalous pixel first give 1.0, not 0.82."""
    y = np.zeros((2, 8, 8), dtype=bool)
    y[1, 2:5, 2:5] = True
    s = np.where(y, -0.5, -3.0) + np.linspace(0, 0.1, y.size).reshape(y.shape)
    assert roc_auc_score(y.ravel(), s.ravel()) == 1.0
    assert pixel_auroc(s, y) == 1.0 and aupro(s, y) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="inf"):
        pixel_auroc(np.r_[s.ravel()[:-1], np.inf], y.ravel())


def test_binned_errors():
    with pytest.raises(ValueError, match=r"scores shape \(2, 3\) does not match targets shape \(3, 2\)"):
        BinnedROC().update(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"got only normal \(0\)"):
        BinnedROC().update(np.ones(4), np.zeros(4)).auroc()
    with pytest.raises(ValueError, match="NaN"):
        BinnedROC().update(np.array([np.nan]), np.array([1]))
    with pytest.raises(ValueError, match="low < high"):
        BinnedROC(low=1.0, high=0.5)


def test_roc_curve_monotone_and_decimated(rng):
    y = rng.random(100_000) < 0.2
    s = rng.lognormal(size=100_000) * (1 + y)
    acc = BinnedROC().update(s, y)
    fpr, tpr, thr = acc.roc_curve(max_points=100)
    assert 2 <= fpr.size <= 100 and fpr.shape == tpr.shape == thr.shape
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)
    assert abs(np.trapezoid(tpr, fpr) - acc.auroc()) < 0.01
    full_fpr, full_tpr, full_thr = acc.roc_curve(max_points=10**7)
    assert full_fpr.size > 1000  # undecimated: one point per occupied bin
    assert abs(np.trapezoid(full_tpr, full_fpr) - acc.auroc()) < 1e-9
    # thresholds are lower edges: the counts at "score >= thr" reproduce the curve's points
    for k in (10, 50, 90):
        assert abs(np.mean(s[~y] >= thr[k]) - fpr[k]) < 1e-3
        assert abs(np.mean(s[y] >= thr[k]) - tpr[k]) < 1e-3


def test_binned_metrics_from_occupied_bins_follow_every_update(rng):
    """The occupied bins are kept between metric calls: an update or merge after a metric is read must
    count (compared with a fresh histogram of all the scores, and with sklearn within the error bound)."""
    scores, labels = rng.random(4000) ** 3, rng.random(4000) < 0.3
    streamed = BinnedROC().update(scores[:1000], labels[:1000])
    first = streamed.auroc()
    streamed.update(scores[1000:3000], labels[1000:3000])
    streamed.merge(BinnedROC().update(scores[3000:], labels[3000:]))
    whole = BinnedROC().update(scores, labels)
    assert first != streamed.auroc() == whole.auroc()
    assert (streamed.n_pos, streamed.n_neg) == (int(labels.sum()), int((~labels).sum()))
    assert streamed.f1_max() == whole.f1_max() and streamed.error_bound() == whole.error_bound()
    assert abs(streamed.auroc() - roc_auc_score(labels, scores)) <= streamed.error_bound() + 1e-12
    bins, normal, anomalous = streamed.occupied()
    assert np.all(np.diff(bins) > 0) and np.all(normal + anomalous > 0) and normal.sum() + anomalous.sum() == 4000
