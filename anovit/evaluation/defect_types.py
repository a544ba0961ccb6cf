"""AUROC per defect type (the MVTec layout's ``test/<type>`` folders): which defects a model misses.

For a defect type T, image AUROC ranks the normal ("good") test images against T's images only, and
pixel AUROC pools the pixels of the normal images and of T's images (from per-image histograms,
:mod:`anovit.evaluation.pixel_histograms`, so within their binning error of the exact value).
"""

from __future__ import annotations

import math

import pandas as pd

from .metrics import image_auroc
from .pixel_histograms import PixelHistograms, histogram_auroc

NORMAL_TYPE = "good"
COLUMNS = ("defect_type", "n_images", "image_auroc", "pixel_auroc")


def per_defect_type(rows: pd.DataFrame, histograms: PixelHistograms | None = None) -> pd.DataFrame:
    """One row per defect type of ``rows`` (test_scores.csv: path, label, defect_type, score): its number of
    images, image AUROC (normal images vs that type) and pixel AUROC (NaN without ``histograms``, or when the
    type's masks mark no pixel). Empty when ``rows`` holds no normal image. KeyError when ``histograms``
    lacks an image of ``rows``."""
    normal = rows[rows["label"] == 0]
    out = []
    for defect, group in rows[rows["label"] == 1].groupby("defect_type", sort=True):
        if normal.empty:
            break
        both = pd.concat([normal, group])
        pixel = math.nan
        if histograms is not None:
            try:
                pixel = histogram_auroc(histograms.select(both["path"].astype(str).tolist()))[0]
            except ValueError:  # no anomalous pixel marked for this type
                pixel = math.nan
        out.append({"defect_type": str(defect), "n_images": len(group),
                    "image_auroc": image_auroc(both["score"].to_numpy(float), both["label"].to_numpy(int)),
                    "pixel_auroc": pixel})
    return pd.DataFrame(out, columns=list(COLUMNS))
