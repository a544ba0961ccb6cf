"""Is a result better than chance, and is a difference real? Percentile bootstrap intervals over the test images.

* :func:`image_auroc_interval`: image AUROC, normal and anomalous images resampled separately (stratified).
* :func:`pixel_auroc_interval`: pixel AUROC resampled BY IMAGE (an image brings all its pixels), from
  per-image histograms (:mod:`anovit.evaluation.pixel_histograms`): a resample's counts are a weighted sum of them.
* :func:`paired_difference`: model A minus model B on the same resamples of the same test images
  (:func:`mean_paired_difference`: averaged over several seeds' pairs).
* :func:`chance_note`, :func:`flag_everything_f1`: what an AUROC of 0.5 and an F1 of flagging every image mean.

Resampling (Efron & Tibshirani 1993, ch. 13): ``numpy.random.default_rng(seed)`` draws, for ``n_boot``
resamples, the normal images' indices then the anomalous images' indices (``rng.integers``), each
class with replacement and its own size; the interval is the (1 - level)/2 and (1 + level)/2
percentiles (numpy's linear interpolation) of the resampled statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import _binary_labels, _to_numpy, image_auroc
from .pixel_histograms import PixelHistograms, histogram_aurocs

CHANCE_AUROC = 0.5  # the AUROC of scores that do not tell normal from anomalous
N_BOOT = 1000
LEVEL = 0.95
SEED = 0
_CHUNK = 100  # resamples per vectorised step (bounds memory to ~100 x n_images x bins)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval ``[low, high]`` at ``level`` over ``n_boot`` resamples."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL
    n_boot: int = N_BOOT

    def text(self, digits: int = 3) -> str:
        """``0.912 [0.871, 0.948]``."""
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    @property
    def spans_zero(self) -> bool:
        """True when 0 lies in the interval (for a difference: the two models are not distinguishable)."""
        return self.low <= 0.0 <= self.high


def resample_counts(labels: Any, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """How often each image is drawn in each of ``n_boot`` stratified resamples: int (n_boot, n_images).

    Normal (0) and anomalous (1) images are drawn separately, each class keeping its size (see the module
    docstring for the order of the draws). ValueError for labels not in {0, 1} or ``n_boot < 1``.
    """
    y = _binary_labels(labels, _to_numpy(labels).size)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    rng = np.random.default_rng(seed)
    counts = np.zeros(int(n_boot) * y.size, dtype=np.int64)
    rows = np.arange(int(n_boot))[:, None] * y.size  # each resample's offset in the flat counts
    for members in (np.flatnonzero(~y), np.flatnonzero(y)):
        if members.size:
            draws = members[rng.integers(0, members.size, size=(int(n_boot), members.size))]
            counts += np.bincount((rows + draws).ravel(), minlength=counts.size)
    return counts.reshape(int(n_boot), y.size)


def image_aurocs(scores: Any, labels: Any, counts: np.ndarray) -> np.ndarray:
    """Image AUROC of each resample (rows of ``counts``, see :func:`resample_counts`): float64 (n_boot,).

    A resample's AUROC weighs each (anomalous, normal) pair by how often both are drawn; ties count 1/2,
    as in ``sklearn.metrics.roc_auc_score``. Cost O(n_boot x n_images) after one sort.
    """
    s = _to_numpy(scores).reshape(-1).astype(np.float64)
    y = _binary_labels(labels, s.size)
    neg_order = np.argsort(s[~y], kind="stable")
    neg_sorted = s[~y][neg_order]
    lower = np.searchsorted(neg_sorted, s[y], side="left")  # normals strictly below each anomalous score
    upper = np.searchsorted(neg_sorted, s[y], side="right")  # ... or equal to it
    out = np.empty(counts.shape[0])
    for start in range(0, counts.shape[0], _CHUNK):
        c = counts[start: start + _CHUNK].astype(np.float64)
        neg_w, pos_w = c[:, ~y][:, neg_order], c[:, y]
        below = np.concatenate([np.zeros((c.shape[0], 1)), np.cumsum(neg_w, axis=1)], axis=1)
        wins = below[:, lower] + 0.5 * (below[:, upper] - below[:, lower])
        out[start: start + _CHUNK] = (pos_w * wins).sum(axis=1) / (pos_w.sum(axis=1) * neg_w.sum(axis=1))
    return out


def pixel_aurocs(histograms: PixelHistograms, counts: np.ndarray) -> np.ndarray:
    """Pixel AUROC of each resample of whole images (rows of ``counts`` over the images of ``histograms``)."""
    normal, anomalous = histograms.dense()
    out = np.empty(counts.shape[0])
    for start in range(0, counts.shape[0], _CHUNK):
        c = counts[start: start + _CHUNK].astype(np.float64)
        out[start: start + _CHUNK] = histogram_aurocs(c @ normal, c @ anomalous)
    return out


def percentile_interval(estimate: float, samples: np.ndarray, level: float = LEVEL) -> Interval:
    """The percentile interval of resampled ``samples`` around ``estimate`` (resamples lacking a class, NaN, are skipped)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(samples, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), level, int(np.size(samples)))


