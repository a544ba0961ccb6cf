"""anovit: AnoViT (ViT encoder + convolutional decoder) and the l2-CAE baseline for
reconstruction-based image anomaly detection and localization.

The public API, imported on first use so that ``import anovit.data`` stays light (and so that importing
a low layer never runs a higher one, see docs/architecture.md)::

    from anovit import TrainConfig, train, evaluate_run, Detector
    result = train(TrainConfig(dataset="synthetic", category="weave", epochs=1))
    detector = Detector.from_run(result.run_dir)
"""

from importlib import import_module
from typing import Any

from ._version import __version__

# public name -> the module that defines it (lowest layer first, as in docs/architecture.md)
_PUBLIC = {
    "AnoViT": "anovit.models.anovit", "AnoViTConfig": "anovit.models.anovit",
    "L2CAE": "anovit.models.cae", "L2CAEConfig": "anovit.models.cae", "SSIMCAE": "anovit.models.cae",
    "get_dataset": "anovit.data", "train_val_datasets": "anovit.data", "list_classes": "anovit.data",
    "Detector": "anovit.hub.pretrained",  # the scoring Detector with the Hub conventions (from_pretrained, ...)
    "TrainConfig": "anovit.training.config", "train": "anovit.training.trainer",
    "evaluate": "anovit.evaluation.evaluate", "evaluate_run": "anovit.evaluation.evaluate",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """The public names above, imported from their modules on first use."""
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'anovit' has no attribute {name!r}")
