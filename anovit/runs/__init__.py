"""Layer 3, run folders on disk: the files of a run (:mod:`.checkpoint`: weights, config.json, metrics.json,
training.json, atomic writes), its writer lock (:mod:`.lock`), resume points (:mod:`.resume`), the typed record
of a run folder read once (:mod:`.record`, its metrics.json part in :mod:`.metrics_record`), finding and
describing runs (:mod:`.catalog`) and which runs may be averaged in a table (:mod:`.provenance`). May import
utils, models and data.
"""
