"""Where vaezoo keeps what it makes once and reuses: $VAEZOO_CACHE, else ~/.cache/vaezoo."""
from __future__ import annotations

import os
from pathlib import Path

from vaezoo.errors import DataError


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created when missing."""
    root = Path(os.environ.get("VAEZOO_CACHE") or Path.home() / ".cache" / "vaezoo")
    path = root.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {path}: {exc.strerror or exc}; set VAEZOO_CACHE to a writable folder") from exc
    return path
