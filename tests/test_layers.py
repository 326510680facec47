"""The package's layers import downwards only: import-linter's contracts in pyproject.toml hold."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""}, check=False)


@pytest.fixture(scope="module")
def lint_imports() -> Path:
    if not LINT.exists():
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    return LINT


def test_the_layer_contracts_hold(lint_imports):
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract(lint_imports, tmp_path):
    """The contract can fail: a copy of the package whose core imports the trainer is refused."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "vaezoo", copy / "vaezoo", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    prior = copy / "vaezoo" / "core" / "prior.py"
    prior.write_text(prior.read_text() + "\nfrom vaezoo.training import trainer  # noqa: E402\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "vaezoo.core.prior -> vaezoo.training.trainer" in result.stdout


def test_a_command_module_doing_tensor_work_breaks_the_thin_cli_contract(lint_imports, tmp_path):
    """The command line calls the library for tensor and array work: a command module importing torch itself is
    refused (importing it through the library is not)."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "vaezoo", copy / "vaezoo", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    command = copy / "vaezoo" / "cli" / "picture_commands.py"
    command.write_text(command.read_text() + "\nimport torch  # noqa: E402\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "vaezoo.cli.picture_commands -> torch" in result.stdout
