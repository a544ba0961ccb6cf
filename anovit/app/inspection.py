"""Inspect page: score one uploaded image (or a test image) with a checkpoint's
:class:`~anovit.scoring.detector.Detector` and decide at the threshold it fitted on the normal validation
images held out during training: an image is anomalous when it scores above every one of them.
``anovit score`` goes through the same detector."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import streamlit as st
import torch

from ..data.imageio import IMAGE_EXTENSIONS, SUFFIXES_TEXT, decode, to_rgb
from ..scoring.detector import Detector, decision
from ..utils.errors import AnovitError, DatasetError
from ..scoring.run_scoring import prepare
from ..visualization.imaging import overlay, to_rgb_uint8
from ..visualization.figures import Panel, Scale, panel_grid_figure, score_histogram_figure
from .common import page_header, show_errors
from .pickers import checkpoint_picker, load_dataset
from .predictions import fitted_detector, test_scores

UPLOAD_TYPES = [suffix[1:] for suffix in IMAGE_EXTENSIONS]
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_PIXELS = 40_000_000


class UploadError(AnovitError):
    """An uploaded file that cannot be scored."""


def decode_upload(
    data: bytes, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode an uploaded image to uint8 (H, W, 3), upright, by the one decision of the datasets
    (anovit.data.imageio.decode); too large, unreadable or refused files raise UploadError in one sentence."""
    if len(data) > max_bytes:
        raise UploadError(
            f"{name} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB (expected one image)"
        )
    try:
        return decode(io.BytesIO(data), lambda im, _: to_rgb(im), name=name, max_pixels=max_pixels)
    except DatasetError as err:
        raise UploadError(str(err)) from None


def inspect_image(detector: Detector, image: torch.Tensor) -> dict[str, Any]:
    """Reconstruction (uint8 H,W,3), anomaly map (H,W), anomaly score and decision of one prepared image
    (1, C, S, S), all from ``detector`` (which must have a threshold)."""
    recon, maps, scores = detector.outputs(image)
    score = float(scores[0])
    return {"recon": to_rgb_uint8(recon[0].clamp(0, 1)), "anomaly_map": maps[0].numpy(), "score": score,
            "decision": decision(score, detector.threshold)}


class Source:
    """The image to score, (1, C, S, S) in [0, 1], its name and, for a test image, what the split knows of it."""

    def __init__(self, image: torch.Tensor, name: str, item: dict[str, Any] | None = None) -> None:
        self.image, self.name, self.item = image, name, item


def test_image_label(row: Any) -> str:
    """How a test image is offered in the picker: its index, defect type and anomaly score."""
    return f"#{row.index} · {row.defect_type} · score {row.score:.4g}"


def _source_image(run: Any, ref: Any, image_size: int) -> Source | None:
    """An upload resized as the datasets resize, or a test image (picked by defect type) exactly as the
    evaluation scores it; None (and nothing else drawn) while there is none or the upload is refused."""
    source = st.radio("Image", ["Upload an image", "A test image of the class"], horizontal=True)
    if source == "Upload an image":
        upload = st.file_uploader(
            f"{SUFFIXES_TEXT}, up to {MAX_UPLOAD_MB} MB",
            type=UPLOAD_TYPES,
            max_upload_size=MAX_UPLOAD_MB,
            key=f"upload-{run.name}",
        )
        if upload is None:
            st.info("Upload an image to score it, or pick a test image of the checkpoint's class.")
            return None
        try:
            return Source(prepare(decode_upload(upload.getvalue(), upload.name), image_size), upload.name)
        except UploadError as err:
            st.error(str(err))
            return None
    scores = test_scores(run, ref, image_size)
    types = sorted(scores["defect_type"].unique(), key=lambda t: (t != "good", t))
    left, right = st.columns([1, 2])
    kind = left.selectbox("Defect type", types, index=min(1, len(types) - 1))  # a defect first, when there is one
    of_kind = scores[scores["defect_type"] == kind]
    labels = {int(r.index): test_image_label(r) for r in of_kind.itertuples()}
    index = right.selectbox(f"Test image ({len(of_kind)} of this type)", list(labels), format_func=labels.get)
    item = load_dataset(ref, "test", image_size)[int(index)]
    return Source(item["image"][None], f"test #{index} ({item['defect_type']})", {**item, "scores": scores})


def _histogram(source: Source, val: np.ndarray, score: float, threshold: float) -> None:
    """Where the score lies: among the normal validation scores, and for a test image among the test split's
    scores by defect type (shared bins)."""
    if source.item is None:
        figure = score_histogram_figure(val, ["normal validation"] * len(val), threshold, marks={source.name: score},
                                        bins_of=np.r_[val, score])
    else:
        test = source.item["scores"]
        figure = score_histogram_figure(test["score"], test["defect_type"], threshold, marks={source.name: score},
                                        bins_of=np.r_[test["score"], val, score])
    st.plotly_chart(figure, key="inspect-hist")
    st.caption("The image's score (red line) among "
               + ("the normal validation images'" if source.item is None else "the test split's, by defect type")
               + "; dashed: the threshold.")


@show_errors
def render() -> None:
    """The Inspect page."""
    page_header("Inspect", "Score one image with a checkpoint: reconstruction, anomaly map, score and decision.")
    checkpoint = checkpoint_picker("inspect")
    if checkpoint is None:
        return
    run, ref, model = checkpoint
    source = _source_image(run, ref, model.config.image_size)
    if source is None:
        return
    image, name = source.image, source.name
    detector = fitted_detector(run, ref)
    threshold, val = detector.threshold, detector.validation_scores_
    result = inspect_image(detector, image)
    verdict = result["decision"]
    c1, c2, c3 = st.columns(3)
    pooled = "max of the map, eq. 7" if detector.pooling == "max" else f"mean of the map's top {detector.top_percent:g} %"
    image_map = detector.calibration.fitted(detector.calibration.image)  # what a small class's images could fit
    calibrated = "" if image_map == "none" else f", {image_map} map"
    c1.metric(f"Anomaly score ({pooled}{calibrated})", f"{result['score']:.4g}")
    c2.metric(
        "Threshold (validation)",
        f"{threshold:.4g}",
        help=f"Just above the largest score among the {len(val)} normal validation images held out during "
        "training; anomalous means score >= threshold",
    )
    (c3.error if verdict == "anomalous" else c3.success)(f"Decision: **{verdict}**")
    if source.item is not None:
        truth = "anomalous" if int(source.item["label"]) else "normal"
        right = "right" if truth == verdict else "wrong"
        st.markdown(f"True label: **{truth}** ({source.item['defect_type']}): the decision is **{right}**.")
    vmax = max(threshold, float(result["anomaly_map"].max()))
    shown = to_rgb_uint8(image[0])
    panels = [
        Panel(name, shown),
        Panel("reconstruction", result["recon"]),
        Panel("anomaly map", result["anomaly_map"], "error"),
        Panel("overlay", overlay(shown, result["anomaly_map"], 0.0, vmax)),
    ]
    if source.item is not None:
        panels.append(Panel("ground truth", np.asarray(source.item["mask"]).squeeze().astype(bool)))
    st.plotly_chart(
        panel_grid_figure([panels], {"error": Scale(0.0, vmax)}, cell_px=260), key="inspect-panels", theme=None
    )
    _histogram(source, val, result["score"], threshold)
