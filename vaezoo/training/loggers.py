"""Loggers: callbacks that write a run's metrics (metrics.jsonl always)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaezoo.errors import VaezooError
from vaezoo.runs.directory import append_metrics
from vaezoo.training.callbacks import Callback

if TYPE_CHECKING:
    from vaezoo.training.trainer import Trainer


class JSONLLogger(Callback):
    """Each epoch's metrics as one line of RUN/metrics.jsonl: the run's own record."""

    writes = True

    def __init__(self, run: Path) -> None:
        self.run = run

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        append_metrics(self.run, metrics)


def build_loggers(names: list[str], run: Path, images_every: int) -> list[Callback]:
    """metrics.jsonl's logger, then those named."""
    if names:
        raise VaezooError(f"unknown logger {names[0]!r}")
    return [JSONLLogger(run)]
