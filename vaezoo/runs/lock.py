"""One writer per run directory: an exclusive fcntl.flock on `RUN_DIR/.vaezoo.lock`, held for the whole run.

The lock file records the holder's pid so that a refused writer can name it. The lock is released by the
kernel when the holder exits, however it exits, so a killed run never leaves a stale lock behind; the file
itself stays (deleting a lock file races with a process that has just opened it).

A process forked while a run is locked (a DataLoader worker) closes its copies of the lock's descriptor at
once: a flock lasts while any copy is open, so a worker that outlives its run (a persistent worker not yet
collected, after an error) would otherwise keep the run directory locked against a `resume` in the same program.
"""
from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from vaezoo.errors import RunDirError

LOCK_FILE = ".vaezoo.lock"
_HELD: set[int] = set()  # this process's lock descriptors


def _drop_inherited_locks() -> None:
    """In a forked child: close the descriptors of the parent's run locks (the parent keeps its locks)."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


class RunLock:
    """The exclusive lock on a run directory; `release()` (or leaving the `with` block) gives it back."""

    def __init__(self, run: Path, fd: int) -> None:
        self.run, self._fd = run, fd

    def release(self) -> None:
        if self._fd >= 0:
            _HELD.discard(self._fd)
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
    _HELD.add(fd)
    return RunLock(run, fd)
