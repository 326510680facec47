"""The settings of a training run, defined once, in two parts: what to build (BuildSettings: the variant, the
dataset and the run directory) and how to train it (TrainSettings: epochs, batch size, optimizer, ...).
`vaezoo.fit` takes a model and data and the TrainSettings; `vaezoo train` takes a TrainConfig, which is both.

Each field's metadata holds its help and, where it has a fixed set of values, its choices. The command line
makes its flags from these fields and the keys of a config file are their names, so they cannot drift apart;
errors name the settings (`batch_size`), and the command line names its flags instead.
"""
from __future__ import annotations

import json
import math
import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from vaezoo.checks import whole_number
from vaezoo.errors import SettingError, literal
from vaezoo.runtime.devices import check_device

BINARIZE = ("auto", "dynamic", "static", "none")
ON_NONFINITE = ("skip", "stop")
MAX_LATENT_DIM = 65536  # far beyond any VAE's; a typo of a few digits more is refused before allocating
MAX_LR = 1e3  # an optimizer's step is lr-sized: far beyond this it overflows float32 on the first step
#: the settings that are also options of the dataset's loader (given on their own before there were loader options)
LOADER_SETTINGS = ("image_size", "channels")
#: the settings that are tables of KEY = VALUE
TABLES = ("overrides", "optimizer_options", "schedule_options", "data_options")


def setting(default: Any, help: str, choices: tuple[Any, ...] | None = None) -> Any:  # noqa: A002 - argparse's word
    """A settings field with its help and, where it has a fixed set of values, its choices."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": choices}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class BuildSettings:
    """What a run trained by name builds: the variant (with its overrides and latent size), the dataset (where it
    is, how much of it, its loader's options) and the new run directory `out`."""

    variant: str | None = setting(None, "variant name (see `vaezoo list`)")
    dataset: str | None = setting(None, "dataset name (see `vaezoo list --kind dataset`)")
    out: str | None = setting(None, "run directory to create (or, with --resume, to continue)")
    data_dir: str | None = setting(None, "folder (or file) with the dataset's files, where it needs one (recorded "
                                         "as an absolute path)")
    image_size: int | None = setting(None, "folder dataset: resize images to this many pixels square")
    channels: int | None = setting(None, "folder dataset: 1 (grey) or 3 (RGB)", choices=(1, 3))
    data_options: dict[str, Any] = setting(
        {}, "an option of the dataset's loader, e.g. image_size=16 (values are JSON where they parse)")
    limit: int | None = setting(None, "train on the first N examples of a fixed shuffle (quick runs)")
    latent_dim: int | None = setting(None, "latent dimensions (default: the variant's)")
    overrides: dict[str, Any] = setting(
        {}, "override a part or option: prior=NAME, beta=4, encoder.hidden_dims=[512,256]")

    def __post_init__(self) -> None:
        """image_size and channels are loader options too: fold them into data_options (a disagreement between
        the two is left for validate to name)."""
        if isinstance(self.data_options, dict):
            self.data_options = dict(self.data_options)
            for name in LOADER_SETTINGS:
                if getattr(self, name) is not None:
                    self.data_options.setdefault(name, getattr(self, name))

    def validate(self) -> None:
        """Raise SettingError naming the first of these settings that is of the wrong type or out of range."""
        _check_types(self, BuildSettings)
        for name in LOADER_SETTINGS:
            if getattr(self, name) is not None and self.data_options.get(name) != getattr(self, name):
                raise SettingError(f"{{0}} {literal(getattr(self, name))} and {{1}} "
                                   f"{name}={literal(json.dumps(self.data_options.get(name)))} disagree; give one "
                                   "of them", name, "data_options")
        for name in ("limit", "latent_dim"):
            if getattr(self, name) is not None:
                whole_number(name, getattr(self, name))
        if self.latent_dim is not None and self.latent_dim > MAX_LATENT_DIM:
            raise SettingError(f"{{0}} must be at most {MAX_LATENT_DIM}, got {self.latent_dim}", "latent_dim")
        _check_choices_and_tables(self, BuildSettings)


@dataclass
class TrainSettings:
    """How a model is trained: epochs, batches, optimizer and schedule, device and data workers, seed,
    binarization, safeguards, checkpoints and loggers. `vaezoo.fit` takes these as keyword arguments."""

    epochs: int = setting(10, "passes over the training set (with --resume: the run's unless given)")
    batch_size: int = setting(128, "examples per step")
    lr: float = setting(1e-3, "learning rate")
    optimizer: str = setting("adam", "optimizer", choices=("adam", "adamw", "sgd"))
    optimizer_options: dict[str, Any] = setting(
        {}, "an optimizer option, e.g. weight_decay=0.01, momentum=0.9, betas=[0.9,0.99]")
    schedule: str = setting("constant", "learning-rate schedule",
                            choices=("constant", "cosine", "step", "plateau"))
    schedule_options: dict[str, Any] = setting(
        {}, "a schedule option: cosine min_factor, step every/gamma (epochs), plateau patience/factor")
    warmup_steps: int = setting(0, "ramp the learning rate up linearly over this many first steps")
    device: str = setting("cpu", "cpu, cuda or cuda:N (with --resume: the run's unless given)")
    workers: int | None = setting(None, "DataLoader worker processes that read the training data (0: read in "
                                        "the training process; default: one per core but one, at most 4, and 0 "
                                        "for data held in memory)")
    seed: int = setting(0, "random seed: the same seed repeats a run")
    binarize: str = setting("auto", "auto: a fresh Bernoulli draw per batch exactly when the likelihood is "
                                    "Bernoulli; static: one fixed draw; none", choices=BINARIZE)
    clip_grad: float | None = setting(None, "clip the gradient norm to this value")
    patience: int | None = setting(None, "stop early after this many epochs without a better held-out ELBO")
    compile: bool = setting(False, "train through torch.compile")
    bf16: bool = setting(False, "bfloat16 autocast for the forward pass")
    checkpoint_every: int | None = setting(None, "also checkpoint every M steps (default: each epoch)")
    on_nonfinite: str = setting("skip", "a non-finite loss or gradient skips the step or stops training",
                                choices=ON_NONFINITE)
    log: list[str] = setting([], "also log to: tensorboard, csv, mlflow or wandb (metrics.jsonl is always "
                             "written)", choices=("tensorboard", "csv", "mlflow", "wandb"))
    log_images_every: int = setting(5, "loggers that take pictures get samples and reconstructions every N "
                                       "epochs")


    def validate(self) -> None:
        """Raise SettingError naming the first of these settings that is of the wrong type or out of range."""
        _check_types(self, TrainSettings)
        for name in ("epochs", "batch_size", "log_images_every"):
            whole_number(name, getattr(self, name))
        for name in ("patience", "checkpoint_every"):
            if getattr(self, name) is not None:
                whole_number(name, getattr(self, name))
        for name in ("workers", "warmup_steps"):
            if getattr(self, name) is not None:
                whole_number(name, getattr(self, name), least=0)
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                             and 0 < self.lr <= MAX_LR):
            raise SettingError(f"{{0}} must be a positive number no larger than {MAX_LR:g}, got "
                               f"{literal(repr(self.lr))}", "lr")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**64:
            raise SettingError(f"{{0}} must be an integer that fits in 64 bits, got {literal(repr(self.seed))}", "seed")
        if self.clip_grad is not None and not (
            isinstance(self.clip_grad, (int, float)) and math.isfinite(self.clip_grad) and self.clip_grad > 0
        ):
            raise SettingError(f"{{0}} must be a positive number, got {literal(repr(self.clip_grad))}", "clip_grad")
        _check_choices_and_tables(self, TrainSettings)
        check_device(self.device)


