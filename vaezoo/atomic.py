"""Atomic file writes: a temporary file beside the target, flushed and fsynced, then renamed over it.

Files get the mode the user's umask gives a new file (0644 under the usual umask 022), not the 0600 of
tempfile.mkstemp, so a run on a shared disk can be read by the people it is shared with.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from vaezoo.errors import RunDirError


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call `write(f)` on a temporary file and move it to `path` only when it completed.

    The temporary file's name is chosen before it is made, so that an exception at any point, a signal (Ctrl-C,
    SIGTERM) arriving just after the file was created included, removes it. An OSError (a read-only or full disk,
    a missing folder) is raised as RunDirError naming `path`."""
    target = Path(path)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    opened = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
        opened = True
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if opened or not isinstance(exc, FileExistsError):  # never remove a file of that name made by another
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, RunDirError):
            raise RunDirError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
