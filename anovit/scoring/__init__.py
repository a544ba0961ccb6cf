"""Layer 4, from a reconstruction to a decision: the paper's reconstruction loss (eq. 1), anomaly map (eq. 6),
Gaussian smoothing and image anomaly score (eq. 7) in :mod:`.anomaly_map`; structure-aware maps (SSIM, MSGMS)
in :mod:`.structural`; the :class:`~.detector.Detector` (model + sigma + precision + threshold); scoring image
files with a run folder's detector (:mod:`.run_scoring`). May import utils, models, data and runs.
"""
