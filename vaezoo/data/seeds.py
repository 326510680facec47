"""Seeds derived from a run's seed and counters (a purpose, an epoch) by a hash, so that what they seed depends
on those numbers alone: not on how far a generator has run, how data is batched, or on how many processes."""
from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

#: what a derived seed is for (each purpose gets its own stream of seeds)
PERMUTATION, DYNAMIC_BITS = 1, 2


def as_int64(value: int) -> int:
    """An unsigned 64-bit value as the int64 with the same bits."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def logical_shift(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's >> is arithmetic)."""
    return (z >> bits).bitwise_and_((1 << (64 - bits)) - 1)


def mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer on int64 bit patterns (int64 multiplication wraps modulo 2**64): a bijection
    that scatters nearby inputs over all 64 bits."""
    z = z ^ logical_shift(z, 30)
    z.mul_(as_int64(0xBF58476D1CE4E5B9))
    z.bitwise_xor_(logical_shift(z, 27)).mul_(as_int64(0x94D049BB133111EB))
    return z.bitwise_xor_(logical_shift(z, 31))


def derive_seed(seed: int, *counters: int) -> int:
    """A seed in [0, 2**63) that is a hash of `seed` and the `counters` (e.g. a purpose and an epoch)."""
    z = as_int64(seed)
    for counter in counters:
        z = int(mix(torch.tensor([as_int64(z + GOLDEN * (counter + 1))], dtype=torch.int64))[0])
    return z & ((1 << 63) - 1)
