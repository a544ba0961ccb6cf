"""Anomaly-detection metrics on RAW scores (any real numbers, e.g. squared reconstruction errors).

Scores are never squashed through a sigmoid (torchmetrics' binary AUROC does that to values outside
[0, 1], which saturates reconstruction errors and collapses AUROC to 0.5). Inputs may be numpy arrays
or torch tensors of any shape; they are flattened.

* :func:`image_auroc`, :func:`f1_max`: exact, for image-level scores (thousands of values).
* :class:`BinnedROC`, :func:`pixel_auroc`: streaming, for pixel-level scores (hundreds of millions),
  with a guaranteed error bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["image_auroc", "f1_max", "BinnedROC", "pixel_auroc"]


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _check_scores(s: np.ndarray, name: str) -> None:
    if s.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numbers; got dtype {s.dtype}")
    if s.dtype.kind == "f" and np.isnan(s).any():
        raise ValueError(f"{name} contains NaN; expected real-valued anomaly scores")


def _binary_labels(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    """Flatten ``labels`` and return them as bool, checking length ``n`` and values in {0, 1}."""
    y = _to_numpy(labels).reshape(-1)
    if y.size != n:
        raise ValueError(f"{name} has {y.size} elements but scores has {n}; expected one label per score")
    if y.dtype != bool:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise ValueError(
                f"{name} must be 0 (normal) or 1 (anomalous); got e.g. {y[bad][:3].tolist()}"
            )
        y = y == 1
    return y


def _prepare(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(scores).reshape(-1)
    _check_scores(s, "scores")
    return s.astype(np.float64, copy=False), _binary_labels(labels, s.size)


def image_auroc(scores: Any, labels: Any) -> float:
    """Exact ROC AUC via the Mann-Whitney U statistic with average ranks (ties count 1/2).

    Equals ``sklearn.metrics.roc_auc_score(labels, scores)``. Raises ``ValueError`` when the
    lengths differ, labels are not in {0, 1}, or only one class is present.
    """
    s, y = _prepare(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "normal (0)" if n_pos == 0 else "anomalous (1)"
        raise ValueError(
            f"AUROC needs both normal (0) and anomalous (1) samples; got only {only} labels "
            f"({y.size} samples)"
        )
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    rank_sum = avg_rank[inv.reshape(-1)][y].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _best_f1(tp: np.ndarray, pp: np.ndarray, n_pos: int) -> int:
    """Index of the maximal F1 = 2TP/(P + PP); among ties the last (lowest threshold) index."""
    f1 = 2.0 * tp / (n_pos + pp)
    return int(f1.size - 1 - np.argmax(f1[::-1]))


def f1_max(scores: Any, labels: Any) -> tuple[float, float]:
    """Best F1 over all thresholds and the threshold achieving it (anomalous iff score >= threshold).

    Exact: every distinct score is tried as a threshold, F1 = 2PR/(P+R) = 2TP/(#pos + #predicted).
    Among equal F1 values the lowest threshold is returned (as ``argmax`` over sklearn's
    ``precision_recall_curve`` would). Raises ``ValueError`` if there is no anomalous (1) label.
    """
    s, y = _prepare(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError(f"F1 needs at least one anomalous (1) label; got {y.size} normal labels only")
    order = np.argsort(-s, kind="stable")
    s_desc = s[order]
    tp = np.cumsum(y[order])
    last = np.flatnonzero(np.r_[s_desc[1:] != s_desc[:-1], True])  # last index of each distinct score
    tp, pp = tp[last], last + 1
    i = _best_f1(tp, pp, n_pos)
    return float(2.0 * tp[i] / (n_pos + pp[i])), float(s_desc[last[i]])


class BinnedROC:
    """Streaming ROC statistics over log-spaced score bins, for pixel-level metrics.

    Bin ``b`` covers ``[low * exp(b / k), low * exp((b + 1) / k))`` with ``k = n_bins / ln(high / low)``;
    scores ``<= low`` (including 0 and negatives) go to bin 0 and scores ``>= high`` to the last bin.
    Two int64 histograms (normal / anomalous) are kept; memory is ``16 * n_bins`` bytes (16 MiB by
    default) however many scores are fed, and each ``update`` works in chunks of ``chunk_size``.

    Accuracy: the binning is monotone, so pairs in different bins are ordered exactly; pairs in the
    same bin are counted as ties (1/2). Identical scores always share a bin, so exact ties are treated
    exactly as sklearn does. Only distinct scores whose ratio is within one bin width
    (``exp(1/k) - 1``, about 3.1e-5 relative by default) can be miscounted, hence
    ``|auroc() - exact AUROC| <= error_bound()``.
    """

    chunk_size: int = 2**22

    def __init__(self, n_bins: int = 2**20, low: float = 1e-10, high: float = 1e4) -> None:
        if int(n_bins) < 2:
            raise ValueError(f"n_bins must be >= 2; got {n_bins}")
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise ValueError(f"need finite 0 < low < high for log-spaced bins; got low={low}, high={high}")
        self.n_bins, self.low, self.high = int(n_bins), float(low), float(high)
        self._log_low = float(np.log(self.low))
        self._scale = self.n_bins / float(np.log(self.high / self.low))  # bins per unit of ln(score)
        self._hist = np.zeros((self.n_bins, 2), dtype=np.int64)  # [:, 0] normal, [:, 1] anomalous

    @property
    def n_pos(self) -> int:
        """Number of anomalous (positive) scores seen."""
        return int(self._hist[:, 1].sum())

    @property
    def n_neg(self) -> int:
        """Number of normal (negative) scores seen."""
        return int(self._hist[:, 0].sum())

    def _bin_index(self, s: np.ndarray) -> np.ndarray:
        x = np.log(np.maximum(s.astype(np.float64), self.low))
        x -= self._log_low
        x *= self._scale
        np.floor(x, out=x)
        np.clip(x, 0, self.n_bins - 1, out=x)
        return x.astype(np.int64)

    def update(self, scores: Any, targets: Any) -> BinnedROC:
        """Add scores with their ground truth (bool, 0/1, or float masks in [0, 1]); returns self.

        Float masks are binarised with ``> 0.5`` (not ``> 0``): JPEG-compressed or resampled masks
        carry small non-zero values around defects that would otherwise count as anomalous pixels.
        ``scores`` and ``targets`` must have the same shape.
        """
        s, t = _to_numpy(scores), _to_numpy(targets)
        if s.shape != t.shape:
            raise ValueError(
                f"scores shape {tuple(s.shape)} does not match targets shape {tuple(t.shape)}; "
                "expected one target per score"
            )
        _check_scores(s, "scores")
        s, t = s.reshape(-1), t.reshape(-1)
        flat = self._hist.reshape(-1)
        for i in range(0, s.size, self.chunk_size):
            tc = self._binarise(t[i : i + self.chunk_size])
            code = self._bin_index(s[i : i + self.chunk_size])
            code *= 2
            code += tc
            counts = np.bincount(code)
            flat[: counts.size] += counts
        return self

    @staticmethod
    def _binarise(t: np.ndarray) -> np.ndarray:
        if t.dtype == bool:
            return t
        if t.dtype.kind == "f":
            if np.isnan(t).any() or t.min(initial=0.0) < 0 or t.max(initial=0.0) > 1:
                raise ValueError(
                    "float targets must lie in [0, 1] (binarised at > 0.5); got values in "
                    f"[{t.min()}, {t.max()}]: scale masks to [0, 1], e.g. divide 8-bit masks by 255"
                )
            return t > 0.5
        if t.dtype.kind in "iu":
            bad = (t != 0) & (t != 1)
            if bad.any():
                raise ValueError(
                    f"integer targets must be 0 or 1; got e.g. {t[bad][:3].tolist()}: "
                    "divide 8-bit masks by 255.0 (float masks are binarised at > 0.5)"
                )
            return t == 1
        raise ValueError(f"targets must be bool, 0/1 integers or floats in [0, 1]; got dtype {t.dtype}")

    def merge(self, other: BinnedROC) -> BinnedROC:
        """Add the counts of ``other`` (same ``n_bins``, ``low``, ``high``) into self; returns self."""
        if (other.n_bins, other.low, other.high) != (self.n_bins, self.low, self.high):
            raise ValueError(
                f"cannot merge BinnedROC(n_bins={other.n_bins}, low={other.low}, high={other.high}) into "
                f"BinnedROC(n_bins={self.n_bins}, low={self.low}, high={self.high}): bins must be identical"
            )
        self._hist += other._hist
        return self

    def _counts(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        neg, pos = self._hist[:, 0], self._hist[:, 1]
        n_neg, n_pos = int(neg.sum()), int(pos.sum())
        if n_pos == 0 or n_neg == 0:
            only = "normal (0)" if n_pos == 0 else "anomalous (1)"
            raise ValueError(
                f"AUROC needs both normal (0) and anomalous (1) samples; got only {only} "
                f"({n_pos + n_neg} scores)"
            )
        return neg, pos, n_neg, n_pos

    def auroc(self) -> float:
        """ROC AUC from the histograms; pairs in one bin count 1/2 (see :meth:`error_bound`)."""
        neg, pos, n_neg, n_pos = self._counts()
        neg_below = np.cumsum(neg, dtype=np.float64) - neg
        return float(np.dot(pos.astype(np.float64), neg_below + 0.5 * neg) / n_pos / n_neg)

    def error_bound(self) -> float:
        """Worst-case ``|auroc() - exact AUROC|``: ``0.5 * sum_b pos_b * neg_b / (P * N)``.

        Exact bound: only same-bin (positive, negative) pairs are uncertain, each counted 1/2 while its
        true contribution is 0, 1/2 or 1. It is attained only if every such pair is strictly ordered;
        when bins hold identical scores (exact ties) the true error is 0.
        """
        neg, pos, n_neg, n_pos = self._counts()
        return float(0.5 * np.dot(pos.astype(np.float64), neg.astype(np.float64)) / n_pos / n_neg)

    def _edges(self, bins: np.ndarray) -> np.ndarray:
        """Lower edges of ``bins``; bin 0 also holds every score <= low, so its edge is -inf."""
        edges = self.low * np.exp(bins / self._scale)
        return np.where(bins == 0, -np.inf, edges)

    def _descending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Occupied bins from highest to lowest with cumulative TP and FP counts."""
        neg, pos, n_neg, n_pos = self._counts()
        bins = np.flatnonzero((neg + pos) > 0)[::-1]
        return bins, np.cumsum(pos[bins]), np.cumsum(neg[bins]), n_neg, n_pos

    def f1_max(self) -> tuple[float, float]:
        """Best F1 over bin thresholds and that threshold (a bin lower edge; anomalous iff score >= it)."""
        bins, tp, fp, _, n_pos = self._descending()
        i = _best_f1(tp, tp + fp, n_pos)
        return float(2.0 * tp[i] / (n_pos + tp[i] + fp[i])), float(self._edges(bins[i : i + 1])[0])

    def roc_curve(self, max_points: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, tpr, thresholds) from (0, 0) at threshold +inf to (1, 1), at most ``max_points`` points.

        Thresholds are bin lower edges, decreasing. Points are kept evenly spaced along
        ``fpr + tpr`` so steep and flat parts of the curve are both resolved.
        """
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2; got {max_points}")
        bins, tp, fp, n_neg, n_pos = self._descending()
        fpr = np.r_[0.0, fp / n_neg]
        tpr = np.r_[0.0, tp / n_pos]
        thr = np.r_[np.inf, self._edges(bins)]
        if fpr.size > max_points:
            keep = np.searchsorted(fpr + tpr, np.linspace(0.0, 2.0, max_points))
            keep = np.unique(np.r_[0, np.minimum(keep, fpr.size - 1), fpr.size - 1])
            if keep.size > max_points:  # drop evenly from the interior, keep both ends
                keep = keep[np.unique(np.linspace(0, keep.size - 1, max_points).round().astype(int))]
            fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
        return fpr, tpr, thr


def pixel_auroc(score_maps: Any, masks: Any) -> float:
    """Pixel-level ROC AUC of raw score maps against masks of the same shape, via :class:`BinnedROC`."""
    return BinnedROC().update(score_maps, masks).auroc()
