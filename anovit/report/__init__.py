"""Layer 7, our numbers beside the paper's: the paper's tables as data (:mod:`.paper_tables`), where we deviate
(:mod:`.deviations`), results tables per class (:mod:`.tables`) with their intervals and per-defect-type
tables (:mod:`.intervals`), their Markdown/CSV rendering (:mod:`.render`) and the offline Table 2 reproduction
(:mod:`.reproduction`). May import evaluation and everything below.
"""
