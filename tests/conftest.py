"""Shared fixtures: a fresh plugin registry per test, a cache of the test process's own, and small data; how the
suite is split between pytest-xdist's processes."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import torch
from plugin_sites import FakeSite

from vaezoo.registry.discovery import reset_registry

# The tests run tiny tensors on a shared 2-core machine, where intra-op threads only add overhead (10x here) and
# stall when another job runs beside them: one thread, so a busy machine slows the suite in proportion. The
# environment carries it to every process a test starts (the command line, torchrun and its workers, pip), and
# the inter-op pool gets one thread too. A test that needs more threads sets them itself and puts them back
# (tests/test_ops_random.py: thread invariance).
os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
torch.set_num_threads(1)
torch.set_num_interop_threads(1)


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """vaezoo's cache (VAEZOO_CACHE: dSprites' bits, feature networks, prepared folders) in a folder of this test
    process, for it and the commands it starts: the tests never write into the user's ~/.cache/vaezoo, and two
    test processes (pytest-xdist) never build or read each other's half-written cache. Tests about the cache
    itself point VAEZOO_CACHE at their own tmp_path."""
    folder = tmp_path_factory.mktemp("vaezoo-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAEZOO_CACHE", str(folder))
        yield folder
    shutil.rmtree(folder, ignore_errors=True)  # dSprites' cache alone is 377 MB


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch):
    """Each test discovers plugins anew, without plugin-related environment variables from outside."""
    for var in ("VAEZOO_STRICT_PLUGINS", "VAEZOO_DISABLE_PLUGINS", "VAEZOO_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """An empty folder on sys.path for fake installed distributions; discovery starts afresh."""
    fake = FakeSite(tmp_path / "site")
    fake.root.mkdir()
    monkeypatch.syspath_prepend(str(fake.root))
    reset_registry()
    yield fake
    fake.forget_modules()
