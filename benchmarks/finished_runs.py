"""Shared by the benchmark scripts: train a run once, and reuse it when it has already finished."""
from __future__ import annotations

from pathlib import Path

from vaezoo.analysis.report import REPORT
from vaezoo.runs.directory import read_metrics
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import train


def train_or_reuse(config: TrainConfig) -> Path:
    """The finished run at `config.out` (its last epoch is config.epochs and its report is written), training
    it first when there is none; a run left unfinished there stops the script with what to do."""
    run = Path(config.out)
    metrics = read_metrics(run)
    if metrics and metrics[-1]["epoch"] == config.epochs and (run / REPORT).exists():
        return run
    if run.exists():
        raise SystemExit(f"{run} holds an unfinished run; remove it to train {config.variant} (seed {config.seed}) again")
    return train(config, progress=False)
