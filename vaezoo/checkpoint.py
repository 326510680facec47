"""Training checkpoints without pickle: tensors in safetensors, everything else as JSON in its metadata.

A checkpoint holds the model, the optimizer, RNG states and wherever training stood, plus a SHA-256 of
its tensors. Files are written atomically and the previous good ones are kept, so a checkpoint truncated
or damaged on disk is detected and the one before it is used.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from vaezoo.atomic import atomic_write
from vaezoo.errors import RunDirError

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.safetensors$")
KEEP = 2


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]
    progress: dict[str, Any]  # JSON-serializable: epoch, step, batch index, running sums, ...
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. this epoch's data order


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    sha = hashlib.sha256()
    for name in sorted(tensors):
        sha.update(name.encode())
        sha.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        plain["state"][str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
                plain["state"][str(index)][key] = None
            else:
                plain["state"][str(index)][key] = value
    return tensors, plain


def _join_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state = {}
    for index, values in plain["state"].items():
        state[int(index)] = {k: (tensors[f"{index}.{k}"] if v is None else v) for k, v in values.items()}
    return {"state": state, "param_groups": plain["param_groups"]}


def encode(state: TrainingState) -> bytes:
    """Serialize a training state to safetensors bytes."""
    optim_tensors, optim_plain = _split_optimizer(state.optimizer)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, group in (("model", state.model), ("optim", optim_tensors), ("rng", state.rng), ("data", state.tensors)):
        for name, tensor in group.items():
            tensors[f"{prefix}/{name}"] = tensor.detach().cpu().contiguous()
    metadata = {
        "vaezoo": json.dumps({"optimizer": optim_plain, "progress": state.progress}),
        "sha256": _digest(tensors),
    }
    return save(tensors, metadata=metadata)


def decode(data: bytes) -> TrainingState:
    """Parse and verify safetensors bytes written by `encode`; raises ValueError when damaged."""
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len])["__metadata__"]
    except (SafetensorError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a readable checkpoint: {exc}") from exc
    if metadata.get("sha256") != _digest(tensors):
        raise ValueError("checksum mismatch: the tensors were changed or damaged")
    extra = json.loads(metadata["vaezoo"])
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optim": {}, "rng": {}, "data": {}}
    for key, tensor in tensors.items():
        prefix, _, name = key.partition("/")
        groups[prefix][name] = tensor
    return TrainingState(
        model=groups["model"],
        optimizer=_join_optimizer(groups["optim"], extra["optimizer"]),
        rng=groups["rng"],
        progress=extra["progress"],
        tensors=groups["data"],
    )


def checkpoints(run: Path) -> list[Path]:
    """The run's checkpoint files, oldest first."""
    folder = run / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run: Path, step: int, state: TrainingState) -> Path:
    """Write the checkpoint of `step` atomically, then drop all but the newest KEEP."""
    folder = run / CHECKPOINT_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"step-{step:09d}.safetensors"
    data = encode(state)
    atomic_write(path, lambda f: f.write(data))
    for old in checkpoints(run)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(run: Path) -> TrainingState:
    """The newest checkpoint that verifies; damaged newer ones are reported and skipped."""
    candidates = checkpoints(run)
    if not candidates:
        raise RunDirError(f"{run} has no checkpoints to resume from")
    for path in reversed(candidates):
        try:
            return decode(path.read_bytes())
        except (ValueError, OSError) as exc:
            warnings.warn(f"checkpoint {path} is damaged ({exc}); trying the one before it", stacklevel=2)
    raise RunDirError(f"every checkpoint in {run / CHECKPOINT_DIR} is damaged; the run cannot be resumed")
