"""Installed plugin distributions for tests: fake one-module ones written by hand, and a real pip install."""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOWS_SOURCE = REPO / "plugins" / "vaezoo-flows"

#: A plugin module that registers two datasets: a small synthetic one that trains, and one whose loader forgets
#: to return a vaezoo.Dataset.
BOARDS = """
    import torch
    from vaezoo import Dataset, hookimpl

    def load_checkers(image_size=6):
        '''Checkerboards and their inverses (48 images, 12 held out).'''
        board = (torch.arange(image_size)[:, None] + torch.arange(image_size)) % 2
        x = torch.stack([board, 1 - board]).float().repeat(24, 1, 1).unsqueeze(1)
        y = torch.arange(len(x)) % 2
        return Dataset("checkers", x[12:], y[12:], x[:12], y[:12])

    def load_unpacked():
        '''A loader that returns its arrays in a dict.'''
        return {"train_x": torch.zeros(4, 1, 2, 2)}

    @hookimpl
    def vaezoo_register_datasets(register):
        register("checkers", load_checkers)
        register("unpacked", load_unpacked)
"""


class FakeSite:
    """A folder on sys.path into which `install` writes what pip would leave for a one-module plugin."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def install(self, dist: str, source: str, plugin: str | None = None, module: str | None = None) -> None:
        """Install distribution `dist` whose `vaezoo` entry point `plugin` (default: dist) is `module`'s source."""
        module = module or dist.replace("-", "_") + "_plugin"
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[vaezoo]\n{plugin or dist} = {module}\n")
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        importlib.invalidate_caches()  # also forgets importlib.metadata's cached listing of the folder

    def forget_modules(self) -> None:
        """Drop the installed modules from sys.modules, so the next test imports its own."""
        for module in self.modules:
            sys.modules.pop(module, None)


def pip_install_flows(target: Path) -> Path:
    """pip-install plugins/vaezoo-flows into `target` (from a copy, so no build files land in the source tree)."""
    source = target.parent / "vaezoo-flows-src"
    shutil.copytree(FLOWS_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip install of {FLOWS_SOURCE} failed:\n{result.stdout}{result.stderr}")
    return target
