"""AUPRO (streaming, binned) against a direct threshold-sweep implementation on small hand-made maps."""

from collections import deque

import numpy as np
import pytest
import torch

from anovit.evaluation.metrics import BinnedPRO, BinnedROC, aupro


def _regions(mask: np.ndarray) -> list[np.ndarray]:
    """Connected components (8-connectivity) of one boolean mask by flood fill: a list of pixel masks."""
    seen = np.zeros_like(mask, dtype=bool)
    regions = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        region = np.zeros_like(mask, dtype=bool)
        queue = deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            region[y, x] = True
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        regions.append(region)
    return regions


def direct_aupro(maps: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3) -> float:
    """Every distinct score as a threshold; FPR over all normal pixels, PRO = mean per-region overlap."""
    masks = masks.astype(bool)
    region_scores = [maps[i][r] for i in range(len(maps)) for r in _regions(masks[i])]
    normal = maps[~masks]
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        points.append(((normal >= t).mean(), np.mean([(r >= t).mean() for r in region_scores])))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:  # cut the crossing segment at max_fpr
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += (x1 - x0) * (y0 + y1) / 2
    return area / max_fpr


def _two_images() -> tuple[np.ndarray, np.ndarray]:
    """A normal image and one with a big (16 px) and a small (2 px, diagonal) region."""
    masks = np.zeros((2, 8, 8), dtype=np.float32)
    masks[1, 1:5, 1:5] = 1
    masks[1, 6, 6] = masks[1, 7, 7] = 1  # diagonal neighbours: one region under 8-connectivity
    return np.zeros((2, 8, 8)), masks


def test_perfect_inverted_and_constant_maps():
    _, masks = _two_images()
    assert aupro(masks * 2.0 + 0.1, masks) == pytest.approx(1.0)
    assert aupro(2.1 - masks * 2.0, masks) == pytest.approx(0.0)
    # all scores tied: the curve jumps from (0, 0) to (1, 1); up to FPR 0.3 the area is 0.3^2/2
    assert aupro(np.full(masks.shape, 0.5), masks) == pytest.approx(0.15)


def test_regions_weigh_equally_whatever_their_size():
    _, masks = _two_images()
    maps = np.full(masks.shape, 0.1)
    maps[1, 1:5, 1:5] = 5.0  # the big region is found, the small one scores like normal pixels
    acc = BinnedPRO().update(maps, masks)
    assert acc.n_regions == 2
    fpr, pro, _ = acc.pro_curve()
    assert pro[1] == pytest.approx(0.5) and fpr[1] == 0.0  # pixel TPR would be 16/18 here
    assert acc.aupro() == pytest.approx(direct_aupro(maps, masks))
    # curve (0, 0) -> (0, 0.5) -> (1, 1): cut at FPR 0.3 (PRO 0.65), area 0.3 * (0.5 + 0.65) / 2, / 0.3
    assert acc.aupro() == pytest.approx(0.575)


def test_eight_connectivity_joins_diagonal_pixels():
    maps, masks = _two_images()
    assert BinnedPRO().update(maps, masks).n_regions == 2
    masks[1, 7, 7] = 0
    masks[1, 7, 5] = 1  # the other diagonal neighbour of (6, 6): still 2 regions
    assert BinnedPRO().update(maps, masks).n_regions == 2
    masks[1, 7, 5] = 0
    masks[1, 7, 3] = 1  # two apart from (6, 6) and (4, 4): a third region
    assert BinnedPRO().update(maps, masks).n_regions == 3


def test_regions_never_join_across_images():
    masks = np.zeros((2, 4, 4))
    masks[0, 3, :] = 1  # bottom row of image 0 ...
    masks[1, 0, :] = 1  # ... and top row of image 1 touch in the flattened batch, not in any image
    assert BinnedPRO().update(np.zeros((2, 4, 4)), masks).n_regions == 2


@pytest.mark.parametrize("seed", range(5))
def test_matches_direct_threshold_sweep_on_random_small_maps(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((4, 12, 12), dtype=bool)
    for i in range(1, 4):
        for _ in range(rng.integers(1, 4)):
            y, x, h, w = rng.integers(0, 10), rng.integers(0, 10), rng.integers(1, 4), rng.integers(1, 4)
            masks[i, y : y + h, x : x + w] = True
    # integer-valued scores: many exact ties, and distinct values never share a bin
    maps = (rng.integers(1, 40, masks.shape) + 20 * masks * rng.integers(0, 2, masks.shape)).astype(np.float64)
    for max_fpr in (0.05, 0.3, 1.0):
        expected = direct_aupro(maps, masks, max_fpr)
        assert BinnedPRO(max_fpr=max_fpr).update(maps, masks).aupro() == pytest.approx(expected, abs=1e-12)
    assert 0.0 < direct_aupro(maps, masks) < 1.0


def test_streaming_batches_chunks_and_merge_agree():
    rng = np.random.default_rng(7)
    masks = rng.random((6, 16, 16)) > 0.85
    maps = rng.random((6, 16, 16)) + masks
    whole = BinnedPRO().update(torch.tensor(maps, dtype=torch.float32), torch.tensor(masks))
    parts = BinnedPRO().update(maps[:2].astype(np.float32), masks[:2])
    parts.merge(BinnedPRO().update(maps[2:].astype(np.float32), masks[2:]))
    small = BinnedPRO()
    small.chunk_size = 300  # one image (256 px) per chunk
    small.update(maps.astype(np.float32), masks)
    assert whole.n_regions == parts.n_regions == small.n_regions
    assert whole.aupro() == pytest.approx(parts.aupro(), abs=1e-12) == pytest.approx(small.aupro(), abs=1e-12)
    assert whole.aupro() == pytest.approx(direct_aupro(maps.astype(np.float32), masks), abs=1e-4)
    roc = BinnedROC().update(maps.astype(np.float32), masks)  # the pixel ROC fed by the same update
    for acc in (whole, parts, small):
        assert acc.roc.auroc() == roc.auroc() and acc.roc.f1_max() == roc.f1_max()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no anomalous region"):
        aupro(np.ones((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="must be equal"):
        aupro(np.ones((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="max_fpr"):
        BinnedPRO(max_fpr=0.0)
    with pytest.raises(ValueError, match="bins must be identical"):
        BinnedPRO().merge(BinnedPRO(n_bins=16))
