"""Optimizers and learning-rate schedules by name, with their options.

Optimizers run on torch's fused path where it has one (Adam, AdamW: every parameter floating point, on the
CPU or a CUDA GPU), else on the foreach path. A schedule is a factor on each group's base learning rate,
computed from the step (warm-up, cosine, step decay) and, for `plateau`, from the held-out ELBO of past epochs;
its state lives in the run's progress, so a resumed run continues the same schedule.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from vaezoo.errors import VaezooError

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
}
#: each schedule's options and their defaults
SCHEDULES: dict[str, dict[str, float]] = {
    "constant": {},
    "cosine": {"min_factor": 0.0},  # the factor at the last step
    "step": {"every": 1, "gamma": 0.1},  # multiply by gamma every `every` epochs
    "plateau": {"patience": 2, "factor": 0.5, "min_factor": 0.0},  # on the held-out ELBO, like early stopping
}
#: a user's optimizer: a name, or a callable that takes the parameter groups and returns an optimizer
OptimizerChoice = str | Callable[[list[dict[str, Any]]], torch.optim.Optimizer]


def fused_optimizer(params: Iterable[torch.Tensor]) -> bool:
    """True when torch's fused Adam can step every parameter (floating point, on the CPU or a CUDA GPU)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def build_optimizer(choice: OptimizerChoice, groups: list[dict[str, Any]], lr: float,
                    options: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer `choice` over the parameter `groups`, at learning rate `lr` with its `options`."""
    if callable(choice):
        optimizer = choice(groups)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise VaezooError(f"the optimizer factory returned {type(optimizer).__name__}, not a torch optimizer")
        return optimizer
    if choice not in OPTIMIZERS:
        raise VaezooError(f"unknown optimizer {choice!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[choice]
    accepted = set(inspect.signature(cls).parameters) - {"params", "lr", "fused", "foreach"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise VaezooError(f"{choice} has no option {unknown[0]!r}; its options are {', '.join(sorted(accepted))}")
    params = [p for group in groups for p in group["params"]]
    path = {"fused": True} if choice != "sgd" and fused_optimizer(params) else {"foreach": True}
    try:
        return cls(groups, lr=lr, **path, **options)
    except (TypeError, ValueError) as exc:
        raise VaezooError(f"the {choice} options {options} are not valid: {exc}") from None


def schedule_options(name: str, options: dict[str, Any]) -> dict[str, float]:
    """The schedule's options with their defaults, checked."""
    if name not in SCHEDULES:
        raise VaezooError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    defaults = SCHEDULES[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise VaezooError(f"the {name} schedule has no option {unknown[0]!r}; its options: {accepted}")
    merged = {**defaults, **options}
    for key, value in merged.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise VaezooError(f"the {name} schedule's {key} must be a non-negative number, got {value!r}")
    if name == "step" and (merged["every"] < 1 or merged["every"] != int(merged["every"])):
        raise VaezooError(f"the step schedule's every must be a positive whole number of epochs, got {merged['every']}")
    return merged


class Schedule:
    """The learning-rate factor of every step: warm-up times the named shape (times plateau's scale)."""

    def __init__(self, name: str, options: dict[str, Any], warmup_steps: int, steps_per_epoch: int,
                 epochs: int) -> None:
        self.name, self.options = name, schedule_options(name, options)
        self.warmup_steps, self.steps_per_epoch = warmup_steps, steps_per_epoch
        self.total_steps = max(steps_per_epoch * epochs, 1)

    @property
    def varies(self) -> bool:
        """Whether the rate ever differs from the base rate (else nothing needs setting before a step)."""
        return self.name != "constant" or self.warmup_steps > 0

    def factor(self, step: int, plateau_scale: float) -> float:
        """The factor on the base learning rate for optimizer step `step` (0-based)."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        o = self.options
        if self.name == "cosine":
            done = min(max(step - self.warmup_steps, 0) / max(self.total_steps - self.warmup_steps, 1), 1.0)
            shape = o["min_factor"] + (1 - o["min_factor"]) * 0.5 * (1 + math.cos(math.pi * done))
        elif self.name == "step":
            shape = o["gamma"] ** (step // self.steps_per_epoch // int(o["every"]))
        else:
            shape = plateau_scale
        return warm * shape

    def apply(self, optimizer: torch.optim.Optimizer, base_lrs: list[float], step: int, plateau_scale: float) -> None:
        """Set each group's learning rate for step `step`."""
        factor = self.factor(step, plateau_scale)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor

    def after_epoch(self, val_elbo: float | None, best: float, bad: int, scale: float) -> tuple[float, int, float]:
        """Plateau's update after an epoch: the new (best ELBO, epochs without improvement, scale)."""
        if self.name != "plateau" or val_elbo is None:
            return best, bad, scale
        if val_elbo > best:
            return val_elbo, 0, scale
        bad += 1
        if bad >= self.options["patience"]:
            return best, 0, max(scale * self.options["factor"], self.options["min_factor"])
        return best, bad, scale
