"""Training checkpoints without pickle: tensors in safetensors, everything else as JSON in its metadata.

A checkpoint holds the model, the optimizer, RNG states and wherever training stood, plus a SHA-256 of
everything that is restored: every tensor's name, dtype, shape and bytes and the JSON beside them. Files are
written atomically and the previous good ones are kept, so a checkpoint truncated, damaged or changed on disk
is detected and the one before it is used. Non-finite weights are never written, and only regular files
that vaezoo named are ever pruned: a `checkpoints` that is a symbolic link is refused.
"""
from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vaezoo.atomic import atomic_write
from vaezoo.errors import RunDirError
from vaezoo.runs.sealed import digest as _digest  # noqa: F401  (tests forge checkpoints with it)
from vaezoo.runs.sealed import seal, unseal
from vaezoo.runtime.finite import first_nonfinite, require_finite

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.safetensors$")
KEEP = 2
GROUPS = ("model", "optim", "rng", "data")


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]
    progress: dict[str, Any]  # JSON-serializable: epoch, step, batch index, running sums, ...
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # none today: the data order follows from seed and epoch


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


def _join_optimizer(tensors: dict[str, torch.Tensor], plain: Any) -> dict[str, Any]:
    """The optimizer's state dict back from its tensors and JSON; ValueError when they do not pair up."""
    if not isinstance(plain, dict) or not isinstance(plain.get("state"), dict) or not isinstance(plain.get("param_groups"), list):
        raise ValueError("the optimizer record is not {state: {...}, param_groups: [...]}")
    state, used = {}, set()
    for index, values in plain["state"].items():
        if not index.isdigit() or not isinstance(values, dict):
            raise ValueError(f"optimizer state entry {index!r} is malformed")
        state[int(index)] = {}
        for key, value in values.items():
            if value is None:
                name = f"{index}.{key}"
                if name not in tensors:
                    raise ValueError(f"optimizer tensor {name!r} is missing")
                used.add(name)
                value = tensors[name]
            state[int(index)][key] = value
    if set(tensors) - used:
        raise ValueError(f"optimizer tensors {sorted(set(tensors) - used)} belong to no state entry")
    return {"state": state, "param_groups": plain["param_groups"]}


def encode(state: TrainingState) -> bytes:
    """Serialize a training state to safetensors bytes."""
    optim_tensors, optim_plain = _split_optimizer(state.optimizer)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, group in (("model", state.model), ("optim", optim_tensors), ("rng", state.rng), ("data", state.tensors)):
        for name, tensor in group.items():
            tensors[f"{prefix}/{name}"] = tensor.detach().cpu().contiguous()
    require_finite(state.model, "a checkpoint")
    require_finite(optim_tensors, "a checkpoint (optimizer state)")
    return seal(tensors, json.dumps({"optimizer": optim_plain, "progress": state.progress}, allow_nan=True))


def decode(data: bytes) -> TrainingState:
    """Parse and verify safetensors bytes written by `encode`; raises ValueError when damaged, changed,
    malformed or holding non-finite weights."""
    tensors, raw = unseal(data)
    if raw is None:
        raise ValueError("not a vaezoo checkpoint: it carries no checksum")
    try:
        extra = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"its JSON record is unreadable: {exc}") from exc
    if not isinstance(extra, dict) or not isinstance(extra.get("progress"), dict):
        raise ValueError("its JSON record has no progress")
    groups: dict[str, dict[str, torch.Tensor]] = {group: {} for group in GROUPS}
    for key, tensor in tensors.items():
        prefix, _, name = key.partition("/")
        if prefix not in groups or not name:
            raise ValueError(f"unknown tensor {key!r}")
        groups[prefix][name] = tensor
    bad = first_nonfinite(groups["model"]) or first_nonfinite(groups["optim"])
    if bad is not None:
        raise ValueError(f"{bad} holds non-finite values")
    return TrainingState(
        model=groups["model"],
        optimizer=_join_optimizer(groups["optim"], extra.get("optimizer")),
        rng=groups["rng"],
        progress=extra["progress"],
        tensors=groups["data"],
    )


def _folder(run: Path) -> Path:
    """run/checkpoints, refused when it is a symbolic link or not a directory (vaezoo did not make it so)."""
    folder = run / CHECKPOINT_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise RunDirError(
            f"{folder} is not a directory vaezoo made (a symbolic link or a file); remove it, or use another run directory"
        )
    return folder


def checkpoints(run: Path) -> list[Path]:
    """The run's checkpoint files (regular files named step-N.safetensors), oldest first."""
    folder = _folder(run)
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir()
        if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_file() and not p.is_symlink()
    ]
    return [p for _, p in sorted(found)]


def save_checkpoint(run: Path, step: int, state: TrainingState) -> Path:
    """Write the checkpoint of `step` atomically, then drop all but the newest KEEP."""
    data = encode(state)  # refuses non-finite weights before anything is touched
    folder = _folder(run)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot write {folder}: {exc.strerror or exc}") from exc
    path = folder / f"step-{step:09d}.safetensors"
    atomic_write(path, lambda f: f.write(data))
    for old in checkpoints(run)[:-KEEP]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(run: Path, accept: Callable[[TrainingState], None] | None = None) -> TrainingState:
    """The newest checkpoint that verifies and that `accept` (raising ValueError) takes; damaged, changed or
    unfitting newer ones are reported and skipped."""
    candidates = checkpoints(run)
    if not candidates:
        raise RunDirError(f"{run} has no checkpoints to resume from")
    reasons = []
    for path in reversed(candidates):
        try:
            state = decode(path.read_bytes())
            if accept is not None:
                accept(state)
            return state
        except (ValueError, OSError) as exc:
            reasons.append(f"{path.name}: {exc}")
            warnings.warn(f"checkpoint {path} is damaged or does not fit this run ({exc}); trying the one before it",
                          stacklevel=2)
    raise RunDirError(
        f"every checkpoint in {run / CHECKPOINT_DIR} is damaged or does not fit this run ({'; '.join(reasons)}); "
        f"the run cannot be resumed: delete {run} and train again"
    )
