"""The `vaezoo train` command that repeats a run, written from the settings its config.json records (for the
model card that `vaezoo push` publishes): the command line's own flags, so it lives beside them."""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import fields
from typing import Any

from vaezoo.runs.directory import IN_MEMORY, read_config
from vaezoo.cli.train_command import POSITIONAL, flag_name
from vaezoo.training.config import TrainConfig, default_of

#: settings that name places on the machine that trained the run: written as these placeholders
PLACES = {"out": "RUN_DIR", "data_dir": "DATA_DIR"}


def _value(value: Any) -> str:
    """A setting's value as the command line takes it: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def train_command(settings: dict[str, Any]) -> str:
    """`vaezoo train ...` with every recorded setting that differs from its default (and the variant, dataset
    and run directory), paths replaced by RUN_DIR and DATA_DIR; a shell line."""
    words = ["vaezoo", "train"]
    for spec in fields(TrainConfig):
        name = spec.name
        if name not in settings:
            continue
        value = settings[name]
        if name in PLACES:
            value = PLACES[name] if value is not None else None
        if value is None or value == default_of(name) and name not in ("variant", "dataset", "out"):
            continue
        flag = flag_name(name)
        if name in POSITIONAL:
            words.append(_value(value))
        elif isinstance(value, bool):
            words.append(flag)
        elif isinstance(value, dict):
            for key, item in value.items():
                words += [flag, f"{key}={_value(item)}"]
        elif isinstance(value, list):
            for item in value:
                words += [flag, _value(item)]
        else:
            words += [flag, _value(value)]
    return shlex.join(words)


def recorded_command(run: str | os.PathLike[str]) -> str | None:
    """The command that repeats the run `run`, or None for a model trained by vaezoo.fit on data in memory
    (which no command can name)."""
    config = read_config(run)
    if config["dataset"] == IN_MEMORY:
        return None
    return train_command(config["train"])
