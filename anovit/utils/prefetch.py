"""Overlapping data loading with the model: the next item of an iterable fetched in a background thread."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(iterable: Iterable[T]) -> Iterator[T]:
    """The items of ``iterable`` in order, each next one fetched in a background thread while the caller works
    on the current one.

    A DataLoader's batch (decoding, collation) then loads while the model runs its forward pass: Pillow,
    zlib and torch release the GIL, so on a machine with an idle core the loading hides behind the model
    (benchmarks/scoring_throughput.py). ``iter(iterable)`` runs in the calling thread, so a random draw it
    makes (a DataLoader's base seed) comes where it always did. An exception the iterable raises is raised
    here, at the item where it occurred; leaving the loop early waits for the one item in flight.
    """
    items = iter(iterable)
    with ThreadPoolExecutor(1, thread_name_prefix="anovit-prefetch") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item
