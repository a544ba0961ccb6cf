"""anovit: AnoViT (ViT encoder + convolutional decoder) and the l2-CAE baseline for
reconstruction-based image anomaly detection and localization."""

__version__ = "0.1.0"
