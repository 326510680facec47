"""docs/plugins.md cannot drift from the code: its worked example is built from the page itself, pip-installed
and run with the page's own commands, and every vaezoo name the guide mentions is importable."""
from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vaezoo.cli.main import main
from vaezoo.registry.discovery import reset_registry

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"\*\*`(vaezoo-mylab/[^`]+)`\*\*\n```[a-z]*\n(.*?)```", re.S)
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def example_files() -> dict[str, str]:
    return dict(FILE_BLOCK.findall(guide()))


def block_after(heading_text: str, language: str) -> str:
    """The first fenced block of `language` after the line containing heading_text."""
    text = guide()
    rest = text[text.index(heading_text):]
    return next(body for lang, body in FENCE.findall(rest) if lang == language)


@pytest.fixture(scope="module")
def mylab_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worked example written out from the guide and pip-installed into a folder of its own."""
    root = tmp_path_factory.mktemp("mylab")
    for relative, body in example_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    target = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(root / "vaezoo-mylab")], capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture
def mylab(mylab_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(mylab_site))
    reset_registry()
    yield
    for name in [m for m in sys.modules if m == "vaezoo_mylab" or m.startswith("vaezoo_mylab.")]:
        del sys.modules[name]


def test_the_example_has_every_file_its_tree_lists():
    tree = block_after("## A complete example", "")
    listed = {"vaezoo-mylab/" + line.strip() for line in tree.splitlines()[1:] if line.strip()}
    assert listed == set(example_files())


def test_the_guides_commands_run_as_written(mylab, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = [shlex.split(line.split("#")[0]) for line in block_after("Install it into", "bash").splitlines()]
    vaezoo_commands = [argv[1:] for argv in commands if argv and argv[0] == "vaezoo"]
    assert len(vaezoo_commands) == len([argv for argv in commands if argv]) - 1  # all but `pip install`
    outputs = {}
    for argv in vaezoo_commands:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, (argv, captured.err)
        outputs[" ".join(argv[:3])] = captured.out
    assert "mylab  (vaezoo-mylab 0.1.0)  active" in outputs["plugins"]
    assert "laplace" in outputs["list --kind posterior"]
    assert "posterior  laplace" in outputs["show mylab-vae"]
    assert re.search(r"NLL \(IW, K=100\)\s+\d+\.\d+ nats", outputs["eval runs/mylab --nll-samples"])
    assert "KL per dimension" in outputs["eval runs/mylab --nll-samples"]  # the Student-t prior factorizes
    assert re.search(r"^bars +mylab +Every bar across or down", outputs["list --kind dataset"], re.M)
    assert re.search(r"^digits +vaezoo ", outputs["list --kind dataset"], re.M)
    config = json.loads((tmp_path / "runs/bars/config.json").read_text())
    assert config["dataset"] == "bars" and config["input_shape"] == [1, 12, 12]
    for run in ("runs/mylab", "runs/conv-t", "runs/mlp-laplace", "runs/bars"):
        assert (tmp_path / run / "model.safetensors").is_file() and (tmp_path / run / "samples.png").is_file()
    assert (tmp_path / "runs/mylab/more-samples.png").stat().st_size > 100


def test_the_guides_plugin_test_passes(mylab, monkeypatch):
    namespace: dict = {}
    exec(compile(block_after("To check your plugin in its own tests", "python"), str(GUIDE), "exec"), namespace)
    namespace["test_mylab_vae_builds_and_runs"](monkeypatch)


def test_every_vaezoo_name_in_the_guide_is_importable():
    text = guide()
    names = set(re.findall(r"\bvaezoo(?:\.[A-Za-z_]\w*)+", text))
    for module, imported in re.findall(r"from (vaezoo(?:\.\w+)*) import ([\w, ]+)", text):
        names |= {f"{module}.{name.strip()}" for name in imported.split(",")}
    assert {"vaezoo.Posterior", "vaezoo.Prior", "vaezoo.Latent", "vaezoo.VariantSpec"} <= names
    for dotted in sorted(names):
        assert resolves(dotted), f"the guide names {dotted}, which does not exist"


def resolves(dotted: str) -> bool:
    """True when `dotted` is a module, or an attribute path below the longest importable module prefix."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False
