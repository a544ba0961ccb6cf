"""``anovit export RUN --format onnx``: the whole scoring path of a run as one ONNX graph, beside the
config a deployment needs to feed it and decide.

The graph takes ``image`` float32 (batch, C, S, S), RGB in [0, 1] after resizing to S (the run's
image size); normalisation (AnoViT: its encoder's mean/std) happens inside. It returns
``anomaly_map`` (batch, S, S): eq. (6) (or the run's score function's map,
:func:`anovit.scoring.anomaly_map.error_map`) smoothed with the run's Gaussian sigma, and ``anomaly_score``
(batch,): eq. (7). A run with a calibration (:mod:`anovit.scoring.calibration`) has its statistics embedded as
constants: the map is then the pixel-calibrated one and the score pools (max or top-k mean) the
image-calibrated one, as :class:`~anovit.scoring.detector.Detector` scores. The batch dimension is dynamic; the opset is :data:`OPSET` (torch's dynamo
exporter, which needs onnxscript). Everything is in one file (no external weights; ONNX caps a
single file at 2 GB, far above the paper preset's ViT-B/16). The decision, ``anomaly_score >=
threshold`` (:func:`anovit.scoring.detector.is_anomalous`), is left to the caller, with the threshold from
``config.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .._version import __version__
from ..runs import checkpoint as ckpt
from ..utils.errors import AnovitError
from ..scoring.run_scoring import run_detector
from ..runs.record import verbatim_json
from ..scoring.calibration import apply
from ..scoring.detector import Detector
from ..scoring.anomaly_map import error_map, gaussian_smooth, pooled_score
from ..scoring.stored_fit import THRESHOLD_RULE
from ..utils.validation import finite_float, non_negative_float

OPSET = 18
ONNX_FILE = "model.onnx"
EXPORT_DIR = "onnx"  # default output folder inside the run folder
INPUT, OUTPUTS = "image", ("anomaly_map", "anomaly_score")


class ExportError(AnovitError):
    """An export that cannot be done (missing extra, unsupported format)."""


class ScoringGraph(nn.Module):
    """A detector's model followed by eq. (6), Gaussian smoothing, its calibration (offsets and scales as
    constants) and pooling: images -> (pixel-calibrated anomaly maps, pooled image-calibrated anomaly scores)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.model, self.sigma, self.score_function = detector.model, detector.sigma, detector.score_function
        self.pooling, self.top_percent = detector.pooling, detector.top_percent
        for purpose, variant in (("image", detector.calibration.image), ("pixel", detector.calibration.pixel)):
            transform = detector.calibration.transform(variant)
            for name, value in zip(("offset", "scale"), transform or (None, None)):
                self.register_buffer(f"{purpose}_{name}", None if value is None else value.float().cpu().clone())

    def _calibrated(self, maps: torch.Tensor, purpose: str) -> torch.Tensor:
        offset = getattr(self, f"{purpose}_offset")
        return maps if offset is None else apply(maps, (offset, getattr(self, f"{purpose}_scale")))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = gaussian_smooth(error_map(images, self.model(images).float(), self.score_function), self.sigma)
        return self._calibrated(maps, "pixel"), pooled_score(self._calibrated(maps, "image"), self.pooling, self.top_percent)


