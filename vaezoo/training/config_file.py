"""Config files for `vaezoo train --config FILE`: TOML, YAML or JSON, keyed by the settings' names (errors name
the file and the key, as written there).

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
from vaezoo.training.config import TABLES, TrainConfig, check_type

#: the table of overrides is `set` in a config file, as the command line's flag; a run's config.json records it
#: as `overrides`, which only a replayed config.json may use (one name per file, so that neither silently wins)
TABLE_NAME = {"set": "overrides"}
NON_FINITE_WORDS = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
#: keys of `vaezoo train` a config file may set that are not training settings (they change no result)
COMMAND_KEYS = ("quiet",)
SUFFIXES = (".toml", ".yaml", ".yml", ".json")
MAX_BYTES = 1 << 20  # a config file is a few hundred bytes: a megabyte is far beyond any, and bounds the read


def _yaml_loader() -> type:
    """PyYAML's safe loader, refusing anchors and aliases: without them a document holds no more nodes than
    it has bytes, so a few hundred bytes can never expand into billions of values (or refer to themselves)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
            if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None) is not None:
                event = self.peek_event()
                raise yaml.YAMLError(f"line {event.start_mark.line + 1}: YAML anchors and aliases (&NAME, *NAME) "
                                     "are not accepted in a config file; write the values out")
            return super().compose_node(parent, index)

    return NoAliasLoader


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader that also refuses aliases
    return json.loads(text)


def _read_text(path: Path) -> str:
    """The file's text, read only when its suffix names a format and only up to MAX_BYTES."""
    if path.suffix.lower() not in SUFFIXES:
        raise VaezooError(f"config file {path}: the file must end in .toml, .yaml, .yml or .json")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # noqa: F401
        except ImportError:
            raise VaezooError(f"{path} is YAML, which needs the PyYAML package: pip install pyyaml") from None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise VaezooError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise VaezooError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise VaezooError(f"config file {path} is larger than {MAX_BYTES // 1024} KiB; a config file holds settings, "
                          "not data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VaezooError(f"config file {path} cannot be read as UTF-8 text: {exc}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings in the config file `path`, checked: every key is a string naming a setting, every value has
    the setting's type, tables are tables (or lists of KEY=VALUE). TrainConfig.validate checks ranges later."""
    path = Path(path)
    text = _read_text(path)
    try:
        values = _parse(path, text)
    except Exception as exc:  # tomllib, yaml and json each raise their own error types
        raise VaezooError(f"config file {path} is not valid {path.suffix.lstrip('.').upper()}: "
                          f"{' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise VaezooError(f"config file {path} must hold a table of settings (KEY = VALUE), got "
                          f"{type(values).__name__}")
    _check_keys(path, values, "")
    replay = isinstance(values.get("train"), dict) and "format" in values
    if replay:  # a run's config.json: replay its settings
        values = dict(values["train"])
    return _settings(path, values, replay)


def settings_over(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The settings `over` on top of `base` (a config file's under the command line's): a table key by key, so
    that `--set beta=3` over a file's [set] table keeps the table's other keys; anything else replaced."""
    merged = dict(base)
    for name, value in over.items():
        merged[name] = {**base[name], **value} if name in TABLES and isinstance(base.get(name), dict) else value
    return merged


def _check_keys(path: Path, value: Any, where: str) -> None:
    """VaezooError naming the first key anywhere in `value` that is not a string (YAML's 1: or null: keys)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise VaezooError(f"config file {path}: key {key!r}{f' in {where}' if where else ''} is not a string "
                                  f"but {type(key).__name__}; quote it")
            _check_keys(path, item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for item in value:
            _check_keys(path, item, where)


def _settings(path: Path, values: dict[str, Any], replay: bool) -> dict[str, Any]:
    names = [f.name for f in fields(TrainConfig)]
    if not replay and "overrides" in values:
        also = " (the file has both: keep one table, named set)" if "set" in values else ""
        raise VaezooError(f"config file {path}: the table of overrides is named set in a config file, not "
                          f"overrides{also}")
    settings: dict[str, Any] = {}
    for key, value in values.items():
        name = TABLE_NAME.get(key, key)
        if key in COMMAND_KEYS:
            if not isinstance(value, bool):
                raise VaezooError(f"config file {path}: {key} must be true or false, got {value!r}")
            settings[key] = value
            continue
        if name not in names:
            close = difflib.get_close_matches(key, [n for n in names if n != "overrides"] + ["set", *COMMAND_KEYS], n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `vaezoo train --help` lists the settings"
            raise VaezooError(f"config file {path}: {key!r} is not a training setting{hint}")
        if name in TABLES:
            if isinstance(value, list):
                try:
                    value = parse_assignments(value, key)
                except VaezooError as exc:
                    raise VaezooError(f"config file {path}: {exc}") from None
            bad = next((k for k, v in value.items() if non_finite(v)), None) if isinstance(value, dict) else None
            if bad is not None:
                raise VaezooError(f"config file {path}: {key}.{bad} must be finite (NaN and infinities train nothing)")
        try:
            check_type(name, value)
        except VaezooError as exc:
            raise VaezooError(f"config file {path}: {exc}") from None
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
    """KEY=VALUE strings (of a repeated flag such as --set, or a list in a config file; `flag` is how errors name
    it) as a dict; VALUE is JSON when it parses as JSON, else a string; NaN and infinities are refused."""
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
