"""Per-image pixel histograms of a test split, for statistics that resample whole images (the bootstrap
interval of pixel AUROC, pixel AUROC per defect type) without keeping the anomaly maps.

Each image keeps two counts per occupied bin: its normal and its anomalous pixels. The bins are
:class:`~anovit.evaluation.metrics.BinnedROC`'s default log-spaced bins over ``[1e-10, 1e4)`` coarsened 256-fold
(4096 bins, each about 0.8 % wide in relative terms); pixels in one bin count as tied, so an AUROC
from these histograms is within :func:`histogram_auroc`'s error bound of the exact one. Stored
sparse (occupied bins only) as ``pixel_histograms.npz`` in the run folder, one image per row of
test_scores.csv, named by path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import _binarise, _check_scores, _LogBins, _to_numpy

N_BINS = 2**12
LOW, HIGH = 1e-10, 1e4  # BinnedROC's default range: its bins nest in ours


@dataclass
class PixelHistograms:
    """Sparse histograms of ``n`` images: image ``i`` owns entries ``offsets[i]:offsets[i + 1]`` of
    ``bins`` (bin index), ``normal`` and ``anomalous`` (pixel counts); ``paths`` names each image."""

    paths: list[str]
    offsets: np.ndarray
    bins: np.ndarray
    normal: np.ndarray
    anomalous: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(normal, anomalous) counts as float64 (n_images, U) over the U bins occupied by any image, in bin order."""
        occupied, column = np.unique(self.bins, return_inverse=True)
        rows = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        cell, size = rows * occupied.size + column, len(self) * occupied.size
        return tuple(np.bincount(cell, weights=counts, minlength=size).reshape(len(self), occupied.size)
                     for counts in (self.normal, self.anomalous))

    def select(self, paths: list[str]) -> PixelHistograms:
        """The histograms of ``paths``, in that order; KeyError naming the first path not held."""
        where = {p: i for i, p in enumerate(self.paths)}
        missing = [p for p in paths if p not in where]
        if missing:
            raise KeyError(f"no pixel histogram for test image {missing[0]!r}")
        index = [where[p] for p in paths]
        parts = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]
        take = np.concatenate(parts) if parts else np.empty(0, np.int64)
        offsets = np.r_[0, np.cumsum([p.size for p in parts])].astype(np.int64)
        return PixelHistograms(list(paths), offsets, self.bins[take], self.normal[take], self.anomalous[take])

    def save(self, path: Path) -> None:
        """Write the histograms as a compressed .npz file."""
        np.savez_compressed(path, paths=np.array(self.paths, dtype=str), offsets=self.offsets, bins=self.bins,
                            normal=self.normal, anomalous=self.anomalous)

    @classmethod
    def load(cls, path: Path) -> PixelHistograms:
        """Read a file written by :meth:`save`; ValueError naming the file when it is not one."""
        try:
            with np.load(path) as f:
                return cls([str(p) for p in f["paths"]], f["offsets"], f["bins"], f["normal"], f["anomalous"])
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path} is not a pixel histogram file of anovit ({err})") from err


class HistogramBuilder:
    """Collects :class:`PixelHistograms` batch by batch: ``update(anomaly_map, gt_mask, paths)``."""

    def __init__(self) -> None:
        self._bins = _LogBins(N_BINS, LOW, HIGH)
        self._paths: list[str] = []
        self._parts: list[tuple[np.ndarray, ...]] = []  # per batch: bins, normal, anomalous, bins per image

    def update(self, anomaly_map: Any, gt_mask: Any, paths: list[str]) -> None:
        """Add images: ``anomaly_map`` (B, H, W) scores in [0, 1e4), ``gt_mask`` (B, H, W) (bool, 0/1 or
        floats binarised at > 0.5), one path per image."""
        maps, masks = _to_numpy(anomaly_map), _to_numpy(gt_mask)
        if maps.shape != masks.shape or maps.shape[0] != len(paths):
            raise ValueError(f"anomaly maps {tuple(maps.shape)}, masks {tuple(masks.shape)} and {len(paths)} paths "
                             "must agree: one (H, W) map and mask per path")
        n = len(paths)
        maps = maps.reshape(-1)
        _check_scores(maps, "anomaly maps")
        self._bins.check_range(maps, "anomaly maps")
        cell = self._bins.index(maps)  # in place, in its kept buffer: (image, bin, anomalous) -> one count
        np.left_shift(cell, 1, out=cell)
        np.bitwise_or(cell, _binarise(masks.reshape(-1)), out=cell)
        cell.reshape(n, -1)[...] += np.arange(n, dtype=np.intp)[:, None] * (2 * N_BINS)
        counts = np.bincount(cell, minlength=2 * N_BINS * n).reshape(n, N_BINS, 2)  # the batch in one pass
        rows, occupied = np.nonzero(counts[..., 0] | counts[..., 1])  # image by image, bins in increasing order
        self._paths += [str(path) for path in paths]
        self._parts.append((occupied.astype(np.uint16), counts[rows, occupied, 0], counts[rows, occupied, 1],
                            np.bincount(rows, minlength=n)))

    def result(self) -> PixelHistograms:
        """The histograms of every image added so far."""
        sizes = np.concatenate([p[3] for p in self._parts]) if self._parts else np.empty(0, np.int64)
        joined = [np.concatenate([p[k] for p in self._parts]) if self._parts else np.empty(0, int) for k in range(3)]
        return PixelHistograms(list(self._paths), np.r_[0, np.cumsum(sizes)].astype(np.int64), joined[0].astype(np.uint16),
                               joined[1].astype(np.int64), joined[2].astype(np.int64))


def histogram_aurocs(normal: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    """AUROC of each row of (R, U) normal / anomalous counts over bins in increasing score order; pairs in
    one bin count 1/2 (as :meth:`anovit.evaluation.metrics.BinnedROC.auroc`). NaN for a row lacking either class."""
    n_neg, n_pos = normal.sum(axis=1), anomalous.sum(axis=1)
    below = np.cumsum(normal, axis=1) - 0.5 * normal
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("ru,ru->r", anomalous, below) / (n_pos * n_neg)


def histogram_auroc(histograms: PixelHistograms) -> tuple[float, float]:
    """Pixel AUROC of all images pooled, and its worst-case error from the binning (see
    :meth:`anovit.evaluation.metrics.BinnedROC.error_bound`); ValueError when a class of pixels is absent."""
    normal, anomalous = (h.sum(axis=0, keepdims=True) for h in histograms.dense())
    n_neg, n_pos = float(normal.sum()), float(anomalous.sum())
    if n_neg == 0 or n_pos == 0:
        raise ValueError("pixel AUROC needs normal and anomalous pixels; got only "
                         + ("normal" if n_pos == 0 else "anomalous") + " pixels")
    return float(histogram_aurocs(normal, anomalous)[0]), float(0.5 * np.dot(normal[0], anomalous[0]) / n_neg / n_pos)