def require_onnx_extra(*modules: str) -> None:
    """Raise ExportError naming the extra when one of ``modules`` is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"{', '.join(missing)} is not installed; install the onnx extra: pip install 'anovit[onnx]'")


def normalisation(model: nn.Module) -> dict[str, Any]:
    """The normalisation the graph applies to its [0, 1] input (AnoViT: the encoder's mean/std; l2-CAE: none)."""
    if hasattr(model, "mean") and hasattr(model, "std"):
        return {"mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
                "applied": "inside the graph"}
    return {"mean": None, "std": None, "applied": "none: the model takes [0, 1] pixels"}


def export_config(detector: Detector, threshold_source: str, run_dir: Path) -> dict[str, Any]:
    """The config.json written beside model.onnx: everything needed to score an image as anovit does."""
    model, sigma, threshold = detector.model, detector.sigma, float(detector.threshold)
    size, channels = model.config.image_size, model.config.in_channels
    return {
        "format": "onnx", "file": ONNX_FILE, "opset": OPSET, "anovit_version": __version__,
        "model": verbatim_json(run_dir, ckpt.CONFIG), "source_run": str(run_dir.resolve()),
        "image_size": size,
        "input": {"name": INPUT, "shape": ["batch", channels, size, size], "dtype": "float32",
                  "layout": "NCHW, RGB", "range": [0.0, 1.0],
                  "resize": "to image_size x image_size, bilinear with antialiasing, rounded to uint8, then / 255"},
        "normalisation": normalisation(model),
        "outputs": {OUTPUTS[0]: ["batch", size, size], OUTPUTS[1]: ["batch"]},
        "sigma": sigma, "threshold": threshold, "threshold_source": threshold_source,
        "image_calibration": detector.calibration.image, "pixel_calibration": detector.calibration.pixel,
        "calibration_shrinkage": detector.calibration.shrinkage, "pooling": detector.pooling,
        "pooling_top_percent": detector.top_percent, "calibration": "embedded in the graph as constants",
        "decision": "anomalous when anomaly_score >= threshold, else normal",
    }


def export_onnx(
    run_dir: Path, output: Path | None = None, *, sigma: float | None = None, threshold: float | None = None,
    notify: Any = None,
) -> Path:
    """Write ``model.onnx`` and ``config.json`` of ``run_dir`` into ``output`` (default RUN/onnx); the folder.

    Without ``threshold``, the run's float32 detector's: the stored one where it was fitted in float32
    at these settings, else one fitted on the run's validation images (:func:`anovit.scoring.run_scoring.run_detector`,
    which tells ``notify``); without ``sigma``, the run's own (stored in its training.json,
    :attr:`anovit.runs.record.RunRecord.sigma`). The run's score function (:attr:`anovit.runs.record.RunRecord.score`),
    calibration and pooling are embedded. Raises ExportError without the onnx extra.
    """
    require_onnx_extra("onnx", "onnxscript")
    run_dir = Path(run_dir)
    # the graph computes in fp32: so does its threshold (a stored bf16 fit is refit in memory, said in one line)
    detector = run_detector(run_dir, sigma, threshold, bf16=False, device="cpu", notify=notify)
    model = detector.model
    if threshold is not None:
        source = "given on the command line"
    else:
        stored = "; stored with the run" if detector.threshold_source_ == "stored" else ""
        source = f"{THRESHOLD_RULE} ({len(detector.validation_paths_ or [])} images{stored})"
    output = Path(output) if output is not None else run_dir / EXPORT_DIR
    output.mkdir(parents=True, exist_ok=True)
    size = model.config.image_size
    example = torch.rand(2, model.config.in_channels, size, size)  # batch 2: a batch of 1 would be specialised
    batch = {"images": {0: torch.export.Dim("batch", min=1)}}
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)  # "Attribute type is ambiguous" notes of the translator
    with torch.no_grad():
        torch.onnx.export(
            ScoringGraph(detector).eval(), (example,), output / ONNX_FILE, dynamo=True, opset_version=OPSET,
            input_names=[INPUT], output_names=list(OUTPUTS), dynamic_shapes=batch, external_data=False, verbose=False,
        )
    ckpt.write_json(output / ckpt.CONFIG, export_config(detector, source, run_dir))
    return output


def _cmd_export(args: argparse.Namespace) -> int:
    out = export_onnx(args.run_dir, args.output, sigma=args.sigma, threshold=args.threshold, notify=print)
    print(f"wrote {out / ONNX_FILE} and {out / ckpt.CONFIG}")
    return 0


def add_export_parser(sub: Any) -> None:
    """Register ``anovit export``."""
    p = sub.add_parser("export", help="export a run's scoring path (model, anomaly map, score) to ONNX")
    p.add_argument("run_dir", type=Path, help="run folder (model.safetensors + config.json)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: %(default)s)")
    p.add_argument("--output", type=Path,
                   help=f"folder for {ONNX_FILE} and config.json (default: RUN_DIR/{EXPORT_DIR})")
    p.add_argument("--sigma", type=non_negative_float,
                   help="Gaussian smoothing baked into the graph (default: the run's, from its training.json)")
    p.add_argument("--threshold", type=finite_float,
                   help="decision threshold (default: computed on the run's validation images, which must be present)")
    p.set_defaults(func=_cmd_export)
