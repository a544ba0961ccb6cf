"""Layer 6, measuring: metrics on raw scores (:mod:`.metrics`: image/pixel AUROC, AUPRO, F1-max), evaluating a
run on its test split (:mod:`.evaluate`), the resumable benchmark sweep and its results table
(:mod:`.benchmark`, :mod:`.results_table`, :mod:`.sweep`, :mod:`.launchers`) and ablations (:mod:`.ablations`,
:mod:`.ablation_variants`). May import training and everything below.
"""
