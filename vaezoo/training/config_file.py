"""Config files for `vaezoo train --config FILE`: TOML, YAML or JSON, keyed by the settings' names.

A run's own config.json is a config file too: its recorded `train` settings replay the run.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from vaezoo.errors import VaezooError
from vaezoo.training.config import TrainConfig, flag_name

#: the keys a config file may use beside the settings' own names: the flag `--set` is the setting `overrides`
ALIASES = {"set": "overrides"}
#: the settings that are tables of KEY = VALUE (on the command line, repeated KEY=VALUE flags)
TABLES = ("overrides", "optimizer_options", "schedule_options")
NON_FINITE_WORDS = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise VaezooError(f"{path} is YAML, which needs the PyYAML package: pip install pyyaml") from None
        return yaml.safe_load(text)
    if suffix == ".json":
        return json.loads(text)
    raise VaezooError(f"--config {path}: the file must end in .toml, .yaml, .yml or .json")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings in the config file `path`, checked: every key names a setting, `set`/`overrides` is a table
    (or a list of KEY=VALUE). Values keep their types; TrainConfig.validate checks their ranges later."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VaezooError(f"--config {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaezooError(f"--config {path} cannot be read as text: {exc}") from None
    try:
        values = _parse(path, text)
    except VaezooError:
        raise
    except Exception as exc:  # tomllib, yaml and json each raise their own error types
        raise VaezooError(f"--config {path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(values, dict):
        raise VaezooError(f"--config {path} must hold a table of settings (KEY = VALUE), got {type(values).__name__}")
    if isinstance(values.get("train"), dict) and "format" in values:  # a run's config.json: replay its settings
        values = {**values["train"], **values["train"].get("data_options", {})}
        values.pop("data_options", None)
    return _settings(path, values)


def _settings(path: Path, values: dict[str, Any]) -> dict[str, Any]:
    names = [f.name for f in fields(TrainConfig)]
    settings: dict[str, Any] = {}
    for key, value in values.items():
        name = ALIASES.get(key, key)
        if name not in names:
            close = difflib.get_close_matches(key, [*names, *ALIASES], n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `vaezoo train --help` lists the settings"
            raise VaezooError(f"--config {path}: {key!r} is not a training setting{hint}")
        if name in TABLES:
            value = parse_assignments(value, flag_name(name)) if isinstance(value, list) else value
            bad = next((k for k, v in value.items() if non_finite(v)), None) if isinstance(value, dict) else None
            if bad is not None:
                raise VaezooError(f"--config {path}: {key}.{bad} must be finite (NaN and infinities train nothing)")
        settings[name] = value
    return settings


def non_finite(value: Any) -> bool:
    """Whether a parsed option value is, or holds, a NaN or an infinity (a number no option can use)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(non_finite(v) for v in value.values())
    return isinstance(value, str) and value.strip().lower() in NON_FINITE_WORDS


def parse_assignments(items: list[Any], flag: str) -> dict[str, Any]:
    """KEY=VALUE strings (of a repeated flag such as --set) as a dict; VALUE is JSON when it parses as JSON, else
    a string; NaN and infinities are refused."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not sep or not key:
            raise VaezooError(f"{flag} takes KEY=VALUE (e.g. {flag} beta=4 or {flag} encoder.hidden_dims=[512,256]), "
                              f"got {item!r}")
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
        if non_finite(parsed[key]):
            raise VaezooError(f"{flag} {item}: {key} must be a finite number (NaN and infinities train nothing)")
    return parsed
