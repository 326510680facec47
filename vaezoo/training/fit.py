"""`vaezoo.fit`: train any VAE (from create_model, or assembled by hand) on data as the user built it: tensors,
a map-style Dataset, an IterableDataset or a DataLoader."""
from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from vaezoo.checks import whole_number
from vaezoo.core import VAE
from vaezoo.data.held_out import binarization
from vaezoo.data.splits import ImageSet, Splits, TensorImages
from vaezoo.errors import DataError, VaezooError
from vaezoo.runs.directory import HAND_BUILT, IN_MEMORY
from vaezoo.runtime.distributed import World
from vaezoo.training.batches import ItemBatches, ItemChecker, StreamBatches, auto_workers
from vaezoo.training.callbacks import Callback
from vaezoo.training.config import BuildSettings, TrainConfig, TrainSettings
from vaezoo.training.optim import OptimizerChoice
from vaezoo.training.trainer import Trainer, train_into

#: the settings that name what `vaezoo train` builds; fit takes the model and the data themselves instead
BUILD_SETTINGS = tuple(f.name for f in fields(BuildSettings))


@dataclass
class Run:
    """A finished training run: the trained model, each epoch's metrics, and its directory (None without `out`)."""

    model: VAE
    metrics: list[dict[str, Any]]
    dir: Path | None


