"""Anomaly-detection metrics on RAW scores (any real numbers, e.g. squared reconstruction errors).

Scores are never squashed through a sigmoid (torchmetrics' binary AUROC does that to values outside
[0, 1], which saturates reconstruction errors and collapses AUROC to 0.5). Inputs may be numpy arrays
or torch tensors of any shape; they are flattened.

* :func:`image_auroc`, :func:`f1_max`: exact, for image-level scores (thousands of values).
* :class:`BinnedROC`, :func:`pixel_auroc`: streaming, for pixel-level scores (hundreds of millions),
  with a guaranteed error bound.
* :class:`BinnedPRO`, :func:`aupro`: streaming per-region overlap (AUPRO up to 30% FPR), on the same bins.

Range: the streaming classes bin scores in ``[0, high)`` (default ``high = 1e4``; reconstruction errors
are >= 0) and raise ValueError naming that range for any score outside it, rather than counting all
such scores as one tie. :func:`pixel_auroc` and :func:`aupro` take any finite real scores (negative
values, logits): they read the scores twice, first for their minimum and maximum, then to bin
``score - minimum`` on bins fitted to that span.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AUPRO_MAX_FPR = 0.3  # the false positive rate up to which AUPRO integrates (Bergmann et al. 2021; anomalib's fpr_limit)

__all__ = ["image_auroc", "f1_max", "BinnedROC", "pixel_auroc", "BinnedPRO", "aupro"]


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


def _fitted(scores: np.ndarray, name: str) -> tuple[np.ndarray, dict[str, float]]:
    """``scores - min`` (float64) and the ``low``/``high`` of log bins spanning it (first of two passes).

    ``high`` lies just above the span, ``low`` is 1e-12 of it: scores within 1e-12 x span of the
    minimum share bin 0 (counted in the error bound). A constant input gets bins over [0, 1).
    """
    s = scores.reshape(-1)
    _check_scores(s, name)
    if s.size and not np.isfinite(s).all():
        raise ValueError(f"{name} contains +-inf; expected finite anomaly scores")
    low = float(s.min()) if s.size else 0.0
    span = float(s.max()) - low if s.size else 0.0
    high = span * (1.0 + 1e-9) if span > 0 else 1.0
    return s.astype(np.float64) - low, {"low": high * 1e-12, "high": high}


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


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) in float64 without BLAS: np.dot of a long vector wakes OpenBLAS's threads, which took a
    scheduler slice (12 ms) per call on a loaded machine, against 0.1 ms for this."""
    return float(np.multiply(a, b, dtype=np.float64).sum())


def _binarise(t: np.ndarray) -> np.ndarray:
    """Ground truth as bool: bool as is, 0/1 integers, floats in [0, 1] at ``> 0.5``."""
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


class _LogBins:
    """Log-spaced score bins: bin ``b`` covers ``[low * exp(b / k), low * exp((b + 1) / k))``,
    ``k = n_bins / ln(high / low)``; scores ``<= low`` fall in bin 0, scores ``>= high`` in the last."""

    def __init__(self, n_bins: int, low: float, high: float) -> None:
        if int(n_bins) < 2:
            raise ValueError(f"n_bins must be >= 2; got {n_bins}")
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise ValueError(f"need finite 0 < low < high for log-spaced bins; got low={low}, high={high}")
        self.n_bins, self.low, self.high = int(n_bins), float(low), float(high)
        self._log_low = float(np.log(self.low))
        self._scale = self.n_bins / float(np.log(self.high / self.low))  # bins per unit of ln(score)
        self._buffers = (np.empty(0, np.float64), np.empty(0, np.intp))

    def index(self, s: np.ndarray) -> np.ndarray:
        """Bin index (intp) of every score in the 1-D array ``s``, in a buffer reused by the next call.

        The float64 and intp work buffers (16 bytes per score of the largest input so far) are kept:
        fresh large arrays cost a page fault per 4 KiB, more than the arithmetic.
        """
        if self._buffers[0].size < s.size:
            self._buffers = (np.empty(s.size, np.float64), np.empty(s.size, np.intp))
        x = self._buffers[0][: s.size]
        np.maximum(s, self.low, out=x)
        np.log(x, out=x)
        np.subtract(x, self._log_low, out=x)
        np.multiply(x, self._scale, out=x)
        np.floor(x, out=x)
        np.clip(x, 0, self.n_bins - 1, out=x)
        code = self._buffers[1][: s.size]
        code[...] = x
        return code

    def check_range(self, s: np.ndarray, name: str) -> None:
        """Raise ValueError unless every score of ``s`` lies in ``[0, high)`` (bin 0 holds ``[0, low]``)."""
        if s.size == 0:
            return
        smallest, largest = float(s.min()), float(s.max())
        if smallest < 0 or largest >= self.high:
            raise ValueError(
                f"{name} must lie in [0, {self.high:g}) for these log-spaced bins; got values in "
                f"[{smallest:g}, {largest:g}]: pass a larger high= for large scores, or use pixel_auroc() / "
                "aupro(), which fit the bins to any finite scores (negative ones and logits included)"
            )

    def edges(self, bins: np.ndarray) -> np.ndarray:
        """Lower edges of ``bins``; bin 0 also holds every score <= low, so its edge is -inf."""
        edges = self.low * np.exp(bins / self._scale)
        return np.where(bins == 0, -np.inf, edges)

    def check_same(self, other: "_LogBins", what: str) -> None:
        """Raise ValueError unless ``other`` has identical bins (needed to merge histograms)."""
        if (other.n_bins, other.low, other.high) != (self.n_bins, self.low, self.high):
            raise ValueError(
                f"cannot merge {what}(n_bins={other.n_bins}, low={other.low}, high={other.high}) into "
                f"{what}(n_bins={self.n_bins}, low={self.low}, high={self.high}): bins must be identical"
            )


