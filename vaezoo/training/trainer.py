"""The training loop: a Trainer steps a VAE over a dataset; `train` and `resume` run one by name, into a run
directory.

Every epoch (and every `checkpoint_every` steps) a checkpoint holds the weights, the optimizer, the RNG
states and the data position (epoch and batch: the order of an epoch is a function of the seed and the epoch),
so `resume` continues a killed run exactly where its last checkpoint stood, with DataLoader workers or not.
A guard stops non-finite losses and gradients from ever reaching the weights or a checkpoint, and no
non-finite tensor is ever written. The run directory is locked for the whole run: one writer at a time.
"""
from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vaezoo.analysis import evaluate
from vaezoo.analysis.eval_extras import hand_feature_network
from vaezoo.analysis.objective_terms import held_out_objective
from vaezoo.analysis.run_outputs import write_run_outputs
from vaezoo.core import VAE
from vaezoo.data.binarize import dynamic_bits, fixed_bits
from vaezoo.data.datasets import check_labels, load_dataset
from vaezoo.data.held_out import binarization, held_out_set
from vaezoo.data.splits import Splits, to_model_input
from vaezoo.errors import DataError, NonFiniteError, RunDirError, SettingError, VaezooError, literal
from vaezoo.ops import noise_shard
from vaezoo.registry.factory import create_model, resolve
from vaezoo.runs.checkpoint import (
    TrainingState,
    checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
from vaezoo.runs.checkpoint_match import check_fits
from vaezoo.runs.directory import (
    WEIGHTS,
    claim_new_run_dir,
    claim_run_dir,
    model_record,
    read_metrics,
    rewrite_metrics,
    save_architecture,
    save_weights,
    write_config,
)
from vaezoo.runs.lock import RunLock
from vaezoo.runtime.distributed import World, join
from vaezoo.runtime.finite import nonfinite_gradients, require_finite
from vaezoo.training.batches import Batch, SplitBatches, auto_workers, check_values
from vaezoo.training.callbacks import Callback, EarlyStopping, NonFiniteGuard
from vaezoo.training.config import TrainConfig
from vaezoo.training.loggers import build_loggers
from vaezoo.training.optim import OptimizerChoice, Schedule, build_optimizer
from vaezoo.training.prior_refit import refit_prior
from vaezoo.training.resume_plan import RESUMABLE_CHANGES, ResumePlan, plan_resume  # noqa: F401 - its old home


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 1  # the epoch under way (its data order is a function of the seed and the epoch)
    batch: int = 0  # batches of this epoch already done
    step: int = 0  # optimizer steps taken (or skipped) in all
    loss_sum: float = 0.0  # this epoch's training loss, summed over examples
    seen: int = 0  # examples of this epoch trained on
    epoch_seconds: float = 0.0
    best_val: float = -math.inf  # early stopping's best held-out ELBO ...
    bad_epochs: int = 0  # ... and the epochs since
    skipped: int = 0  # steps skipped as non-finite, in all
    skipped_in_a_row: int = 0
    # the plateau schedule's factor, its best held-out ELBO and the epochs since (absent from older checkpoints)
    lr_scale: float = field(default=1.0, metadata={"added_later": True})
    plateau_best: float = field(default=-math.inf, metadata={"added_later": True})
    plateau_bad: int = field(default=0, metadata={"added_later": True})


class Trainer:
    """One training run: model, optimizer and schedule, data order and RNG, stepping, callbacks and checkpoints.

    `run` is the run directory (None: nothing is written). The training data is read batch by batch from
    `batches` (default: the training split of `data` through a DataLoader, see training.batches), converted to
    float and binarized per batch on the device. In a world of several ranks every rank follows the same data
    order and generator states; each reads and trains on its shard of every global batch (of config.batch_size
    rows) with that shard's rows of the batch's noise, the gradients and metrics are summed over the ranks, and
    only rank 0 writes files. The result is that of one process training on the global batches, up to float
    rounding."""

    def __init__(
        self, config: TrainConfig, data: Splits, model: VAE, run: Path | None, progress: bool,
        world: World | None = None, callbacks: list[Callback] | tuple[Callback, ...] = (),
        optimizer: OptimizerChoice | None = None, batches: Any = None,
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
        # stepped, so each update moves one side, and checkpoints keep one optimizer state
        self.optimizer = build_optimizer(optimizer or config.optimizer, groups, config.lr, config.optimizer_options)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        workers = config.workers if config.workers is not None else auto_workers(data.train.in_memory)
        self.batches = batches or SplitBatches(data.train, config.batch_size, config.seed, self.world, workers,
                                               self.device, data.name)
        self.steps_per_epoch: int | None = self.batches.steps_per_epoch
        if self.steps_per_epoch is None and config.schedule in ("cosine", "step"):
            raise VaezooError(f"the {config.schedule} schedule needs the number of steps in an epoch, which a stream "
                              "without a length does not have: give fit() steps_per_epoch")
        self.schedule = Schedule(config.schedule, config.schedule_options, config.warmup_steps,
                                 self.steps_per_epoch or 1, config.epochs)
        self.mode = binarization(config.binarize, model)
        if self.mode == "static" and not self.batches.indexed:
            raise VaezooError("binarize='static' fixes one draw per image, which needs images by index: give a map "
                              "Dataset or tensors, or binarize='dynamic'")
        self.held_out = held_out_set(data, model, config.binarize)
        hand_feature_network(model, data, progress=self.show)  # before restore: a checkpoint's copy wins
        self.forward = torch.compile(model) if config.compile else model
        self.state = Progress()
        self.should_stop = False
        own = [NonFiniteGuard(config.on_nonfinite)] + ([EarlyStopping(config.patience)] if config.patience else [])
        logs = build_loggers(config.log, run, config.log_images_every) if run is not None else []
        self.callbacks = [c for c in (*own, *logs, *callbacks) if self.world.main or not c.writes]

    def emit(self, event: str, *args: Any) -> None:
        """Call `event` on every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # -- checkpoints -------------------------------------------------------------------------------------
    def snapshot(self) -> TrainingState:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return TrainingState(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(), rng=rng,
            progress=asdict(self.state),
        )

    def checkpoint(self) -> None:
        require_finite(self.model.state_dict(), "a checkpoint")  # on every rank: all stop together
        if self.world.main and self.run is not None:
            save_checkpoint(self.run, self.state.step, self.snapshot())

    def check_fits(self, saved: TrainingState) -> None:
        """Raise ValueError when the verified checkpoint `saved` does not fit this run (see runs.checkpoint_match)."""
        check_fits(saved, model=self.model, optimizer=self.optimizer, progress_type=Progress,
                   steps_per_epoch=self.steps_per_epoch, scheduled=self.schedule.varies)

    def restore(self, saved: TrainingState) -> None:
        """Continue from `saved`, which check_fits accepted."""
        self.model.load_state_dict(saved.model)
        self.optimizer.load_state_dict(saved.optimizer)
        torch.set_rng_state(saved.rng["torch"])
        if "cuda" in saved.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved.rng["cuda"], self.device)
        self.state = Progress(**saved.progress)

    # -- steps -------------------------------------------------------------------------------------------
    def batch(self, index: int, loaded: Batch) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """This rank's shard (x, y) of global batch `index` as read (`loaded`), on the device as the model's float
        input, binarized as the run says; and the global batch's size.

        Binarization is one fixed draw per image from (seed, its row) ("static"), or a fresh draw of the global
        batch from (seed, epoch, batch) of which this rank keeps its shard's rows ("dynamic"): either way a shard
        is binarized as the same rows are in one process, and a resumed run draws what it would have drawn."""
        x = to_model_input(loaded.images.to(self.device, non_blocking=True))
        if self.batches.checks_values:
            check_values(x, "train_data", index, binarizing=self.mode != "none")
        if self.mode == "static":
            x = fixed_bits(x, loaded.rows, self.config.seed + 1)
        elif self.mode == "dynamic" and len(x):
            start = self.world.shard(loaded.size)[0]
            x = dynamic_bits(x, loaded.size, start, self.config.seed, self.state.epoch, index)
        y = None
        if self.model.conditional:
            if loaded.labels is None and len(x):
                raise DataError("this conditional model needs labels: give the training data as (x, y)")
            y = loaded.labels.to(self.device, non_blocking=True) if loaded.labels is not None else None
            if y is not None and len(y) and (int(y.min()) < 0 or int(y.max()) >= self.model.num_classes):
                raise DataError(f"batch {index + 1}'s labels run {int(y.min())}..{int(y.max())}, but this conditional "
                                f"model has {self.model.num_classes} classes")
        return x, y, loaded.size

    def nonfinite(self, message: str) -> None:
        """A step was not applied: count it and let the guard skip it or stop training."""
        self.optimizer.zero_grad(set_to_none=True)
        self.state.skipped += 1
        self.state.skipped_in_a_row += 1
        self.emit("on_nonfinite", message)

    def apply(self, params: list[torch.Tensor], terms: list[torch.Tensor],
              describe: Callable[[bool], str]) -> list[float] | None:
        """Sum this rank's gradients of `params` and `terms` over the ranks; unless the loss (terms[-1] flags it)
        or a gradient went non-finite, clip and take the optimizer step. The check is one reduction and the
        step's one host synchronization. Returns the summed terms' values when the step was taken, else None."""
        self.world.sum_gradients(params)
        *values, bad_loss, bad_grad = self.world.sum(torch.stack([*terms, nonfinite_gradients(params)])).tolist()
        if bad_loss or bad_grad:
            self.nonfinite(describe(bool(bad_loss)))
            return None
        if self.config.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.clip_grad, foreach=True)
        if self.schedule.varies:
            self.schedule.apply(self.optimizer, self.base_lrs, self.state.step, self.state.lr_scale)
        self.optimizer.step()
        return values

    def step(self, x: torch.Tensor, y: torch.Tensor | None, rows: int) -> float | None:
        """One optimizer step on this rank's shard x of a global batch of `rows` rows (then the adversary's
        steps, for an adversarial objective); the global batch's mean loss, or None when the guard skipped it.

        The loss is backpropagated before it is checked, so a non-finite step never reaches the weights."""
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
        local = out.loss.detach().float() if out is not None else torch.zeros((), device=self.device)
        taken = self.apply(self.vae_params, [local * len(x), (~torch.isfinite(local)).float()],
                           lambda bad_loss: self.describe_nonfinite(out, local, bad_loss, self.vae_params))
        if taken is None or (self.adversary_params and not self.adversary_steps(x, y, rows, out)):
            return None
        self.state.skipped_in_a_row = 0
        return taken[0] / rows

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
            describe = lambda bad_loss: f"the adversary's {'loss' if bad_loss else 'gradient'} went non-finite"  # noqa: E731
            if self.apply(self.adversary_params, [(~torch.isfinite(local)).float()], describe) is None:
                return False
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
            total=self.steps_per_epoch, initial=state.batch,
            desc=f"epoch {state.epoch}/{config.epochs}", disable=not self.show, leave=False,
        )
        self.model.train()
        loaded = self.batches.epoch(state.epoch, state.batch)
        index = state.batch
        while True:
            start = time.perf_counter()
            read = next(loaded, None)  # the reading time counts as the epoch's, as it would in any loop
            if read is None:
                break
            x, y, rows = self.batch(index, read)
            loss = self.step(x, y, rows)
            state.step += 1
            state.batch = index + 1
            if loss is not None:
                state.loss_sum += loss * rows
                state.seen += rows
                bar.set_postfix(loss=f"{state.loss_sum / state.seen:.2f}", refresh=False)
            state.epoch_seconds += time.perf_counter() - start
            bar.update()
            self.emit("on_step_end", loss)
            index += 1
            last = self.steps_per_epoch is not None and state.batch >= self.steps_per_epoch
            if config.checkpoint_every and state.step % config.checkpoint_every == 0 and not last:
                self.checkpoint()
        bar.close()

    def epoch_metrics(self) -> dict[str, Any]:
        """This epoch's record: training loss, held-out ELBO (when there is a held-out set), time, skips, lr."""
        state = self.state
        metrics = {"epoch": state.epoch, "train_loss": state.loss_sum / max(state.seen, 1)}
        if len(self.held_out):
            val = evaluate.elbo(self.model, self.held_out, world=self.world)
            metrics.update(val_elbo=val["elbo"], val_recon=val["recon"], val_kl=val["kl"])
            if "bits_per_dim" in val:
                metrics["val_bits_per_dim"] = val["bits_per_dim"]
            # the objective's own loss and terms: what a model that is not trained on the ELBO (a WAE) is judged by
            batches = ((x, y) for x, y, _ in self.held_out.batches(self.held_out.batch_rows(), self.device))
            objective = held_out_objective(self.model, batches)
            metrics["val_loss"] = objective.pop("loss")
            metrics.update({f"val_loss_{term}": value for term, value in objective.items()})
        metrics.update(seconds=round(state.epoch_seconds, 3), skipped_steps=state.skipped)
        if self.schedule.varies:
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        return metrics

    def end_epoch(self) -> bool:
        """Refit a prior fitted to codes, evaluate, record, save and checkpoint; True when training should go on."""
        config, state = self.config, self.state
        if state.batch == 0:
            raise DataError(f"epoch {state.epoch} had no training data: the stream ended before its first batch")
        if state.seen == 0:
            raise NonFiniteError(
                f"epoch {state.epoch} trained on nothing: all {self.steps_per_epoch} steps were skipped as "
                "non-finite; nothing was written for it. Check the data and settings (e.g. --set values, --lr)"
            )
        if self.model.prior.refits:
            refit_prior(self.model, self.refit_batches(), world=self.world)
        require_finite(self.model.state_dict(), WEIGHTS)  # on every rank: all stop together
        metrics = self.epoch_metrics()
        if self.world.main and self.run is not None:
            save_weights(self.run, self.model)
        self.emit("on_epoch_end", metrics)
        if self.show:
            value = metrics.get("val_elbo")
            shown = "non-finite" if value is not None and not math.isfinite(value) else f"{value:.2f} nats"
            held_out = f"  val_elbo {shown}" if value is not None else ""
            tqdm.write(f"epoch {state.epoch}/{config.epochs}  train_loss {metrics['train_loss']:.2f}{held_out}  "
                       f"({state.epoch_seconds:.1f}s)")
        state.plateau_best, state.plateau_bad, state.lr_scale = self.schedule.after_epoch(
            metrics.get("val_elbo"), state.plateau_best, state.plateau_bad, state.lr_scale)
        state.epoch += 1
        state.batch, state.loss_sum, state.seen, state.epoch_seconds = 0, 0.0, 0, 0.0
        self.checkpoint()
        return not self.should_stop and state.epoch <= config.epochs

    def refit_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """One pass over this rank's shards of the training set in order, as the model's input (binarized once,
        by the seed, when training binarizes), for refitting the prior to the training codes."""
        for loaded in self.batches.in_order():
            if len(loaded.images):
                x = to_model_input(loaded.images.to(self.device, non_blocking=True))
                if self.mode != "none":
                    x = fixed_bits(x, loaded.rows, self.config.seed + 1)
                y = loaded.labels.to(self.device) if self.model.conditional and loaded.labels is not None else None
                yield x, y

    def fit(self, outputs: Callable[[], Any] | None = None) -> None:
        """Train to the last epoch (or an early stop); then `outputs()` (the run's pictures and report), so that
        the callbacks' on_fit_end sees them."""
        self.emit("on_fit_start")
        while self.state.epoch <= self.config.epochs:
            self.run_epoch()
            if not self.end_epoch():
                break
        if outputs is not None:
            outputs()
        self.emit("on_fit_end")


def _load(config: TrainConfig, device: torch.device) -> tuple[Splits, VAE]:
    resolve(config.variant, config.overrides)  # bad names and overrides fail before any work
    data = load_dataset(config.dataset, config.data_dir, limit=config.limit, **config.data_options)
    if len(data.train) == 0:
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


def _write_outputs(world: World, model: VAE, data: Splits, run: Path) -> None:
    """The run's pictures and report, written by rank 0."""
    if world.main:
        write_run_outputs(model, data, run)


def train_into(run: Path, config: TrainConfig, data: Splits, model: VAE, world: World, progress: bool,
               record: dict[str, Any], callbacks: Sequence[Callback] = (), optimizer: OptimizerChoice | None = None,
               batches: Any = None) -> Path:
    """Train `model` on `data` into the new run directory `run`, recording the settings `record`: config.json
    (with a hand-built model's architecture), weights and checkpoints, metrics, pictures and report."""
    with _locked(world, lambda: claim_new_run_dir(str(run))):
        trainer = Trainer(config, data, model, run, progress, world, callbacks, optimizer, batches)
        if world.main:
            recorded = model_record(model)
            if "architecture" in recorded:
                recorded["architecture"] = save_architecture(run, model)
            described = model.objective.describe()  # e.g. which network a perceptual loss runs on
            write_config(run, {**recorded, "dataset": config.dataset, "train": record,
                               **({"objective": described} if described else {})})
        trainer.fit(outputs=functools.partial(_write_outputs, world, model, data, run))
    return run


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train `config.variant` on `config.dataset` into the new run directory `config.out`; returns its path.

    Under torchrun every rank calls this: each trains on its shard of every global batch (see Trainer)."""
    config.validate()
    missing = [name for name in ("variant", "dataset", "out") if not getattr(config, name)]
    if missing:
        raise VaezooError(f"training by name needs {', '.join(missing)}: give it on the command line or in --config")
    with _joined(config) as world:
        torch.manual_seed(config.seed)  # before the model is built: its initial weights repeat too
        data, model = _load(config, world.device)
        return train_into(Path(config.out), config, data, model, world, progress, config.record())


def _starting_point(trainer: Trainer, run: Path) -> str:
    """Restore the newest checkpoint that fits; with none yet and nothing trained, start from the beginning.
    Returns what was done, for the user."""
    if checkpoints(run):
        trainer.restore(load_latest_checkpoint(run, accept=trainer.check_fits))
        return f"resuming {run} at epoch {trainer.state.epoch}, step {trainer.state.step}"
    if not (run / WEIGHTS).exists():
        return f"{run} was stopped before its first checkpoint: training it from the start"
    trained = max((m["epoch"] for m in read_metrics(run)), default=0)
    if trained > 1:  # epochs beyond the first were checkpointed once: these checkpoints were removed
        raise RunDirError(
            f"{run} has trained weights ({trained} epochs) but no checkpoint to resume from; its {WEIGHTS} is left as "
            "it is: delete the directory (or train into another --out) to train again"
        )
    # the first epoch's checkpoint was never written (a full disk): its weights are what training from the
    # start makes again, seeded, so starting over loses nothing
    return f"{run} has no checkpoint (its first was never written): training it again from the start"


def resume(run_dir: str | ResumePlan, progress: bool = True, epochs: int | None = None, **settings: Any) -> Path:
    """Continue the run in `run_dir` from its newest good checkpoint (optionally to more `epochs`).

    `settings` may change the RESUMABLE_CHANGES (device, data_dir, checkpoint_every, workers); any other setting
    given must be the run's (see plan_resume, whose ResumePlan `run_dir` may also be). A run stopped before its
    first checkpoint starts again from the beginning. Under torchrun every rank calls this and restores the
    same checkpoint; the number of ranks may differ from the interrupted run's, since the global batch is what
    a checkpoint describes."""
    plan = run_dir if isinstance(run_dir, ResumePlan) else plan_resume(run_dir, epochs, **settings)
    run, config, saved_config, epochs = plan.run, plan.config, plan.saved, plan.epochs
    with _joined(config) as world, _locked(world, lambda: claim_run_dir(run)):
        _on_main(world, plan.check_unchanged)  # config.json is the one read, now that the run is ours
        torch.manual_seed(config.seed)  # as train() does: a run restarted from nothing repeats too
        data, model = _load(config, world.device)
        trainer = Trainer(config, data, model, run, progress, world)
        what = _starting_point(trainer, run)
        done = trainer.state.epoch - 1
        if epochs is not None and epochs < done:
            raise SettingError(f"{{0}} {epochs} is fewer than the {done} epochs {literal(run)} has already trained; "
                               f"give {{0}} {done} or more, or leave it out (the run is left as it was)", "epochs")
        if trainer.show:
            tqdm.write(f"vaezoo: {what}", file=sys.stderr)
        if world.main:
            rewrite_metrics(run, [m for m in read_metrics(run) if m["epoch"] <= done])  # drop epochs to be redone
            if epochs is not None or plan.changes:
                record = {**config.record(), "data_dir": plan.data_dir or saved_config["train"].get("data_dir"),
                          **{key: saved_config["train"][key] for key in ("variant", "dataset")}}
                write_config(run, {**saved_config, "train": record})
        outputs = functools.partial(_write_outputs, world, model, data, run)
        if trainer.state.epoch <= config.epochs and trainer.state.bad_epochs < (config.patience or math.inf):
            trainer.fit(outputs)
        else:
            outputs()
    return run
