"""Checks of values a user gives, shared by every layer: one place words each kind of refusal."""
from __future__ import annotations

from typing import Any

from vaezoo.errors import SettingError, literal


def whole_number(setting: str, value: Any, least: int = 1) -> int:
    """`value` when it is an integer (a bool is not) of at least `least`; otherwise SettingError naming the
    setting and the value, e.g. "epochs must be a whole number of at least 1, got 0"."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SettingError(f"{{0}} must be a whole number of at least {least}, got {literal(repr(value))}", setting)
    return value
