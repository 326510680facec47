"""Whether a verified checkpoint matches the run that is about to restore it.

A checksum proves that a checkpoint is what was written, not that it was written by this run: a hostile or
foreign checkpoint can carry a valid SHA-256. Everything is checked before anything is restored, and a
mismatch is a ValueError that names the part that does not fit.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import torch

from vaezoo.runs.checkpoint import TrainingState


def _check_model(saved: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    expected = model.state_dict()
    missing, unknown = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or unknown:
        raise ValueError(f"its weights do not match the model (missing {missing[:3]}, unknown {unknown[:3]})")
    for name, tensor in expected.items():
        if saved[name].shape != tensor.shape or saved[name].dtype != tensor.dtype:
            raise ValueError(f"weight {name} is {saved[name].dtype} {tuple(saved[name].shape)}, "
                             f"the model has {tensor.dtype} {tuple(tensor.shape)}")


def _check_optimizer(saved: dict[str, Any], optimizer: torch.optim.Optimizer, scheduled: bool) -> None:
    fresh = json.loads(json.dumps(optimizer.state_dict()["param_groups"]))
    # a scheduled run's rate is set anew before every step: it is the one setting a checkpoint may hold differently
    settings = lambda groups: [{k: v for k, v in g.items() if not (scheduled and k == "lr")} for g in groups]  # noqa: E731
    if not isinstance(saved["param_groups"], list) or not all(isinstance(g, dict) for g in saved["param_groups"]) \
            or settings(saved["param_groups"]) != settings(fresh):
        raise ValueError("its optimizer settings (param_groups) are not this run's")
    params = dict(enumerate(p for group in optimizer.param_groups for p in group["params"]))
    for index, values in saved["state"].items():
        if index not in params:
            raise ValueError(f"its optimizer state names parameter {index}, which the model does not have")
        for key, value in values.items():
            if key == "step":
                ok = isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point() \
                    and math.isfinite(float(value)) and float(value) >= 0
            else:
                ok = isinstance(value, torch.Tensor) and value.shape == params[index].shape \
                    and value.dtype == params[index].dtype
            if not ok:
                raise ValueError(f"its optimizer state {index}.{key} does not fit parameter {index}")


def _check_progress(saved: dict[str, Any], progress_type: type, steps_per_epoch: int | None) -> None:
    fields = {f.name: f.type for f in dataclasses.fields(progress_type)}
    later = {f.name for f in dataclasses.fields(progress_type) if f.metadata.get("added_later")}
    if not set(fields) - later <= set(saved) <= set(fields):
        raise ValueError(f"its progress record has fields {sorted(saved)}, expected {sorted(fields)}")
    for name, value in saved.items():
        want_int = fields[name] in (int, "int")
        if isinstance(value, bool) or not isinstance(value, int if want_int else (int, float)):
            raise ValueError(f"its progress field {name} is {value!r}, not a number")
        if want_int and value < 0:
            raise ValueError(f"its progress field {name} is negative ({value})")
    if saved["epoch"] < 1 or (steps_per_epoch is not None and saved["batch"] > steps_per_epoch):
        raise ValueError(f"its progress (epoch {saved['epoch']}, batch {saved['batch']}) is out of range")


def _check_rng(saved: dict[str, torch.Tensor]) -> None:
    like = torch.get_rng_state()
    value = saved.get("torch")
    if not isinstance(value, torch.Tensor) or value.dtype != like.dtype or value.shape != like.shape:
        raise ValueError("its random-number state 'torch' is missing or malformed")
    cuda = saved.get("cuda")
    if cuda is not None and (cuda.dtype != torch.uint8 or cuda.dim() != 1):
        raise ValueError("its CUDA random-number state is malformed")
    if set(saved) - {"torch", "cuda"}:
        raise ValueError(f"its random-number states {sorted(set(saved) - {'torch', 'cuda'})} are unknown")


def _check_no_order(saved: dict[str, torch.Tensor]) -> None:
    """A run's data order is a function of its seed and the epoch; a checkpoint that stores one (as vaezoo
    before the streaming data layer did) describes an order this run cannot follow."""
    if saved:
        raise ValueError(f"it stores a data order ({', '.join(sorted(saved))}), as checkpoints of older vaezoo "
                         "versions did; this version derives the order from the seed and the epoch")


def check_fits(
    saved: TrainingState, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress_type: type,
    steps_per_epoch: int | None, scheduled: bool = False,
) -> None:
    """Raise ValueError naming the first part of `saved` that does not fit this model, optimizer and data
    (`steps_per_epoch`: None for a stream of unknown length). `scheduled`: the run sets its learning rate anew
    before every step, so a checkpoint's rate is not compared."""
    _check_model(saved.model, model)
    _check_optimizer(saved.optimizer, optimizer, scheduled)
    _check_progress(saved.progress, progress_type, steps_per_epoch)
    _check_no_order(saved.tensors)  # before the random-number states: an older checkpoint also holds a "data" one
    _check_rng(saved.rng)
