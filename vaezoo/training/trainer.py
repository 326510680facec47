"""The training loop: a VAE by name on a dataset by name, written to a run directory.

Every epoch (and every `checkpoint_every` steps) a checkpoint holds the weights, the optimizer, the RNG
states and the data order, so `resume` continues a killed run exactly where its last checkpoint stood.
A guard stops non-finite losses and gradients from ever reaching the weights or a checkpoint, and no
non-finite tensor is ever written. The run directory is locked for the whole run: one writer at a time.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vaezoo.analysis import evaluate
from vaezoo.analysis.run_outputs import write_run_outputs
from vaezoo.core import VAE
from vaezoo.data.datasets import Dataset, check_labels, fixed_binarization, load_dataset
from vaezoo.errors import DataError, NonFiniteError, RunDirError, VaezooError
from vaezoo.ops import noise_shard
from vaezoo.registry.factory import create_model, resolve
from vaezoo.runs.checkpoint import (
    TrainingState,
    checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
from vaezoo.runs.checkpoint_fit import check_fits
from vaezoo.runs.directory import (
    WEIGHTS,
    append_metrics,
    claim_new_run_dir,
    claim_run_dir,
    read_config,
    read_metrics,
    rewrite_metrics,
    run_data_dir,
    save_weights,
    write_config,
)
from vaezoo.runs.lock import RunLock
from vaezoo.runtime.devices import check_device
from vaezoo.runtime.distributed import World, join
from vaezoo.runtime.finite import require_finite

BINARIZE = ("auto", "dynamic", "static", "none")
ON_NONFINITE = ("skip", "stop")
MAX_SKIPPED_IN_A_ROW = 50
MAX_LATENT_DIM = 65536  # far beyond any VAE's; a typo of a few digits more is refused before allocating
MAX_LR = 1e3  # Adam's step is lr-sized: far beyond this it overflows float32 on the first step

__all__ = ["NonFiniteError", "TrainConfig", "Trainer", "resume", "train"]


@dataclass
class TrainConfig:
    """Everything that decides a training run."""

    variant: str
    dataset: str
    out: str
    data_dir: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    latent_dim: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    seed: int = 0
    binarize: str = "auto"
    clip_grad: float | None = None
    patience: int | None = None
    compile: bool = False
    bf16: bool = False
    checkpoint_every: int | None = None
    on_nonfinite: str = "skip"
    limit: int | None = None  # train on the first N examples of a fixed shuffle of the training split

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("patience", "checkpoint_every", "limit"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.latent_dim is not None:
            _positive_int("latent_dim", self.latent_dim)
            if self.latent_dim > MAX_LATENT_DIM:
                raise VaezooError(f"latent-dim must be at most {MAX_LATENT_DIM}, got {self.latent_dim}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise VaezooError(f"lr must be a positive number no larger than {MAX_LR:g}, got {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**64:
            raise VaezooError(f"seed must be an integer that fits in 64 bits, got {self.seed!r}")
        if self.clip_grad is not None and not (
            isinstance(self.clip_grad, (int, float)) and math.isfinite(self.clip_grad) and self.clip_grad > 0
        ):
            raise VaezooError(f"clip-grad must be a positive number, got {self.clip_grad!r}")
        if self.binarize not in BINARIZE:
            raise VaezooError(f"binarize must be one of {', '.join(BINARIZE)}, got {self.binarize!r}")
        if self.on_nonfinite not in ON_NONFINITE:
            raise VaezooError(f"on-nonfinite must be one of {', '.join(ON_NONFINITE)}, got {self.on_nonfinite!r}")
        check_device(self.device)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def fused_optimizer(model: torch.nn.Module) -> bool:
    """True when torch's fused Adam can step every parameter (floating point, on the CPU or a CUDA GPU)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters())


