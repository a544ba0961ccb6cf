"""Layer 4, from a reconstruction to a decision: the paper's reconstruction loss (eq. 1), anomaly map (eq. 6),
Gaussian smoothing and image anomaly score (eq. 7, and its top-k pooling) in :mod:`.anomaly_map`; structure-
aware maps (SSIM, MSGMS) in :mod:`.structural`; anomaly maps calibrated by per-pixel statistics of normal maps
(:mod:`.calibration`) and their files in a run folder (:mod:`.stored_fit`: calibration.safetensors,
threshold.json); the :class:`~.detector.Detector` (model + sigma + precision + calibration + threshold);
scoring image files with a run folder's detector (:mod:`.run_scoring`). May import utils, models, data and
runs.
"""
