"""The order in which training reads a map-style dataset: a batch sampler whose whole state is (seed, epoch,
batch position), so a checkpoint that records the epoch and the batch resumes the exact order, and which under
torchrun hands each rank only its shard of every global batch (no rank reads the others' rows)."""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from vaezoo.data.seeds import PERMUTATION, derive_seed
from vaezoo.runtime.distributed import World


class EpochBatches(torch.utils.data.Sampler):
    """Global batches of `batch_size` rows of a random permutation of range(size) that is a function of
    (seed, epoch) alone; iterating yields this rank's shard (World.shard) of each global batch from batch
    `start` of epoch `epoch` on, as a list of row indices, skipping shards that are empty on this rank."""

    def __init__(self, size: int, batch_size: int, seed: int, world: World | None = None,
                 shuffle: bool = True) -> None:
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.world = world or World()
        self.epoch, self.start = 1, 0

    @property
    def steps(self) -> int:
        """Global batches in an epoch."""
        return math.ceil(self.size / self.batch_size)

    def set_position(self, epoch: int, start: int) -> None:
        """The next iteration reads epoch `epoch` from its batch `start` on."""
        self.epoch, self.start = epoch, start

    def permutation(self, epoch: int) -> torch.Tensor:
        """The row order of epoch `epoch` (identity without shuffling)."""
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, PERMUTATION, epoch))
        return torch.randperm(self.size, generator=generator)

    def global_rows(self, order: torch.Tensor, index: int) -> torch.Tensor:
        """The rows of global batch `index` of the epoch whose permutation is `order`."""
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch."""
        start, stop = self.world.shard(len(rows))
        return rows[start:stop]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.permutation(self.epoch)
        for index in range(self.start, self.steps):
            mine = self.shard(self.global_rows(order, index))
            if len(mine):
                yield mine.tolist()

    def batch_rows(self, index: int) -> int:
        """The number of rows in global batch `index`."""
        return min(self.batch_size, self.size - index * self.batch_size)

    def __len__(self) -> int:
        shards = (self.world.shard(self.batch_rows(index)) for index in range(self.start, self.steps))
        return sum(1 for start, stop in shards if start < stop)
