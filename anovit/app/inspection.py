"""Inspect page: score one uploaded image (or a test image) with a checkpoint's
:class:`~anovit.detector.Detector` and decide at the threshold it fitted on the normal validation
images held out during training: an image is anomalous when it scores above every one of them.
``anovit score`` goes through the same detector."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import streamlit as st
import torch
from PIL import Image

from ..data.imageio import ImageInfo, decode, to_rgb
from ..detector import Detector, decision
from ..errors import AnovitError, DatasetError
from ..inference import prepare
from ..imaging import overlay, to_rgb_uint8
from ..viz import Panel, Scale, panel_grid_figure, score_histogram_figure
from .common import page_header, show_errors
from .pickers import checkpoint_picker, load_dataset
from .predictions import fitted_detector

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"]
UPLOAD_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "MPO")  # as Pillow names them (MPO: multi-picture JPEG)
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_PIXELS = 40_000_000


class UploadError(AnovitError):
    """An uploaded file that cannot be scored."""


def decode_upload(
    data: bytes, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode an uploaded PNG/JPEG/BMP/TIFF to uint8 (H, W, 3), upright, as the datasets decode files
    (anovit.data.imageio); too large, unreadable or other files raise UploadError in one sentence."""
    if len(data) > max_bytes:
        raise UploadError(
            f"{name} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB (expected one image)"
        )

    def rgb(im: Image.Image, info: ImageInfo) -> np.ndarray:
        if info.format not in UPLOAD_FORMATS:
            raise UploadError(f"{name} is a {info.format} file; expected PNG, JPEG, BMP or TIFF")
        return to_rgb(im)

    try:
        return decode(io.BytesIO(data), rgb, name=name, max_pixels=max_pixels)
    except DatasetError as err:
        raise UploadError(str(err)) from None


def inspect_image(detector: Detector, image: torch.Tensor) -> dict[str, Any]:
    """Reconstruction (uint8 H,W,3), anomaly map (H,W), anomaly score and decision of one prepared image
    (1, C, S, S), all from ``detector`` (which must have a threshold)."""
    recon, maps, scores = detector.outputs(image)
    score = float(scores[0])
    return {"recon": to_rgb_uint8(recon[0].clamp(0, 1)), "anomaly_map": maps[0].numpy(), "score": score,
            "decision": decision(score, detector.threshold)}


def _source_image(run_key: str, ref: Any, image_size: int) -> tuple[torch.Tensor, str] | None:
    """The image to score, (1, C, S, S) in [0, 1], and its name: an upload resized as the datasets resize,
    or a test image exactly as the evaluation scores it."""
    source = st.radio("Image", ["Upload an image", "A test image of the class"], horizontal=True)
    if source == "Upload an image":
        upload = st.file_uploader(
            f"PNG, JPEG, BMP or TIFF, up to {MAX_UPLOAD_MB} MB",
            type=UPLOAD_TYPES,
            max_upload_size=MAX_UPLOAD_MB,
            key=f"upload-{run_key}",
        )
        if upload is None:
            st.info("Upload an image to score it, or pick a test image of the checkpoint's class.")
            return None
        try:
            return prepare(decode_upload(upload.getvalue(), upload.name), image_size), upload.name
        except UploadError as err:
            st.error(str(err))
            return None
    dataset = load_dataset(ref, "test", image_size)
    index = st.number_input(f"Test image index (0 to {len(dataset) - 1})", 0, len(dataset) - 1, 0)
    item = dataset[int(index)]
    return item["image"][None], f"test #{index} ({item['defect_type']})"


@show_errors
def render() -> None:
    """The Inspect page."""
    page_header("Inspect", "Score one image with a checkpoint: reconstruction, anomaly map, score and decision.")
    checkpoint = checkpoint_picker("inspect")
    if checkpoint is None:
        return
    run, ref, model = checkpoint
    size = model.config.image_size
    picked = _source_image(run.name, ref, size)
    if picked is None:
        return
    image, name = picked
    detector = fitted_detector(run, ref)
    threshold, val = detector.threshold, detector.validation_scores_
    result = inspect_image(detector, image)
    verdict = result["decision"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Anomaly score (max of the map, eq. 7)", f"{result['score']:.4g}")
    c2.metric(
        "Threshold (validation)",
        f"{threshold:.4g}",
        help=f"Just above the largest score among the {len(val)} normal validation images held out during "
        "training; anomalous means score >= threshold",
    )
    (c3.error if verdict == "anomalous" else c3.success)(f"Decision: **{verdict}**")
    vmax = max(threshold, float(result["anomaly_map"].max()))
    shown = to_rgb_uint8(image[0])
    panels = [
        [
            Panel(name, shown),
            Panel("reconstruction", result["recon"]),
            Panel("anomaly map", result["anomaly_map"], "error"),
            Panel("overlay", overlay(shown, result["anomaly_map"], 0.0, vmax)),
        ]
    ]
    st.plotly_chart(
        panel_grid_figure(panels, {"error": Scale(0.0, vmax)}, cell_px=260), key="inspect-panels", theme=None
    )
    st.plotly_chart(
        score_histogram_figure(np.r_[val, result["score"]], ["normal validation"] * len(val) + [name], threshold),
        key="inspect-hist",
    )
