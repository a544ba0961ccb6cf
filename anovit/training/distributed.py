"""Data-parallel training on ``torch.distributed``: ``torchrun --nproc_per_node N -m anovit train ...``.

The trainer asks a :class:`Parallel` for what differs between one process and N: its device, its data
loaders, the model wrapper (``DistributedDataParallel``), sums across processes, who writes the run
folder. :data:`SINGLE` (one process) does exactly what the trainer did before, so a run outside
torchrun is bit-for-bit unchanged.

The rules of an N-process run:

- ``--batch-size`` is the *global* batch: each process takes ``batch_size / N`` images of every batch
  (it must divide). The batches are those of the one-process loader (same seed, same order), so the
  learning rate needs no scaling and, without random augmentation, N processes reproduce the
  one-process run up to float rounding (``tests/test_distributed.py`` checks it). This replaces
  ``DistributedSampler``, whose own permutation would give other batches than one process.
- DDP averages the gradients (the mean over the global batch, as one process), then clipping and
  Adam see the same numbers on every process.
- The validation split is sharded (process r takes images r, r+N, ...) and the loss sums are
  all-reduced, so every process gets the same validation loss and selects the same best epoch.
- Rank 0 alone holds the run folder's lock and writes its files; its failures (a locked folder, a
  refused resume) reach every process (:meth:`Parallel.agree`).
- Each process takes ``cuda:LOCAL_RANK`` (``--device auto`` or ``cuda``; NCCL) or the CPU (gloo).
- Augmentation draws its random numbers per process (rank 0's stream is the one-process one).
- An error in one process (a non-finite loss, a full disk on rank 0) ends it; torchrun then ends the others.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, Subset, WeightedRandomSampler

from ..utils.errors import ConfigError
from ..runs.lock import run_lock
from ..utils.runtime import resolve_device

T = TypeVar("T")


class RankBatches(Sampler[list[int]]):
    """This process's share of every batch of ``batches``: a batch of B indices is cut into
    ``world_size`` parts of ``B // world_size`` (a remainder of a short last batch is dropped) and
    process ``rank`` takes part ``rank``; together the processes see exactly ``batches``."""

    def __init__(self, batches: BatchSampler, rank: int, world_size: int) -> None:
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            share = len(batch) // self.world_size
            yield batch[self.rank * share:(self.rank + 1) * share]

    def __len__(self) -> int:
        return len(self.batches)


@dataclass(frozen=True)
class Parallel:
    """Process ``rank`` of ``world_size`` (``local_rank`` on its machine); world_size 1: one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder and reports progress (rank 0)."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The device of this process for ``--device name``: ``cuda:LOCAL_RANK`` for "auto" (with CUDA) and
        "cuda" under torchrun. ConfigError for a numbered device under torchrun (two processes on one GPU)."""
        if self.world_size == 1:
            return resolve_device(name)
        if name in ("auto", "cuda") and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        if name in ("auto", "cpu"):
            return torch.device("cpu")
        raise ConfigError(f"field 'device' must be auto, cuda or cpu under torchrun (each process takes "
                          f"cuda:LOCAL_RANK); got {name!r}" + ("" if torch.cuda.is_available() else " and CUDA is "
                                                                "not available"))

    def loaders(self, train_set: Dataset, val_set: Dataset, batch_size: int,
                generator: torch.Generator, epoch_images: int | None = None,
                weights: torch.Tensor | None = None) -> tuple[DataLoader, DataLoader]:
        """(training loader, validation loader). Training: shuffled by ``generator``; ``epoch_images``
        images per epoch (None: one pass over ``train_set``; more: whole shuffled passes then a random part
        of one, so a small split repeats; fewer: a random part); with ``weights`` (one per image, e.g.
        :func:`anovit.data.unified.class_weights`) the epoch's images are drawn with replacement in proportion
        to them instead (``WeightedRandomSampler``); the last short batch is dropped unless it
        is the only one; under torchrun each process loads its share of the same global batches.
        Validation: in order, process r loading images r, r+N, ...

        Raises ConfigError when ``batch_size`` is not a multiple of the number of processes or the
        training split has fewer images than processes."""
        n = len(train_set) if epoch_images is None else epoch_images  # type: ignore[arg-type]
        sampler = (RandomSampler(train_set, num_samples=epoch_images, generator=generator) if weights is None else
                   WeightedRandomSampler(weights, n, replacement=True, generator=generator))
        if self.world_size == 1:
            train_loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler,
                                      drop_last=n > batch_size, generator=generator)
            return train_loader, DataLoader(val_set, batch_size=batch_size)
        if batch_size % self.world_size or len(train_set) < self.world_size:  # type: ignore[arg-type]
            raise ConfigError(f"field 'batch_size' ({batch_size}, the global batch) must be a multiple of the "
                              f"{self.world_size} processes, and the training split ({len(train_set)} images) must hold at "
                              "least one image per process")
        batches = BatchSampler(sampler, batch_size, drop_last=n > batch_size)
        train_loader = DataLoader(train_set, batch_sampler=RankBatches(batches, self.rank, self.world_size),
                                  generator=generator)  # the generator draws as the one-process loader's
        shard = Subset(val_set, range(self.rank, len(val_set), self.world_size))  # type: ignore[arg-type]
        return train_loader, DataLoader(shard, batch_size=batch_size // self.world_size)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` itself, or under torchrun ``DistributedDataParallel(model)`` (rank 0's weights are
        broadcast to every process; the gradients are averaged in ``backward``)."""
        if self.world_size == 1:
            return model
        device = next(model.parameters()).device
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def sums(self, *values: float) -> tuple[float, ...]:
        """The sums of ``values`` over all processes (``values`` themselves in one process)."""
        if self.world_size == 1:
            return values
        device = torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
        total = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return tuple(total.tolist())

    def agree(self, fn: Callable[[], T]) -> T:
        """``fn()`` run by rank 0 alone, its result (or its exception, raised again) shared with every process."""
        if self.world_size == 1:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except Exception as err:  # every process must learn it, or the others wait for ever
                box[0] = ("error", err)
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    @contextmanager
    def lock(self, run_dir: Path) -> Iterator[None]:
        """Hold ``run_dir``'s lock (:func:`anovit.runs.lock.run_lock`) on rank 0 for the ``with`` block;
        every process raises its RunLockedError."""
        with ExitStack() as stack:
            self.agree(lambda: stack.enter_context(run_lock(run_dir)) if self.is_main else None)
            yield

    def seed_augmentation(self, seed: int, epoch: int) -> None:
        """Give processes other than rank 0 their own stream of augmentation draws (else every process
        would draw the same rotations and flips for its share of the batch); rank 0 keeps its stream."""
        if self.rank:
            torch.manual_seed(seed * 1_000_003 + self.rank * 10_007 + epoch)

    def record(self) -> dict[str, Any]:
        """What metrics.json records about the processes ({} for one process)."""
        return {} if self.world_size == 1 else {"processes": self.world_size}


SINGLE = Parallel()


def current() -> Parallel:
    """The :class:`Parallel` of this process: its rank in the initialised process group, else :data:`SINGLE`."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return SINGLE
    return Parallel(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def join(device: str) -> Parallel:
    """This process's place in the run that torchrun started (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and
    ``MASTER_*`` environment variables): the process group is initialised on the first call (NCCL for
    CUDA devices, gloo for the CPU) and lives as long as the process. Outside torchrun, or with one
    process, nothing is initialised and :data:`SINGLE` is returned.

    ``device`` is the ``--device`` asked for; ConfigError as :meth:`Parallel.device`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or dist.is_initialized():
        return current()
    par = Parallel(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    where = par.device(device)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    dist.init_process_group("nccl" if where.type == "cuda" else "gloo")
    atexit.register(dist.destroy_process_group)  # a second init in one process would wait for ever
    return par