class History(Callback):
    """Keeps each epoch's metrics in memory."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, Any]] = []

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.metrics.append(dict(metrics))


def fit(
    model: VAE,
    train_data: Any,
    val_data: Any = None,
    *,
    epochs: int,
    out: str | Path | None = None,
    optimizer: OptimizerChoice = "adam",
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    steps_per_epoch: int | None = None,
    **settings: Any,
) -> Run:
    """Train `model` on `train_data` for `epochs`, scoring each epoch on `val_data` when given.

    Training data is read as the user built it, every epoch anew:
    - a tensor of images [N, C, H, W] (float in [0, 1], or uint8 0..255; [0, 1] is what a Bernoulli likelihood
      needs), or a pair (x, y) of images and integer labels: in memory, shuffled by vaezoo each epoch;
    - a map-style torch Dataset whose items are x or (x, y): read through vaezoo's sampler (shuffled by the
      seed) with DataLoader `workers`; `__getitem__` is called anew each epoch, so a random augmentation is
      applied every epoch;
    - an IterableDataset: batched in stream order; an epoch ends when the stream ends, or after
      `steps_per_epoch` batches (the stream then goes on where it stood, starting anew when it ends);
    - a DataLoader: iterated as it is every epoch (its workers, sampler, collate function; its batch size is
      the default `batch_size`); `steps_per_epoch` as for a stream.
    Items are checked per batch: shape, dtype, finiteness, and [0, 1] when binarizing; a bad one is a DataError
    naming it. A conditional model needs the labels. `val_data` (any of these forms) is read once into memory.

    `out` names a new run directory to write, like `vaezoo train` does (weights, checkpoints, metrics.jsonl,
    config.json, pictures, report.html; `vaezoo.load_model(out)` loads it back). `optimizer` is a name (adam,
    adamw, sgd; options in `optimizer_options`) or a callable that takes the parameter groups and returns a
    torch optimizer. `settings` are any other TrainSettings fields: batch_size, lr, optimizer_options, schedule,
    schedule_options, warmup_steps, seed, binarize, clip_grad, patience, device (default: the model's),
    workers (DataLoader workers for a map Dataset or an IterableDataset), compile, bf16, checkpoint_every,
    on_nonfinite, log (["tensorboard", "csv", "mlflow", "wandb"]), log_images_every.
    """
    if not isinstance(model, VAE):
        raise VaezooError(f"fit trains a vaezoo VAE, got {type(model).__name__}; build one with vaezoo.create_model "
                          "or vaezoo.VAE(...)")
    _check_settings(settings)
    _check_steps(steps_per_epoch, train_data)
    loader_batch = getattr(train_data, "batch_size", None) if isinstance(train_data, torch.utils.data.DataLoader) else None
    settings.setdefault("batch_size", loader_batch or TrainConfig.batch_size)
    settings.setdefault("device", str(next(model.parameters()).device))
    named = optimizer if isinstance(optimizer, str) else "adam"
    config = TrainConfig(variant=model.config.get("variant", HAND_BUILT), dataset=IN_MEMORY,
                         out=None if out is None else str(out), epochs=epochs, optimizer=named, **settings)
    config.validate()
    if config.log and out is None:
        raise VaezooError(f"the loggers {', '.join(config.log)} write into the run directory: give fit() out=")
    if config.patience and val_data is None:
        raise VaezooError("patience (early stopping) watches the held-out ELBO: give fit() val_data")
    data, batches = _dataset(model, config, train_data, val_data, steps_per_epoch)
    model = model.to(config.device)
    history = History()
    hooks = [history, *callbacks]
    custom = None if isinstance(optimizer, str) else optimizer
    world = World(device=torch.device(config.device))
    torch.manual_seed(config.seed)
    if out is None:
        Trainer(config, data, model, None, progress, world, hooks, custom, batches).fit()
        return Run(model, history.metrics, None)
    record = config.record() if custom is None else {**config.record(), "optimizer": f"custom ({_name(custom)})"}
    run = train_into(Path(out), config, data, model, world, progress, record, hooks, custom, batches)
    return Run(model, history.metrics, run)


def _streamed(data: Any) -> bool:
    return isinstance(data, (torch.utils.data.IterableDataset, torch.utils.data.DataLoader))


def _check_steps(steps_per_epoch: Any, train_data: Any) -> None:
    if steps_per_epoch is None:
        return
    whole_number("steps_per_epoch", steps_per_epoch)
    if not _streamed(train_data):
        raise VaezooError("steps_per_epoch is for streamed training data (an IterableDataset or a DataLoader); "
                          "an epoch of tensors or a map Dataset reads every example once")


def _check_settings(settings: dict[str, Any]) -> None:
    names = [f.name for f in fields(TrainSettings) if f.name != "epochs"]
    for key in settings:
        if key in BUILD_SETTINGS:
            raise VaezooError(f"fit takes the model and the data themselves; {key!r} is for `vaezoo train`")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; the settings are {', '.join(names)}"
            raise VaezooError(f"fit has no setting {key!r}{hint}")


def _name(thing: Any) -> str:
    return getattr(thing, "__qualname__", type(thing).__name__)


def _tensors(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images and labels (or None) of any supported form of data, read whole (held-out data)."""
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.IterableDataset):
        data = torch.utils.data.DataLoader(data, batch_size=1024)
    elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):  # read whole, as one batch
        data = torch.utils.data.DataLoader(data, batch_size=max(len(data), 1))
    if not isinstance(data, torch.utils.data.DataLoader):
        raise DataError(f"{what} must be a tensor, an (x, y) pair of tensors, a torch Dataset or a DataLoader, "
                        f"got {type(data).__name__}")
    items = list(data)
    if not items:
        return torch.empty(0), None
    if isinstance(items[0], (tuple, list)):
        return torch.cat([b[0] for b in items]), torch.cat([torch.as_tensor(b[1]) for b in items])
    return torch.cat(items), None


def _checked(model: VAE, config: TrainConfig, data: Any, what: str) -> TensorImages:
    """The images (float32 in [0, 1] or uint8) and integer labels (zeros when none were given) of data read
    whole, checked, on the CPU."""
    x, y = _tensors(data, what)
    if not (x.is_floating_point() or x.dtype == torch.uint8) or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise DataError(f"{what} must be float (or uint8) images of shape [N, {', '.join(map(str, model.input_shape))}]"
                        f" for this model, got {x.dtype} {tuple(x.shape)}")
    if len(x) == 0:
        raise DataError(f"{what} holds no examples")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise DataError(f"{what} holds NaN or infinite values")
    if x.is_floating_point() and binarization(config.binarize, model) != "none" and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{what} has values in [{x.min():.3g}, {x.max():.3g}]; binarizing for the Bernoulli likelihood "
                        "needs [0, 1]: rescale the images, or choose another likelihood or binarize='none'")
    if y is None:
        if model.conditional:
            raise DataError(f"this conditional model needs labels: give {what} as (x, y)")
        y = torch.zeros(len(x), dtype=torch.long)
    if y.shape != (len(x),) or y.is_floating_point():
        raise DataError(f"{what}'s labels must be integers, one per image, got {y.dtype} {tuple(y.shape)}")
    _check_classes(model, y, what)
    x = x.detach().cpu()
    return TensorImages(x if x.dtype == torch.uint8 else x.float(), y.detach().long().cpu())


