"""Calibrated anomaly maps: per-pixel statistics of the smoothed anomaly maps of held-out normal images.

Beyond the paper. Normal images have places that always reconstruct badly (edges, glare, fine texture),
so the maximum of a normal image's raw map (eq. 7) can be as high as a defective one's. As PaDiM (Defard
et al. 2021) fits a Gaussian per patch position to normal features, we fit per pixel (h, w) the mean
and variance of the anomaly map M (B, H, W) over held-out normal images, and score the map relative to
them. One variant per name (:data:`CALIBRATIONS`), each ``(M - offset) / scale``:

- ``"none"``: the raw map (the paper's);
- ``"mean"``: M - mean;
- ``"standardise"``: (M - mean) / std, std = sqrt(var);
- ``"shrunk"``: (M - mean) / sqrt(lam * global_var + (1 - lam) * var), global_var the mean of var over
  pixels: the pixel variance shrunk towards one global spread, in the spirit of Ledoit-Wolf shrinkage
  (Ledoit & Wolf 2004), with ``lam`` in [0, 1] (:data:`DEFAULT_SHRINKAGE`) stored with the run.

The variance is the unbiased one (ddof 1, as PaDiM's covariance), floored at :data:`VARIANCE_FLOOR`
times the global variance (and float32's smallest normal number) so a pixel that never varies does not
divide by ~0. The image score and the pixel map may use different variants (:class:`Calibration`).

Where the statistics come from (:meth:`anovit.scoring.detector.Detector.fit_threshold`, called by
:func:`anovit.scoring.run_scoring.run_detector`; stored by :mod:`anovit.scoring.stored_fit`): the run's validation split
(normal training images held out, never trained on), maps at the run's score function, sigma and precision.
The decision threshold is fitted on *leave-one-out* calibrated scores of those same images
(:func:`leave_one_out`): each image is calibrated with statistics fitted without it (closed form,
no refit), so the threshold never sees the statistics of its own image, and a small class whose
validation split is only a few images still works (at least :data:`MIN_IMAGES` of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..utils.errors import AnovitError
from ..models import CALIBRATIONS, DEFAULT_SHRINKAGE  # one home: with the presets (TRAINING_DEFAULTS)

VARIANCE_FLOOR = 1e-4  # share of the global variance below which a pixel's variance is raised to it
# Normal images a variant needs for a leave-one-out threshold: "mean" leaves one image to average,
# a variance (ddof 1) needs two left.
MIN_IMAGES = {"none": 0, "mean": 2, "standardise": 3, "shrunk": 3}


def fitting_variant(variant: str, n_images: int) -> str:
    """The calibration ``n_images`` normal validation images can fit for ``variant``: itself when there are at
    least MIN_IMAGES[variant], else minus the mean ("mean", 2 images; a spread needs 3), else the raw map
    ("none"). On the AnoViT default's maps cached by ``benchmarks/validation_sets.py --study`` (the four
    validation sets, seeds 0-2, 2 calibration images drawn 5 times, top 1 %): mean image AUROC 0.850 minus the
    mean vs 0.738 raw (cookies 0.889 vs 0.462); with 3 images shrunk 0.5 and minus the mean both 0.854, with all
    0.865 and 0.856."""
    if n_images >= MIN_IMAGES[check_calibration(variant)]:
        return variant
    return "mean" if n_images >= MIN_IMAGES["mean"] else "none"


class CalibrationError(AnovitError):
    """Calibration statistics that cannot be fitted or used (too few images, missing, wrong size)."""


def check_calibration(name: str, field: str = "calibration") -> str:
    """``name`` if it is one of :data:`CALIBRATIONS`; ValueError naming ``field`` otherwise."""
    if name not in CALIBRATIONS:
        raise ValueError(f"{field} must be one of {list(CALIBRATIONS)}; got {name!r}")
    return name


def check_shrinkage(value: float) -> float:
    """``value`` as a float if it is a number in [0, 1]; ValueError otherwise."""
    try:
        lam = float(value)
    except (TypeError, ValueError):
        lam = math.nan
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"calibration shrinkage must be a number in [0, 1]; got {value!r}")
    return lam


@dataclass(frozen=True)
class MapStatistics:
    """Per-pixel mean and unbiased variance (H, W), float32, of the anomaly maps of ``n_images`` normal images."""

    mean: torch.Tensor
    var: torch.Tensor
    n_images: int


def fit_statistics(maps: torch.Tensor, n_images: int | None = None) -> MapStatistics:
    """:class:`MapStatistics` of anomaly maps (B, H, W) of normal images; ``n_images``: of the first n only
    (how many images the statistics need). CalibrationError for fewer than two images."""
    if maps.dim() != 3:
        raise CalibrationError(f"expected anomaly maps of shape (B, H, W); got {tuple(maps.shape)}")
    maps = maps[:n_images].double() if n_images is not None else maps.double()
    if len(maps) < 2:
        raise CalibrationError(f"per-pixel statistics need at least 2 normal images; got {len(maps)}")
    return MapStatistics(maps.mean(0).float(), maps.var(0, correction=1).float(), len(maps))


def _floored(var: torch.Tensor) -> torch.Tensor:
    """``var`` (..., H, W) raised to VARIANCE_FLOOR x its global (per-image) mean, and to float32's tiny."""
    global_var = var.mean(dim=(-2, -1), keepdim=True)
    floor = (VARIANCE_FLOOR * global_var).clamp_min(torch.finfo(torch.float32).tiny)
    return torch.maximum(var, floor)


