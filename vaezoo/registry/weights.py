"""PretrainedWeights: what a distribution offers through `vaezoo_register_weights`, checked at the door.

A weights entry is named VARIANT/DATASET and points at a run directory shipped inside the distribution
(config.json and model.safetensors, nothing pickled), with the SHA-256 of its model.safetensors, the metrics
measured with it and the `vaezoo train` command that made it. Only cheap checks run here (types, names, that
the files exist); the hash is verified each time the weights are used (vaezoo.runs.pretrained).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The files a shipped run directory must hold, and the ones it may hold besides (no pickle, no checkpoints).
REQUIRED_FILES = ("config.json", "model.safetensors")
ALLOWED_FILES = (*REQUIRED_FILES, "metrics.jsonl", "architecture.safetensors")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PART_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def split_name(name: str) -> tuple[str, str]:
    """(variant, dataset) of a weights name VARIANT/DATASET; ValueError naming the expected form otherwise."""
    variant, slash, dataset = name.partition("/") if isinstance(name, str) else ("", "", "")
    if not slash or not PART_NAME.match(variant) or not PART_NAME.match(dataset):
        raise ValueError(f"weights name {name!r} is not valid: use VARIANT/DATASET, each of lower-case letters, "
                         "digits, '.', '_' and '-'")
    return variant, dataset


def _metric_values(metrics: Any, what: str) -> dict[str, float]:
    if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for k, v in metrics.items()):
        raise ValueError(f"{what} must be an object of metric names to finite numbers, got {metrics!r:.80}")
    return {k: float(v) for k, v in metrics.items()}


@dataclass(frozen=True)
class PretrainedWeights:
    """One shipped run: where its files are, the SHA-256 of its model.safetensors, the metrics measured with
    it (`metrics`: full figures; `reference`: the same estimators on a small fixed protocol that tests
    recompute, with its settings in `protocol`), and the command that trained it."""

    files: Path
    sha256: str
    command: str
    metrics: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        files = Path(self.files) if isinstance(self.files, (str, Path)) else None
        if files is None:
            raise ValueError(f"files must be the path of a run directory, got {type(self.files).__name__}")
        object.__setattr__(self, "files", files)
        if not isinstance(self.sha256, str) or not SHA256.match(self.sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits (of model.safetensors), got {self.sha256!r:.80}")
        if not isinstance(self.command, str) or not self.command.strip():
            raise ValueError("command must be the command line that trained the weights")
        object.__setattr__(self, "metrics", _metric_values(self.metrics, "metrics"))
        object.__setattr__(self, "reference", _metric_values(self.reference, "reference"))
        if not isinstance(self.protocol, dict):
            raise ValueError(f"protocol must be an object of settings, got {type(self.protocol).__name__}")
        if not files.is_dir():
            raise ValueError(f"files {files} is not a directory; it must be a run directory inside the distribution")
        present = {p.name for p in files.iterdir()}
        missing = [f for f in REQUIRED_FILES if f not in present]
        if missing:
            raise ValueError(f"the run directory {files} lacks {', '.join(missing)}")
        other = sorted(present - set(ALLOWED_FILES) - {"__pycache__"})
        if other:
            raise ValueError(f"the run directory {files} holds {', '.join(other)}; shipped weights hold only "
                             f"{', '.join(ALLOWED_FILES)} (safetensors, nothing pickled)")

    @classmethod
    def coerce(cls, weights: PretrainedWeights | dict[str, Any]) -> PretrainedWeights:
        """Accept a PretrainedWeights or a dict of its fields (what a plugin's `register` may pass)."""
        if isinstance(weights, cls):
            return weights
        if not isinstance(weights, dict):
            raise TypeError(f"weights must be a PretrainedWeights or a dict, got {type(weights).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(weights) - names, {"files", "sha256", "command"} - set(weights)
        if unknown or missing:
            wrong = [f"unknown fields {sorted(unknown)}"] * bool(unknown) + [f"missing {sorted(missing)}"] * bool(missing)
            raise ValueError(f"weights record: {', '.join(wrong)}; accepted: {sorted(names)}")
        return cls(**weights)