def image_auroc_interval(scores: Any, labels: Any, n_boot: int = N_BOOT, seed: int = SEED,
                         level: float = LEVEL) -> Interval:
    """Image AUROC with its stratified bootstrap interval; ValueError when a class is absent."""
    counts = resample_counts(labels, n_boot, seed)
    return percentile_interval(image_auroc(scores, labels), image_aurocs(scores, labels, counts), level)


def pixel_auroc_interval(histograms: PixelHistograms, labels: Any, estimate: float, n_boot: int = N_BOOT,
                         seed: int = SEED, level: float = LEVEL) -> Interval:
    """Pixel AUROC ``estimate`` (the evaluation's) with the interval of resampling whole images, stratified by
    the image ``labels`` (one per histogram)."""
    return percentile_interval(estimate, pixel_aurocs(histograms, resample_counts(labels, n_boot, seed)), level)


def paired_difference(labels: Any, a: Any, b: Any, n_boot: int = N_BOOT, seed: int = SEED,
                      level: float = LEVEL) -> Interval:
    """AUROC of model A minus model B on the same test images, with the paired bootstrap interval: both
    are recomputed on each resample. ``a`` and ``b`` are image scores (one per label) or :class:`PixelHistograms`
    (pixel AUROC, one image per label). The two models are "not distinguishable" when the interval spans 0."""
    return mean_paired_difference(labels, [(a, b)], n_boot, seed, level)


def mean_paired_difference(labels: Any, pairs: list[tuple[Any, Any]], n_boot: int = N_BOOT, seed: int = SEED,
                           level: float = LEVEL) -> Interval:
    """:func:`paired_difference` averaged over ``pairs`` (e.g. one per training seed) of the same test images:
    each resample's statistic is the mean over pairs of A minus B, so the interval is over test images only."""
    if not pairs:
        raise ValueError("mean_paired_difference needs at least one (A, B) pair")
    counts = resample_counts(labels, n_boot, seed)

    def statistic(x: Any) -> tuple[float, np.ndarray]:
        if isinstance(x, PixelHistograms):
            normal, anomalous = (h.sum(axis=0, keepdims=True) for h in x.dense())
            return float(histogram_aurocs(normal, anomalous)[0]), pixel_aurocs(x, counts)
        return image_auroc(x, labels), image_aurocs(x, labels, counts)

    diffs = [(sa[0] - sb[0], sa[1] - sb[1]) for sa, sb in ((statistic(a), statistic(b)) for a, b in pairs)]
    return percentile_interval(float(np.mean([d[0] for d in diffs])), np.mean([d[1] for d in diffs], axis=0), level)


def difference_text(diff: Interval, digits: int = 3) -> str:
    """``+0.052 [+0.011, +0.093]``, or that text with "not distinguishable" when the interval spans 0."""
    text = f"{diff.estimate:+.{digits}f} [{diff.low:+.{digits}f}, {diff.high:+.{digits}f}]"
    return f"{text} not distinguishable" if diff.spans_zero else text


def chance_note(auroc: float | None, interval: Interval | None = None) -> str:
    """"" for an AUROC at or above chance (0.5); otherwise a warning, stronger when the whole interval lies below."""
    if auroc is None or auroc >= CHANCE_AUROC:
        return ""
    if interval is not None and interval.high < CHANCE_AUROC:
        return (f"below chance (0.5): the whole {interval.level:.0%} interval lies under 0.5 "
                "(the scores rank normal images above anomalous ones)")
    return "below chance (0.5)"


def flag_everything_f1(n_anomalous: int, n_images: int) -> float:
    """F1 of flagging every image anomalous: 2p / (1 + p), p the anomalous share (precision p, recall 1)."""
    if n_images <= 0 or not 0 < n_anomalous <= n_images:
        raise ValueError(f"the F1 of flagging everything needs anomalous images; got {n_anomalous} of {n_images}")
    p = n_anomalous / n_images
    return 2.0 * p / (1.0 + p)
