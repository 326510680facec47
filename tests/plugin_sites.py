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


#: A plugin module with a new-style dataset: `files` reads one uint8 .npy file [1, 6, 6] per image from
#: --data-dir when a batch asks for it (the first 20 files held out), so a damaged file fails mid-stream, in a
#: DataLoader worker, naming the file.
FILES = """
    from pathlib import Path

    import numpy as np
    import torch
    from vaezoo import ImageSet, Splits, hookimpl
    from vaezoo.errors import DataError

    class Files(ImageSet):
        '''One .npy file per image, read when asked for.'''

        def __init__(self, paths, labels):
            super().__init__((1, 6, 6), torch.uint8, labels)
            self.paths = paths

        def read(self, rows):
            images = []
            for row in rows:
                try:
                    images.append(np.load(self.paths[row]))
                except ValueError as err:
                    raise DataError(f"{self.paths[row]} is not a readable .npy file ({err})") from None
            return torch.from_numpy(np.stack(images)) if images else torch.empty((0, 1, 6, 6), dtype=torch.uint8)

    def load_files(data_dir):
        paths = sorted(Path(data_dir).glob("*.npy"))
        labels = torch.arange(len(paths)) % 2
        return Splits("files", Files(paths[20:], labels[20:]), Files(paths[:20], labels[:20]))

    @hookimpl
    def vaezoo_register_datasets(register):
        register("files", load_files)
"""


def write_image_files(folder: Path, n: int = 120) -> Path:
    """n uint8 images [1, 6, 6] of stripes, one .npy file each, for the FILES plugin."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = np.zeros((1, 6, 6), np.uint8)
        image[0, i % 6, :] = 255
        image[0, :, (i // 6) % 6] = 128
        np.save(folder / f"{i:04d}.npy", image)
    return folder


#: A plugin module that ships the run copied next to it (in shipped_run/) as weights named {name}, registered
#: with the SHA-256 {sha256}.
WEIGHTS = """
    from pathlib import Path
    from vaezoo import hookimpl

    @hookimpl
    def vaezoo_register_weights(register):
        register("{name}", {{"files": Path(__file__).resolve().parent / "shipped_run", "sha256": "{sha256}",
                            "command": "vaezoo train {name}", "metrics": {{"elbo": -1.5}}}},
                 description="a tiny run shipped by a test")
"""


def install_weights(site: FakeSite, run: Path, name: str, sha256: str | None = None) -> Path:
    """Install into `site` a distribution `vaezoo-tiny-weights` that ships the files of `run` as weights `name`
    (registered with `sha256`, by default the true one); the shipped folder's path."""
    import hashlib

    shipped = site.root / "shipped_run"
    shipped.mkdir()
    for file in ("config.json", "model.safetensors", "metrics.jsonl"):
        shutil.copyfile(run / file, shipped / file)
    sha256 = sha256 or hashlib.sha256((shipped / "model.safetensors").read_bytes()).hexdigest()
    site.install("vaezoo-tiny-weights", WEIGHTS.format(name=name, sha256=sha256), plugin="tiny-weights")
    return shipped