def _check_classes(model: VAE, y: torch.Tensor, what: str) -> None:
    if model.conditional and y.numel() and (int(y.min()) < 0 or int(y.max()) >= model.num_classes):
        raise DataError(f"{what}'s labels run {int(y.min())}..{int(y.max())}, but this conditional model has "
                        f"{model.num_classes} classes (labels 0..{model.num_classes - 1}); relabel the data or use "
                        "an unconditional variant")


def _first_items(model: VAE, data: Any, checker: ItemChecker, n: int = 32) -> TensorImages:
    """Up to n of the first training items, checked: what the run's pictures show when there is no held-out
    set, read before training so that data of the wrong kind fails before anything is written."""
    if isinstance(data, torch.utils.data.DataLoader):
        batch = next(iter(data), None)
        x, y = (None, None) if batch is None else checker.check_batch(batch, 0)
    else:
        items = list(itertools.islice(iter(data), n)) if isinstance(data, torch.utils.data.IterableDataset) \
            else [data[i] for i in range(min(n, len(data)))]
        x, y = checker.stack(items, 0) if items else (None, None)
    if x is None:
        raise DataError(f"{checker.what} holds no examples")
    x, y = x[:n], None if y is None else y[:n]
    if y is not None:
        _check_classes(model, y, checker.what)
    return TensorImages(x if x.dtype == torch.uint8 else x.float(), torch.zeros(len(x), dtype=torch.long) if y is None else y)


def _training_data(model: VAE, config: TrainConfig, data: Any, steps_per_epoch: int | None
                   ) -> tuple[ImageSet, Any]:
    """The training split to show (all of tensors; the first items of any other form), and the batches the
    trainer reads (None: the trainer's own for tensors)."""
    if isinstance(data, torch.Tensor) or (isinstance(data, (tuple, list)) and len(data) == 2
                                          and all(isinstance(t, torch.Tensor) for t in data)):
        return _checked(model, config, data, "train_data"), None
    if not isinstance(data, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        raise DataError(f"train_data must be a tensor, an (x, y) pair of tensors, a torch Dataset or a DataLoader, "
                        f"got {type(data).__name__}")
    checker = ItemChecker("train_data", model.input_shape, model.conditional)
    shown = _first_items(model, data, checker)
    device = torch.device(config.device)
    if _streamed(data):  # an IterableDataset is copied into every worker: none unless asked for
        batches = StreamBatches(data, checker, config.batch_size, config.workers or 0, device, steps_per_epoch)
    elif not hasattr(data, "__len__"):
        raise DataError("train_data is a map-style Dataset without __len__; give it __len__, or make it an "
                        "IterableDataset")
    else:
        workers = config.workers if config.workers is not None else auto_workers(in_memory=False)
        batches = ItemBatches(data, checker, config.batch_size, config.seed, workers, device)
    return shown, batches


def _dataset(model: VAE, config: TrainConfig, train_data: Any, val_data: Any, steps_per_epoch: int | None
             ) -> tuple[Splits, Any]:
    train, batches = _training_data(model, config, train_data, steps_per_epoch)
    if val_data is None:
        test = TensorImages(torch.empty((0, *train.shape), dtype=train.dtype), torch.zeros(0, dtype=torch.long))
    else:
        test = _checked(model, config, val_data, "val_data")
    return Splits(IN_MEMORY, train, test), batches
