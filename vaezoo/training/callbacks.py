"""The callback interface of a training run, and the two callbacks every run has: early stopping and the
non-finite guard's policy. Loggers are callbacks too (vaezoo.training.loggers)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from vaezoo.errors import NonFiniteError, VaezooError

if TYPE_CHECKING:
    from vaezoo.training.trainer import Trainer

#: the longest run of non-finite steps a `skip` policy lets pass before it stops training
MAX_SKIPPED_IN_A_ROW = 50


class Callback:
    """Hooks into a training run. Each method does nothing unless overridden; `trainer` gives the model
    (`trainer.model`), the optimizer, the progress (`trainer.state`) and the run directory (`trainer.run`,
    None when the run writes no files). Set `trainer.should_stop = True` to end training after this epoch.

    Only rank 0 of a torchrun world calls the callbacks that write (`writes = True`, like the loggers)."""

    writes = False

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step (of this process: a resumed run calls it again)."""

    def on_step_end(self, trainer: Trainer, loss: float | None) -> None:
        """After each step; `loss` is the batch's mean training loss, or None when the step was skipped."""

    def on_nonfinite(self, trainer: Trainer, message: str) -> None:
        """A step went non-finite and was not applied; `message` says what. Raise to stop training."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After each epoch's evaluation, with the metrics written to metrics.jsonl."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (also after an early stop)."""


class EarlyStopping(Callback):
    """Stop when the held-out ELBO has not improved for `patience` epochs. Its state (the best ELBO, the
    epochs since) is the run's progress, so it survives a resume."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        state = trainer.state
        if "val_elbo" not in metrics:
            raise VaezooError("early stopping (patience) watches the held-out ELBO: give fit() val_data")
        if metrics["val_elbo"] > state.best_val:
            state.best_val, state.bad_epochs = metrics["val_elbo"], 0
        else:
            state.bad_epochs += 1
        if state.bad_epochs >= self.patience:
            trainer.should_stop = True
            if trainer.show:
                tqdm.write(f"early stop: the held-out ELBO has not improved for {self.patience} epochs")


class NonFiniteGuard(Callback):
    """What a non-finite step does: `skip` it (and stop after MAX_SKIPPED_IN_A_ROW in a row) or `stop`."""

    def __init__(self, policy: str = "skip") -> None:
        self.policy = policy

    def on_nonfinite(self, trainer: Trainer, message: str) -> None:
        state = trainer.state
        if self.policy == "stop" or state.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
            why = "" if self.policy == "stop" else f" ({MAX_SKIPPED_IN_A_ROW} steps skipped in a row)"
            raise NonFiniteError(f"step {state.step}: {message}; training stopped{why}")
        tqdm.write(f"vaezoo: step {state.step}: {message}; the step was skipped", file=sys.stderr)