def nonfinite_gradients(params: list[torch.Tensor]) -> torch.Tensor:
    """1.0 when any gradient holds a NaN or an infinity, else 0.0: one fused max-norm, no host synchronization."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else "cpu")
    return (~torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf"))))).any().float()


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise VaezooError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")


def binarization(config: TrainConfig, model: VAE) -> str:
    """dynamic, static or none: `auto` binarizes dynamically exactly when the likelihood is for {0, 1} data."""
    if config.binarize == "auto":
        return "dynamic" if model.likelihood.binary_data else "none"
    return config.binarize


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 1  # the epoch under way
    batch: int = 0  # batches of this epoch already done
    step: int = 0  # optimizer steps taken (or skipped) in all
    loss_sum: float = 0.0  # this epoch's training loss, summed over examples
    seen: int = 0  # examples of this epoch trained on
    epoch_seconds: float = 0.0
    best_val: float = -math.inf
    bad_epochs: int = 0
    skipped: int = 0  # steps skipped as non-finite, in all
    skipped_in_a_row: int = 0


class Trainer:
    """One training run: model, optimizer, data order and RNG, stepping and checkpointing.

    In a world of several ranks every rank holds the same data order and generator states; each trains on its
    shard of every global batch (of config.batch_size rows) with that shard's rows of the batch's noise, the
    gradients and metrics are summed over the ranks, and only rank 0 writes files. The result is that of one
    process training on the global batches, up to float rounding."""

    def __init__(
        self, config: TrainConfig, data: Dataset, model: VAE, run: Path, progress: bool, world: World | None = None
    ) -> None:
        self.world = world or World(device=torch.device(config.device))
        self.config, self.data, self.model, self.run = config, data, model, run
        self.show = progress and self.world.main
        self.device = self.world.device
        adversary = model.objective.adversary()
        self.adversary_params = [] if adversary is None else list(adversary.parameters())
        adversarial = {id(p) for p in self.adversary_params}
        self.vae_params = [p for p in model.parameters() if id(p) not in adversarial]
        groups = [{"params": self.vae_params}] + ([{"params": self.adversary_params}] if adversary else [])
        # one optimizer, a group each for the VAE and the adversary: a parameter without a gradient is not
        # stepped, so each update moves one side, and checkpoints keep one optimizer state as before
        self.optimizer = torch.optim.Adam(groups, lr=config.lr, fused=fused_optimizer(model))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.mode = binarization(config, model)
        self.train_x = fixed_binarization(data.train_x, seed=config.seed + 1) if self.mode == "static" else data.train_x
        self.held_out = fixed_binarization(data.test_x) if self.mode != "none" else data.test_x
        self.held_out_y = data.test_y if model.conditional else None
        self.steps_per_epoch = math.ceil(len(data.train_x) / config.batch_size)
        self.forward = torch.compile(model) if config.compile else model
        self.state = Progress()
        self.order = torch.randperm(len(data.train_x), generator=self.generator)

    # -- checkpoints -------------------------------------------------------------------------------------
    def snapshot(self) -> TrainingState:
        rng = {"torch": torch.get_rng_state(), "data": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return TrainingState(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(), rng=rng,
            progress=asdict(self.state), tensors={"order": self.order},
        )

    def checkpoint(self) -> None:
        require_finite(self.model.state_dict(), "a checkpoint")  # on every rank: all stop together
        if self.world.main:
            save_checkpoint(self.run, self.state.step, self.snapshot())

    def check_fits(self, saved: TrainingState) -> None:
        """Raise ValueError when the verified checkpoint `saved` does not fit this run (see checkpoint_fit)."""
        check_fits(saved, model=self.model, optimizer=self.optimizer, generator=self.generator,
                   progress_type=Progress, steps_per_epoch=self.steps_per_epoch, train_size=len(self.data.train_x))

    def restore(self, saved: TrainingState) -> None:
        """Continue from `saved`, which check_fits accepted."""
        self.model.load_state_dict(saved.model)
        self.optimizer.load_state_dict(saved.optimizer)
        torch.set_rng_state(saved.rng["torch"])
        self.generator.set_state(saved.rng["data"])
        if "cuda" in saved.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved.rng["cuda"], self.device)
        self.state = Progress(**saved.progress)
        self.order = saved.tensors["order"]

    # -- steps -------------------------------------------------------------------------------------------
    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """This rank's shard (x, y) of global batch `index`, and the global batch's size."""
        rows = self.order[index * self.config.batch_size : (index + 1) * self.config.batch_size]
        x = self.train_x[rows]
        if self.mode == "dynamic":  # drawn for the global batch on every rank: shards get one draw's rows
            x = torch.bernoulli(x, generator=self.generator)
        start, stop = self.world.shard(len(rows))
        y = self.data.train_y[rows[start:stop]].to(self.device) if self.model.conditional else None
        return x[start:stop].to(self.device, non_blocking=True), y, len(rows)

    def nonfinite(self, message: str) -> None:
        """Skip this step or stop, as configured; never let the values reach the weights."""
        self.optimizer.zero_grad(set_to_none=True)
        self.state.skipped += 1
        self.state.skipped_in_a_row += 1
        if self.config.on_nonfinite == "stop" or self.state.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
            why = "" if self.config.on_nonfinite == "stop" else f" ({MAX_SKIPPED_IN_A_ROW} steps skipped in a row)"
            raise NonFiniteError(f"step {self.state.step}: {message}; training stopped{why}")
        tqdm.write(f"vaezoo: step {self.state.step}: {message}; the step was skipped", file=sys.stderr)

    def step(self, x: torch.Tensor, y: torch.Tensor | None, rows: int) -> float | None:
        """One optimizer step on this rank's shard x of a global batch of `rows` rows (then the adversary's
        steps, for an adversarial objective); the global batch's mean loss, or None when the guard skipped it.

        The loss is backpropagated before it is checked, so the check of the loss and of every gradient is one
        reduction and the step's one host synchronization; a non-finite step never reaches the weights."""
        self.model.objective.step = self.model.posterior.step = self.state.step
        self.optimizer.zero_grad(set_to_none=True)
        out = None
        if len(x):
            with self.autocast(), noise_shard(self.world.shard(rows)[0], rows):
                out = self.forward(x, y)
            # each shard's mean loss weighted by its share: the summed gradients are the global batch mean's
            (out.loss * (len(x) / rows)).backward()
        for p in self.adversary_params:  # the VAE's loss trains the VAE only
            p.grad = None
        self.world.sum_gradients(self.vae_params)
        local = out.loss.detach().float() if out is not None else torch.zeros((), device=self.device)
        loss_sum, bad_loss, bad_grad = self.world.sum(
            torch.stack([local * len(x), (~torch.isfinite(local)).float(), nonfinite_gradients(self.vae_params)])
        ).tolist()
        if bad_loss or bad_grad:
            self.nonfinite(self.describe_nonfinite(out, local, bool(bad_loss), self.vae_params))
            return None
        if self.config.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.vae_params, self.config.clip_grad, foreach=True)
        self.optimizer.step()
        if self.adversary_params and not self.adversary_steps(x, y, rows, out):
            return None
        self.state.skipped_in_a_row = 0
        return loss_sum / rows

    def adversary_steps(self, x: torch.Tensor, y: torch.Tensor | None, rows: int, out: Any) -> bool:
        """The objective's adversary updates on this batch, against the VAE step's output; False when one went
        non-finite (it is skipped like any step)."""
        objective = self.model.objective
        for _ in range(objective.adversary_steps):
            self.optimizer.zero_grad(set_to_none=True)
            local = torch.zeros((), device=self.device)
            if out is not None:
                with self.autocast():
                    loss = objective.adversary_loss(self.model, x, y, out)
                (loss * (len(x) / rows)).backward()
                local = loss.detach().float()
            self.world.sum_gradients(self.adversary_params)
            bad_loss, bad_grad = self.world.sum(
                torch.stack([(~torch.isfinite(local)).float(), nonfinite_gradients(self.adversary_params)])
            ).tolist()
            if bad_loss or bad_grad:
                what = "the adversary's loss" if bad_loss else "the adversary's gradient"
                self.nonfinite(f"{what} went non-finite")
                return False
            if self.config.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(self.adversary_params, self.config.clip_grad, foreach=True)
            self.optimizer.step()
        return True

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast for the forward pass when asked for, else nothing."""
        if self.config.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe_nonfinite(self, out: Any, loss: torch.Tensor, bad_loss: bool, params: list[torch.Tensor]) -> str:
        """What went non-finite in a step, for the message (only ever computed for a step that is skipped)."""
        if bad_loss and (out is None or torch.isfinite(loss)):
            return "the loss went non-finite on another rank"
        if bad_loss:
            bad = [name for name in ("recon", "kl") if not torch.isfinite(getattr(out, name)).all()]
            return f"the loss went non-finite (in {', '.join(bad) or 'the loss itself'})"
        names = {id(p): name for name, p in self.model.named_parameters()}
        bad = next((names[id(p)] for p in params if p.grad is not None and not torch.isfinite(p.grad).all()), None)
        return f"the gradient of {bad} went non-finite" if bad else "a gradient went non-finite on another rank"

    # -- epochs ------------------------------------------------------------------------------------------
    def run_epoch(self) -> None:
        config, state = self.config, self.state
        bar = tqdm(
            range(state.batch, self.steps_per_epoch), initial=state.batch, total=self.steps_per_epoch,
            desc=f"epoch {state.epoch}/{config.epochs}", disable=not self.show, leave=False,
        )
        self.model.train()
        for index in bar:
            start = time.perf_counter()
            x, y, rows = self.batch(index)
            loss = self.step(x, y, rows)
            state.step += 1
            state.batch = index + 1
            if loss is not None:
                state.loss_sum += loss * rows
                state.seen += rows
                bar.set_postfix(loss=f"{state.loss_sum / state.seen:.2f}", refresh=False)
            state.epoch_seconds += time.perf_counter() - start
            if config.checkpoint_every and state.step % config.checkpoint_every == 0 and state.batch < self.steps_per_epoch:
                self.checkpoint()

    def end_epoch(self) -> bool:
        """Evaluate, record, save and checkpoint; True when training should go on."""
        config, state = self.config, self.state
        if state.seen == 0:
            raise NonFiniteError(
                f"epoch {state.epoch} trained on nothing: all {self.steps_per_epoch} steps were skipped as "
                "non-finite; nothing was written for it. Check the data and settings (e.g. --set values, --lr)"
            )
        require_finite(self.model.state_dict(), WEIGHTS)  # on every rank: all stop together
        val = evaluate.elbo(self.model, self.held_out, self.held_out_y, world=self.world)
        metrics = {
            "epoch": state.epoch, "train_loss": state.loss_sum / max(state.seen, 1), "val_elbo": val["elbo"],
            "val_recon": val["recon"], "val_kl": val["kl"], "seconds": round(state.epoch_seconds, 3),
            "skipped_steps": state.skipped,
        }
        if "bits_per_dim" in val:
            metrics["val_bits_per_dim"] = val["bits_per_dim"]
        if self.world.main:
            save_weights(self.run, self.model)
            append_metrics(self.run, metrics)
        if self.show:
            tqdm.write(
                f"epoch {state.epoch}/{config.epochs}  train_loss {metrics['train_loss']:.2f}  "
                f"val_elbo {val['elbo']:.2f} nats  ({state.epoch_seconds:.1f}s)"
            )
        if val["elbo"] > state.best_val:
            state.best_val, state.bad_epochs = val["elbo"], 0
        else:
            state.bad_epochs += 1
        stop_early = config.patience is not None and state.bad_epochs >= config.patience
        if stop_early and self.show:
            tqdm.write(f"early stop: the held-out ELBO has not improved for {config.patience} epochs")
        state.epoch += 1
        state.batch, state.loss_sum, state.seen, state.epoch_seconds = 0, 0.0, 0, 0.0
        self.order = torch.randperm(len(self.data.train_x), generator=self.generator)
        self.checkpoint()
        return not stop_early and state.epoch <= config.epochs

    def fit(self) -> None:
        while self.state.epoch <= self.config.epochs:
            self.run_epoch()
            if not self.end_epoch():
                break


def _load(config: TrainConfig, device: torch.device) -> tuple[Dataset, VAE]:
    resolve(config.variant, config.overrides)  # bad names and overrides fail before any work
    data = load_dataset(config.dataset, config.data_dir, limit=config.limit, **config.data_options)
    if len(data.train_x) == 0:
        raise DataError(f"the {config.dataset} dataset has no training images; there is nothing to train on")
    try:
        model = create_model(
            config.variant, input_shape=data.input_shape, latent_dim=config.latent_dim, **config.overrides
        ).to(device)
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and "alloc" not in str(exc):
            raise
        raise VaezooError(
            f"{config.variant} with latent_dim {config.latent_dim} on {tuple(data.input_shape)} inputs does not fit in "
            f"memory on {device}; use a smaller --latent-dim or smaller parts"
        ) from None
    if model.conditional:
        check_labels(data, model.num_classes)
    return data, model


@contextlib.contextmanager
def _joined(config: TrainConfig) -> Iterator[World]:
    """The world of this run (torchrun's process group, or one process), left at the end."""
    world = join(config.device)
    try:
        yield world
    finally:
        world.close()


def _on_main(world: World, action: Callable[[], Any]) -> Any:
    """action() on rank 0, its failure raised on every rank (so that no rank waits for one that gave up)."""
    result, error = None, None
    if world.main:
        try:
            result = action()
        except Exception as err:  # noqa: BLE001 - re-raised below, after the other ranks have heard of it
            error = err
    if not world.all_agree(error is None):
        raise error or VaezooError("rank 0 failed; see its message")
    return result


def _locked(world: World, claim: Callable[[], RunLock]) -> contextlib.AbstractContextManager:
    """The run directory's lock, taken by rank 0 (its failure raised on every rank), released on leaving."""
    lock = _on_main(world, claim)
    return lock if lock is not None else contextlib.nullcontext()


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train `config.variant` on `config.dataset` into the new run directory `config.out`; returns its path.

    Under torchrun every rank calls this: each trains on its shard of every global batch (see Trainer)."""
    config.validate()
    with _joined(config) as world:
        torch.manual_seed(config.seed)  # before the model is built: its initial weights repeat too
        data, model = _load(config, world.device)
        run = Path(config.out)
        with _locked(world, lambda: claim_new_run_dir(config.out)):
            trainer = Trainer(config, data, model, run, progress, world)
            if world.main:
                write_config(run, {**model.config, "dataset": config.dataset, "train": asdict(config)})
            trainer.fit()
            if world.main:
                write_run_outputs(model, data, run)
    return run


#: Settings that a resumed run may change: they decide where and how it runs, not what it computes.
RESUMABLE_CHANGES = ("epochs", "device", "data_dir", "checkpoint_every")


def _starting_point(trainer: Trainer, run: Path) -> str:
    """Restore the newest checkpoint that fits; with none yet and nothing trained, start from the beginning.
    Returns what was done, for the user."""
    if checkpoints(run):
        trainer.restore(load_latest_checkpoint(run, accept=trainer.check_fits))
        return f"resuming {run} at epoch {trainer.state.epoch}, step {trainer.state.step}"
    if (run / WEIGHTS).exists():
        raise RunDirError(
            f"{run} has trained weights but no checkpoint to resume from; its {WEIGHTS} is left as it is: "
            "delete the directory (or train into another --out) to train again"
        )
    return f"{run} was stopped before its first checkpoint: training it from the start"


def resume(run_dir: str, progress: bool = True, epochs: int | None = None, **changes: Any) -> Path:
    """Continue the run in `run_dir` from its newest good checkpoint (optionally to more `epochs`).

    `changes` may set the RESUMABLE_CHANGES (device, data_dir, checkpoint_every); a run stopped before its
    first checkpoint starts again from the beginning. Under torchrun every rank calls this and restores the
    same checkpoint; the number of ranks may differ from the interrupted run's, since the global batch is what
    a checkpoint describes."""
    run = Path(run_dir)
    user_data_dir = changes.get("data_dir")
    changes = {key: value for key, value in changes.items() if value is not None}
    unknown = set(changes) - set(RESUMABLE_CHANGES)
    if unknown:
        raise VaezooError(f"a resumed run keeps its settings; only {', '.join(RESUMABLE_CHANGES)} may change, "
                          f"not {', '.join(sorted(unknown))}")
    saved_config = read_config(run)
    config = TrainConfig.from_dict(saved_config["train"])
    if epochs is not None:
        config.epochs = epochs
    for key, value in changes.items():
        setattr(config, key, value)
    config.data_dir = run_data_dir(run, saved_config, user_data_dir)
    config.validate()
    with _joined(config) as world, _locked(world, lambda: claim_run_dir(run)):
        saved_config = read_config(run)  # again, now that it is ours
        torch.manual_seed(config.seed)  # as train() does: a run restarted from nothing repeats too
        data, model = _load(config, world.device)
        trainer = Trainer(config, data, model, run, progress, world)
        what = _starting_point(trainer, run)
        if trainer.show:
            tqdm.write(f"vaezoo: {what}", file=sys.stderr)
        done = trainer.state.epoch - 1
        if world.main:
            rewrite_metrics(run, [m for m in read_metrics(run) if m["epoch"] <= done])  # drop epochs to be redone
            if epochs is not None or changes:
                record = {**asdict(config), "data_dir": user_data_dir or saved_config["train"].get("data_dir")}
                write_config(run, {**saved_config, "train": record})
        if trainer.state.epoch <= config.epochs and trainer.state.bad_epochs < (config.patience or math.inf):
            trainer.fit()
        if world.main:
            write_run_outputs(model, data, run)
    return run
