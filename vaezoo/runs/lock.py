"""One writer per run directory: an exclusive fcntl.flock on `RUN_DIR/.vaezoo.lock`, held for the whole run.

The lock file records the holder's pid so that a refused writer can name it. The lock is released by the
kernel when the holder exits, however it exits, so a killed run never leaves a stale lock behind; the file
itself stays (deleting a lock file races with a process that has just opened it).
"""
from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from vaezoo.errors import RunDirError

LOCK_FILE = ".vaezoo.lock"


class RunLock:
    """The exclusive lock on a run directory; `release()` (or leaving the `with` block) gives it back."""

    def __init__(self, run: Path, fd: int) -> None:
        self.run, self._fd = run, fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


def lock_run_dir(run: Path, busy: str = "wait for it to finish, or choose another --out") -> RunLock:
    """Take the exclusive lock of the existing directory `run`, or raise RunDirError naming the holder (and
    `busy`, what to do about it)."""
    path = run / LOCK_FILE
    try:  # O_NONBLOCK: a FIFO planted under the lock's name must not block the open
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        raise RunDirError(f"cannot write the run directory {run}: {exc.strerror or exc}; choose a writable --out") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunDirError(f"{path} is not a regular file (vaezoo's lock file is one); remove it and try again")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirError(
            f"{run} is in use by {holder} (a vaezoo run writing there); {busy}"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise RunDirError(f"cannot lock the run directory {run}: {exc.strerror or exc}") from exc
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:
        os.close(fd)
        raise RunDirError(f"cannot write the lock file {path}: {exc.strerror or exc}; free some space or choose "
                          "another --out") from exc
    return RunLock(run, fd)
