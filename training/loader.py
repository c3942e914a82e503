"""Batches of training clips that are a pure function of (seed, rank, iteration).

Each epoch is one pass of a ``DistributedSampler`` (one clip per video, shuffled with the
shared seed and the epoch, DESIGN.md §7) cut into batches of ``batch_size`` with the last
incomplete batch dropped. The batch sampler yields ``(epoch, video index)`` keys, which
:class:`dataset.train_clips.TrainClips` turns into clips; starting at iteration ``it``
gives the batches an uninterrupted run would have seen from ``it`` on, so one DataLoader
(with persistent workers) serves the whole run and a resume reproduces the data.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from dataset.worker_errors import ErrorsAsValues, collate_or_error
from util.errors import InputError


class ResumableBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` keys for iterations ``start_it .. max_iter - 1``.

    Args:
        dataset: the training dataset (one item per video).
        batch_size: clips per batch on this rank.
        rank, world_size: this process's place among the DDP ranks.
        seed: shuffle seed, the same on every rank.
        start_it, max_iter: the first iteration served and the total iteration count.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        start_it: int,
        max_iter: int,
    ):
        self.sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
        self.batch_size = batch_size
        self.batches_per_epoch = len(self.sampler) // batch_size
        if self.batches_per_epoch == 0:
            raise InputError(
                f"{len(self.sampler)} videos per process cannot fill a batch of {batch_size}: "
                "use a smaller --batch_size or fewer processes"
            )
        self.start_it = start_it
        self.max_iter = max_iter

    def __len__(self) -> int:
        return max(self.max_iter - self.start_it, 0)

    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """This rank's full batches of ``epoch`` (the shuffle of ``set_epoch(epoch)``)."""
        self.sampler.set_epoch(epoch)
        keys = [(epoch, int(i)) for i in self.sampler]
        b = self.batch_size
        return [keys[k * b : (k + 1) * b] for k in range(self.batches_per_epoch)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        it = self.start_it
        while it < self.max_iter:
            epoch, offset = divmod(it, self.batches_per_epoch)
            for batch in self.epoch_batches(epoch)[offset:]:
                if it >= self.max_iter:
                    return
                yield batch
                it += 1


def train_loader(
    dataset: Dataset,
    batches: ResumableBatches,
    num_workers: int,
    seed: int,
    pin_memory: bool,
) -> DataLoader:
    """A DataLoader over ``batches``; its own generator keeps the global torch RNG untouched.

    A batch with a file that cannot be read comes out as that file's ``InputError``.
    """
    return DataLoader(
        ErrorsAsValues(dataset),
        batch_sampler=batches,
        collate_fn=collate_or_error,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )
