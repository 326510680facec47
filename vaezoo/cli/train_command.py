"""`vaezoo train`: its flags, made from TrainConfig's fields; a config file under them; the call; the report."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import Any

from vaezoo.errors import VaezooError
from vaezoo.training.config import TABLES, TrainConfig, default_of
from vaezoo.training.config_file import parse_assignments, read_config_file, settings_over
from vaezoo.training.resume_plan import RESUMABLE_CHANGES, plan_resume
from vaezoo.training.trainer import resume, train

#: the settings given by position rather than by flag
POSITIONAL = ("variant",)
#: the flags not named --NAME-WITH-DASHES after their setting (each table is a repeated KEY=VALUE flag)
FLAGS = {"overrides": "--set", "data_options": "--data-option", "optimizer_options": "--optimizer-option",
         "schedule_options": "--schedule-option"}
#: what the help shows in place of a number a flag takes, where its name says more than its type
METAVARS = {"limit": "N", "workers": "N", "checkpoint_every": "M", "log_images_every": "N"}


def flag_name(name: str) -> str:
    """The command-line flag of the setting `name`: --batch-size for batch_size, --set for overrides."""
    return name if name in POSITIONAL else FLAGS.get(name, "--" + name.replace("_", "-"))


def _type(spec: Any) -> Any:
    """The argparse type of a TrainConfig field, from its annotation."""
    annotation = str(spec.type)
    for name, convert in (("int", int), ("float", float)):
        if annotation.startswith(name):
            return convert
    return str


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (default None: not given), its help ending with the default."""
    for spec in fields(TrainConfig):
        default = default_of(spec.name)
        choices = spec.metadata.get("choices")
        repeat = isinstance(default, (dict, list))  # a table (KEY=VALUE flags) or a list of names
        shown = "" if default in (None, [], {}) or isinstance(default, bool) else f" (default {default})"
        kwargs: dict[str, Any] = {"help": spec.metadata["help"] + shown + (" (repeatable)" if repeat else "")}
        if spec.name in POSITIONAL:
            p.add_argument(spec.name, nargs="?", **kwargs)
            continue
        if isinstance(default, bool):
            kwargs.update(action="store_true", default=None)
        elif repeat and choices:  # --log tensorboard csv, as the usage line shows (validate names a bad one)
            kwargs.update(action="extend", nargs="+", default=None, metavar="NAME")
        elif repeat:
            kwargs.update(action="append", default=None, metavar="KEY=VALUE")
        else:
            kwargs.update(type=_type(spec), default=None, choices=choices)
            if spec.name in METAVARS:
                kwargs["metavar"] = METAVARS[spec.name]
        p.add_argument(flag_name(spec.name), dest=spec.name, **kwargs)
    p.add_argument("--config", metavar="FILE",
                   help="settings from a TOML, YAML or JSON file, keyed by the flags' names with underscores "
                        "(batch_size = 64); a run's config.json replays that run. Flags given here override it")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its settings ("
                        f"{', '.join(flag_name(key) for key in RESUMABLE_CHANGES)} may change; other differing flags "
                        "are refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (a repeated KEY=VALUE flag as its table)."""
    given = {}
    for spec in fields(TrainConfig):
        value = getattr(args, spec.name)
        if value is None:
            continue
        if spec.name in TABLES:
            value = parse_assignments(value, flag_name(spec.name))
        given[spec.name] = value
    return given


def train_config(args: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """The run's settings: the defaults, under the --config file's, under the flags given (a table flag such as
    --set key by key over the file's table); and whether to be quiet (--quiet, or the file's `quiet`)."""
    settings = read_config_file(args.config) if args.config else {}
    quiet = settings.pop("quiet", False) or args.quiet
    return TrainConfig(**settings_over(settings, given_flags(args))), quiet


def _resume(args: argparse.Namespace):
    if args.config:
        raise VaezooError("--resume continues a run with its own settings; leave out --config")
    if not args.out:
        raise VaezooError("--resume needs --out, the run directory to continue")
    plan = plan_resume(args.out, **given_flags(args))
    for key, now, before in plan.notices:
        print(f"vaezoo: --resume: {flag_name(key).lstrip('-')} is now {now} (the run had {before})", file=sys.stderr)
    return resume(plan, progress=not args.quiet)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        run = _resume(args)
    else:
        config, quiet = train_config(args)
        run = train(config, progress=not quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone reports
        print(f"run written to {run}")
        print(f"report: {run / 'report.html'}")
    return 0
