"""Layer 6, measuring: metrics on raw scores (:mod:`.metrics`: image/pixel AUROC, AUPRO, F1-max), evaluating a
run on its test split (:mod:`.evaluate`), bootstrap intervals and paired differences (:mod:`.uncertainty`,
from per-image pixel histograms, :mod:`.pixel_histograms`), AUROC per defect type (:mod:`.defect_types`), a
run's statistics read back (:mod:`.run_statistics`), the resumable benchmark sweep and its results table
(:mod:`.benchmark`, :mod:`.results_table`, :mod:`.sweep`, :mod:`.launchers`) and ablations (:mod:`.ablations`,
:mod:`.ablation_variants`). May import training and everything below.
"""
