"""Noise of a data-parallel shard: eps drawn for rows [start, start + B) of a batch of `total` rows are the
rows of one draw for the whole batch, so ranks that each draw for their shard draw what one process would."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

_current: tuple[int, int] | None = None


@contextlib.contextmanager
def noise_shard(start: int, total: int) -> Iterator[None]:
    """Inside this block, reparameterize (either backend) draws for a batch of B rows the eps of rows
    [start, start + B) of a draw for `total` rows (with the same generator state)."""
    for name, value in (("start", start), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"noise_shard: {name} must be a non-negative int, got {value!r}")
    if start > total:
        raise ValueError(f"noise_shard: start {start} lies beyond total {total}")
    global _current
    previous, _current = _current, (start, total)
    try:
        yield
    finally:
        _current = previous


def current_shard() -> tuple[int, int] | None:
    """(start, total) of the enclosing noise_shard block, or None outside one."""
    return _current


@contextlib.contextmanager
def rows_split(parts: int) -> Iterator[None]:
    """For calls on a view that splits each row of the batch into `parts` consecutive rows (a [B, D] tensor
    read as [B*D, 1]): inside a noise_shard block, the block's rows are split alike, so the draw is still
    that of the shard's rows of one whole-batch draw, and the same as the unsplit call's. Outside one, nothing."""
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"rows_split: parts must be a positive int, got {parts!r}")
    if _current is None:
        yield
        return
    start, total = _current
    with noise_shard(start * parts, total * parts):
        yield
