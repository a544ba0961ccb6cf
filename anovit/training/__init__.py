"""Layer 5, training: the run's :class:`~.config.TrainConfig` (training.json), the trainer (:mod:`.trainer`) and
data-parallel training under torchrun (:mod:`.distributed`). May import every layer below (utils, models,
data, runs, scoring).
"""
