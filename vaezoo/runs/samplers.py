"""Fitted samplers in a run directory: RUN/samplers/NAME.safetensors, the sampler's tensors sealed with a JSON
record of what it is (its identity and options), which codes it was fitted to and the SHA-256 of the
model.safetensors it was fitted to, so that a sampler copied from another run, left over from weights trained
since, or changed on disk is refused rather than used."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from vaezoo.atomic import atomic_write
from vaezoo.errors import RunDirError
from vaezoo.runs.directory import WEIGHTS
from vaezoo.runs.sealed import seal, unseal
from vaezoo.runtime.finite import first_nonfinite, require_finite

SAMPLER_DIR = "samplers"
FORMAT = 1


def model_checksum(run: Path) -> str:
    """SHA-256 of the run's model.safetensors: the weights a sampler is keyed to."""
    try:
        return hashlib.sha256((run / WEIGHTS).read_bytes()).hexdigest()
    except FileNotFoundError:
        raise RunDirError(f"{run} holds no trained weights: {WEIGHTS} is missing") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {run / WEIGHTS}: {exc.strerror or exc}") from exc


def sampler_path(run: Path, name: str) -> Path:
    """Where the sampler registered as `name` (bare or plugin:name) is stored in `run`."""
    folder = run / SAMPLER_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise RunDirError(f"{folder} is not a directory vaezoo made (a symbolic link or a file); remove it")
    return folder / f"{name.rpartition(':')[2]}.safetensors"


def save_sampler(run: Path, name: str, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> Path:
    """Write a fitted sampler atomically, keyed to the run's current weights."""
    require_finite(tensors, f"the {name} sampler")
    path = sampler_path(run, name)
    data = seal(tensors, json.dumps({"format": FORMAT, **record, "model_sha256": model_checksum(run)},
                                    sort_keys=True, allow_nan=False))
    try:
        path.parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot write {path.parent}: {exc.strerror or exc}") from exc
    atomic_write(path, lambda f: f.write(data))
    return path


def read_sampler(run: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and record of the sampler `name` fitted to this run's weights; RunDirError, in one line, when
    there is none, its file was changed or damaged, or it was fitted to other weights."""
    path = sampler_path(run, name)
    refit = f"fit it again: vaezoo fit-sampler {run} --sampler {name}"
    try:
        tensors, raw = unseal(path.read_bytes())
    except FileNotFoundError:
        raise RunDirError(f"{run} has no fitted {name!r} sampler; fit one first: vaezoo fit-sampler {run} "
                          f"--sampler {name}") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise RunDirError(f"{path} is corrupt or was changed ({exc}); {refit}") from None
    try:
        record = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("sampler"), dict):
        raise RunDirError(f"{path} is not a sampler vaezoo fitted (no sealed sampler record); {refit}")
    if record.get("model_sha256") != model_checksum(run):
        raise RunDirError(f"{path} was fitted to other weights than {run}'s model.safetensors (another run, or this "
                          f"run before it was trained further); {refit}")
    bad = first_nonfinite(tensors)
    if bad is not None:
        raise RunDirError(f"{path} holds NaN or infinity in {bad}; {refit}")
    return tensors, record
