"""The run directory: config.json, metrics.jsonl and model.safetensors, written safely and read back."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from vaezoo._version import __version__
from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.errors import RunDirError, UnknownNameError, VaezooError
from vaezoo.core import VAE

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1


def prepare_run_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` for a new run; refuse one that already holds a run, or one that cannot be written."""
    run = Path(path)
    if (run / CONFIG).exists() or (run / WEIGHTS).exists():
        raise RunDirError(f"{run} already holds a run; choose another --out so nothing saved there is overwritten")
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".vaezoo-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write the run directory {run}: {exc.strerror or exc}") from exc
    return run


def versions() -> dict[str, str]:
    """The software versions recorded with every run."""
    return {"vaezoo": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_config(run: Path, config: dict[str, Any]) -> None:
    record = {"format": FORMAT_VERSION, **config, "versions": versions()}
    atomic_write_text(run / CONFIG, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_config(run: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(run) / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{run} is not a vaezoo run directory: {CONFIG} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is corrupt: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("format"), int):
        raise RunDirError(f"{path} is not a vaezoo run config (no format number)")
    if config["format"] > FORMAT_VERSION:
        raise RunDirError(
            f"{path} was written in run format {config['format']} by a newer vaezoo; this vaezoo "
            f"{__version__} reads format {FORMAT_VERSION} and older. Upgrade vaezoo to load it."
        )
    return config


def append_metrics(run: Path, metrics: dict[str, Any]) -> None:
    with open(run / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(metrics, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_metrics(run: Path, metrics: list[dict[str, Any]]) -> None:
    """Replace metrics.jsonl atomically (used when a resumed run redoes epochs)."""
    atomic_write_text(run / METRICS, "".join(json.dumps(m, sort_keys=True) + "\n" for m in metrics))


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(run) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def save_weights(run: Path, model: VAE) -> None:
    """Write the model's weights to model.safetensors atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(run / WEIGHTS, lambda f: f.write(save(tensors)))


def load_model(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> VAE:
    """The trained VAE saved in `run_dir`, rebuilt from its config and loaded from safetensors.

    The parts come from the distributions the run recorded; when one is missing, blocked or changed, the error
    says what to install or unblock (never another plugin's part of the same name).
    """
    config = read_config(run_dir)
    try:
        model = rebuild_recorded(config)
    except VaezooError as exc:
        raise RunDirError(f"cannot rebuild the model of {run_dir}: {exc}") from exc
    path = Path(run_dir) / WEIGHTS
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise RunDirError(f"{run_dir} holds no trained weights: {WEIGHTS} is missing") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise RunDirError(f"{path} is corrupt or not a safetensors file: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunDirError(f"{path} does not fit variant {config['variant']!r}: {exc}") from exc
    return model.to(device).eval()


def rebuild_recorded(config: dict[str, Any]) -> VAE:
    """The model of a run config; runs written before parts were recorded by distribution name their plugins."""
    from vaezoo.factory import create_model, rebuild

    if "identity" in config:
        return rebuild(config)
    try:
        return create_model(
            config["variant"], input_shape=config["input_shape"], latent_dim=config["latent_dim"],
            num_classes=config.get("num_classes", 0), **config["overrides"],
        )
    except UnknownNameError:
        needed = ", ".join(
            f"{info['distribution']}=={info['version']} (plugin {name})"
            for name, info in config.get("plugins", {}).items() if name != "vaezoo"
        )
        raise RunDirError(
            f"the run's variant {config['variant']!r} is not registered here"
            + (f"; the run was made with {needed}: pip install it" if needed else "")
        ) from None


def load_run_data(run_dir: str | os.PathLike[str]):
    """The dataset a run was trained on, read again from where the run read it."""
    from vaezoo.data import load_dataset

    config = read_config(run_dir)
    train = config.get("train", {})
    return load_dataset(config["dataset"], train.get("data_dir"), limit=train.get("limit"), **train.get("data_options", {}))
