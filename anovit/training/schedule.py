"""Learning-rate schedules of a training run, as pure functions of the optimiser step.

A schedule is a function of the global step alone (no optimiser state of its own), so a resumed run
continues it exactly where the killed one stopped.
"""

from __future__ import annotations

import math

# "constant": the paper's, every preset's and that of runs recorded before the field; "cosine": cosine annealing
# from the run's lr to 0 over all its steps (Loshchilov & Hutter, SGDR, 2017, without restarts; timm's
# CosineLRScheduler). Screened for AnoViT's cpu-default on the validation sets (stop 31) and not adopted.
LR_SCHEDULES = ("constant", "cosine")


def scheduled_lr(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``.

    "constant" gives ``lr`` at every step; "cosine" gives ``lr * (1 + cos(pi * step / total_steps)) / 2``:
    ``lr`` at step 0, ``lr / 2`` half-way, towards 0 at the last step.

    Raises:
        ValueError: an unknown ``schedule``, or ``step`` outside [0, total_steps).
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {list(LR_SCHEDULES)}")
    if not 0 <= step < total_steps:
        raise ValueError(f"step must be in [0, {total_steps}); got {step}")
    if schedule == "constant":
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
