"""Errors that vaezoo raises for bad input: each names what was wrong and what was expected."""
from __future__ import annotations

from typing import Callable


class VaezooError(Exception):
    """Base class of every user-facing vaezoo error; the CLI prints these as one paragraph."""


class UnknownNameError(VaezooError, KeyError):
    """A variant, component or dataset name that nobody registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BadOverrideError(VaezooError, ValueError):
    """An override that the variant or component does not accept."""


class AmbiguousNameError(VaezooError, LookupError):
    """A bare name that several plugins provide."""


class DataError(VaezooError, ValueError):
    """A dataset that is missing, malformed or of the wrong shape."""


class RunDirError(VaezooError, OSError):
    """A run directory that cannot be written or read."""


class PluginError(VaezooError, RuntimeError):
    """A plugin that failed to load or register, raised only in strict mode."""


class NotAvailableError(VaezooError):
    """A quantity that is not defined for this combination of parts (the message says why)."""


class CombinationError(VaezooError, ValueError):
    """Parts that cannot work together, or a part that breaks the plugin contract, found at build time."""


class MetricInputError(VaezooError, ValueError):
    """Codes, factors or features that a metric cannot take: wrong shape, too few rows, non-numeric values."""


class NonFiniteError(VaezooError, FloatingPointError):
    """Training produced non-finite values (loss, gradient or weights) and was told to stop, or would have
    written them; vaezoo never writes a non-finite tensor."""


class SettingError(VaezooError, ValueError):
    """A setting of the wrong type or out of range. The message names each setting as the library calls it
    (`batch_size`); `named` says the same with other names for them, such as a command's flags."""

    def __init__(self, template: str, *settings: str) -> None:
        """`template` holds {0}, {1}, ... where `settings` are named (a literal brace doubled: see `literal`)."""
        self.template, self.settings = template, settings
        super().__init__(template.format(*settings))

    def named(self, name_of: Callable[[str], str]) -> str:
        """The message with each setting named by name_of(setting), e.g. its command-line flag."""
        return self.template.format(*(name_of(setting) for setting in self.settings))


def literal(text: object) -> str:
    """`text` as it reads inside a SettingError template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")
