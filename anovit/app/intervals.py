"""How the pages state an AUROC's meaning: chance level, 95 % bootstrap interval, below-chance flag
(the numbers are :mod:`anovit.evaluation.uncertainty`'s, read from the run folder by :mod:`anovit.evaluation.run_statistics`)."""

from __future__ import annotations

from ..evaluation.uncertainty import CHANCE_AUROC, Interval, chance_note

INTERVAL_NOTE = ("95 % interval: percentile bootstrap over the test images (1000 resamples, normal and anomalous "
                 "images resampled separately; pixel AUROC resamples whole images with their pixels).")


def interval_caption(value: float | None, interval: Interval | None) -> str:
    """``95 % CI [0.871, 0.948] · chance 0.5``, with "interval n/a" when there is none and the below-chance note."""
    if value is None:
        return ""
    span = f"95 % CI [{interval.low:.3f}, {interval.high:.3f}]" if interval is not None else "interval n/a"
    note = chance_note(value, interval)
    return f"{span} · chance {CHANCE_AUROC:g}" + (f" · :red[{note}]" if note else "")


def below_chance(values: dict[str, float | None]) -> list[str]:
    """The names of ``values`` (label -> AUROC) that lie below chance."""
    return [name for name, v in values.items() if v is not None and v < CHANCE_AUROC]
