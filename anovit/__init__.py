"""anovit: AnoViT (ViT encoder + convolutional decoder) and the l2-CAE baseline for
reconstruction-based image anomaly detection and localization."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Detector"]


def __getattr__(name: str) -> Any:
    """``anovit.Detector``, imported on first use so that ``import anovit.data`` stays light."""
    if name == "Detector":
        from .pretrained import Detector  # the scoring Detector with the Hub conventions

        return Detector
    raise AttributeError(f"module 'anovit' has no attribute {name!r}")