@dataclass
class TrainConfig(TrainSettings, BuildSettings):
    """Everything that decides a run trained by name (`vaezoo train`): what to build, then how to train it. Its
    fields are those of BuildSettings followed by those of TrainSettings; `build` and `training` give the two
    parts on their own."""

    def validate(self) -> None:
        """Raise SettingError naming the first setting that is of the wrong type or out of range."""
        BuildSettings.validate(self)
        TrainSettings.validate(self)

    @property
    def build(self) -> BuildSettings:
        """What this run builds."""
        return BuildSettings(**{f.name: getattr(self, f.name) for f in fields(BuildSettings)})

    @property
    def training(self) -> TrainSettings:
        """How this run trains."""
        return TrainSettings(**{f.name: getattr(self, f.name) for f in fields(TrainSettings)})

    @classmethod
    def from_parts(cls, build: BuildSettings, training: TrainSettings) -> TrainConfig:
        """The config of a run that builds `build` and trains it as `training` says."""
        return cls(**{f.name: getattr(build, f.name) for f in fields(BuildSettings)},
                   **{f.name: getattr(training, f.name) for f in fields(TrainSettings)})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a run's recorded `train` settings (older runs kept the loader options in
        `data_options`); keys that are not settings are ignored."""
        loader = values.get("data_options")
        values = {**values, **{k: loader[k] for k in LOADER_SETTINGS if isinstance(loader, dict) and k in loader}}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def record(self) -> dict[str, Any]:
        """The settings as a run's config.json records them (plain JSON values; the data directory absolute,
        resolved once against the working directory, so that eval and resume read the same place)."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.data_dir, str):
            record["data_dir"] = os.path.abspath(self.data_dir)
        return record


def default_of(name: str) -> Any:
    """The default value of the setting `name`."""
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    return spec.default_factory() if spec.default is MISSING else spec.default


def _check_types(settings: Any, part: type) -> None:
    for spec in fields(part):
        check_type(spec.name, getattr(settings, spec.name))


def _check_choices_and_tables(settings: Any, part: type) -> None:
    for spec in fields(part):
        choices, value = spec.metadata.get("choices"), getattr(settings, spec.name)
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if choices and v not in choices and not (v is None and spec.default is None)]
        if bad:
            raise SettingError(f"{{0}} must be one of {', '.join(map(str, choices))}, got {literal(repr(bad[0]))}",
                               spec.name)
        if spec.name in TABLES and not isinstance(value, dict):
            raise SettingError(f"{{0}} must be a table of KEY = VALUE, got {literal(repr(value))}", spec.name)


#: what each annotation's type means in words, for the message naming a setting of the wrong type
TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              dict: "a table of KEY = VALUE", list: "a list of strings", type(None): "unset"}


def _allowed(name: str) -> tuple[type, ...]:
    """The plain types a setting's annotation allows (int | None -> (int, NoneType))."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(typing.get_origin(a) or a for a in args)


def check_type(name: str, value: Any) -> None:
    """SettingError unless `value` has the type the setting `name` is declared with: a string is never a
    boolean, a boolean never a number, an integer is a number, a list of strings holds only strings."""
    allowed = _allowed(name)
    if isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int):
        ok = int in allowed or float in allowed
    else:
        ok = isinstance(value, tuple(t for t in allowed if t not in (bool, int)))
    if ok and isinstance(value, list):
        ok = all(isinstance(item, str) for item in value)
    if not ok:
        what = " or ".join(TYPE_WORDS[t] for t in allowed)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise SettingError(f"{{0}} must be {what}, got {literal(shown)} (a {type(value).__name__})", name)
