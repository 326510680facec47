"""Atomic file writes: a temporary file beside the target, flushed and fsynced, then renamed over it.

Files get the mode the user's umask gives a new file (0644 under the usual umask 022), not mkstemp's 0600, so
a run on a shared disk can be read by the people it is shared with.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from vaezoo.errors import RunDirError


def current_umask() -> int:
    """This process's umask, read without changing it where Linux reports it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits open(..., "w") would give a new file here."""
    return 0o666 & ~current_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call `write(f)` on a temporary file and move it to `path` only when it completed.

    An OSError (a read-only or full disk, a missing folder) is raised as RunDirError naming `path`."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise RunDirError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, RunDirError):
            raise RunDirError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