def affine(variant: str, mean: torch.Tensor, var: torch.Tensor,
           shrinkage: float = DEFAULT_SHRINKAGE) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(offset, scale), each shaped like ``mean`` (..., H, W), such that the calibrated map is
    ``(M - offset) / scale``; None for "none" (the raw map, left untouched)."""
    check_calibration(variant)
    if variant == "none":
        return None
    if variant == "mean":
        return mean, torch.ones_like(mean)
    var = _floored(var)
    if variant == "shrunk":
        lam = check_shrinkage(shrinkage)
        var = lam * var.mean(dim=(-2, -1), keepdim=True) + (1.0 - lam) * var
    return mean, var.sqrt()


def apply(maps: torch.Tensor, transform: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Anomaly maps (B, H, W) under an :func:`affine` transform (None: unchanged)."""
    if transform is None:
        return maps
    offset, scale = transform
    return (maps - offset.to(maps.device)) / scale.to(maps.device)


@dataclass(frozen=True)
class Calibration:
    """Which map the image score and the pixel map use (:data:`CALIBRATIONS`), the shrinkage of
    "shrunk" and the statistics (None until fitted; not needed when both variants are "none")."""

    image: str = "none"
    pixel: str = "none"
    shrinkage: float = DEFAULT_SHRINKAGE
    statistics: MapStatistics | None = None

    def __post_init__(self) -> None:
        check_calibration(self.image, "image calibration")
        check_calibration(self.pixel, "pixel calibration")
        object.__setattr__(self, "shrinkage", check_shrinkage(self.shrinkage))

    @property
    def needs_statistics(self) -> bool:
        """Whether either variant is other than "none"."""
        return self.image != "none" or self.pixel != "none"

    def with_statistics(self, statistics: MapStatistics | None) -> "Calibration":
        """The same variants with ``statistics``."""
        return replace(self, statistics=statistics)

    def fitted(self, variant: str) -> str:
        """The variant these statistics can fit for ``variant`` (:func:`fitting_variant` of their n_images;
        ``variant`` itself before they are fitted): what :meth:`transform` applies."""
        return variant if self.statistics is None else fitting_variant(variant, self.statistics.n_images)

    def transform(self, variant: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The :func:`affine` transform of ``variant`` (as :meth:`fitted` says) with these statistics;
        CalibrationError before they are fitted."""
        if variant == "none":
            return None
        if self.statistics is None:
            raise CalibrationError(f"the {variant!r} calibration has no statistics yet: fit them on normal "
                                   "validation images (Detector.fit_threshold) or load the run's")
        return affine(self.fitted(variant), self.statistics.mean, self.statistics.var, self.shrinkage)

    def image_map(self, maps: torch.Tensor) -> torch.Tensor:
        """The map (B, H, W) the image score pools."""
        return apply(maps, self.transform(self.image))

    def pixel_map(self, maps: torch.Tensor) -> torch.Tensor:
        """The map (B, H, W) shown and scored per pixel."""
        return apply(maps, self.transform(self.pixel))

    def pixel_floor(self) -> float:
        """A lower bound of the pixel map of any non-negative raw map: min over pixels of -offset / scale
        (0 for "none"). Streaming metrics that bin [0, high) take the map minus it."""
        transform = self.transform(self.pixel)
        return 0.0 if transform is None else min(0.0, float((-transform[0] / transform[1]).min()))


def leave_one_out(maps: torch.Tensor, variant: str, shrinkage: float = DEFAULT_SHRINKAGE) -> torch.Tensor:
    """Each normal image's map (B, H, W) calibrated with statistics of the other B - 1 images.

    Closed form (Welford's downdate, computed in float64): mean_-i = (B mean - M_i) / (B - 1) and
    sum of squares SS_-i = SS - (M_i - mean)(M_i - mean_-i), var_-i = SS_-i / (B - 2); equal to
    refitting :func:`fit_statistics` without image i. CalibrationError for fewer than MIN_IMAGES[variant].
    """
    check_calibration(variant)
    if variant == "none":
        return maps
    n = len(maps)
    if n < MIN_IMAGES[variant]:
        raise CalibrationError(f"the {variant!r} calibration needs at least {MIN_IMAGES[variant]} normal "
                               f"validation images for a leave-one-out threshold; got {n} (raise --val-fraction)")
    x = maps.double()
    mean = x.mean(0)
    loo_mean = (n * mean - x) / (n - 1)
    if variant == "mean":
        return (x - loo_mean).float()
    squares = (x - mean).pow(2).sum(0)
    loo_var = ((squares - (x - mean) * (x - loo_mean)) / (n - 2)).clamp_min(0)
    return apply(x, affine(variant, loo_mean, loo_var, shrinkage)).float()
