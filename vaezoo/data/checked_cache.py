"""Cache files that vaezoo makes once and reads many times (dSprites' packed bits, prepared image folders), so
that a cache is never trusted blindly: each file is written atomically beside a record (FILE.json) of what it
was made from (its key) and the CRC-32 and length of its bytes.

`checked_cache` verifies both before the file is used; a cache that is stale (made from something else) or
damaged (truncated, zeroed, edited, its record unreadable) is named to the user in one line on stderr and
rebuilt. Verifying streams the file in chunks (CRC-32 runs at about 2 GB/s), so it holds no more than a chunk.
Checking and building happen under a lock file, so processes started together build a cache once.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from vaezoo.atomic import atomic_write, atomic_write_text

CHUNK = 1 << 22


def tell(message: str) -> None:
    """One line to the user on stderr, for what vaezoo does on its own (rebuilding a cache)."""
    print(f"vaezoo: {message}", file=sys.stderr, flush=True)


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


class _Summing:
    """A write-only file that keeps the CRC-32 and length of what passes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.crc, self.size = f, 0, 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc, self.size = zlib.crc32(view, self.crc), self.size + view.nbytes
        return self.f.write(view)


def file_checksum(path: Path) -> tuple[int, int]:
    """(CRC-32, length) of the file's bytes, read in chunks."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return crc, size


def cache_problem(path: Path, key: dict) -> str | None:
    """Why the cache file `path` cannot be used for `key` ("missing", "stale ...", "damaged ..."), or None."""
    record_file = record_path(path)
    if not path.exists() and not record_file.exists():
        return "missing"
    if not record_file.exists():
        return f"unverifiable (it has no checksum record {record_file.name})"
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        expected = (int(record["crc32"]), int(record["bytes"]))
        made_from = record["key"]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"damaged (its record {record_file.name} is unreadable: {exc})"
    if made_from != key:
        return "stale (it was made from other files or settings)"
    try:
        found = file_checksum(path)
    except OSError as exc:
        return f"damaged (unreadable: {exc.strerror or exc})"
    if found[1] != expected[1]:
        return f"damaged ({found[1]:,} bytes where {expected[1]:,} were written)"
    if found[0] != expected[0]:
        return "damaged (its bytes do not match their checksum)"
    return None


def write_cache(path: Path, key: dict, fill: Callable[[Any], None]) -> None:
    """Write the cache: `fill(f)` writes its bytes; then its record, each atomically (data first, so a crash
    between the two leaves a record that does not match, hence a rebuild)."""
    summed: list[_Summing] = []

    def write(f: BinaryIO) -> None:
        summing = _Summing(f)
        fill(summing)
        summed.append(summing)

    atomic_write(path, write)
    record = {"key": key, "crc32": summed[0].crc, "bytes": summed[0].size}
    atomic_write_text(record_path(path), json.dumps(record, indent=1))


def checked_cache(path: Path, key: dict, what: str, fill: Callable[[Any], None], *,
                  announce: str | None = None) -> Path:
    """`path`, verified against `key` and its checksum, or (re)built by `fill` when it is missing, stale or
    damaged; a stale or damaged cache is told to the user in one line naming `what` and the file, a missing one
    only if `announce` says what building it means."""
    with _building(path):
        problem = cache_problem(path, key)
        if problem is None:
            return path
        if problem != "missing":
            tell(f"{what} is {problem}; rebuilding {path}")
        elif announce:
            tell(announce)
        write_cache(path, key, fill)
    return path


@contextmanager
def _building(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (FILE.lock), so that processes started together (torchrun's ranks)
    build a cache once: the others wait, then find it built. Where locks are not supported, no lock."""
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock
