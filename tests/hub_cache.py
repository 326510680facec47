"""A Hugging Face Hub cache laid out by hand, as huggingface_hub leaves it after a download: for the offline
tests of hf:// runs (nothing here touches the network)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"  # a commit hash: 40 hex digits


def lay_out(cache: Path, repo: str, files: dict[str, bytes], revision: str = REVISION) -> Path:
    """Put `files` (name: bytes) into `cache` as the main revision of the model repository `repo`:
    models--ORG--NAME/blobs/SHA256, snapshots/REVISION/NAME linking to its blob, refs/main holding REVISION.
    The snapshot folder is returned."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / revision
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs" / "main").write_text(revision)
    return snapshot


def run_files(run: Path, names: list[str] | None = None) -> dict[str, bytes]:
    """The files of the run directory `run` (those named, or every top-level file but its lock) as lay_out takes
    them."""
    chosen = names if names is not None else sorted(p.name for p in run.iterdir() if p.is_file() and p.name != ".vaezoo.lock")
    return {name: (run / name).read_bytes() for name in chosen if (run / name).is_file()}
