"""Shared fixtures: a fresh plugin registry per test and small data."""
from __future__ import annotations

import pytest

from vaezoo.discovery import reset_registry


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch):
    """Each test discovers plugins anew, without plugin-related environment variables from outside."""
    for var in ("VAEZOO_STRICT_PLUGINS", "VAEZOO_DISABLE_PLUGINS", "VAEZOO_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    reset_registry()
    yield
    reset_registry()