class BinnedROC:
    """Streaming ROC statistics over log-spaced score bins, for pixel-level metrics.

    Bin ``b`` covers ``[low * exp(b / k), low * exp((b + 1) / k))`` with ``k = n_bins / ln(high / low)``;
    scores in ``[0, low]`` go to bin 0. Scores must lie in ``[0, high)``: a negative score or one
    ``>= high`` raises ValueError naming the range (see :func:`pixel_auroc` for any real scores).
    Two int64 histograms (normal / anomalous) are kept; memory is ``16 * n_bins`` bytes (16 MiB by
    default) however many scores are fed, and each ``update`` works in chunks of ``chunk_size``
    (with work buffers of 16 bytes per score of one chunk, kept for the next update).

    Accuracy: the binning is monotone, so pairs in different bins are ordered exactly; pairs in the
    same bin are counted as ties (1/2). Identical scores always share a bin, so exact ties are treated
    exactly as sklearn does. Only distinct scores whose ratio is within one bin width
    (``exp(1/k) - 1``, about 3.1e-5 relative by default) can be miscounted, hence
    ``|auroc() - exact AUROC| <= error_bound()``.

    The metrics read only the occupied bins (found once, then kept until the next ``update`` or ``merge``):
    a test split occupies about a tenth of the default bins, and every fresh bin-sized array costs page faults.
    """

    chunk_size: int = 2**22

    def __init__(self, n_bins: int = 2**20, low: float = 1e-10, high: float = 1e4) -> None:
        self._bins = _LogBins(n_bins, low, high)
        self.n_bins, self.low, self.high = self._bins.n_bins, self._bins.low, self._bins.high
        self._hist = np.zeros((self.n_bins, 2), dtype=np.int64)  # [:, 0] normal, [:, 1] anomalous
        self._compact: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # occupied(), until counts change

    @property
    def n_pos(self) -> int:
        """Number of anomalous (positive) scores seen."""
        return int(self.occupied()[2].sum())

    @property
    def n_neg(self) -> int:
        """Number of normal (negative) scores seen."""
        return int(self.occupied()[1].sum())

    def occupied(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bins, normal, anomalous): the bins holding any score, in increasing order, and their int64 counts."""
        if self._compact is None:
            bins = np.flatnonzero(self._hist[:, 0] | self._hist[:, 1])  # 6x faster than .any(axis=1)
            counts = self._hist[bins]
            self._compact = bins, counts[:, 0], counts[:, 1]
        return self._compact

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
        s, t = s.reshape(-1), t.reshape(-1)
        for i in range(0, s.size, self.chunk_size):
            chunk = s[i : i + self.chunk_size]
            _check_scores(chunk, "scores")  # per chunk: a NaN scan of the whole input would need its size in memory
            self._bins.check_range(chunk, "scores")
            self._add_codes(self._bins.index(chunk), _binarise(t[i : i + self.chunk_size]))
        return self

    def _add_codes(self, code: np.ndarray, positive: np.ndarray) -> None:
        """Count bin indices ``code`` (intp, overwritten) as anomalous where ``positive`` else normal."""
        np.left_shift(code, 1, out=code)
        np.bitwise_or(code, positive, out=code)
        np.add.at(self._hist.reshape(-1), code, 1)  # unbuffered: no bin-sized temporary, unlike bincount
        self._compact = None

    def merge(self, other: BinnedROC) -> BinnedROC:
        """Add the counts of ``other`` (same ``n_bins``, ``low``, ``high``) into self; returns self."""
        self._bins.check_same(other._bins, "BinnedROC")
        self._hist += other._hist
        self._compact = None
        return self

    def _counts(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(normal, anomalous) counts of the occupied bins, and their totals; ValueError lacking a class."""
        _, neg, pos = self.occupied()
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
        return _dot(pos, neg_below + 0.5 * neg) / n_pos / n_neg

    def error_bound(self) -> float:
        """Worst-case ``|auroc() - exact AUROC|``: ``0.5 * sum_b pos_b * neg_b / (P * N)``.

        Exact bound: only same-bin (positive, negative) pairs are uncertain, each counted 1/2 while its
        true contribution is 0, 1/2 or 1. It is attained only if every such pair is strictly ordered;
        when bins hold identical scores (exact ties) the true error is 0.
        """
        neg, pos, n_neg, n_pos = self._counts()
        return 0.5 * _dot(pos, neg) / n_pos / n_neg

    def _descending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Occupied bins from highest to lowest with cumulative TP and FP counts."""
        neg, pos, n_neg, n_pos = self._counts()
        return self.occupied()[0][::-1], np.cumsum(pos[::-1]), np.cumsum(neg[::-1]), n_neg, n_pos

    def f1_max(self) -> tuple[float, float]:
        """Best F1 over bin thresholds and that threshold (a bin lower edge; anomalous iff score >= it)."""
        bins, tp, fp, _, n_pos = self._descending()
        i = _best_f1(tp, tp + fp, n_pos)
        return float(2.0 * tp[i] / (n_pos + tp[i] + fp[i])), float(self._bins.edges(bins[i : i + 1])[0])

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
        thr = np.r_[np.inf, self._bins.edges(bins)]
        if fpr.size > max_points:
            keep = np.searchsorted(fpr + tpr, np.linspace(0.0, 2.0, max_points))
            keep = np.unique(np.r_[0, np.minimum(keep, fpr.size - 1), fpr.size - 1])
            if keep.size > max_points:  # drop evenly from the interior, keep both ends
                keep = keep[np.unique(np.linspace(0, keep.size - 1, max_points).round().astype(int))]
            fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
        return fpr, tpr, thr


def pixel_auroc(score_maps: Any, masks: Any) -> float:
    """Pixel-level ROC AUC of any finite score maps against masks of the same shape.

    Two passes: the scores' minimum and maximum fix log-spaced bins over ``score - minimum``, then a
    :class:`BinnedROC` on those bins counts them (within its ``error_bound()`` of sklearn's value).
    """
    maps = _to_numpy(score_maps)
    shifted, bins = _fitted(maps, "score maps")
    return BinnedROC(**bins).update(shifted.reshape(maps.shape), masks).auroc()


def _partial_auc(x: np.ndarray, y: np.ndarray, max_x: float) -> float:
    """Trapezoidal area under the curve ``y(x)`` (x non-decreasing, from 0) up to ``max_x``, divided by ``max_x``.

    The curve is cut at ``max_x`` by linear interpolation on the segment that crosses it.
    """
    i = int(np.searchsorted(x, max_x, side="right"))  # x[:i] <= max_x < x[i:]
    xs, ys = x[:i], y[:i]
    if i < x.size:
        w = (max_x - x[i - 1]) / (x[i] - x[i - 1])
        xs, ys = np.r_[xs, max_x], np.r_[ys, y[i - 1] + w * (y[i] - y[i - 1])]
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0) / max_x)


class BinnedPRO:
    """Streaming AUPRO (Bergmann et al. 2021, "The MVTec AD ..." IJCV): the area under the per-region
    overlap curve up to ``max_fpr`` (default 30%) false positive rate, divided by ``max_fpr``.

    Regions are the connected components (8-connectivity) of each image's ground-truth mask. At a
    threshold t, PRO(t) is the mean over all regions of the fraction of the region's pixels scoring
    >= t, and FPR(t) the fraction of all normal pixels (of every image) scoring >= t. Since
    PRO(t) = sum over pixels p of regions r of [s_p >= t] / |r| / #regions, one histogram of region
    pixels weighted by 1/|r| and the normal/anomalous histograms of a :class:`BinnedROC` (``.roc``,
    on the same bins) hold everything: memory is ``24 * n_bins`` bytes however many maps are fed.
    One ``update`` thus also gives the pixel AUROC and F1-max (``pro.roc.auroc()``), with the score
    maps binned once. Thresholds are bin edges; scores in one bin count as tied, as in :class:`BinnedROC`.
    """

    chunk_size: int = 2**22

    def __init__(self, n_bins: int = 2**20, low: float = 1e-10, high: float = 1e4, max_fpr: float = AUPRO_MAX_FPR) -> None:
        if not 0 < max_fpr <= 1:
            raise ValueError(f"max_fpr must be in (0, 1]; got {max_fpr}")
        self.roc = BinnedROC(n_bins, low, high)
        self._bins = self.roc._bins
        self.max_fpr = float(max_fpr)
        self._overlap = np.zeros(self._bins.n_bins, dtype=np.float64)  # sum of 1/|region| per bin
        self.n_regions = 0

    def update(self, score_maps: Any, masks: Any) -> BinnedPRO:
        """Add score maps with their masks, both (H, W) or (B, H, W) (any leading dims); returns self.

        Masks are binarised as in :meth:`BinnedROC.update` (floats at > 0.5).
        """
        from scipy import ndimage

        s, t = _to_numpy(score_maps), _to_numpy(masks)
        if s.shape != t.shape or s.ndim < 2:
            raise ValueError(
                f"score maps shape {tuple(s.shape)} and masks shape {tuple(t.shape)} must be equal and "
                "(H, W) or (B, H, W)"
            )
        _check_scores(s, "score maps")
        self._bins.check_range(s, "score maps")
        h, w = s.shape[-2:]
        s, t = s.reshape(-1, h, w), t.reshape(-1, h, w)
        per_chunk = max(1, self.chunk_size // (h * w))
        within_image = np.zeros((3, 3, 3), dtype=bool)
        within_image[1] = True  # 8-connectivity inside an image, never across the batch axis
        for i in range(0, len(s), per_chunk):
            regions, n = ndimage.label(_binarise(t[i : i + per_chunk]), structure=within_image)
            regions = regions.reshape(-1)
            c = self._bins.index(s[i : i + per_chunk].reshape(-1))
            inside = regions != 0
            if n:
                region = regions[inside]
                np.add.at(self._overlap, c[inside], 1.0 / np.bincount(region)[region])
                self.n_regions += n
            self.roc._add_codes(c, inside)
        return self

    def merge(self, other: BinnedPRO) -> BinnedPRO:
        """Add the histograms of ``other`` (identical bins and ``max_fpr``) into self; returns self."""
        self._bins.check_same(other._bins, "BinnedPRO")
        if other.max_fpr != self.max_fpr:
            raise ValueError(f"cannot merge BinnedPRO with max_fpr {other.max_fpr} into one with {self.max_fpr}")
        self.roc.merge(other.roc)
        self._overlap += other._overlap
        self.n_regions += other.n_regions
        return self

    def pro_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, pro, thresholds) from (0, 0) at threshold +inf down to fpr 1, one point per occupied bin."""
        occupied, neg, _ = self.roc.occupied()  # region pixels are anomalous: every bin with overlap is occupied
        n_neg = int(neg.sum())
        if self.n_regions == 0 or n_neg == 0:
            missing = "no anomalous region" if self.n_regions == 0 else "no normal pixel"
            raise ValueError(f"AUPRO needs anomalous regions and normal pixels; got {missing}")
        overlap = self._overlap[occupied]
        keep = np.flatnonzero((neg > 0) | (overlap > 0))[::-1]
        bins = occupied[keep]
        fpr = np.r_[0.0, np.cumsum(neg[keep]) / n_neg]
        pro = np.r_[0.0, np.cumsum(overlap[keep]) / self.n_regions]
        return fpr, pro, np.r_[np.inf, self._bins.edges(bins)]

    def aupro(self) -> float:
        """Area under the PRO curve for FPR in [0, max_fpr], normalised by max_fpr (1.0 is perfect)."""
        fpr, pro, _ = self.pro_curve()
        return _partial_auc(fpr, pro, self.max_fpr)


def aupro(score_maps: Any, masks: Any, max_fpr: float = AUPRO_MAX_FPR) -> float:
    """AUPRO of any finite score maps (H, W) or (B, H, W) against masks of the same shape.

    Two passes as in :func:`pixel_auroc`: bins fitted to the scores' range, then a :class:`BinnedPRO`.
    """
    maps = _to_numpy(score_maps)
    shifted, bins = _fitted(maps, "score maps")
    return BinnedPRO(max_fpr=max_fpr, **bins).update(shifted.reshape(maps.shape), masks).aupro()
