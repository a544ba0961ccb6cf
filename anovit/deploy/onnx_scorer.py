"""Running an exported scoring graph (:mod:`anovit.deploy.export`) with onnxruntime: no model code, no
training stack; only the export folder (model.onnx + config.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..runs import checkpoint as ckpt
from ..utils.errors import CheckpointError
from .export import EXPORT_DIR, INPUT, ONNX_FILE, require_onnx_extra


def export_folder(path: Path) -> Path:
    """The export folder of ``path``: itself when it holds model.onnx, else its onnx/ subfolder.

    Raises CheckpointError naming both places when neither holds model.onnx and config.json.
    """
    path = Path(path)
    for folder in (path, path / EXPORT_DIR):
        if (folder / ONNX_FILE).is_file() and (folder / ckpt.CONFIG).is_file():
            return folder
    raise CheckpointError(
        f"neither {path} nor {path / EXPORT_DIR} holds {ONNX_FILE} and {ckpt.CONFIG}; "
        f"run `anovit export {path} --format onnx` first"
    )


class OnnxScorer:
    """An onnxruntime session on an exported graph: prepared images (B, C, S, S) in [0, 1] ->
    (anomaly maps (B, S, S), anomaly scores (B,)); ``image_size``, ``sigma`` and ``threshold`` from its
    config. Runs on CUDA when onnxruntime-gpu provides it, else on the CPU."""

    def __init__(self, path: Path) -> None:
        require_onnx_extra("onnxruntime")
        import onnxruntime as ort

        folder = export_folder(path)
        self.config = ckpt.read_json(folder / ckpt.CONFIG)
        try:
            self.image_size = int(self.config["image_size"])
            self.sigma = float(self.config["sigma"])
            self.threshold = float(self.config["threshold"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{folder / ckpt.CONFIG} lacks a numeric image_size, sigma or threshold ({err!r}); export again"
            ) from None
        try:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
            self.session = ort.InferenceSession(str(folder / ONNX_FILE), providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"{folder / ONNX_FILE} is not a loadable ONNX model: {err}") from None

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps, scores = self.session.run(None, {INPUT: np.ascontiguousarray(images.numpy(), dtype=np.float32)})
        return torch.from_numpy(maps), torch.from_numpy(scores)
