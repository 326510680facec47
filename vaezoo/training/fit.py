"""`vaezoo.fit`: train any VAE (from create_model, or assembled by hand) on data in memory."""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from vaezoo.core import VAE
from vaezoo.data.datasets import Dataset, check_labels
from vaezoo.data.held_out import binarization
from vaezoo.errors import DataError, VaezooError
from vaezoo.runs.directory import HAND_BUILT, IN_MEMORY
from vaezoo.runtime.distributed import World
from vaezoo.training.callbacks import Callback
from vaezoo.training.config import TrainConfig
from vaezoo.training.optim import OptimizerChoice
from vaezoo.training.trainer import Trainer, train_into

#: the settings that name what `vaezoo train` builds; fit takes the model and the data themselves instead
BUILD_SETTINGS = ("variant", "dataset", "out", "data_dir", "image_size", "channels", "data_options", "limit",
                  "latent_dim", "overrides")


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
    **settings: Any,
) -> Run:
    """Train `model` on `train_data` for `epochs`, scoring each epoch on `val_data` when given.

    Data is a tensor of images [N, C, H, W] (values in [0, 1] for a Bernoulli likelihood), a pair (x, y) of
    images and integer labels, a torch Dataset whose items are x or (x, y), or a DataLoader (read once into
    memory; its batch size is used unless `batch_size` is given). A conditional model needs the labels.

    `out` names a new run directory to write, like `vaezoo train` does (weights, checkpoints, metrics.jsonl,
    config.json, pictures, report.html; `vaezoo.load_model(out)` loads it back). `optimizer` is a name (adam,
    adamw, sgd; options in `optimizer_options`) or a callable that takes the parameter groups and returns a
    torch optimizer. `settings` are any other TrainConfig fields: batch_size, lr, optimizer_options, schedule,
    schedule_options, warmup_steps, seed, binarize, clip_grad, patience, device (default: the model's),
    compile, bf16, checkpoint_every, on_nonfinite, log (["tensorboard", "csv", "mlflow"]), log_images_every.
    """
    if not isinstance(model, VAE):
        raise VaezooError(f"fit trains a vaezoo VAE, got {type(model).__name__}; build one with vaezoo.create_model "
                          "or vaezoo.VAE(...)")
    _check_settings(settings)
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
    data = _dataset(model, config, train_data, val_data)
    model = model.to(config.device)
    history = History()
    hooks = [history, *callbacks]
    custom = None if isinstance(optimizer, str) else optimizer
    world = World(device=torch.device(config.device))
    torch.manual_seed(config.seed)
    if out is None:
        Trainer(config, data, model, None, progress, world, hooks, custom).fit()
        return Run(model, history.metrics, None)
    record = config.record() if custom is None else {**config.record(), "optimizer": f"custom ({_name(custom)})"}
    run = train_into(Path(out), config, data, model, world, progress, record, hooks, custom)
    return Run(model, history.metrics, run)


def _check_settings(settings: dict[str, Any]) -> None:
    names = [f.name for f in fields(TrainConfig) if f.name not in BUILD_SETTINGS and f.name != "epochs"]
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
    """Images and labels (or None) of any supported form of data."""
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):  # read whole, as one batch
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


def _checked(model: VAE, config: TrainConfig, data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The images as float [N, *input_shape] on the CPU, and integer labels (zeros when none were given)."""
    x, y = _tensors(data, what)
    if not x.is_floating_point() or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise DataError(f"{what} must be float images of shape [N, {', '.join(map(str, model.input_shape))}] for this "
                        f"model, got {x.dtype} {tuple(x.shape)}")
    if len(x) == 0:
        raise DataError(f"{what} holds no examples")
    if not torch.isfinite(x).all():
        raise DataError(f"{what} holds NaN or infinite values")
    if binarization(config.binarize, model) != "none" and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{what} has values in [{x.min():.3g}, {x.max():.3g}]; binarizing for the Bernoulli likelihood "
                        "needs [0, 1]: rescale the images, or choose another likelihood or binarize='none'")
    if y is None:
        if model.conditional:
            raise DataError(f"this conditional model needs labels: give {what} as (x, y)")
        y = torch.zeros(len(x), dtype=torch.long)
    if y.shape != (len(x),) or y.is_floating_point():
        raise DataError(f"{what}'s labels must be integers, one per image, got {y.dtype} {tuple(y.shape)}")
    return x.detach().float().cpu(), y.detach().long().cpu()


def _dataset(model: VAE, config: TrainConfig, train_data: Any, val_data: Any) -> Dataset:
    train_x, train_y = _checked(model, config, train_data, "train_data")
    test_x, test_y = (train_x[:0], train_y[:0]) if val_data is None else _checked(model, config, val_data, "val_data")
    data = Dataset(IN_MEMORY, train_x, train_y, test_x, test_y)
    if model.conditional:
        check_labels(data, model.num_classes)
    return data
